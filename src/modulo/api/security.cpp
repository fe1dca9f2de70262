#include "modulo/api/security.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "modulo/auth/api_key.h"
#include "modulo/core/clock.h"
#include "modulo/core/log.h"

namespace modulo::api {

namespace asio = boost::asio;
using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

namespace {

// The host part of a Host header or of an Origin's authority, lower case, without the port:
// "LocalHost:8000" -> "localhost", "[::1]:8000" -> "[::1]".
std::string HostName(std::string_view authority) {
  std::string h;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    h = std::string(authority.substr(0, close == std::string_view::npos ? authority.size() : close + 1));
  } else {
    h = std::string(authority.substr(0, authority.find(':')));
  }
  std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return std::tolower(c); });
  return h;
}

bool IsLocalHostName(std::string_view host) { return host == "127.0.0.1" || host == "localhost" || host == "[::1]"; }

// Empty when `policy` is known and its parameters are in `path`; else why not.
std::string PolicyProblem(std::string_view policy, const std::string& path) {
  std::string_view budget;
  if (auto bar = policy.find('|'); bar != std::string_view::npos) {
    budget = policy.substr(bar + 1);
    policy = policy.substr(0, bar);
    if (budget != "search" && budget != "upload") return "unknown rate budget '" + std::string(budget) + "'";
  }
  auto has_param = [&](std::string_view name) {
    return path.find("{" + std::string(name) + "}") != std::string::npos;
  };
  if (policy == "public" || policy == "user" || policy == "admin") return {};
  if (policy.starts_with("self:")) {
    return has_param(policy.substr(5)) ? std::string() : "no path parameter {" + std::string(policy.substr(5)) + "}";
  }
  if (policy.starts_with("collection:")) {
    const auto rest = policy.substr(11);
    const auto colon = rest.find(':');
    if (colon == std::string_view::npos || !store::ParseAccessLevel(rest.substr(0, colon))) {
      return "a collection policy is collection:{read|write|admin}:{param}";
    }
    return has_param(rest.substr(colon + 1)) ? std::string()
                                             : "no path parameter {" + std::string(rest.substr(colon + 1)) + "}";
  }
  return "unknown policy";
}

}  // namespace

Status CheckRoutePolicies(const http::Router& router) {
  for (const auto& route : router.routes()) {
    if (auto problem = PolicyProblem(route.policy, route.path); !problem.empty()) {
      return Fail(Error::Internal("route " + std::string(http::beast_http::to_string(route.method)) + " " + route.path +
                                  " has the policy '" + route.policy + "': " + problem));
    }
  }
  return {};
}

std::optional<Error> LocalModeRefusal(const http::Request& req) {
  // DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 sends its own
  // name as Host. Only the loopback names reach the local admin.
  const std::string host = HostName(req.Header("Host"));
  if (!IsLocalHostName(host)) {
    return Error::PermissionDenied("with authentication off (MODULO_AUTH=none) only Host 127.0.0.1, localhost or [::1] "
                                   "is served, not '" + std::string(req.Header("Host")) + "'");
  }
  // Cross-site requests: a page elsewhere may POST a form or open a WebSocket to the loopback
  // server (no preflight for either). Browsers name the page in Origin; only local pages may act.
  const std::string_view origin = req.Header("Origin");
  const bool acts = req.method != http::beast_http::verb::get && req.method != http::beast_http::verb::head;
  const bool upgrade = !req.Header("Upgrade").empty();
  if (!origin.empty() && (acts || upgrade)) {
    const auto scheme_end = origin.find("://");
    const std::string origin_host =
        scheme_end == std::string_view::npos ? std::string() : HostName(origin.substr(scheme_end + 3));
    if (!IsLocalHostName(origin_host)) {
      return Error::PermissionDenied("with authentication off (MODULO_AUTH=none) " +
                                     std::string(upgrade ? "WebSocket connections" : "requests") + " from the page '" +
                                     std::string(origin) + "' are refused; only pages on this machine may act");
    }
  }
  return std::nullopt;
}

namespace {

// A finite Retry-After (a request that can never succeed still gets a bounded answer).
double RetryAfter(double seconds) { return std::isfinite(seconds) ? std::min(seconds, 3600.0) : 3600.0; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// The credential of a request: a bearer token or an X-API-Key header.
std::string_view Credential(const http::Request& req) {
  if (auto h = Trim(req.Header("Authorization")); !h.empty()) {
    const auto space = h.find(' ');
    if (space != std::string_view::npos && IEquals(h.substr(0, space), "Bearer")) return Trim(h.substr(space + 1));
    return h;  // an unknown scheme: rejected as malformed below
  }
  return Trim(req.Header("X-API-Key"));
}

Error Denied(std::string message) { return Error::PermissionDenied(std::move(message)); }

}  // namespace

Security::Security(store::IdentityStore& identity, ThreadPool& blocking_pool, const auth::JwtVerifier* jwt,
                   auth::RateLimiter& limiter, SecurityOptions options, metrics::Registry& registry)
    : identity_(identity), blocking_pool_(blocking_pool), jwt_(jwt), limiter_(limiter), options_(std::move(options)) {
  failures_ = &registry.AddCounter("modulo_auth_failures_total", "Failed authentications by reason", {"reason"});
  rate_limited_ = &registry.AddCounter("modulo_rate_limited_total", "Requests refused by a rate limit, by budget",
                                       {"budget"});
  quota_rejections_ = &registry.AddCounter("modulo_quota_rejections_total", "Requests refused by a quota, by resource",
                                           {"resource"});
  for (const auto& proxy : options_.trusted_proxies) {
    if (auto r = net::ParseIpRange(proxy)) trusted_ranges_.push_back(*r);
  }
}

Status CheckTrustedProxies(const std::vector<std::string>& proxies) {
  for (const auto& proxy : proxies) {
    if (auto r = net::ParseIpRange(proxy); !r) {
      return Fail(std::move(r.error()).Wrap("MODULO_TRUSTED_PROXIES: addresses or CIDRs, such as 10.0.0.0/8"));
    }
  }
  return {};
}

const auth::Principal* Security::PrincipalOf(const http::Request& req) {
  const auto* granted = std::any_cast<RequestAuth>(&req.principal);
  return granted != nullptr ? &granted->principal : nullptr;
}

store::AccessScope Security::ScopeOf(const auth::Principal& p) {
  store::AccessScope s;
  s.user_id = p.user_id;
  s.team_ids = p.team_ids;
  s.admin_team_ids = p.admin_team_ids;
  s.system_admin = p.is_admin();
  return s;
}

std::string Security::ClientAddress(const http::Request& req) const {
  std::string addr = req.remote_address;
  // Addresses compare in one 16-byte form (so ::ffff:10.0.0.1 is 10.0.0.1), against CIDRs.
  const auto trusted = [&](std::string_view a) {
    auto ip = net::ParseIp(a);
    return ip && std::any_of(trusted_ranges_.begin(), trusted_ranges_.end(),
                             [&](const net::IpRange& r) { return r.Contains(*ip); });
  };
  if (!trusted(addr)) return addr;
  // Walk X-Forwarded-For from the right: the first hop that is not a trusted proxy is the client.
  std::string_view xff = req.Header("X-Forwarded-For");
  while (!xff.empty()) {
    const auto comma = xff.rfind(',');
    const std::string_view hop = Trim(comma == std::string_view::npos ? xff : xff.substr(comma + 1));
    xff = comma == std::string_view::npos ? std::string_view() : xff.substr(0, comma);
    if (hop.empty()) continue;
    if (!trusted(hop)) return std::string(hop);
    addr = std::string(hop);
  }
  return addr;
}

void Security::Forget(const std::string& user_id) {
  std::lock_guard lock(mu_);
  std::erase_if(cache_, [&](const auto& kv) { return kv.second.principal.user_id == user_id; });
}

void Security::Audit(const http::Request& req, std::string action, std::string resource, std::string outcome,
                     json detail) {
  store::AuditEntry e;
  if (const auto* p = PrincipalOf(req)) e.principal_id = p->user_id;
  e.action = std::move(action);
  e.resource = std::move(resource);
  e.outcome = std::move(outcome);
  detail["request_id"] = req.request_id;
  e.detail = detail.dump(-1, ' ', false, json::error_handler_t::replace);
  e.remote_address = ClientAddress(req);
  asio::post(blocking_pool_.executor(), [this, e = std::move(e)] {
    if (auto st = identity_.AppendAudit(e); !st) {
      log::Warn("audit log write failed", {{"action", e.action}, {"error", st.error().message()}});
    }
  });
}

http::Response Security::Unauthenticated(const http::Request& req, const Error& e, std::string_view reason) {
  failures_->With({reason}).Inc();
  const auto d = limiter_.Take("authfail:" + ClientAddress(req), options_.failures);
  if (!d.allowed) {
    rate_limited_->With({"auth_failures"}).Inc();
    return http::Response::FromError(
        Error::RateLimited("too many failed authentications from this address; retry later")
            .WithDetails(json{{"retry_after", RetryAfter(d.retry_after_seconds)}}.dump()));
  }
  // Failures are audited (bounded per address by the limiter above); the credential never is.
  Audit(req, "login.failed", "", "failed", {{"reason", reason}, {"path", req.path}});
  auto res = http::Response::FromError(Error(e.code(), e.message()).WithDetails(json{{"reason", reason}}.dump()));
  res.WithHeader("WWW-Authenticate", "Bearer realm=\"modulo\", error=\"invalid_token\"");
  return res;
}

Result<auth::Principal> Security::PrincipalForUser(const store::User& u, std::string method, std::string key_id) {
  if (u.disabled) return Fail(Error::Unauthenticated("user_disabled: this user is disabled"));
  auto memberships = identity_.MembershipsOf(u.id);
  if (!memberships) return Fail(memberships.error());
  auth::Principal p;
  p.user_id = u.id;
  p.name = u.name;
  p.role = u.role == "admin" ? auth::Principal::Role::kAdmin : auth::Principal::Role::kUser;
  p.kind = u.kind == "service" ? auth::Principal::Kind::kServiceAccount : auth::Principal::Kind::kUser;
  for (const auto& m : *memberships) {
    p.team_ids.push_back(m.team_id);
    if (m.role == "admin") p.admin_team_ids.push_back(m.team_id);
  }
  p.auth_method = std::move(method);
  p.key_id = std::move(key_id);
  return p;
}

Result<auth::Principal> Security::LoadApiKeyPrincipal(const std::string& key_id, const std::string& token) {
  auto key = identity_.GetApiKey(key_id);
  if (!key) {
    if (key.error().code() == ErrorCode::kNotFound) return Fail(Error::Unauthenticated("invalid_api_key: unknown or wrong API key"));
    return Fail(key.error());
  }
  if (!auth::VerifyApiKey(token, key->hash)) return Fail(Error::Unauthenticated("invalid_api_key: unknown or wrong API key"));
  if (key->revoked_at_ms != 0) return Fail(Error::Unauthenticated("revoked_api_key: this API key was revoked"));
  const auto now = NowMs();
  if (key->expires_at_ms != 0 && key->expires_at_ms <= now) {
    return Fail(Error::Unauthenticated("expired_api_key: this API key has expired"));
  }
  auto user = identity_.GetUser(key->user_id);
  if (!user) return Fail(Error::Unauthenticated("invalid_api_key: the key's user no longer exists"));
  auto p = PrincipalForUser(*user, "api_key", key_id);
  if (!p) return p;
  (void)identity_.TouchApiKey(key_id, now);  // at most once per cache period
  std::lock_guard lock(mu_);
  cache_["key:" + key_id] = Cached{*p, key->hash, key->expires_at_ms, SteadyClock::now() + options_.principal_ttl};
  return p;
}

Result<auth::Principal> Security::LoadJwtPrincipal(const auth::Claims& claims) {
  const std::string subject = claims.issuer + "|" + claims.subject;
  auto user = identity_.FindUserBySubject(subject);
  if (!user && user.error().code() == ErrorCode::kNotFound && options_.auto_provision) {
    store::User u;
    u.name = !claims.email.empty() ? claims.email : !claims.name.empty() ? claims.name : claims.subject;
    u.email = claims.email;
    u.external_subject = subject;
    user = identity_.CreateUser(u);
    if (!user && user.error().code() == ErrorCode::kAlreadyExists) {
      u.name += " (" + claims.subject.substr(0, 12) + ")";  // a local user already has that name
      user = identity_.CreateUser(u);
    }
    if (user) {
      store::AuditEntry e;
      e.principal_id = user->id;
      e.action = "user.provision";
      e.resource = "user:" + user->id;
      e.outcome = "ok";
      e.detail = json{{"issuer", claims.issuer}, {"subject", claims.subject}}.dump();
      (void)identity_.AppendAudit(e);
    }
  }
  if (!user) {
    if (user.error().code() == ErrorCode::kNotFound) {
      return Fail(Error::Unauthenticated("unknown_user: no user is linked to this token's subject"));
    }
    return Fail(user.error());
  }
  auto p = PrincipalForUser(*user, "jwt", claims.key_id);
  if (!p) return p;
  std::lock_guard lock(mu_);
  cache_["jwt:" + subject] = Cached{*p, "", 0, SteadyClock::now() + options_.principal_ttl};
  return p;
}

asio::awaitable<Result<auth::Principal>> Security::Authenticate(http::Request& req) {
  const std::string token(Credential(req));
  if (token.empty()) {
    Result<auth::Principal> r = Fail(Error::Unauthenticated(
        "missing_credentials: authentication required; send 'Authorization: Bearer <API key or JWT>'"));
    co_return r;
  }
  if (auth::LooksLikeApiKey(token)) {
    auto key_id = auth::ParseApiKey(token);
    if (!key_id) {
      Result<auth::Principal> r = Fail(Error::Unauthenticated("malformed_api_key: the API key is not well formed"));
      co_return r;
    }
    {
      std::lock_guard lock(mu_);
      if (auto it = cache_.find("key:" + *key_id); it != cache_.end()) {
        const Cached& c = it->second;
        if (c.until > SteadyClock::now() && auth::VerifyApiKey(token, c.key_hash) &&
            (c.key_expires_ms == 0 || c.key_expires_ms > NowMs())) {
          Result<auth::Principal> r = c.principal;
          co_return r;
        }
      }
    }
    // Captures by reference (the frame outlives the call): g++ 12 destroys by-value captures of a
    // lambda handed to a coroutine twice.
    const std::string& id = *key_id;
    Result<auth::Principal> loaded = co_await RunOn(blocking_pool_, [&] { return LoadApiKeyPrincipal(id, token); });
    co_return loaded;
  }
  if (jwt_ == nullptr) {
    Result<auth::Principal> r = Fail(Error::Unauthenticated(
        "jwt_not_configured: this server accepts API keys only (MODULO_JWT_SECRET or MODULO_JWKS enable JWTs)"));
    co_return r;
  }
  // Verification that may fetch a JWKS runs off the I/O thread; HS256 and file keys inline.
  // (An if, not ?: — g++ 12 miscompiles co_await inside a conditional expression.)
  std::expected<auth::Claims, auth::JwtFailure> claims =
      std::unexpected(auth::JwtFailure{auth::JwtReason::kMalformed, "malformed: not verified"});
  if (options_.jwt_may_block) {
    claims = co_await RunOn(blocking_pool_, [&] { return jwt_->VerifyDetailed(token); });
  } else {
    claims = jwt_->VerifyDetailed(token);
  }
  if (!claims) {
    Result<auth::Principal> r = Fail(claims.error().ToError());
    co_return r;
  }
  {
    std::lock_guard lock(mu_);
    if (auto it = cache_.find("jwt:" + claims->issuer + "|" + claims->subject);
        it != cache_.end() && it->second.until > SteadyClock::now()) {
      Result<auth::Principal> r = it->second.principal;
      co_return r;
    }
  }
  Result<auth::Principal> loaded = co_await RunOn(blocking_pool_, [&] { return LoadJwtPrincipal(*claims); });
  co_return loaded;
}

asio::awaitable<std::optional<http::Response>> Security::Check(const http::Route& route, http::Request& req) {
  std::string_view policy = route.policy, budget;
  if (auto bar = policy.find('|'); bar != std::string_view::npos) {
    budget = policy.substr(bar + 1);
    policy = policy.substr(0, bar);
  }
  if (!options_.required) {
    if (auto refusal = LocalModeRefusal(req)) {
      std::optional<http::Response> out = http::Response::FromError(*refusal);
      co_return out;
    }
  }
  if (policy == "public") co_return std::nullopt;

  auth::Principal p;
  if (!options_.required) {
    p.user_id = kLocalUserId;
    p.name = "local";
    p.role = auth::Principal::Role::kAdmin;
    p.auth_method = "none";
  } else {
    // The credential is always tried: a right one is served even while its address is blocked
    // (one guesser behind a shared NAT or proxy must not lock out everyone behind it); wrong ones
    // from a blocked address get 429 (Unauthenticated() takes from the address's failure budget).
    auto authenticated = co_await Authenticate(req);
    if (!authenticated) {
      const Error& e = authenticated.error();
      const auto colon = e.message().find(':');
      // Another code than kUnauthenticated (the store is down) is not the client's fault.
      std::optional<http::Response> out = e.code() != ErrorCode::kUnauthenticated
                                               ? http::Response::FromError(e)
                                               : Unauthenticated(req, e, colon == std::string::npos
                                                                             ? "invalid"
                                                                             : e.message().substr(0, colon));
      co_return out;
    }
    p = std::move(*authenticated);
  }

  // Authorization by the route's policy, then its rate budget.
  RequestAuth granted;
  std::optional<Error> denied;
  // Fail closed: CheckRoutePolicies vets every policy at start-up; anything else is refused here.
  const bool known =
      policy == "user" || policy == "admin" || policy.starts_with("self:") || policy.starts_with("collection:");
  if (!known) denied = Error::Internal("route " + route.path + " has no valid access policy");
  if (policy == "admin" && !p.is_admin()) denied = Denied("this needs a system admin");
  if (!denied && policy.starts_with("self:")) {
    const std::string& who = req.PathParam(policy.substr(5));
    if (who != p.user_id && who != "me" && !p.is_admin()) denied = Denied("you can only do this for your own user");
  }
  if (!denied && policy.starts_with("collection:") && !p.is_admin()) {
    const auto rest = policy.substr(11);
    const auto colon = rest.find(':');
    const auto needed = store::ParseAccessLevel(rest.substr(0, colon)).value_or(store::AccessLevel::kAdmin);
    const std::string& id = req.PathParam(rest.substr(colon + 1));
    auto level = co_await RunOn(blocking_pool_, [&] { return identity_.AccessLevelFor(p.user_id, p.team_ids, id); });
    if (!level) {
      denied = level.error();
    } else if (*level == store::AccessLevel::kNone) {
      denied = Error::NotFound("collection " + id + " not found");
    } else if (static_cast<int>(*level) < static_cast<int>(needed)) {
      denied = Denied("this needs " + std::string(store::ToString(needed)) + " access to collection " + id +
                      "; you have " + std::string(store::ToString(*level)));
    } else {
      granted.collection_id = id;  // the handler's scoped store need not ask again
      granted.level = *level;
    }
  }
  if (!denied && !budget.empty() && options_.required) {  // without authentication: one local user, no budgets
    if (auto st = Spend(p.user_id, budget); !st) denied = st.error();
  }
  if (denied) {
    std::optional<http::Response> out = http::Response::FromError(*denied);
    co_return out;
  }
  granted.principal = std::move(p);
  req.principal = std::move(granted);
  co_return std::nullopt;
}

Status Security::TakeBudget(const http::Request& req, std::string_view budget) {
  const auth::Principal* p = PrincipalOf(req);
  if (!options_.required || p == nullptr) return {};
  return Spend(p->user_id, budget);
}

Status Security::Spend(const std::string& user_id, std::string_view budget) {
  const auth::BucketSpec& spec = budget == "upload" ? options_.upload : options_.search;
  if (spec.refill_per_second <= 0) return {};
  const auto d = limiter_.Take(std::string(budget) + ":" + user_id, spec);
  if (d.allowed) return {};
  rate_limited_->With({std::string(budget)}).Inc();
  return Fail(Error::RateLimited("rate limit for " + std::string(budget) + " reached; retry in " +
                                 std::to_string(static_cast<int>(std::ceil(RetryAfter(d.retry_after_seconds)))) + " s")
                  .WithDetails(json{{"retry_after", RetryAfter(d.retry_after_seconds)}, {"budget", budget}}.dump()));
}

http::Guard Security::MakeGuard() {
  return [this](const http::Route& route, http::Request& req) { return Check(route, req); };
}

store::ScopedMetadataStore ScopedStore(store::MetadataStore& inner, store::IdentityStore& identity,
                                       const http::Request& req) {
  const auto* granted = std::any_cast<RequestAuth>(&req.principal);
  store::AccessScope scope;
  if (granted != nullptr) scope = Security::ScopeOf(granted->principal);  // a public route sees nothing
  std::map<std::string, store::AccessLevel> known;
  if (granted != nullptr && !granted->collection_id.empty()) known[granted->collection_id] = granted->level;
  return store::ScopedMetadataStore(inner, identity, std::move(scope), std::move(known));
}

}  // namespace modulo::api
