// Users, API keys, teams, collection sharing, quotas and the audit log:
//   GET    /api/users/me                              the caller
//   GET    /api/users/me/usage                        usage and limits (quotas)
//   GET    /api/users                   (admin)       every user
//   POST   /api/users                   (admin)       create a user or service account
//   GET    /api/users/{user_id}         (self/admin)  one user
//   PUT    /api/users/{user_id}         (self/admin)  name, email; role and disabled: admin only
//   DELETE /api/users/{user_id}         (admin)       the user, their keys and their own collections
//   POST   /api/users/{user_id}/api-keys   (self/admin)  a new key, shown once
//   GET    /api/users/{user_id}/api-keys   (self/admin)  keys without secrets
//   DELETE /api/users/{user_id}/api-keys/{key_id}        revoke
//   PUT    /api/users/{user_id}/quotas  (admin)       per-user quota overrides
//   POST   /api/teams, GET /api/teams, GET|PUT|DELETE /api/teams/{team_id}
//   GET|POST /api/teams/{team_id}/users, DELETE /api/teams/{team_id}/users/{user_id}
//   GET|POST /api/collections/{collection_id}/users|teams, DELETE .../users|teams/{id}   sharing
//   GET    /api/audit                   (admin)       the audit log
#pragma once

#include "modulo/api/app_context.h"
#include "modulo/api/security.h"
#include "modulo/http/router.h"
#include "modulo/store/identity_store.h"
#include "modulo/store/metadata_store.h"

namespace modulo::api {

// Server-wide quota defaults (the seed's); per-user overrides live in the identity store.
struct QuotaDefaults {
  std::int64_t collections = 10;
  std::int64_t teams = 5;  // teams a non-admin may administer: without a cap, each new team is a fresh budget
  std::int64_t files_per_collection = 100;
  std::int64_t storage_bytes = 10LL << 30;
  std::int64_t llm_tokens_per_day = 100000;
};

// The limits that apply to a principal (system admins: none).
struct EffectiveQuota {
  std::int64_t collections = 0;  // 0: unlimited
  std::int64_t files_per_collection = 0;
  std::int64_t storage_bytes = 0;
  std::int64_t llm_tokens_per_day = 0;
};
[[nodiscard]] Result<EffectiveQuota> QuotaFor(store::IdentityStore& identity, const QuotaDefaults& defaults,
                                              const auth::Principal& p);

struct TenancyServices {
  store::IdentityStore& identity;
  store::MetadataStore& store;
  Security& security;
  QuotaDefaults quotas;
  // Called on a blocking thread for each collection deleted with its owner (its indexes go).
  std::function<void(const store::Collection& deleted)> on_collection_deleted;
};

void AddTenancyRoutes(http::Router& router, AppContext& app, TenancyServices& services);

}  // namespace modulo::api
