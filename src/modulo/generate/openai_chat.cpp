#include "modulo/generate/openai_chat.h"

#include <nlohmann/json.hpp>

#include "modulo/core/json.h"
#include "modulo/generate/http_provider.h"

namespace modulo::generate {
namespace {

using json = nlohmann::json;

using detail::JsonInt;
using detail::JsonStr;

// {"message", "type", "code"} → "message (type, code)".
std::string Describe(const json& e) {
  std::string m = JsonStr(e, "message");
  std::string extra = JsonStr(e, "type");
  if (auto it = e.find("code"); it != e.end() && !it->is_null()) {
    const std::string code = it->is_string() ? it->get<std::string>() : it->dump();
    extra += extra.empty() ? code : ", " + code;
  }
  if (!extra.empty()) m += " (" + extra + ")";
  return m;
}

// A mid-stream {"error": {...}} → an Error.
Error StreamError(const json& e) {
  const std::string message = "openai stream error: " + Describe(e);
  if (auto it = e.find("code"); it != e.end() && it->is_number_integer()) {
    return detail::StatusError(it->get<long>(), "openai", Describe(e));
  }
  const std::string type = JsonStr(e, "type") + " " + JsonStr(e, "code");
  if (type.find("rate_limit") != std::string::npos) return Error::RateLimited(message);
  if (type.find("invalid_request") != std::string::npos || type.find("context_length") != std::string::npos) {
    return Error::InvalidArgument(message);
  }
  return Error::Unavailable(message);
}

void ReadUsage(const json& u, TokenUsage& usage) {
  usage.prompt_tokens = JsonInt(u, "prompt_tokens");
  usage.completion_tokens = JsonInt(u, "completion_tokens");
}

class Decoder final : public detail::StreamDecoder {
 public:
  Status OnEvent(const detail::SseEvent& e, std::string* delta) override {
    if (e.data == "[DONE]") {
      done_ = true;
      return {};
    }
    auto j = modulo::ParseJsonOrDiscarded(e.data);
    if (j.is_discarded() || !j.is_object()) {
      return Fail(Error::Unavailable("openai sent a malformed stream event: " + e.data.substr(0, 200)));
    }
    if (auto it = j.find("error"); it != j.end() && it->is_object()) return Fail(StreamError(*it));
    if (std::string m = JsonStr(j, "model"); !m.empty()) generation.model = m;
    if (auto it = j.find("usage"); it != j.end() && it->is_object()) {
      ReadUsage(*it, generation.usage);
      usage_known = true;
    }
    if (auto it = j.find("choices"); it != j.end() && it->is_array() && !it->empty()) {
      const json& c = (*it)[0];
      if (!c.is_object()) return Fail(Error::Unavailable("openai sent a malformed choice in its stream"));
      if (auto d = c.find("delta"); d != c.end() && d->is_object()) *delta = JsonStr(*d, "content");
      if (std::string f = JsonStr(c, "finish_reason"); !f.empty()) generation.finish_reason = f;
    }
    return {};
  }
  bool finished() const override { return done_; }
  bool complete_at_clean_eof() const override { return done_ || !generation.finish_reason.empty(); }

 private:
  bool done_ = false;
};

}  // namespace

Result<std::unique_ptr<OpenAiChatProvider>> OpenAiChatProvider::Create(const ProviderConfig& config) {
  if (config.model.empty()) return Fail(Error::InvalidArgument("the openai provider needs a model"));
  ProviderConfig c = config;
  c.base_url = detail::TrimSlash(c.base_url.empty() ? "https://api.openai.com/v1" : c.base_url);
  return std::unique_ptr<OpenAiChatProvider>(new OpenAiChatProvider(std::move(c)));
}

Result<detail::HttpRequest> OpenAiChatProvider::BuildRequest(const std::vector<ChatMessage>& messages,
                                                             const GenerationParams& params, bool stream,
                                                             const CancelToken*) {
  json msgs = json::array();
  for (const auto& m : messages) msgs.push_back({{"role", m.role}, {"content", m.content}});
  json body = {{"model", config().model},
               {"messages", std::move(msgs)},
               {"max_tokens", params.max_new_tokens},
               {"temperature", params.temperature},
               {"top_p", params.top_p}};
  if (!params.stop.empty()) body["stop"] = params.stop;
  if (stream) {
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
  }
  detail::HttpRequest r;
  r.url = config().base_url + "/chat/completions";
  r.headers = {"Content-Type: application/json", stream ? "Accept: text/event-stream" : "Accept: application/json"};
  if (!config().api_key.empty()) r.headers.push_back("Authorization: Bearer " + config().api_key);
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

Result<Generation> OpenAiChatProvider::ParseResponse(const std::string& body) {
  auto j = modulo::ParseJsonOrDiscarded(body);
  if (j.is_discarded() || !j.is_object() || !j.contains("choices") || !j["choices"].is_array() ||
      j["choices"].empty() || !j["choices"][0].is_object()) {
    return Fail(Error::Unavailable("openai returned a malformed chat completion"));
  }
  const json& c = j["choices"][0];
  Generation g;
  if (auto m = c.find("message"); m != c.end() && m->is_object()) g.text = JsonStr(*m, "content");
  g.finish_reason = JsonStr(c, "finish_reason");
  g.model = JsonStr(j, "model");
  if (auto u = j.find("usage"); u != j.end() && u->is_object()) ReadUsage(*u, g.usage);
  return g;
}

std::unique_ptr<detail::StreamDecoder> OpenAiChatProvider::NewDecoder() { return std::make_unique<Decoder>(); }

std::string OpenAiChatProvider::ErrorMessage(const std::string& body) const {
  auto j = modulo::ParseJsonOrDiscarded(body);
  if (!j.is_discarded() && j.is_object()) {
    if (auto e = j.find("error"); e != j.end()) {
      if (e->is_object()) return Describe(*e);
      if (e->is_string()) return e->get<std::string>();
    }
    if (j.contains("message")) return Describe(j);
    if (auto d = j.find("detail"); d != j.end()) return d->is_string() ? d->get<std::string>() : d->dump();
  }
  return {};  // an unstructured body is logged by the caller, never returned
}

}  // namespace modulo::generate
