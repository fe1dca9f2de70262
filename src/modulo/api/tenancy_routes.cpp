#include "modulo/api/tenancy_routes.h"

#include "modulo/api/route_helpers.h"

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include <algorithm>
#include <ctime>
#include <mutex>

#include "modulo/auth/api_key.h"
#include "modulo/core/clock.h"
#include "modulo/core/json.h"
#include "modulo/http/json_body.h"

namespace modulo::api {

namespace asio = boost::asio;
using http::Request;
using http::Response;
using json = nlohmann::json;
using verb = http::beast_http::verb;
using status = http::beast_http::status;

Result<EffectiveQuota> QuotaFor(store::IdentityStore& identity, const QuotaDefaults& d, const auth::Principal& p) {
  EffectiveQuota q;
  if (p.is_admin()) return q;  // operators are not limited
  auto o = identity.GetQuotaOverrides(p.user_id);
  if (!o) return Fail(o.error());
  q.collections = o->collections.value_or(d.collections);
  q.files_per_collection = o->files_per_collection.value_or(d.files_per_collection);
  q.storage_bytes = o->storage_bytes.value_or(d.storage_bytes);
  q.llm_tokens_per_day = o->llm_tokens_per_day.value_or(d.llm_tokens_per_day);
  return q;
}

namespace {

std::string Today() {
  const std::time_t t = NowMs() / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

json UserJson(const store::User& u) {
  return {{"id", u.id},       {"name", u.name},         {"email", u.email},
          {"role", u.role},   {"kind", u.kind == "service" ? "service_account" : "user"},
          {"disabled", u.disabled},
          {"created_at", FormatTimestamp(u.created_at_ms)}, {"updated_at", FormatTimestamp(u.updated_at_ms)}};
}

json KeyJson(const store::ApiKeyRecord& k) {
  auto ts = [](std::int64_t ms) { return ms == 0 ? json(nullptr) : json(FormatTimestamp(ms)); };
  return {{"key_id", k.key_id},          {"name", k.name},
          {"prefix", k.prefix},          {"created_at", ts(k.created_at_ms)},
          {"expires_at", ts(k.expires_at_ms)}, {"last_used_at", ts(k.last_used_at_ms)},
          {"revoked", k.revoked_at_ms != 0}, {"revoked_at", ts(k.revoked_at_ms)}};
}

json TeamJson(const store::Team& t) {
  return {{"id", t.id}, {"name", t.name}, {"description", t.description},
          {"created_at", FormatTimestamp(t.created_at_ms)}, {"updated_at", FormatTimestamp(t.updated_at_ms)}};
}

json GrantJson(const store::Grant& g) {
  return {{g.grantee_type == "team" ? "team_id" : "user_id", g.grantee_id}, {"level", store::ToString(g.level)}};
}

const auth::Principal& Me(const Request& req) {
  static const auth::Principal kNobody;
  const auth::Principal* p = Security::PrincipalOf(req);
  return p != nullptr ? *p : kNobody;
}

// "me" names the caller.
std::string UserParam(const Request& req) {
  const std::string& id = req.PathParam("user_id");
  return id == "me" ? Me(req).user_id : id;
}

Response Err(const Error& e) { return Response::FromError(e); }


Result<std::string> StringField(const json& j, const char* key, bool required, std::size_t max = 255) {
  if (!j.contains(key)) {
    if (required) return Fail(Error::InvalidArgument(std::string("'") + key + "' is required"));
    return std::string();
  }
  if (!j[key].is_string()) return Fail(Error::InvalidArgument(std::string("'") + key + "' must be a string"));
  std::string s = j[key].get<std::string>();
  if (s.size() > max) return Fail(Error::InvalidArgument(std::string("'") + key + "' is too long"));
  if (required && s.empty()) return Fail(Error::InvalidArgument(std::string("'") + key + "' must not be empty"));
  return s;
}

// A team as the caller sees it, with its members (read once; handlers reuse them).
struct TeamView {
  store::Team team;
  std::vector<store::TeamMember> members;
  std::string role;  // the caller's: "admin" or "member" (system admins count as team admins)
};

// NotFound unless the caller belongs to the team (or is a system admin); with `admin_action`,
// PermissionDenied unless the caller is a team admin ("only a team admin can <admin_action>").
Result<TeamView> TeamFor(store::IdentityStore& identity, const auth::Principal& p, const std::string& team_id,
                         const char* admin_action = nullptr) {
  TeamView v;
  auto team = identity.GetTeam(team_id);
  if (!team) return Fail(team.error());
  auto members = identity.ListTeamMembers(team_id);
  if (!members) return Fail(members.error());
  v.team = std::move(*team);
  v.members = std::move(*members);
  if (p.is_admin()) v.role = "admin";
  for (const auto& m : v.members) {
    if (v.role.empty() && m.user_id == p.user_id) v.role = m.role;
  }
  if (v.role.empty()) return Fail(Error::NotFound("team " + team_id + " not found"));
  if (admin_action != nullptr && v.role != "admin") {
    return Fail(Error::PermissionDenied(std::string("only a team admin can ") + admin_action));
  }
  return v;
}

// Deletes every collection `owner_type`/`owner_id` owns (a deleted user's or team's); returns
// their ids so their indexes can be dropped.
Result<std::vector<store::Collection>> DeleteOwnedCollections(store::MetadataStore& store,
                                                              const std::string& owner_type,
                                                              const std::string& owner_id) {
  auto owned = store.ListCollections(owner_id);
  if (!owned) return Fail(owned.error());
  std::vector<store::Collection> deleted;
  for (auto& c : *owned) {
    if (c.owner_type != owner_type) continue;
    if (auto st = store.DeleteCollection(c.id); !st) return Fail(st.error());
    deleted.push_back(std::move(c));
  }
  return deleted;
}

struct Api {
  http::Router& router;
  AppContext& app;
  TenancyServices& svc;

  void Add(verb method, std::string path, std::string policy, std::string summary, std::string tag,
           http::Handler handler, json body_schema = nullptr) {
    AddRoute(router, {method, std::move(path), std::move(policy), std::move(summary), std::move(tag), std::move(body_schema)},
             std::move(handler));
  }

  template <typename F>
  auto Blocking(F f) {
    return RunOn(app.blocking_pool, std::move(f));
  }
};

void AddUserRoutes(Api& api) {
  auto& svc = api.svc;
  auto& app = api.app;
  api.Add(verb::get, "/api/users/me", "user", "The caller: user, role, teams and how it authenticated", "users",
          [&svc, &app](Request& req) -> asio::awaitable<Response> {
            const auth::Principal& p = Me(req);
            if (p.auth_method == "none") {
              co_return Response::Json({{"id", p.user_id}, {"name", p.name}, {"role", "admin"}, {"kind", "user"},
                                        {"auth_method", "none"}, {"team_ids", json::array()}});
            }
            auto u = co_await RunOn(app.blocking_pool, [&] { return svc.identity.GetUser(p.user_id); });
            if (!u) co_return Err(u.error());
            json j = UserJson(*u);
            j["auth_method"] = p.auth_method;
            j["team_ids"] = p.team_ids;
            co_return Response::Json(j);
          });
  api.Add(verb::get, "/api/users/me/usage", "user", "Usage against quotas (collections, storage, LLM tokens today)",
          "users", [&svc, &app](Request& req) -> asio::awaitable<Response> {
            const auth::Principal& p = Me(req);
            auto out = co_await RunOn(app.blocking_pool, [&]() -> Result<json> {
              auto usage = svc.identity.GetUsage(p.user_id, Today());
              if (!usage) return Fail(usage.error());
              auto q = QuotaFor(svc.identity, svc.quotas, p);
              if (!q) return Fail(q.error());
              auto limit = [](std::int64_t v) { return v == 0 ? json(nullptr) : json(v); };
              return json{{"user_id", p.user_id},
                          {"collections", {{"usage", usage->collections}, {"limit", limit(q->collections)}}},
                          {"storage_bytes", {{"usage", usage->storage_bytes}, {"limit", limit(q->storage_bytes)}}},
                          {"files_per_collection", {{"limit", limit(q->files_per_collection)}}},
                          {"llm_tokens_today",
                           {{"usage", usage->llm_tokens_today}, {"limit", limit(q->llm_tokens_per_day)}}}};
            });
            if (!out) co_return Err(out.error());
            co_return Response::Json(*out);
          });
  api.Add(verb::get, "/api/users", "admin", "Every user", "users", [&svc, &app](Request&) -> asio::awaitable<Response> {
    auto users = co_await RunOn(app.blocking_pool, [&] { return svc.identity.ListUsers(); });
    if (!users) co_return Err(users.error());
    json arr = json::array();
    for (const auto& u : *users) arr.push_back(UserJson(u));
    co_return Response::Json(arr);
  });
  api.Add(
      verb::post, "/api/users", "admin", "Create a user or service account (then give it an API key)", "users",
      [&svc, &app](Request& req) -> asio::awaitable<Response> {
        auto body = http::ParseJsonBody(req);
        if (!body) co_return Err(body.error());
        if (auto st = http::OnlyKeys(*body, {"name", "email", "role", "kind"}); !st) co_return Err(st.error());
        store::User u;
        auto name = StringField(*body, "name", true);
        auto email = StringField(*body, "email", false);
        auto role = StringField(*body, "role", false);
        auto kind = StringField(*body, "kind", false);
        for (const auto* r : {&name, &email, &role, &kind}) {
          if (!*r) co_return Err(r->error());
        }
        u.name = *name;
        u.email = *email;
        u.role = role->empty() ? "user" : *role;
        u.kind = *kind == "service_account" || *kind == "service" ? "service" : "user";
        if (u.role != "user" && u.role != "admin") co_return Err(Error::InvalidArgument("'role' must be user or admin"));
        if (!kind->empty() && *kind != "user" && u.kind != "service") {
          co_return Err(Error::InvalidArgument("'kind' must be user or service_account"));
        }
        auto created = co_await RunOn(app.blocking_pool, [&] { return svc.identity.CreateUser(u); });
        if (!created) co_return Err(created.error());
        svc.security.Audit(req, "user.create", "user:" + created->id, "ok", {{"role", created->role}});
        co_return Response::Json(UserJson(*created));
      },
      json::parse(R"({"type":"object","required":["name"],"properties":{"name":{"type":"string"},
        "email":{"type":"string"},"role":{"enum":["user","admin"]},"kind":{"enum":["user","service_account"]}}})"));
  api.Add(verb::get, "/api/users/{user_id}", "self:user_id", "One user (yourself, or anyone for an admin)", "users",
          [&svc, &app](Request& req) -> asio::awaitable<Response> {
            const std::string id = UserParam(req);
            auto u = co_await RunOn(app.blocking_pool, [&] { return svc.identity.GetUser(id); });
            if (!u) co_return Err(u.error());
            co_return Response::Json(UserJson(*u));
          });
  api.Add(verb::put, "/api/users/{user_id}", "self:user_id", "Update a user: name, email; role and disabled by an admin",
          "users", [&svc, &app](Request& req) -> asio::awaitable<Response> {
            const std::string id = UserParam(req);
            const auth::Principal& p = Me(req);
            auto body = http::ParseJsonBody(req);
            if (!body) co_return Err(body.error());
            if (auto st = http::OnlyKeys(*body, {"name", "email", "role", "disabled"}); !st) co_return Err(st.error());
            if ((body->contains("role") || body->contains("disabled")) && !p.is_admin()) {
              co_return Err(Error::PermissionDenied("only an admin can change a role or disable a user"));
            }
            auto updated = co_await RunOn(app.blocking_pool, [&]() -> Result<store::User> {
              auto u = svc.identity.GetUser(id);
              if (!u) return u;
              if (body->contains("name")) {
                auto n = StringField(*body, "name", true);
                if (!n) return Fail(n.error());
                u->name = *n;
              }
              if (body->contains("email")) {
                auto e = StringField(*body, "email", false);
                if (!e) return Fail(e.error());
                u->email = *e;
              }
              if (body->contains("role")) {
                if (!(*body)["role"].is_string()) return Fail(Error::InvalidArgument("'role' must be user or admin"));
                u->role = (*body)["role"].get<std::string>();
                if (u->role != "user" && u->role != "admin") return Fail(Error::InvalidArgument("'role' must be user or admin"));
              }
              if (body->contains("disabled")) {
                if (!(*body)["disabled"].is_boolean()) return Fail(Error::InvalidArgument("'disabled' must be a boolean"));
                u->disabled = (*body)["disabled"].get<bool>();
              }
              return svc.identity.UpdateUser(*u);
            });
            if (!updated) co_return Err(updated.error());
            svc.security.Forget(id);
            if (body->contains("role") || body->contains("disabled")) {
              svc.security.Audit(req, "user.update", "user:" + id, "ok", *body);
            }
            co_return Response::Json(UserJson(*updated));
          });
  api.Add(verb::delete_, "/api/users/{user_id}", "admin", "Delete a user with their keys and the collections they own",
          "users", [&svc, &app](Request& req) -> asio::awaitable<Response> {
            const std::string id = UserParam(req);
            auto deleted = co_await RunOn(app.blocking_pool, [&]() -> Result<std::vector<store::Collection>> {
              if (auto u = svc.identity.GetUser(id); !u) return Fail(u.error());
              auto ids = DeleteOwnedCollections(svc.store, "user", id);
              if (!ids) return ids;
              if (auto st = svc.identity.DeleteUser(id); !st) return Fail(st.error());
              for (const auto& c : *ids) {
                if (svc.on_collection_deleted) svc.on_collection_deleted(c);
              }
              return ids;
            });
            if (!deleted) co_return Err(deleted.error());
            svc.security.Forget(id);
            svc.security.Audit(req, "user.delete", "user:" + id, "ok", {{"collections_deleted", deleted->size()}});
            co_return Response::NoContent();
          });
  api.Add(
      verb::post, "/api/users/{user_id}/api-keys", "self:user_id",
      "Create an API key; the secret is in this response only", "users",
      [&svc, &app](Request& req) -> asio::awaitable<Response> {
        const std::string id = UserParam(req);
        json body = json::object();
        if (!req.body.empty()) {
          auto parsed = http::ParseJsonBody(req);
          if (!parsed) co_return Err(parsed.error());
          body = std::move(*parsed);
        }
        if (auto st = http::OnlyKeys(body, {"name", "expires_in_days"}); !st) co_return Err(st.error());
        auto name = StringField(body, "name", false, 100);
        if (!name) co_return Err(name.error());
        std::int64_t expires = 0;
        if (body.contains("expires_in_days")) {
          const json& d = body["expires_in_days"];
          if (!d.is_number_integer() || d.get<std::int64_t>() < 1 || d.get<std::int64_t>() > 3650) {
            co_return Err(Error::InvalidArgument("'expires_in_days' must be an integer from 1 to 3650"));
          }
          expires = NowMs() + d.get<std::int64_t>() * 86400000LL;
        }
        auto key = auth::GenerateApiKey();
        if (!key) co_return Err(key.error());
        store::ApiKeyRecord rec;
        rec.key_id = key->key_id;
        rec.user_id = id;
        rec.name = *name;
        rec.prefix = key->prefix;
        rec.hash = key->hash;
        rec.created_at_ms = NowMs();
        rec.expires_at_ms = expires;
        auto st = co_await RunOn(app.blocking_pool, [&]() -> Status {
          if (auto u = svc.identity.GetUser(id); !u) return Fail(u.error());
          return svc.identity.CreateApiKey(rec);
        });
        if (!st) co_return Err(st.error());
        svc.security.Audit(req, "api_key.create", "user:" + id, "ok", {{"key_id", rec.key_id}});
        json out = KeyJson(rec);
        out["api_key"] = key->secret_text;
        out["user_id"] = id;
        co_return Response::Json(out, status::created);
      },
      json::parse(R"({"type":"object","properties":{"name":{"type":"string"},"expires_in_days":{"type":"integer"}}})"));
  api.Add(verb::get, "/api/users/{user_id}/api-keys", "self:user_id", "API keys of a user (never their secrets)",
          "users", [&svc, &app](Request& req) -> asio::awaitable<Response> {
            const std::string id = UserParam(req);
            auto keys = co_await RunOn(app.blocking_pool, [&] { return svc.identity.ListApiKeys(id); });
            if (!keys) co_return Err(keys.error());
            json arr = json::array();
            for (const auto& k : *keys) arr.push_back(KeyJson(k));
            co_return Response::Json(arr);
          });
  api.Add(verb::delete_, "/api/users/{user_id}/api-keys/{key_id}", "self:user_id", "Revoke an API key", "users",
          [&svc, &app](Request& req) -> asio::awaitable<Response> {
            const std::string id = UserParam(req);
            const std::string key_id = req.PathParam("key_id");
            auto st = co_await RunOn(app.blocking_pool, [&] { return svc.identity.RevokeApiKey(id, key_id); });
            if (!st) co_return Err(st.error());
            svc.security.Forget(id);
            svc.security.Audit(req, "api_key.revoke", "user:" + id, "ok", {{"key_id", key_id}});
            co_return Response::NoContent();
          });
  api.Add(
      verb::put, "/api/users/{user_id}/quotas", "admin", "Override a user's quotas (null restores the default)", "users",
      [&svc, &app](Request& req) -> asio::awaitable<Response> {
        const std::string id = UserParam(req);
        auto body = http::ParseJsonBody(req);
        if (!body) co_return Err(body.error());
        if (auto st = http::OnlyKeys(*body, {"collections", "files_per_collection", "storage_bytes", "llm_tokens_per_day"});
            !st) {
          co_return Err(st.error());
        }
        store::QuotaOverrides q;
        for (auto [key, slot] : {std::pair{"collections", &q.collections},
                                 {"files_per_collection", &q.files_per_collection},
                                 {"storage_bytes", &q.storage_bytes},
                                 {"llm_tokens_per_day", &q.llm_tokens_per_day}}) {
          if (!body->contains(key) || (*body)[key].is_null()) continue;
          const json& v = (*body)[key];
          if (!v.is_number_integer() || v.get<std::int64_t>() < 0) {
            co_return Err(Error::InvalidArgument(std::string("'") + key + "' must be a non-negative integer or null"));
          }
          *slot = v.get<std::int64_t>();
        }
        auto st = co_await RunOn(app.blocking_pool, [&]() -> Status {
          if (auto u = svc.identity.GetUser(id); !u) return Fail(u.error());
          return svc.identity.SetQuotaOverrides(id, q);
        });
        if (!st) co_return Err(st.error());
        svc.security.Audit(req, "quota.override", "user:" + id, "ok", *body);
        co_return Response::Json(*body);
      },
      json::parse(R"({"type":"object","properties":{"collections":{"type":["integer","null"]},
        "files_per_collection":{"type":["integer","null"]},"storage_bytes":{"type":["integer","null"]},
        "llm_tokens_per_day":{"type":["integer","null"]}}})"));
  api.Add(verb::get, "/api/audit", "admin", "The audit log (?after=<seq>&limit=<n>)", "users",
          [&svc, &app](Request& req) -> asio::awaitable<Response> {
            std::int64_t after = 0, limit = 100;
            try {
              if (auto a = req.QueryParam("after")) after = std::stoll(*a);
              if (auto l = req.QueryParam("limit")) limit = std::stoll(*l);
            } catch (const std::exception&) {
              co_return Err(Error::InvalidArgument("'after' and 'limit' must be integers"));
            }
            if (limit < 1 || limit > 1000) co_return Err(Error::InvalidArgument("'limit' must be from 1 to 1000"));
            auto entries = co_await RunOn(app.blocking_pool, [&] {
              return svc.identity.ListAudit(after, static_cast<std::size_t>(limit));
            });
            if (!entries) co_return Err(entries.error());
            json arr = json::array();
            for (const auto& e : *entries) {
              arr.push_back({{"seq", e.seq},
                             {"at", FormatTimestamp(e.at_ms)},
                             {"principal_id", e.principal_id},
                             {"action", e.action},
                             {"resource", e.resource},
                             {"outcome", e.outcome},
                             {"remote_address", e.remote_address},
                             {"detail", modulo::ParseJsonOrDiscarded(e.detail)}});
            }
            co_return Response::Json(arr);
          });
}

void AddTeamRoutes(Api& api) {
  auto& svc = api.svc;
  auto& app = api.app;
  api.Add(
      verb::post, "/api/teams", "user", "Create a team; its creator becomes its admin", "teams",
      [&svc, &app](Request& req) -> asio::awaitable<Response> {
        auto body = http::ParseJsonBody(req);
        if (!body) co_return Err(body.error());
        if (auto st = http::OnlyKeys(*body, {"name", "description"}); !st) co_return Err(st.error());
        auto name = StringField(*body, "name", true);
        auto desc = StringField(*body, "description", false, 4096);
        if (!name) co_return Err(name.error());
        if (!desc) co_return Err(desc.error());
        store::Team t;
        t.name = *name;
        t.description = *desc;
        const auth::Principal& p = Me(req);
        auto created = co_await RunOn(app.blocking_pool, [&]() -> Result<store::Team> {
          // Each team has collection and storage quotas of its own, so team creation is capped
          // (the count and the insert under one lock: exact within this server).
          static std::mutex creating;
          std::lock_guard lock(creating);
          if (!p.is_admin() && svc.quotas.teams > 0) {
            auto mine = svc.identity.MembershipsOf(p.user_id);
            if (!mine) return Fail(mine.error());
            const auto administered = std::count_if(mine->begin(), mine->end(),
                                                    [](const store::TeamMember& m) { return m.role == "admin"; });
            if (administered >= svc.quotas.teams) {
              svc.security.quota_rejections().With({"teams"}).Inc();
              return Fail(Error::QuotaExceeded("you administer " + std::to_string(administered) +
                                               " teams; the limit is " + std::to_string(svc.quotas.teams)));
            }
          }
          return svc.identity.CreateTeam(t, p.user_id);
        });
        if (!created) co_return Err(created.error());
        svc.security.Forget(p.user_id);  // the principal's teams changed
        svc.security.Audit(req, "team.create", "team:" + created->id, "ok");
        co_return Response::Json(TeamJson(*created));
      },
      json::parse(R"({"type":"object","required":["name"],"properties":{"name":{"type":"string"},"description":{"type":"string"}}})"));
  api.Add(verb::get, "/api/teams", "user", "Your teams (every team for an admin)", "teams",
          [&svc, &app](Request& req) -> asio::awaitable<Response> {
            const auth::Principal& p = Me(req);
            auto teams = co_await RunOn(app.blocking_pool, [&] {
              return svc.identity.ListTeams(p.is_admin() ? std::string() : p.user_id);
            });
            if (!teams) co_return Err(teams.error());
            json arr = json::array();
            for (const auto& t : *teams) arr.push_back(TeamJson(t));
            co_return Response::Json(arr);
          });
  api.Add(verb::get, "/api/teams/{team_id}", "user", "A team you belong to, with its members", "teams",
          [&svc, &app](Request& req) -> asio::awaitable<Response> {
            const std::string id = req.PathParam("team_id");
            auto out = co_await RunOn(app.blocking_pool, [&]() -> Result<json> {
              auto team = TeamFor(svc.identity, Me(req), id);
              if (!team) return Fail(team.error());
              json j = TeamJson(team->team);
              j["users"] = json::array();
              for (const auto& m : team->members) j["users"].push_back({{"user_id", m.user_id}, {"role", m.role}});
              return j;
            });
            if (!out) co_return Err(out.error());
            co_return Response::Json(*out);
          });
  api.Add(verb::put, "/api/teams/{team_id}", "user", "Rename or describe a team (team admins)", "teams",
          [&svc, &app](Request& req) -> asio::awaitable<Response> {
            const std::string id = req.PathParam("team_id");
            auto body = http::ParseJsonBody(req);
            if (!body) co_return Err(body.error());
            if (auto st = http::OnlyKeys(*body, {"name", "description"}); !st) co_return Err(st.error());
            auto out = co_await RunOn(app.blocking_pool, [&]() -> Result<store::Team> {
              auto team = TeamFor(svc.identity, Me(req), id, "change the team");
              if (!team) return Fail(team.error());
              store::Team* t = &team->team;
              auto name = StringField(*body, "name", false);
              auto desc = StringField(*body, "description", false, 4096);
              if (!name) return Fail(name.error());
              if (!desc) return Fail(desc.error());
              if (body->contains("name")) t->name = *name;
              if (body->contains("description")) t->description = *desc;
              return svc.identity.UpdateTeam(*t);
            });
            if (!out) co_return Err(out.error());
            co_return Response::Json(TeamJson(*out));
          });
  api.Add(verb::delete_, "/api/teams/{team_id}", "user", "Delete a team and the collections it owns (team admins)", "teams",
          [&svc, &app](Request& req) -> asio::awaitable<Response> {
            const std::string id = req.PathParam("team_id");
            auto out = co_await RunOn(app.blocking_pool, [&]() -> Result<std::vector<store::Collection>> {
              if (auto team = TeamFor(svc.identity, Me(req), id, "delete the team"); !team) return Fail(team.error());
              auto ids = DeleteOwnedCollections(svc.store, "team", id);
              if (!ids) return ids;
              if (auto st = svc.identity.DeleteTeam(id); !st) return Fail(st.error());
              for (const auto& c : *ids) {
                if (svc.on_collection_deleted) svc.on_collection_deleted(c);
              }
              return ids;
            });
            if (!out) co_return Err(out.error());
            svc.security.Audit(req, "team.delete", "team:" + id, "ok", {{"collections_deleted", out->size()}});
            co_return Response::NoContent();
          });
  api.Add(verb::get, "/api/teams/{team_id}/users", "user", "Members of a team you belong to", "teams",
          [&svc, &app](Request& req) -> asio::awaitable<Response> {
            const std::string id = req.PathParam("team_id");
            auto out = co_await RunOn(app.blocking_pool, [&]() -> Result<json> {
              auto team = TeamFor(svc.identity, Me(req), id);
              if (!team) return Fail(team.error());
              json arr = json::array();
              for (const auto& m : team->members) arr.push_back({{"user_id", m.user_id}, {"role", m.role}});
              return arr;
            });
            if (!out) co_return Err(out.error());
            co_return Response::Json(*out);
          });
  api.Add(
      verb::post, "/api/teams/{team_id}/users", "user", "Add a member or change a member's role (team admins)", "teams",
      [&svc, &app](Request& req) -> asio::awaitable<Response> {
        const std::string id = req.PathParam("team_id");
        auto body = http::ParseJsonBody(req);
        if (!body) co_return Err(body.error());
        if (auto st = http::OnlyKeys(*body, {"user_id", "role"}); !st) co_return Err(st.error());
        auto user = StringField(*body, "user_id", true);
        auto role = StringField(*body, "role", false);
        if (!user) co_return Err(user.error());
        if (!role) co_return Err(role.error());
        store::TeamMember m{id, *user, role->empty() ? "member" : *role};
        if (m.role != "member" && m.role != "admin") co_return Err(Error::InvalidArgument("'role' must be member or admin"));
        auto st = co_await RunOn(app.blocking_pool, [&]() -> Status {
          if (auto team = TeamFor(svc.identity, Me(req), id, "add members"); !team) return Fail(team.error());
          return svc.identity.SetTeamMember(m);
        });
        if (!st) co_return Err(st.error());
        svc.security.Forget(m.user_id);
        svc.security.Audit(req, "team.member.set", "team:" + id, "ok", {{"user_id", m.user_id}, {"role", m.role}});
        co_return Response::Json({{"team_id", id}, {"user_id", m.user_id}, {"role", m.role}});
      },
      json::parse(R"({"type":"object","required":["user_id"],"properties":{"user_id":{"type":"string"},"role":{"enum":["member","admin"]}}})"));
  api.Add(verb::delete_, "/api/teams/{team_id}/users/{user_id}", "user", "Remove a member (team admins, or leave yourself)",
          "teams", [&svc, &app](Request& req) -> asio::awaitable<Response> {
            const std::string id = req.PathParam("team_id");
            const std::string user = UserParam(req);
            auto st = co_await RunOn(app.blocking_pool, [&]() -> Status {
              auto team = TeamFor(svc.identity, Me(req), id);
              if (!team) return Fail(team.error());
              if (team->role != "admin" && user != Me(req).user_id) {
                return Fail(Error::PermissionDenied("only a team admin can remove other members"));
              }
              return svc.identity.RemoveTeamMember(id, user);
            });
            if (!st) co_return Err(st.error());
            svc.security.Forget(user);
            svc.security.Audit(req, "team.member.remove", "team:" + id, "ok", {{"user_id", user}});
            co_return Response::NoContent();
          });
}

void AddSharingRoutes(Api& api, const std::string& kind) {
  auto& svc = api.svc;
  auto& app = api.app;
  const std::string plural = kind + "s";
  const std::string id_key = kind + "_id";
  api.Add(verb::get, "/api/collections/{collection_id}/" + plural, "collection:read:collection_id",
          "Who the collection is shared with (" + plural + ")", "sharing",
          [&svc, &app, kind](Request& req) -> asio::awaitable<Response> {
            const std::string cid = req.PathParam("collection_id");
            auto grants = co_await RunOn(app.blocking_pool, [&] { return svc.identity.ListGrants(cid); });
            if (!grants) co_return Err(grants.error());
            json arr = json::array();
            for (const auto& g : *grants) {
              if (g.grantee_type == kind) arr.push_back(GrantJson(g));
            }
            co_return Response::Json(arr);
          });
  api.Add(
      verb::post, "/api/collections/{collection_id}/" + plural, "collection:admin:collection_id",
      "Share the collection with a " + kind + " at read, write or admin level (or change the level)", "sharing",
      [&svc, &app, kind, id_key](Request& req) -> asio::awaitable<Response> {
        const std::string cid = req.PathParam("collection_id");
        auto body = http::ParseJsonBody(req);
        if (!body) co_return Err(body.error());
        if (auto st = http::OnlyKeys(*body, {id_key, "level"}); !st) co_return Err(st.error());
        auto who = StringField(*body, id_key.c_str(), true);
        auto level_text = StringField(*body, "level", false);
        if (!who) co_return Err(who.error());
        if (!level_text) co_return Err(level_text.error());
        auto level = store::ParseAccessLevel(level_text->empty() ? "read" : *level_text);
        if (!level || *level == store::AccessLevel::kNone) {
          co_return Err(Error::InvalidArgument("'level' must be read, write or admin"));
        }
        store::Grant g{cid, kind, *who, *level};
        auto st = co_await RunOn(app.blocking_pool, [&] { return svc.identity.SetGrant(g); });
        if (!st) co_return Err(st.error());
        svc.security.Audit(req, "collection.share", "collection:" + cid, "ok",
                           {{"grantee_type", kind}, {"grantee_id", *who}, {"level", store::ToString(*level)}});
        co_return Response::Json(GrantJson(g));
      },
      json::parse(R"({"type":"object","properties":{"user_id":{"type":"string"},"team_id":{"type":"string"},
        "level":{"enum":["read","write","admin"]}}})"));
  api.Add(verb::delete_, "/api/collections/{collection_id}/" + plural + "/{grantee_id}", "collection:admin:collection_id",
          "Stop sharing the collection with a " + kind, "sharing",
          [&svc, &app, kind](Request& req) -> asio::awaitable<Response> {
            const std::string cid = req.PathParam("collection_id");
            const std::string who = req.PathParam("grantee_id");
            auto st = co_await RunOn(app.blocking_pool, [&] { return svc.identity.RemoveGrant(cid, kind, who); });
            if (!st) co_return Err(st.error());
            svc.security.Audit(req, "collection.unshare", "collection:" + cid, "ok",
                               {{"grantee_type", kind}, {"grantee_id", who}});
            co_return Response::NoContent();
          });
}

}  // namespace

void AddTenancyRoutes(http::Router& router, AppContext& app, TenancyServices& services) {
  Api api{router, app, services};
  AddUserRoutes(api);
  AddTeamRoutes(api);
  AddSharingRoutes(api, "user");
  AddSharingRoutes(api, "team");
}

}  // namespace modulo::api
