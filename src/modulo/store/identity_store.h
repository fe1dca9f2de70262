// IdentityStore: who may do what. Users (and service accounts), teams and their members, API
// keys (hashes only), collection sharing grants, per-user quota overrides and usage counters,
// and the audit log. Implementations: SqliteIdentityStore (embedded, store/sqlite/) and a
// PostgreSQL one for scale-out; both pass identity_store_contract.h.
//
// Access rules (AccessLevelFor is the one place they are computed):
// - a user-owned collection: its owner has kAdmin;
// - a team-owned collection (Collection::owner_type == "team"): the team's admins have kAdmin,
//   its members kWrite;
// - grants add access: a grant to a user, or to a team the user belongs to, gives its level;
// - the highest level wins; system admins (role admin) are handled above the store.
//
// Promises: every method is atomic; NotFound for unknown ids, AlreadyExists for a duplicate
// user name, team name or team membership, InvalidArgument for malformed input.
//
// Thread-safety: all methods are thread-safe and block (call them on the blocking pool).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modulo/core/error.h"

namespace modulo::store {

enum class AccessLevel { kNone = 0, kRead = 1, kWrite = 2, kAdmin = 3 };
[[nodiscard]] std::string_view ToString(AccessLevel l) noexcept;  // "none", "read", "write", "admin"
[[nodiscard]] std::optional<AccessLevel> ParseAccessLevel(std::string_view s) noexcept;

struct User {
  std::string id;
  std::string name;              // unique
  std::string email;
  std::string role = "user";     // "admin" | "user"
  std::string kind = "user";     // "user" | "service" (a service account)
  std::string external_subject;  // "<iss>|<sub>" of a JWT identity, empty when none
  bool disabled = false;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

struct Team {
  std::string id;
  std::string name;  // unique
  std::string description;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

struct TeamMember {
  std::string team_id;
  std::string user_id;
  std::string role = "member";  // "member" | "admin"
};

struct ApiKeyRecord {
  std::string key_id;      // the public id inside the token
  std::string user_id;
  std::string name;        // what the user called it
  std::string prefix;      // shown in listings, e.g. "mdk_ab12cd34ef56"
  std::string hash;        // SHA-256 hex of the whole token; the token itself is never stored
  std::int64_t created_at_ms = 0;
  std::int64_t expires_at_ms = 0;    // 0: never
  std::int64_t last_used_at_ms = 0;  // 0: never
  std::int64_t revoked_at_ms = 0;    // 0: live
};

struct Grant {
  std::string collection_id;
  std::string grantee_type;  // "user" | "team"
  std::string grantee_id;
  AccessLevel level = AccessLevel::kRead;
};

// Per-user limits; unset members use the server's defaults.
struct QuotaOverrides {
  std::optional<std::int64_t> collections;
  std::optional<std::int64_t> files_per_collection;
  std::optional<std::int64_t> storage_bytes;
  std::optional<std::int64_t> llm_tokens_per_day;
};

struct Usage {
  std::int64_t collections = 0;    // collections the user owns
  std::int64_t storage_bytes = 0;  // bytes of the files in those collections
  std::int64_t llm_tokens_today = 0;
};

struct AuditEntry {
  std::int64_t seq = 0;  // assigned
  std::int64_t at_ms = 0;  // assigned when 0
  std::string principal_id;  // who (user id), or "" for anonymous
  std::string action;        // e.g. "api_key.create", "login.failed", "collection.share"
  std::string resource;      // e.g. "collection:<id>", "user:<id>"
  std::string outcome;       // "ok" | "denied" | "failed"
  std::string detail;        // JSON object text with more context (never secrets)
  std::string remote_address;
};

// Whose request a scoped store serves (see scoped_metadata_store.h).
struct AccessScope {
  std::string user_id;
  std::vector<std::string> team_ids;        // teams the user belongs to
  std::vector<std::string> admin_team_ids;  // of those, the ones where the user is a team admin
  bool system_admin = false;                // role admin: every collection, full access
};

class IdentityStore {
 public:
  virtual ~IdentityStore() = default;

  // Users. CreateUser assigns timestamps, and the id unless one is given.
  [[nodiscard]] virtual Result<User> CreateUser(const User& u) = 0;
  [[nodiscard]] virtual Result<User> GetUser(const std::string& id) = 0;
  [[nodiscard]] virtual Result<User> FindUserByName(const std::string& name) = 0;
  [[nodiscard]] virtual Result<User> FindUserBySubject(const std::string& external_subject) = 0;
  [[nodiscard]] virtual Result<std::vector<User>> ListUsers() = 0;
  // Updates name, email, role, disabled of `u.id`.
  [[nodiscard]] virtual Result<User> UpdateUser(const User& u) = 0;
  // Also deletes the user's keys, memberships and grants (their collections stay, see callers).
  [[nodiscard]] virtual Status DeleteUser(const std::string& id) = 0;

  // Teams. CreateTeam makes `creator_user_id` the team's first admin, atomically.
  [[nodiscard]] virtual Result<Team> CreateTeam(const Team& t, const std::string& creator_user_id) = 0;
  [[nodiscard]] virtual Result<Team> GetTeam(const std::string& id) = 0;
  // Every team when user_id is empty, else the teams the user belongs to.
  [[nodiscard]] virtual Result<std::vector<Team>> ListTeams(const std::string& user_id) = 0;
  [[nodiscard]] virtual Result<Team> UpdateTeam(const Team& t) = 0;
  [[nodiscard]] virtual Status DeleteTeam(const std::string& id) = 0;
  // Adds a member, or changes the role of an existing one.
  [[nodiscard]] virtual Status SetTeamMember(const TeamMember& m) = 0;
  [[nodiscard]] virtual Status RemoveTeamMember(const std::string& team_id, const std::string& user_id) = 0;
  [[nodiscard]] virtual Result<std::vector<TeamMember>> ListTeamMembers(const std::string& team_id) = 0;
  // The user's memberships (team id and role), in one query: the request path calls it.
  [[nodiscard]] virtual Result<std::vector<TeamMember>> MembershipsOf(const std::string& user_id) = 0;

  // API keys.
  [[nodiscard]] virtual Status CreateApiKey(const ApiKeyRecord& k) = 0;
  [[nodiscard]] virtual Result<ApiKeyRecord> GetApiKey(const std::string& key_id) = 0;
  [[nodiscard]] virtual Result<std::vector<ApiKeyRecord>> ListApiKeys(const std::string& user_id) = 0;
  // NotFound unless the key exists and belongs to the user; revoking twice is not an error.
  [[nodiscard]] virtual Status RevokeApiKey(const std::string& user_id, const std::string& key_id) = 0;
  [[nodiscard]] virtual Status TouchApiKey(const std::string& key_id, std::int64_t used_at_ms) = 0;

  // Sharing. SetGrant adds or changes a grant; grantee must exist (NotFound otherwise).
  [[nodiscard]] virtual Status SetGrant(const Grant& g) = 0;
  [[nodiscard]] virtual Status RemoveGrant(const std::string& collection_id, const std::string& grantee_type,
                                           const std::string& grantee_id) = 0;
  [[nodiscard]] virtual Result<std::vector<Grant>> ListGrants(const std::string& collection_id) = 0;
  // The level `user_id` (a member of `team_ids`) has on a collection; kNone when the collection
  // does not exist. One query.
  [[nodiscard]] virtual Result<AccessLevel> AccessLevelFor(const std::string& user_id,
                                                           const std::vector<std::string>& team_ids,
                                                           const std::string& collection_id) = 0;
  // Ids of every collection the user can read (owned, team-owned, granted), newest first.
  [[nodiscard]] virtual Result<std::vector<std::string>> ReadableCollectionIds(
      const std::string& user_id, const std::vector<std::string>& team_ids) = 0;

  // Quotas.
  [[nodiscard]] virtual Result<QuotaOverrides> GetQuotaOverrides(const std::string& user_id) = 0;
  [[nodiscard]] virtual Status SetQuotaOverrides(const std::string& user_id, const QuotaOverrides& q) = 0;
  [[nodiscard]] virtual Result<Usage> GetUsage(const std::string& user_id, const std::string& day) = 0;
  // Adds LLM tokens to the user's count for `day` ("YYYY-MM-DD", UTC) unless that would pass
  // `limit` (0: no limit): returns the new total, or QuotaExceeded. Atomic.
  [[nodiscard]] virtual Result<std::int64_t> AddLlmTokens(const std::string& user_id, const std::string& day,
                                                          std::int64_t tokens, std::int64_t limit) = 0;

  // The audit log.
  [[nodiscard]] virtual Status AppendAudit(const AuditEntry& e) = 0;
  // Entries with seq > after_seq, oldest first, at most `limit`.
  [[nodiscard]] virtual Result<std::vector<AuditEntry>> ListAudit(std::int64_t after_seq, std::size_t limit) = 0;

  [[nodiscard]] virtual Status Ping() = 0;
};

// Checks every implementation applies before it writes (InvalidArgument naming the field).
[[nodiscard]] Status ValidateUser(const User& u);
[[nodiscard]] Status ValidateDay(const std::string& day);  // YYYY-MM-DD
[[nodiscard]] bool IsOneOf(std::string_view v, std::initializer_list<std::string_view> allowed);

}  // namespace modulo::store
