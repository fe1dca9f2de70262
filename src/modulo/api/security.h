// Security: authentication, authorization and rate limiting for every route, in one place.
//
// Each route declares a `policy` (http::Route::policy); the router's guard (MakeGuard) enforces
// it before the request body is read:
//
//   "public"                      anyone (health, readiness, metrics, the OpenAPI document)
//   "" or "user"                  any authenticated principal (the default: secure unless declared)
//   "admin"                       a system admin
//   "collection:<level>:<param>"  read | write | admin access to the collection named by the path
//                                 parameter <param> (NotFound when the principal cannot read it)
//   "self:<param>"                the user named by the path parameter, or an admin
// optionally followed by "|search" or "|upload": the principal's token bucket for that budget
// (with authentication required; MODULO_AUTH=none has a single local user and no budgets).
//
// Credentials: `Authorization: Bearer <token>` (an API key `mdk_…` or a JWT) or `X-API-Key`.
// Failures are 401 with the reason (never a secret) and WWW-Authenticate; repeated failures from
// one client address are rate limited (429 with Retry-After). Resolved principals are cached for
// a few seconds (SecurityOptions::principal_ttl): revoking a key or disabling a user takes effect
// at once in this process and within that time in others.
//
// Handlers read the principal with PrincipalOf(req) and reach the metadata store through
// ScopedStore(), so the store itself refuses what the principal may not see (isolation in depth).
//
// Thread-safety: all members are thread-safe.
#pragma once

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "modulo/auth/jwt.h"
#include "modulo/auth/principal.h"
#include "modulo/auth/rate_limiter.h"
#include "modulo/core/thread_pool.h"
#include "modulo/http/message.h"
#include "modulo/http/router.h"
#include "modulo/metrics/registry.h"
#include "modulo/net/egress.h"
#include "modulo/store/identity_store.h"
#include "modulo/store/scoped_metadata_store.h"

namespace modulo::api {

struct SecurityOptions {
  bool required = true;  // false (MODULO_AUTH=none): every request is the local admin
  bool auto_provision = false;  // a valid JWT of an unknown subject creates its user
  std::chrono::seconds principal_ttl{10};
  auth::BucketSpec search{40, 20};    // per principal: burst, per second (0 rate = unlimited)
  auth::BucketSpec upload{20, 2};
  auth::BucketSpec failures{10, 0.2};  // failed authentications per client address
  std::vector<std::string> trusted_proxies;  // addresses or CIDRs whose X-Forwarded-For is believed
  // JWT verification may fetch a JWKS over the network (a URL source): then it runs on the
  // blocking pool; otherwise (HS256, a JWKS file) inline, which saves a thread hop per request.
  bool jwt_may_block = false;
};

// What the guard attaches to a request it lets through: the principal, and the access level it
// checked on the route's collection (so the handler's scoped store does not query it again).
struct RequestAuth {
  auth::Principal principal;
  std::string collection_id;  // empty when the route names no collection (or for system admins)
  store::AccessLevel level = store::AccessLevel::kNone;
};

// The principal of requests when authentication is disabled.
inline constexpr const char* kLocalUserId = "local";

// Every route's policy is one this guard knows, naming path parameters its route has:
// "public", "user", "admin", "self:{param}", "collection:{read|write|admin}:{param}", each
// optionally followed by "|search" or "|upload" (a rate budget). An unknown policy would mean "any
// authenticated user" at request time; checked at start-up, it stops the server instead.
[[nodiscard]] Status CheckRoutePolicies(const http::Router& router);

// InvalidArgument naming the first entry of MODULO_TRUSTED_PROXIES that is neither an address nor a CIDR.
[[nodiscard]] Status CheckTrustedProxies(const std::vector<std::string>& proxies);

// With authentication off, why `req` is refused: a Host other than 127.0.0.1, localhost or [::1]
// (DNS rebinding), or an Origin of another site on a state-changing request or a WebSocket
// upgrade (cross-site requests). nullopt: served.
[[nodiscard]] std::optional<Error> LocalModeRefusal(const http::Request& req);

class Security {
 public:
  Security(store::IdentityStore& identity, ThreadPool& blocking_pool, const auth::JwtVerifier* jwt,
           auth::RateLimiter& limiter, SecurityOptions options, metrics::Registry& registry);

  [[nodiscard]] http::Guard MakeGuard();

  // The principal the guard attached (a route with policy "public" has none: nullptr).
  [[nodiscard]] static const auth::Principal* PrincipalOf(const http::Request& req);
  [[nodiscard]] static store::AccessScope ScopeOf(const auth::Principal& p);
  // The client's address (X-Forwarded-For honoured only from a trusted proxy).
  [[nodiscard]] std::string ClientAddress(const http::Request& req) const;

  // Takes one unit of the request principal's `budget` ("search" or "upload"), as a route's
  // "|search" policy does; RateLimited with retry_after when it is spent. For work a route starts
  // later than its guard (a /ws chat message). Without authentication there are no budgets.
  [[nodiscard]] Status TakeBudget(const http::Request& req, std::string_view budget);

  // Forgets cached principals of a user (after a key revocation, a role change, a deletion).
  void Forget(const std::string& user_id);

  // Records a security-relevant action (on the blocking pool; failures are logged, not thrown).
  void Audit(const http::Request& req, std::string action, std::string resource, std::string outcome,
             nlohmann::json detail = nlohmann::json::object());

  [[nodiscard]] store::IdentityStore& identity() noexcept { return identity_; }
  [[nodiscard]] const SecurityOptions& options() const noexcept { return options_; }
  [[nodiscard]] metrics::CounterFamily& quota_rejections() noexcept { return *quota_rejections_; }

 private:
  // One unit of `user_id`'s `budget` ("search" or "upload"); RateLimited with retry_after when spent.
  [[nodiscard]] Status Spend(const std::string& user_id, std::string_view budget);
  struct Cached {
    auth::Principal principal;
    std::string key_hash;           // API keys: the stored hash the token must match
    std::int64_t key_expires_ms = 0;
    std::chrono::steady_clock::time_point until;
  };

  boost::asio::awaitable<Result<auth::Principal>> Authenticate(http::Request& req);
  boost::asio::awaitable<std::optional<http::Response>> Check(const http::Route& route, http::Request& req);
  Result<auth::Principal> LoadApiKeyPrincipal(const std::string& key_id, const std::string& token);
  Result<auth::Principal> LoadJwtPrincipal(const auth::Claims& claims);
  Result<auth::Principal> PrincipalForUser(const store::User& u, std::string method, std::string key_id);
  http::Response Unauthenticated(const http::Request& req, const Error& e, std::string_view reason);

  store::IdentityStore& identity_;
  ThreadPool& blocking_pool_;
  const auth::JwtVerifier* jwt_;
  auth::RateLimiter& limiter_;
  SecurityOptions options_;
  std::vector<net::IpRange> trusted_ranges_;  // options_.trusted_proxies, parsed
  metrics::CounterFamily* failures_;
  metrics::CounterFamily* rate_limited_;
  metrics::CounterFamily* quota_rejections_;

  std::mutex mu_;
  std::unordered_map<std::string, Cached> cache_;  // by "key:<id>" or "jwt:<iss>|<sub>"; guarded by mu_
};

// A store that serves only what the request's principal may see.
[[nodiscard]] store::ScopedMetadataStore ScopedStore(store::MetadataStore& inner, store::IdentityStore& identity,
                                                     const http::Request& req);

}  // namespace modulo::api
