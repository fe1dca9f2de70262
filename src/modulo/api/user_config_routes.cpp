#include "modulo/api/user_config_routes.h"

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include "modulo/api/route_helpers.h"
#include "modulo/api/security.h"
#include "modulo/core/json.h"
#include "modulo/core/request_id.h"
#include "modulo/generate/llm_config.h"
#include "modulo/http/json_body.h"

namespace modulo::api {

namespace asio = boost::asio;
using http::Request;
using http::Response;
using json = nlohmann::json;
using store::ConfigKind;
using store::ConfigRecord;
using verb = http::beast_http::verb;

namespace {

struct KindInfo {
  ConfigKind kind;
  const char* path;   // under /api/users/{user_id}/
  const char* label;  // in summaries
};

constexpr KindInfo kKinds[] = {
    {ConfigKind::kLlmProvider, "llm-providers", "LLM provider"},
    {ConfigKind::kLlmParameters, "llm-parameters", "LLM parameter set"},
    {ConfigKind::kPromptTemplate, "prompt-templates", "prompt template"},
    {ConfigKind::kPipeline, "pipelines", "pipeline"},
};

std::string UserOf(const Request& req) {
  const std::string& id = req.PathParam("user_id");
  if (id != "me") return id;
  const auth::Principal* p = Security::PrincipalOf(req);
  return p != nullptr ? p->user_id : std::string();
}

class Handlers {
 public:
  Handlers(AppContext& app, UserConfigServices& svc) : app_(app), svc_(svc) {}

  // A sealed API key for the record (or none).
  Result<std::string> Seal(const ConfigRecord& r, const std::string& key) const {
    if (key.empty()) return std::string();
    return svc_.secrets.Seal(key, generate::SecretContext(r));
  }

  generate::OpenFn Opener() const {
    return [this](std::string_view sealed, std::string_view ctx) { return svc_.secrets.Open(sealed, ctx); };
  }

  // The clients made from a provider's old configuration go (a new key or URL makes new ones).
  void ForgetClients(const ConfigRecord& provider) const {
    auto models = svc_.configs.List(provider.user_id, ConfigKind::kLlmModel, provider.id);
    if (!models) return;
    for (const auto& m : *models) {
      if (auto pc = generate::ProviderConfigFor(provider, m, Opener(), svc_.egress)) svc_.providers.Invalidate(*pc);
    }
  }

  // A pipeline's references must be the user's own and of the right sort.
  Status CheckPipeline(const std::string& user_id, const json& body) const {
    auto str = [&](const char* k) { return body.contains(k) && body[k].is_string() ? body[k].get<std::string>() : ""; };
    auto provider = svc_.configs.Get(user_id, ConfigKind::kLlmProvider, str("provider_id"));
    if (!provider) return Fail(Error::InvalidArgument("'provider_id' does not name one of your LLM providers"));
    if (const auto mid = str("model_id"); !mid.empty()) {
      auto m = svc_.configs.Get(user_id, ConfigKind::kLlmModel, mid);
      if (!m || m->parent_id != provider->id) {
        return Fail(Error::InvalidArgument("'model_id' does not name a model of provider '" + provider->name + "'"));
      }
    }
    if (const auto pid = str("parameters_id"); !pid.empty()) {
      if (!svc_.configs.Get(user_id, ConfigKind::kLlmParameters, pid)) {
        return Fail(Error::InvalidArgument("'parameters_id' does not name one of your LLM parameter sets"));
      }
    }
    if (const auto tid = str("template_id"); !tid.empty()) {
      auto t = svc_.configs.Get(user_id, ConfigKind::kPromptTemplate, tid);
      if (!t) return Fail(Error::InvalidArgument("'template_id' does not name one of your prompt templates"));
      if (t->scope != "RAG_QUERY") {
        return Fail(
            Error::InvalidArgument("'template_id' must name a RAG_QUERY template; '" + t->name + "' is " + t->scope));
      }
    }
    if (const auto cid = str("collection_id"); !cid.empty()) {
      auto memberships = svc_.identity.MembershipsOf(user_id);
      if (!memberships) return Fail(memberships.error());
      std::vector<std::string> teams;
      for (const auto& m : *memberships) teams.push_back(m.team_id);
      auto level = svc_.identity.AccessLevelFor(user_id, teams, cid);
      if (!level) return Fail(level.error());
      if (*level == store::AccessLevel::kNone) {
        return Fail(Error::InvalidArgument("'collection_id': collection " + cid + " not found"));
      }
    }
    return {};
  }

  // A provider that a pipeline names cannot go.
  Status CheckUnused(const ConfigRecord& r) const {
    if (r.kind == ConfigKind::kPipeline) return {};
    auto pipelines = svc_.configs.List(r.user_id, ConfigKind::kPipeline);
    if (!pipelines) return Fail(pipelines.error());
    const char* field = r.kind == ConfigKind::kLlmProvider     ? "provider_id"
                        : r.kind == ConfigKind::kLlmModel      ? "model_id"
                        : r.kind == ConfigKind::kLlmParameters ? "parameters_id"
                                                               : "template_id";
    for (const auto& p : *pipelines) {
      const json b = modulo::ParseJsonOrDiscarded(p.body);
      if (b.is_object() && b.value(field, json(nullptr)) == json(r.id)) {
        return Fail(Error::Conflict("pipeline '" + p.name + "' uses it: change or delete the pipeline first"));
      }
    }
    return {};
  }

  Result<json> Create(const std::string& user_id, ConfigKind kind, const std::string& parent_id, const json& input) {
    auto w = generate::ParseConfigInput(kind, input, nullptr);
    if (!w) return Fail(w.error());
    w->record.user_id = user_id;
    w->record.parent_id = parent_id;
    if (kind == ConfigKind::kLlmModel) w->record.scope = parent_id;
    if (kind == ConfigKind::kPipeline) {
      if (auto st = CheckPipeline(user_id, modulo::ParseJsonOrDiscarded(w->record.body)); !st) return Fail(st.error());
    }
    if (kind == ConfigKind::kLlmProvider && w->api_key && !w->api_key->empty()) {
      // The secret is bound to the record's id: choose it first.
      w->record.id = NewUuid();
      auto sealed = Seal(w->record, *w->api_key);
      if (!sealed) return Fail(sealed.error());
      w->record.secret = std::move(*sealed);
    }
    auto created = svc_.configs.Create(w->record);
    if (!created) return Fail(created.error());
    return generate::ConfigOutput(*created);
  }

  Result<json> Update(const std::string& user_id, ConfigKind kind, const std::string& id, const std::string& parent_id,
                      const json& input) {
    auto existing = svc_.configs.Get(user_id, kind, id);
    if (!existing) return Fail(existing.error());
    if (kind == ConfigKind::kLlmModel && existing->parent_id != parent_id) {
      return Fail(Error::NotFound("model " + id + " not found"));
    }
    auto w = generate::ParseConfigInput(kind, input, &*existing);
    if (!w) return Fail(w.error());
    if (kind == ConfigKind::kPipeline) {
      if (auto st = CheckPipeline(user_id, modulo::ParseJsonOrDiscarded(w->record.body)); !st) return Fail(st.error());
    }
    if (kind == ConfigKind::kLlmProvider && !w->api_key && !existing->secret.empty()) {
      // A sealed key was given for one destination: moving the provider elsewhere must not take
      // the key along to a host its owner never meant it for.
      const json before = modulo::ParseJsonOrDiscarded(existing->body);
      const json after = modulo::ParseJsonOrDiscarded(w->record.body);
      for (const char* field : {"type", "base_url", "iam_url"}) {
        const auto was = before.is_object() ? before.value(field, json()) : json();
        const auto now = after.is_object() ? after.value(field, json()) : json();
        if (was != now) {
          return Fail(Error::InvalidArgument(std::string("changing '") + field +
                                             "' needs 'api_key' again (or null for none): the stored key is never "
                                             "sent to a destination it was not given for"));
        }
      }
    }
    bool replace_secret = false;
    if (kind == ConfigKind::kLlmProvider && w->api_key) {
      auto sealed = Seal(w->record, *w->api_key);
      if (!sealed) return Fail(sealed.error());
      w->record.secret = std::move(*sealed);
      replace_secret = true;
    }
    if (kind == ConfigKind::kLlmProvider) ForgetClients(*existing);
    if (kind == ConfigKind::kLlmModel) {
      if (auto provider = svc_.configs.Get(user_id, ConfigKind::kLlmProvider, existing->parent_id)) {
        if (auto pc = generate::ProviderConfigFor(*provider, *existing, Opener(), svc_.egress)) svc_.providers.Invalidate(*pc);
      }
    }
    auto updated = svc_.configs.Update(w->record, replace_secret);
    if (!updated) return Fail(updated.error());
    return generate::ConfigOutput(*updated);
  }

  Status Delete(const std::string& user_id, ConfigKind kind, const std::string& id, const std::string& parent_id) {
    auto existing = svc_.configs.Get(user_id, kind, id);
    if (!existing) return Fail(existing.error());
    if (kind == ConfigKind::kLlmModel && existing->parent_id != parent_id) {
      return Fail(Error::NotFound("model " + id + " not found"));
    }
    if (auto st = CheckUnused(*existing); !st) return st;
    if (kind == ConfigKind::kLlmProvider) {
      auto models = svc_.configs.List(user_id, ConfigKind::kLlmModel, id);
      if (!models) return Fail(models.error());
      for (const auto& m : *models) {
        if (auto st = CheckUnused(m); !st) return st;
      }
      ForgetClients(*existing);
    }
    return svc_.configs.Delete(user_id, kind, id);
  }

  Result<json> List(const std::string& user_id, ConfigKind kind, const std::optional<std::string>& parent_id,
                    const std::string& scope = "") {
    if (parent_id) {  // the provider must be the user's
      if (auto p = svc_.configs.Get(user_id, ConfigKind::kLlmProvider, *parent_id); !p) return Fail(p.error());
    }
    auto all = svc_.configs.List(user_id, kind, parent_id);
    if (!all) return Fail(all.error());
    json out = json::array();
    for (const auto& r : *all) {
      if (scope.empty() || r.scope == scope) out.push_back(generate::ConfigOutput(r));
    }
    return out;
  }

  Result<json> Get(const std::string& user_id, ConfigKind kind, const std::string& id, const std::string& parent_id) {
    auto r = svc_.configs.Get(user_id, kind, id);
    if (!r) return Fail(r.error());
    if (kind == ConfigKind::kLlmModel && r->parent_id != parent_id) {
      return Fail(Error::NotFound("model " + id + " not found"));
    }
    return generate::ConfigOutput(*r);
  }

  Result<json> SetDefault(const std::string& user_id, ConfigKind kind, const std::string& id,
                          const std::string& parent_id) {
    if (kind == ConfigKind::kLlmModel) {
      auto r = svc_.configs.Get(user_id, kind, id);
      if (!r) return Fail(r.error());
      if (r->parent_id != parent_id) return Fail(Error::NotFound("model " + id + " not found"));
    }
    auto r = svc_.configs.SetDefault(user_id, kind, id);
    if (!r) return Fail(r.error());
    return generate::ConfigOutput(*r);
  }

  AppContext& app_;
  UserConfigServices& svc_;
};

void Add(http::Router& router, verb method, std::string path, std::string summary, http::Handler handler,
         bool has_body = false) {
  AddRoute(router,
           {method,
            std::move(path),
            "self:user_id",
            std::move(summary),
            "llm-config",
            has_body ? nlohmann::json{{"type", "object"}} : nlohmann::json(nullptr),
            {{"400", "A bad field (the message names it)"},
             {"404", "No such record (or not yours)"},
             {"409", "A duplicate name, or still used by a pipeline"}}},
           std::move(handler));
}

Response Reply(Result<json> r, http::beast_http::status ok = http::beast_http::status::ok) {
  if (!r) return Response::FromError(r.error());
  return Response::Json(*r, ok);
}

}  // namespace

void AddUserConfigRoutes(http::Router& router, AppContext& app, UserConfigServices& services) {
  auto h = std::make_shared<Handlers>(app, services);
  const auto created = http::beast_http::status::created;
  // The four top-level kinds share their routes' shapes; models hang under their provider.
  struct Scope {
    ConfigKind kind;
    std::string base;    // path of the collection of records
    std::string id;      // the record's path parameter
    const char* parent;  // the parent's path parameter, or nullptr
    std::string label;
  };
  std::vector<Scope> scopes;
  for (const auto& k : kKinds) {
    scopes.push_back({k.kind, std::string("/api/users/{user_id}/") + k.path, "id", nullptr, k.label});
  }
  scopes.push_back({ConfigKind::kLlmModel, "/api/users/{user_id}/llm-providers/{provider_id}/models", "model_id",
                    "provider_id", "model of an LLM provider"});
  for (const auto& s : scopes) {
    const ConfigKind kind = s.kind;
    const char* parent = s.parent;
    const std::string item = s.base + "/{" + s.id + "}";
    const std::string id_param = s.id;
    auto parent_of = [parent](const Request& req) { return parent ? req.PathParam(parent) : std::string(); };
    Add(router, verb::get, s.base, "List your " + s.label + "s",
        [h, &app, kind, parent, parent_of](Request& req) -> asio::awaitable<Response> {
          const std::string user = UserOf(req);
          std::optional<std::string> p;
          if (parent) p = parent_of(req);
          co_return Reply(co_await RunOn(app.blocking_pool, [&] { return h->List(user, kind, p); }));
        });
    Add(
        router, verb::post, s.base, "Create a " + s.label,
        [h, &app, kind, parent_of, created](Request& req) -> asio::awaitable<Response> {
          auto body = http::ParseJsonBody(req);
          if (!body) co_return Response::FromError(body.error());
          const std::string user = UserOf(req);
          const std::string p = parent_of(req);
          co_return Reply(co_await RunOn(app.blocking_pool,
                                         [&]() -> Result<json> {
                                           if (!p.empty()) {  // the provider must be the user's
                                             auto prov = h->svc_.configs.Get(user, ConfigKind::kLlmProvider, p);
                                             if (!prov) return Fail(prov.error());
                                           }
                                           return h->Create(user, kind, p, *body);
                                         }),
                          created);
        },
        true);
    Add(router, verb::get, item, "One " + s.label,
        [h, &app, kind, id_param, parent_of](Request& req) -> asio::awaitable<Response> {
          const std::string user = UserOf(req), id = req.PathParam(id_param), p = parent_of(req);
          co_return Reply(co_await RunOn(app.blocking_pool, [&] { return h->Get(user, kind, id, p); }));
        });
    Add(
        router, verb::put, item, "Change a " + s.label + " (the fields given)",
        [h, &app, kind, id_param, parent_of](Request& req) -> asio::awaitable<Response> {
          auto body = http::ParseJsonBody(req);
          if (!body) co_return Response::FromError(body.error());
          const std::string user = UserOf(req), id = req.PathParam(id_param), p = parent_of(req);
          co_return Reply(co_await RunOn(app.blocking_pool, [&] { return h->Update(user, kind, id, p, *body); }));
        },
        true);
    Add(router, verb::delete_, item, "Delete a " + s.label,
        [h, &app, kind, id_param, parent_of](Request& req) -> asio::awaitable<Response> {
          const std::string user = UserOf(req), id = req.PathParam(id_param), p = parent_of(req);
          auto st = co_await RunOn(app.blocking_pool, [&] { return h->Delete(user, kind, id, p); });
          if (!st) co_return Response::FromError(st.error());
          co_return Response::NoContent();
        });
    Add(router, verb::put, item + "/default", "Make a " + s.label + " your default",
        [h, &app, kind, id_param, parent_of](Request& req) -> asio::awaitable<Response> {
          const std::string user = UserOf(req), id = req.PathParam(id_param), p = parent_of(req);
          co_return Reply(co_await RunOn(app.blocking_pool, [&] { return h->SetDefault(user, kind, id, p); }));
        });
  }
  Add(router, verb::get, "/api/users/{user_id}/prompt-templates/type/{template_type}",
      "Your prompt templates of one type (RAG_QUERY, COT_REASONING, …)",
      [h, &app](Request& req) -> asio::awaitable<Response> {
        const std::string user = UserOf(req), type = req.PathParam("template_type");
        if (!generate::IsTemplateType(type)) {
          co_return Response::FromError(Error::InvalidArgument("unknown template type '" + type + "'"));
        }
        co_return Reply(co_await RunOn(app.blocking_pool,
                                       [&] { return h->List(user, ConfigKind::kPromptTemplate, std::nullopt, type); }));
      });
}

}  // namespace modulo::api
