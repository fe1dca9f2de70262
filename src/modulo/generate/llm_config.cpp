#include "modulo/generate/llm_config.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "modulo/core/clock.h"
#include "modulo/core/json.h"

namespace modulo::generate {
namespace {

using json = nlohmann::json;
using store::ConfigKind;
using store::ConfigRecord;

enum class Type { kString, kInt, kNumber, kBool, kStringList, kObject, kStringMap };

struct Field {
  const char* name;
  Type type;
  json fallback;                          // the value of a field absent on creation (null: absent)
  double min = 0, max = 0;                // numbers: the range; strings: max bytes (min: 1 if required)
  std::vector<std::string> choices = {};  // strings: the allowed values
  bool required = false;
  bool nullable = false;
};

// The body fields of each kind. "name", "is_default" and (providers) "api_key" are handled apart.
const std::vector<Field>& FieldsOf(ConfigKind kind) {
  static const std::vector<Field> kProvider = {
      {"type", Type::kString, "openai", 0, 0, {"openai", "anthropic", "watsonx"}},
      {"base_url", Type::kString, "", 0, 2048},
      {"org_id", Type::kString, nullptr, 0, 255, {}, false, true},
      {"project_id", Type::kString, nullptr, 0, 255, {}, false, true},
      {"iam_url", Type::kString, nullptr, 0, 2048, {}, false, true},
      {"timeout_seconds", Type::kInt, 60, 1, 600},
      {"max_retries", Type::kInt, 3, 0, 10},
      {"max_concurrency", Type::kInt, 8, 1, 1024},
      {"is_active", Type::kBool, true},
  };
  static const std::vector<Field> kModel = {
      {"model_type", Type::kString, "generation", 0, 0, {"generation", "embedding"}},
      {"context_tokens", Type::kInt, 8192, 512, 2000000},
      {"timeout", Type::kInt, 60, 1, 600},
      {"max_retries", Type::kInt, 3, 0, 10},
      {"concurrency_limit", Type::kInt, 8, 1, 1024},
      {"stream", Type::kBool, true},
      {"is_active", Type::kBool, true},
  };
  static const std::vector<Field> kParameters = {
      {"description", Type::kString, nullptr, 0, 1024, {}, false, true},
      {"max_new_tokens", Type::kInt, 512, 1, 32768},
      {"temperature", Type::kNumber, 0.7, 0, 2},
      {"top_k", Type::kInt, 50, 1, 1000},
      {"top_p", Type::kNumber, 1.0, 0, 1},
      {"repetition_penalty", Type::kNumber, 1.1, 1, 2, {}, false, true},
      {"stop_sequences", Type::kStringList, json::array(), 0, 16},
  };
  static const std::vector<Field> kTemplate = {
      {"template_type",
       Type::kString,
       "CUSTOM",
       0,
       0,
       {"RAG_QUERY", "QUESTION_GENERATION", "RESPONSE_EVALUATION", "COT_REASONING", "RERANKING", "PODCAST_GENERATION",
        "STRUCTURED_OUTPUT", "CUSTOM"}},
      {"system_prompt", Type::kString, nullptr, 0, 16384, {}, false, true},
      {"template_format", Type::kString, nullptr, 1, 65536, {}, true},
      {"input_variables", Type::kStringMap, nullptr, 0, 64, {}, false, true},
      {"example_inputs", Type::kObject, nullptr, 0, 0, {}, false, true},
      {"max_context_length", Type::kInt, nullptr, 128, 2000000, {}, false, true},
      {"stop_sequences", Type::kStringList, nullptr, 0, 16, {}, false, true},
  };
  static const std::vector<Field> kPipeline = {
      {"description", Type::kString, nullptr, 0, 1024, {}, false, true},
      {"collection_id", Type::kString, nullptr, 1, 64, {}, false, true},
      {"provider_id", Type::kString, nullptr, 1, 64, {}, true},
      {"model_id", Type::kString, nullptr, 1, 64, {}, false, true},
      {"parameters_id", Type::kString, nullptr, 1, 64, {}, false, true},
      {"template_id", Type::kString, nullptr, 1, 64, {}, false, true},
      {"retriever", Type::kString, "hybrid", 0, 0, {"vector", "keyword", "hybrid"}},
      {"chunking_strategy",
       Type::kString,
       "sentence",
       0,
       0,
       {"fixed", "semantic", "overlap", "paragraph", "sentence", "hierarchical"}},
      {"embedding_model", Type::kString, nullptr, 0, 255, {}, false, true},
      {"context_strategy", Type::kString, "priority", 0, 0, {"simple", "priority", "weighted"}},
      {"enable_logging", Type::kBool, true},
      {"max_context_length", Type::kInt, nullptr, 128, 2000000, {}, false, true},
      {"timeout", Type::kNumber, 30.0, 1, 300},
      {"config_metadata", Type::kObject, nullptr, 0, 0, {}, false, true},
  };
  switch (kind) {
    case ConfigKind::kLlmProvider: return kProvider;
    case ConfigKind::kLlmModel: return kModel;
    case ConfigKind::kLlmParameters: return kParameters;
    case ConfigKind::kPromptTemplate: return kTemplate;
    case ConfigKind::kPipeline: return kPipeline;
  }
  return kProvider;
}

Status Bad(const std::string& field, const std::string& what) {
  return Fail(Error::InvalidArgument("'" + field + "' " + what));
}

Status CheckString(const std::string& name, const std::string& v, double max_bytes) {
  if (max_bytes > 0 && v.size() > static_cast<std::size_t>(max_bytes)) {
    return Bad(name, "is longer than " + std::to_string(static_cast<long long>(max_bytes)) + " bytes");
  }
  for (unsigned char c : v) {
    if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') return Bad(name, "contains control characters");
  }
  return {};
}

Result<json> CheckField(const Field& f, const json& v) {
  const std::string name = f.name;
  if (v.is_null()) {
    if (f.nullable) return json(nullptr);
    return Fail(Error::InvalidArgument("'" + name + "' must not be null"));
  }
  switch (f.type) {
    case Type::kString: {
      if (!v.is_string()) return Fail(Error::InvalidArgument("'" + name + "' must be a string"));
      const auto& s = v.get_ref<const std::string&>();
      if (!f.choices.empty() && std::find(f.choices.begin(), f.choices.end(), s) == f.choices.end()) {
        std::string list;
        for (const auto& c : f.choices) list += (list.empty() ? "" : ", ") + c;
        return Fail(Error::InvalidArgument("'" + name + "' must be one of " + list));
      }
      if (f.min >= 1 && s.empty()) return Fail(Error::InvalidArgument("'" + name + "' must not be empty"));
      if (auto st = CheckString(name, s, f.max); !st) return Fail(st.error());
      return v;
    }
    case Type::kInt: {
      if (!v.is_number_integer()) return Fail(Error::InvalidArgument("'" + name + "' must be an integer"));
      const auto i = v.get<std::int64_t>();
      if (i < f.min || i > f.max) {
        return Fail(Error::InvalidArgument("'" + name + "' must be between " +
                                           std::to_string(static_cast<long long>(f.min)) + " and " +
                                           std::to_string(static_cast<long long>(f.max))));
      }
      return v;
    }
    case Type::kNumber: {
      if (!v.is_number()) return Fail(Error::InvalidArgument("'" + name + "' must be a number"));
      const double d = v.get<double>();
      if (!std::isfinite(d) || d < f.min || d > f.max) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "' must be between %g and %g", f.min, f.max);
        return Fail(Error::InvalidArgument("'" + name + buf));
      }
      return json(d);
    }
    case Type::kBool:
      if (!v.is_boolean()) return Fail(Error::InvalidArgument("'" + name + "' must be a boolean"));
      return v;
    case Type::kStringList: {
      if (!v.is_array()) return Fail(Error::InvalidArgument("'" + name + "' must be an array of strings"));
      if (v.size() > static_cast<std::size_t>(f.max)) {
        return Fail(Error::InvalidArgument("'" + name + "' has more than " +
                                           std::to_string(static_cast<long long>(f.max)) + " entries"));
      }
      for (const auto& e : v) {
        if (!e.is_string() || e.get_ref<const std::string&>().empty() || e.get_ref<const std::string&>().size() > 256) {
          return Fail(Error::InvalidArgument("'" + name + "' entries must be strings of 1 to 256 bytes"));
        }
      }
      return v;
    }
    case Type::kObject:
      if (!v.is_object()) return Fail(Error::InvalidArgument("'" + name + "' must be an object"));
      if (v.dump().size() > 65536) return Fail(Error::InvalidArgument("'" + name + "' is larger than 64 KiB"));
      return v;
    case Type::kStringMap:
      if (!v.is_object() || v.size() > static_cast<std::size_t>(f.max)) {
        return Fail(Error::InvalidArgument("'" + name + "' must be an object of at most " +
                                           std::to_string(static_cast<long long>(f.max)) + " string values"));
      }
      for (const auto& [k, e] : v.items()) {
        if (!e.is_string()) return Fail(Error::InvalidArgument("'" + name + "." + k + "' must be a string"));
      }
      return v;
  }
  return v;
}

// {name} variables of a template, in order, without repeats: a name is one or more ASCII letters,
// digits or underscores between braces. A linear scan (a regex here recursed once per character of
// a long "{aaaa...}" and overflowed the stack).
std::vector<std::string> TemplateVariables(const std::string& format) {
  const auto word = [](unsigned char c) { return std::isalnum(c) || c == '_'; };
  std::vector<std::string> out;
  for (std::size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '{') continue;
    std::size_t j = i + 1;
    while (j < format.size() && word(static_cast<unsigned char>(format[j]))) ++j;
    if (j > i + 1 && j < format.size() && format[j] == '}') {
      std::string v = format.substr(i + 1, j - i - 1);
      if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(std::move(v));
      i = j;
    } else {
      i = j - 1;  // a '{' at j starts the next candidate
    }
  }
  return out;
}

Status CheckUrl(const std::string& field, const json& v) {
  if (!v.is_string() || v.get_ref<const std::string&>().empty()) return {};
  const auto& s = v.get_ref<const std::string&>();
  if (s.rfind("http://", 0) != 0 && s.rfind("https://", 0) != 0)
    return Bad(field, "must be an http:// or https:// URL");
  if (s.find_first_of(" \t\r\n") != std::string::npos) return Bad(field, "must not contain whitespace");
  return {};
}

// Kind-specific rules on a complete body.
Status CheckBody(ConfigKind kind, json& body) {
  switch (kind) {
    case ConfigKind::kLlmProvider: {
      if (auto st = CheckUrl("base_url", body["base_url"]); !st) return st;
      if (auto st = CheckUrl("iam_url", body["iam_url"]); !st) return st;
      if (body["type"] == "watsonx") {
        if (body["base_url"].get_ref<const std::string&>().empty()) return Bad("base_url", "is required for watsonx");
        if (!body["project_id"].is_string() || body["project_id"].get_ref<const std::string&>().empty()) {
          return Bad("project_id", "is required for watsonx");
        }
      }
      return {};
    }
    case ConfigKind::kPromptTemplate: {
      const std::string& format = body["template_format"].get_ref<const std::string&>();
      const auto vars = TemplateVariables(format);
      if (vars.empty()) return Bad("template_format", "must contain at least one variable in {name} form");
      json& declared = body["input_variables"];
      if (declared.is_null()) {  // derived from the template
        declared = json::object();
        for (const auto& v : vars) declared[v] = "";
      }
      for (const auto& v : vars) {
        if (!declared.contains(v)) {
          return Bad("input_variables", "does not declare '" + v + "', which template_format uses");
        }
      }
      const bool rag = body["template_type"] == "RAG_QUERY";
      if (rag && (std::find(vars.begin(), vars.end(), "question") == vars.end() ||
                  std::find(vars.begin(), vars.end(), "context") == vars.end())) {
        return Bad("template_format", "of a RAG_QUERY template must contain {question} and {context}");
      }
      if (rag) {
        for (const auto& v : vars) {
          if (v != "question" && v != "context") {
            return Bad("template_format",
                       "of a RAG_QUERY template may use only {question} and {context}, not {" + v + "}");
          }
        }
      }
      return {};
    }
    default: return {};
  }
}

// A stored record's body (an empty object if it is somehow not one), and a string field of it.
json Body(const ConfigRecord& r) {
  json b = modulo::ParseJsonOrDiscarded(r.body);
  return b.is_object() ? b : json::object();
}

std::string Str(const json& b, const char* key) {
  auto it = b.find(key);
  return it != b.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string SecretContext(const ConfigRecord& r) {
  return "llm_provider:" + r.user_id + ":" + r.id;
}

bool IsTemplateType(std::string_view type) noexcept {
  for (const auto& c : FieldsOf(ConfigKind::kPromptTemplate)[0].choices) {
    if (c == type) return true;
  }
  return false;
}

Result<ConfigWrite> ParseConfigInput(ConfigKind kind, const json& input, const ConfigRecord* existing) {
  if (!input.is_object()) return Fail(Error::InvalidArgument("the request body must be a JSON object"));
  const auto& fields = FieldsOf(kind);
  ConfigWrite w;
  if (existing != nullptr) w.record = *existing;
  w.record.kind = kind;
  json body = existing != nullptr ? Body(*existing) : json::object();
  const char* name_field = kind == ConfigKind::kLlmModel ? "model_id" : "name";
  for (const auto& [key, value] : input.items()) {
    if (key == name_field) {
      if (!value.is_string()) return Fail(Error::InvalidArgument("'" + key + "' must be a string"));
      w.record.name = value.get<std::string>();
      if (w.record.name.empty() || w.record.name.size() > 255) {
        return Fail(Error::InvalidArgument("'" + key + "' must be 1 to 255 bytes"));
      }
      if (auto st = CheckString(key, w.record.name, 255); !st) return Fail(st.error());
      continue;
    }
    if (key == "is_default") {
      if (!value.is_boolean()) return Fail(Error::InvalidArgument("'is_default' must be a boolean"));
      w.record.is_default = value.get<bool>();
      continue;
    }
    if (key == "api_key" && kind == ConfigKind::kLlmProvider) {
      if (value.is_null()) {
        w.api_key = std::string();
        continue;
      }
      if (!value.is_string() || value.get_ref<const std::string&>().size() > 8192) {
        return Fail(Error::InvalidArgument("'api_key' must be a string of at most 8192 bytes"));
      }
      w.api_key = value.get<std::string>();
      // The key travels in a request header: CR or LF would start headers of the caller's choosing.
      if (std::any_of(w.api_key->begin(), w.api_key->end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
        return Fail(Error::InvalidArgument("'api_key' must not contain control characters (CR, LF, tab, NUL...)"));
      }
      continue;
    }
    // Read-only fields a client may echo back from an earlier response.
    if (key == "id" || key == "user_id" || key == "created_at" || key == "updated_at" || key == "has_api_key" ||
        (kind == ConfigKind::kLlmModel && key == "provider_id")) {
      continue;
    }
    auto f = std::find_if(fields.begin(), fields.end(), [&](const Field& x) { return key == x.name; });
    if (f == fields.end()) return Fail(Error::InvalidArgument("unknown field '" + key + "'"));
    auto checked = CheckField(*f, value);
    if (!checked) return Fail(checked.error());
    body[key] = std::move(*checked);
  }
  if (w.record.name.empty()) return Fail(Error::InvalidArgument(std::string("'") + name_field + "' is required"));
  for (const auto& f : fields) {
    if (body.contains(f.name)) continue;
    if (f.required) return Fail(Error::InvalidArgument(std::string("'") + f.name + "' is required"));
    body[f.name] = f.fallback;
  }
  if (auto st = CheckBody(kind, body); !st) return Fail(st.error());
  if (kind == ConfigKind::kPromptTemplate) w.record.scope = body["template_type"].get<std::string>();
  if (kind == ConfigKind::kLlmModel) w.record.scope = w.record.parent_id;
  w.record.body = body.dump();
  return w;
}

json ConfigOutput(const ConfigRecord& r) {
  json out = Body(r);
  out["id"] = r.id;
  out["user_id"] = r.user_id;
  out[r.kind == ConfigKind::kLlmModel ? "model_id" : "name"] = r.name;
  out["is_default"] = r.is_default;
  out["created_at"] = FormatTimestamp(r.created_at_ms);
  out["updated_at"] = FormatTimestamp(r.updated_at_ms);
  if (r.kind == ConfigKind::kLlmProvider) out["has_api_key"] = !r.secret.empty();
  if (r.kind == ConfigKind::kLlmModel) out["provider_id"] = r.parent_id;
  return out;
}

Result<ProviderConfig> ProviderConfigFor(const ConfigRecord& provider, const ConfigRecord& model,
                                         const OpenFn& open_secret, std::shared_ptr<const net::EgressPolicy> egress) {
  const json prov = Body(provider);
  const json mb = Body(model);
  ProviderConfig pc;
  pc.type = Str(prov, "type");
  pc.base_url = Str(prov, "base_url");
  pc.model = model.name;
  pc.project_id = Str(prov, "project_id");
  pc.iam_url = Str(prov, "iam_url");
  pc.egress = std::move(egress);
  pc.timeout = std::chrono::seconds(mb.value("timeout", prov.value("timeout_seconds", 60)));
  pc.max_retries = mb.value("max_retries", prov.value("max_retries", 3));
  pc.max_concurrency = std::min(mb.value("concurrency_limit", 8), prov.value("max_concurrency", 8));
  if (!provider.secret.empty()) {
    if (!open_secret) return Fail(Error::Internal("no server key to open provider API keys"));
    auto key = open_secret(provider.secret, SecretContext(provider));
    if (!key) return Fail(std::move(key.error()).Wrap("the API key of LLM provider '" + provider.name + "'"));
    pc.api_key = std::move(*key);
  }
  return pc;
}

ProfileResolver::ProfileResolver(ProfileResolverDeps deps, AnswerProfile server)
    : deps_(std::move(deps)), server_(std::make_shared<const AnswerProfile>(std::move(server))) {}

namespace {

// A missing default is "none", other errors are errors.
Result<std::optional<ConfigRecord>> Optional(Result<ConfigRecord> r) {
  if (r) return std::optional<ConfigRecord>(std::move(*r));
  if (r.error().code() == ErrorCode::kNotFound) return std::optional<ConfigRecord>();
  return Fail(r.error());
}

}  // namespace

Result<std::shared_ptr<const AnswerProfile>> ProfileResolver::Resolve(const std::string& user_id,
                                                                      const std::string& collection_id,
                                                                      const std::string& pipeline_id) {
  if (user_id.empty()) return server_;
  auto& configs = deps_.configs;
  // The pipeline.
  std::optional<ConfigRecord> pipeline;
  if (!pipeline_id.empty()) {
    auto p = configs.Get(user_id, ConfigKind::kPipeline, pipeline_id);
    if (!p) {
      if (p.error().code() == ErrorCode::kNotFound) {
        return Fail(Error::NotFound("pipeline '" + pipeline_id + "' not found"));
      }
      return Fail(p.error());
    }
    pipeline = std::move(*p);
  } else {
    auto all = configs.List(user_id, ConfigKind::kPipeline);
    if (!all) return Fail(all.error());
    const ConfigRecord* for_collection = nullptr;
    const ConfigRecord* general = nullptr;
    for (const auto& p : *all) {
      const std::string c = Str(Body(p), "collection_id");
      if (!collection_id.empty() && c == collection_id) {
        if (for_collection == nullptr || p.is_default) for_collection = &p;
      } else if (c.empty() && p.is_default) {
        general = &p;
      }
    }
    if (for_collection != nullptr) {
      pipeline = *for_collection;
    } else if (general != nullptr) {
      pipeline = *general;
    }
  }
  const json pb = pipeline ? Body(*pipeline) : json::object();

  // The provider.
  std::optional<ConfigRecord> provider;
  if (pipeline) {
    auto p = configs.Get(user_id, ConfigKind::kLlmProvider, Str(pb, "provider_id"));
    if (!p) {
      if (p.error().code() == ErrorCode::kNotFound) {
        return Fail(Error::InvalidArgument("pipeline '" + pipeline->name + "' names a provider that no longer exists"));
      }
      return Fail(p.error());
    }
    provider = std::move(*p);
  } else {
    auto p = Optional(configs.GetDefault(user_id, ConfigKind::kLlmProvider, ""));
    if (!p) return Fail(p.error());
    provider = std::move(*p);
  }
  if (!provider) return server_;  // nothing configured: the server's model and prompts
  const json prov = Body(*provider);
  if (!prov.value("is_active", true)) {
    return Fail(Error::InvalidArgument("LLM provider '" + provider->name + "' is not active"));
  }

  // The model.
  std::optional<ConfigRecord> model;
  if (const std::string mid = Str(pb, "model_id"); !mid.empty()) {
    auto m = configs.Get(user_id, ConfigKind::kLlmModel, mid);
    if (!m) return Fail(std::move(m.error()).Wrap("the pipeline's model"));
    model = std::move(*m);
  } else {
    auto m = Optional(configs.GetDefault(user_id, ConfigKind::kLlmModel, provider->id));
    if (!m) return Fail(m.error());
    model = std::move(*m);
    if (!model || Body(*model).value("model_type", "generation") != "generation") {
      model.reset();
      auto models = configs.List(user_id, ConfigKind::kLlmModel, provider->id);
      if (!models) return Fail(models.error());
      for (auto& m2 : *models) {
        const json mb = Body(m2);
        if (mb.value("model_type", "generation") == "generation" && mb.value("is_active", true)) {
          model = std::move(m2);
          break;
        }
      }
    }
  }
  if (!model) {
    return Fail(Error::InvalidArgument("LLM provider '" + provider->name +
                                       "' has no generation model: add one with POST /api/users/" + user_id +
                                       "/llm-providers/" + provider->id + "/models"));
  }
  const json mb = Body(*model);
  if (model->parent_id != provider->id) {
    return Fail(
        Error::InvalidArgument("model '" + model->name + "' does not belong to provider '" + provider->name + "'"));
  }

  // The client, shared per configuration.
  auto pc = ProviderConfigFor(*provider, *model, deps_.open_secret, deps_.egress);
  if (!pc) return Fail(pc.error());
  auto client = deps_.providers.Get(*pc);
  if (!client) return Fail(std::move(client.error()).Wrap("LLM provider '" + provider->name + "'"));

  auto profile = std::make_shared<AnswerProfile>(*server_);
  profile->provider = std::move(*client);
  profile->context_tokens = mb.value("context_tokens", server_->context_tokens);
  json source = {{"source", "user"},
                 {"pipeline_id", pipeline ? json(pipeline->id) : json(nullptr)},
                 {"provider_id", provider->id},
                 {"model", model->name},
                 {"parameters_id", nullptr},
                 {"template_id", nullptr}};

  // Parameters.
  std::optional<ConfigRecord> params;
  if (const std::string id = Str(pb, "parameters_id"); !id.empty()) {
    auto p = configs.Get(user_id, ConfigKind::kLlmParameters, id);
    if (!p) return Fail(std::move(p.error()).Wrap("the pipeline's LLM parameters"));
    params = std::move(*p);
  } else {
    auto p = Optional(configs.GetDefault(user_id, ConfigKind::kLlmParameters, ""));
    if (!p) return Fail(p.error());
    params = std::move(*p);
  }
  if (params) {
    const json b = Body(*params);
    profile->params.max_new_tokens = b.value("max_new_tokens", profile->params.max_new_tokens);
    profile->params.temperature = b.value("temperature", profile->params.temperature);
    profile->params.top_k = b.value("top_k", profile->params.top_k);
    profile->params.top_p = b.value("top_p", profile->params.top_p);
    if (b.contains("repetition_penalty") && b["repetition_penalty"].is_number()) {
      profile->params.repetition_penalty = b["repetition_penalty"].get<double>();
    }
    profile->params.stop.clear();
    for (const auto& s : b.value("stop_sequences", json::array())) profile->params.stop.push_back(s.get<std::string>());
    source["parameters_id"] = params->id;
  }

  // The RAG_QUERY template.
  std::optional<ConfigRecord> tmpl;
  if (const std::string id = Str(pb, "template_id"); !id.empty()) {
    auto t = configs.Get(user_id, ConfigKind::kPromptTemplate, id);
    if (!t) return Fail(std::move(t.error()).Wrap("the pipeline's prompt template"));
    if (t->scope != "RAG_QUERY") {
      return Fail(
          Error::InvalidArgument("the pipeline's prompt template '" + t->name + "' is not a RAG_QUERY template"));
    }
    tmpl = std::move(*t);
  } else {
    auto t = Optional(configs.GetDefault(user_id, ConfigKind::kPromptTemplate, "RAG_QUERY"));
    if (!t) return Fail(t.error());
    tmpl = std::move(*t);
  }
  std::int64_t max_context = pb.value("max_context_length", json(nullptr)).is_number_integer()
                                 ? pb["max_context_length"].get<std::int64_t>()
                                 : 0;
  if (tmpl) {
    const json b = Body(*tmpl);
    profile->user_template = Str(b, "template_format");
    if (const std::string sys = Str(b, "system_prompt"); !sys.empty()) profile->system_prompt = sys;
    for (const auto& s : b.value("stop_sequences", json::array())) {
      if (s.is_string()) profile->params.stop.push_back(s.get<std::string>());
    }
    if (b.contains("max_context_length") && b["max_context_length"].is_number_integer()) {
      const auto m = b["max_context_length"].get<std::int64_t>();
      max_context = max_context > 0 ? std::min(max_context, m) : m;
    }
    source["template_id"] = tmpl->id;
  }
  if (max_context > 0)
    profile->context_tokens = static_cast<int>(std::min<std::int64_t>(profile->context_tokens, max_context));
  if (profile->context_tokens < profile->params.max_new_tokens + 256) {
    return Fail(Error::InvalidArgument("the context window (" + std::to_string(profile->context_tokens) +
                                       " tokens) must exceed max_new_tokens (" +
                                       std::to_string(profile->params.max_new_tokens) + ") by at least 256"));
  }
  profile->source = std::move(source);
  return std::shared_ptr<const AnswerProfile>(std::move(profile));
}

}  // namespace modulo::generate
