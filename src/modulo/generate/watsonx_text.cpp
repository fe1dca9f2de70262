#include "modulo/generate/watsonx_text.h"

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "modulo/core/json.h"
#include "modulo/generate/http_provider.h"

namespace modulo::generate {
namespace {

using json = nlohmann::json;

using detail::JsonInt;
using detail::JsonStr;

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string FinishReason(const std::string& stop_reason) {
  if (stop_reason == "eos_token" || stop_reason == "stop_sequence") return "stop";
  if (stop_reason == "max_tokens" || stop_reason == "token_limit") return "length";
  return stop_reason;
}

// {"errors": [{"code", "message"}]} → "message (code)".
std::string WatsonxMessage(const json& j) {
  if (auto e = j.find("errors"); e != j.end() && e->is_array() && !e->empty() && (*e)[0].is_object()) {
    std::string m = JsonStr((*e)[0], "message");
    if (std::string c = JsonStr((*e)[0], "code"); !c.empty()) m += " (" + c + ")";
    return m;
  }
  return {};
}

class Decoder final : public detail::StreamDecoder {
 public:
  Status OnEvent(const detail::SseEvent& e, std::string* delta) override {
    if (e.data.empty()) return {};  // e.g. a closing event without data
    auto j = modulo::ParseJsonOrDiscarded(e.data);
    if (j.is_discarded() || !j.is_object()) {
      return Fail(Error::Unavailable("watsonx sent a malformed stream event: " + e.data.substr(0, 200)));
    }
    if (std::string m = WatsonxMessage(j); !m.empty() || e.event == "error") {
      auto sc = j.find("status_code");
      const long status = sc != j.end() && sc->is_number_integer() ? sc->get<long>() : 500L;
      return Fail(detail::StatusError(status, "watsonx (in stream)", m.empty() ? e.data.substr(0, 200) : m));
    }
    if (std::string m = JsonStr(j, "model_id"); !m.empty()) generation.model = m;
    auto results = j.find("results");
    if (results == j.end() || !results->is_array()) {
      return Fail(Error::Unavailable("watsonx sent a stream event without results: " + e.data.substr(0, 200)));
    }
    for (const auto& r : *results) {
      if (!r.is_object()) return Fail(Error::Unavailable("watsonx sent a malformed result in its stream"));
      *delta += JsonStr(r, "generated_text");
      if (r.contains("input_token_count") || r.contains("generated_token_count")) usage_known = true;
      generation.usage.prompt_tokens = std::max(generation.usage.prompt_tokens, JsonInt(r, "input_token_count"));
      generation.usage.completion_tokens = std::max(generation.usage.completion_tokens, JsonInt(r, "generated_token_count"));
      if (std::string s = JsonStr(r, "stop_reason"); !s.empty() && s != "not_finished") {
        generation.finish_reason = FinishReason(s);
        done_ = true;
      }
    }
    return {};
  }
  bool finished() const override { return done_; }

 private:
  bool done_ = false;
};

enum class Template { kPlain, kGranite, kLlama3 };

Template TemplateFor(std::string model_id) {
  std::transform(model_id.begin(), model_id.end(), model_id.begin(), [](unsigned char c) { return std::tolower(c); });
  if (model_id.find("granite-3") != std::string::npos || model_id.find("granite-4") != std::string::npos) {
    return Template::kGranite;
  }
  if (model_id.find("llama-3") != std::string::npos) return Template::kLlama3;
  return Template::kPlain;
}

}  // namespace

std::string RenderWatsonxPrompt(const std::vector<ChatMessage>& messages, const std::string& model_id) {
  std::string out;
  switch (TemplateFor(model_id)) {
    case Template::kGranite:
      for (const auto& m : messages) {
        out += "<|start_of_role|>" + m.role + "<|end_of_role|>" + m.content + "<|end_of_text|>\n";
      }
      out += "<|start_of_role|>assistant<|end_of_role|>";
      return out;
    case Template::kLlama3:
      out = "<|begin_of_text|>";
      for (const auto& m : messages) {
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
      }
      out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      return out;
    case Template::kPlain:
      break;
  }
  for (const auto& m : messages) {
    if (m.role != "system") continue;
    out += m.content;
    out += "\n\n";
  }
  for (const auto& m : messages) {
    if (m.role == "system") continue;
    out += (m.role == "assistant" ? "Assistant: " : "User: ") + m.content + "\n\n";
  }
  out += "Assistant:";
  return out;
}

Result<std::unique_ptr<WatsonxTextProvider>> WatsonxTextProvider::Create(const ProviderConfig& config) {
  if (config.base_url.empty() || config.api_key.empty() || config.project_id.empty() || config.model.empty()) {
    return Fail(Error::InvalidArgument("the watsonx provider needs base_url, api_key, project_id and model"));
  }
  ProviderConfig c = config;
  c.base_url = detail::TrimSlash(c.base_url);
  c.iam_url = detail::TrimSlash(c.iam_url.empty() ? "https://iam.cloud.ibm.com" : c.iam_url);
  if (!c.iam_url.ends_with("/identity/token")) c.iam_url += "/identity/token";
  return std::unique_ptr<WatsonxTextProvider>(new WatsonxTextProvider(std::move(c)));
}

Result<std::string> WatsonxTextProvider::Token(const CancelToken* cancel) {
  std::lock_guard lock(token_mu_);  // one exchange at a time; the others then use its token
  if (!token_.empty() && std::chrono::steady_clock::now() < refresh_at_) return token_;
  detail::HttpRequest req;
  req.egress = config().egress.get();
  req.url = config().iam_url;
  req.headers = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json"};
  req.body = "grant_type=" + UrlEncode("urn:ibm:params:oauth:grant-type:apikey") + "&apikey=" + UrlEncode(config().api_key);
  auto reply = detail::Perform(req, Limits(false), nullptr, cancel);
  if (!reply) return Fail(std::move(reply.error()).Wrap("IBM Cloud IAM"));
  if (reply->status != 200) {
    std::string message;
    auto j = modulo::ParseJsonOrDiscarded(reply->body);
    if (!j.is_discarded() && j.is_object()) {
      message = JsonStr(j, "errorMessage");
      if (std::string c = JsonStr(j, "errorCode"); !c.empty()) message += " (" + c + ")";
    }
    if (reply->status == 400 || reply->status == 401 || reply->status == 403) {
      return Fail(Error::Unauthenticated("IBM Cloud IAM refused the API key (HTTP " + std::to_string(reply->status) +
                                         "): " + message));
    }
    return Fail(detail::StatusError(reply->status, "IBM Cloud IAM", message));
  }
  auto j = modulo::ParseJsonOrDiscarded(reply->body);
  if (j.is_discarded() || !j.is_object() || JsonStr(j, "access_token").empty()) {
    return Fail(Error::Unavailable("IBM Cloud IAM returned no access_token"));
  }
  token_ = JsonStr(j, "access_token");
  // Lifetime from "expiration" (epoch seconds) when given, else "expires_in".
  long long lifetime = 3600;
  if (auto e = j.find("expires_in"); e != j.end() && e->is_number_integer()) lifetime = e->get<long long>();
  if (auto e = j.find("expiration"); e != j.end() && e->is_number_integer()) {
    const long long now = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch()).count();
    lifetime = e->get<long long>() - now;
  }
  const long long margin = std::min(60LL, std::max(0LL, lifetime / 10));
  refresh_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(std::max(0LL, lifetime - margin));
  return token_;
}

bool WatsonxTextProvider::RefreshCredentials() {
  std::lock_guard lock(token_mu_);
  token_.clear();
  return true;
}

Result<detail::HttpRequest> WatsonxTextProvider::BuildRequest(const std::vector<ChatMessage>& messages,
                                                              const GenerationParams& params, bool stream,
                                                              const CancelToken* cancel) {
  auto token = Token(cancel);
  if (!token) return Fail(std::move(token.error()));
  json parameters = {{"max_new_tokens", std::max(1, params.max_new_tokens)},
                     {"repetition_penalty", std::clamp(params.repetition_penalty, 1.0, 2.0)}};
  if (params.temperature <= 0.0) {
    parameters["decoding_method"] = "greedy";
  } else {
    parameters["decoding_method"] = "sample";
    parameters["temperature"] = std::clamp(params.temperature, 0.0, 2.0);
    parameters["top_p"] = std::clamp(params.top_p, 0.01, 1.0);
    parameters["top_k"] = std::clamp(params.top_k, 1, 100);
  }
  if (!params.stop.empty()) parameters["stop_sequences"] = params.stop;
  json body = {{"input", RenderWatsonxPrompt(messages, config().model)},
               {"model_id", config().model},
               {"project_id", config().project_id},
               {"parameters", std::move(parameters)}};
  detail::HttpRequest r;
  r.url = config().base_url + (stream ? "/ml/v1/text/generation_stream" : "/ml/v1/text/generation") +
          "?version=" + kApiVersion;
  r.headers = {"Content-Type: application/json", stream ? "Accept: text/event-stream" : "Accept: application/json",
               "Authorization: Bearer " + *token};
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

Result<Generation> WatsonxTextProvider::ParseResponse(const std::string& body) {
  auto j = modulo::ParseJsonOrDiscarded(body);
  if (j.is_discarded() || !j.is_object() || !j.contains("results") || !j["results"].is_array() ||
      j["results"].empty() || !j["results"][0].is_object()) {
    return Fail(Error::Unavailable("watsonx returned a malformed text generation response"));
  }
  const json& r = j["results"][0];
  Generation g;
  g.text = JsonStr(r, "generated_text");
  g.usage.prompt_tokens = JsonInt(r, "input_token_count");
  g.usage.completion_tokens = JsonInt(r, "generated_token_count");
  g.finish_reason = FinishReason(JsonStr(r, "stop_reason"));
  g.model = JsonStr(j, "model_id");
  return g;
}

std::unique_ptr<detail::StreamDecoder> WatsonxTextProvider::NewDecoder() { return std::make_unique<Decoder>(); }

std::string WatsonxTextProvider::ErrorMessage(const std::string& body) const {
  auto j = modulo::ParseJsonOrDiscarded(body);
  if (!j.is_discarded() && j.is_object()) {
    if (std::string m = WatsonxMessage(j); !m.empty()) return m;
  }
  return {};  // an unstructured body is logged by the caller, never returned
}

}  // namespace modulo::generate
