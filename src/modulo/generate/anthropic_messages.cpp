#include "modulo/generate/anthropic_messages.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "modulo/core/json.h"
#include "modulo/generate/http_provider.h"

namespace modulo::generate {
namespace {

using json = nlohmann::json;

using detail::JsonInt;
using detail::JsonStr;

std::string FinishReason(const std::string& stop_reason) {
  if (stop_reason == "end_turn" || stop_reason == "stop_sequence") return "stop";
  if (stop_reason == "max_tokens" || stop_reason == "model_context_window_exceeded") return "length";
  return stop_reason;
}

int PromptTokens(const json& u) {
  return JsonInt(u, "input_tokens") + JsonInt(u, "cache_creation_input_tokens") + JsonInt(u, "cache_read_input_tokens");
}

// {"type": "...", "message": "..."} from an error event.
Error EventError(const json& e) {
  const std::string type = JsonStr(e, "type");
  const std::string message = "anthropic stream error: " + JsonStr(e, "message") + " (" + type + ")";
  if (type == "invalid_request_error" || type == "not_found_error" || type == "request_too_large") {
    return Error::InvalidArgument(message);
  }
  if (type == "authentication_error" || type == "permission_error") return Error::Unauthenticated(message);
  if (type == "rate_limit_error") return Error::RateLimited(message);
  return Error::Unavailable(message);  // overloaded_error, api_error, unknown
}

class Decoder final : public detail::StreamDecoder {
 public:
  Status OnEvent(const detail::SseEvent& e, std::string* delta) override {
    auto j = modulo::ParseJsonOrDiscarded(e.data);
    if (j.is_discarded() || !j.is_object()) {
      return Fail(Error::Unavailable("anthropic sent a malformed stream event (" + e.event +
                                     "): " + e.data.substr(0, 200)));
    }
    std::string type = JsonStr(j, "type");
    if (type.empty()) type = e.event;
    if (type == "message_start") {
      if (auto m = j.find("message"); m != j.end() && m->is_object()) {
        generation.model = JsonStr(*m, "model");
        if (auto u = m->find("usage"); u != m->end() && u->is_object()) {
          generation.usage.prompt_tokens = PromptTokens(*u);
          generation.usage.completion_tokens = JsonInt(*u, "output_tokens");
          usage_known = true;
        }
      }
    } else if (type == "content_block_delta") {
      if (auto d = j.find("delta"); d != j.end() && d->is_object() && JsonStr(*d, "type") == "text_delta") {
        *delta = JsonStr(*d, "text");
      }
    } else if (type == "message_delta") {
      if (auto d = j.find("delta"); d != j.end() && d->is_object()) {
        if (std::string r = JsonStr(*d, "stop_reason"); !r.empty()) generation.finish_reason = FinishReason(r);
      }
      if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
        if (u->contains("output_tokens")) generation.usage.completion_tokens = JsonInt(*u, "output_tokens");
        if (u->contains("input_tokens")) generation.usage.prompt_tokens = PromptTokens(*u);
        usage_known = true;
      }
    } else if (type == "message_stop") {
      done_ = true;
    } else if (type == "error") {
      auto err = j.find("error");
      return Fail(EventError(err != j.end() && err->is_object() ? *err : j));
    }
    // ping, content_block_start, content_block_stop and future events: nothing to do.
    return {};
  }
  bool finished() const override { return done_; }

 private:
  bool done_ = false;
};

}  // namespace

Result<std::unique_ptr<AnthropicMessagesProvider>> AnthropicMessagesProvider::Create(const ProviderConfig& config) {
  if (config.model.empty()) return Fail(Error::InvalidArgument("the anthropic provider needs a model"));
  if (config.api_key.empty()) return Fail(Error::InvalidArgument("the anthropic provider needs an API key"));
  ProviderConfig c = config;
  c.base_url = detail::TrimSlash(c.base_url.empty() ? "https://api.anthropic.com" : c.base_url);
  return std::unique_ptr<AnthropicMessagesProvider>(new AnthropicMessagesProvider(std::move(c)));
}

Result<detail::HttpRequest> AnthropicMessagesProvider::BuildRequest(const std::vector<ChatMessage>& messages,
                                                                    const GenerationParams& params, bool stream,
                                                                    const CancelToken*) {
  std::string system;
  json msgs = json::array();
  for (const auto& m : messages) {
    if (m.role == "system") {
      if (!system.empty()) system += "\n\n";
      system += m.content;
    } else {
      msgs.push_back({{"role", m.role}, {"content", m.content}});
    }
  }
  json body = {{"model", config().model},
               {"max_tokens", std::max(1, params.max_new_tokens)},
               {"messages", std::move(msgs)},
               {"temperature", std::clamp(params.temperature, 0.0, 1.0)}};
  if (!system.empty()) body["system"] = system;
  if (params.top_p > 0.0 && params.top_p < 1.0) body["top_p"] = params.top_p;
  if (!params.stop.empty()) body["stop_sequences"] = params.stop;
  if (stream) body["stream"] = true;
  detail::HttpRequest r;
  r.url = config().base_url + "/v1/messages";
  r.headers = {"content-type: application/json", "x-api-key: " + config().api_key,
               std::string("anthropic-version: ") + kApiVersion,
               stream ? "accept: text/event-stream" : "accept: application/json"};
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

Result<Generation> AnthropicMessagesProvider::ParseResponse(const std::string& body) {
  auto j = modulo::ParseJsonOrDiscarded(body);
  if (j.is_discarded() || !j.is_object() || !j.contains("content") || !j["content"].is_array()) {
    return Fail(Error::Unavailable("anthropic returned a malformed message"));
  }
  Generation g;
  for (const auto& block : j["content"]) {
    if (block.is_object() && JsonStr(block, "type") == "text") g.text += JsonStr(block, "text");
  }
  g.finish_reason = FinishReason(JsonStr(j, "stop_reason"));
  g.model = JsonStr(j, "model");
  if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
    g.usage.prompt_tokens = PromptTokens(*u);
    g.usage.completion_tokens = JsonInt(*u, "output_tokens");
  }
  return g;
}

std::unique_ptr<detail::StreamDecoder> AnthropicMessagesProvider::NewDecoder() { return std::make_unique<Decoder>(); }

std::string AnthropicMessagesProvider::ErrorMessage(const std::string& body) const {
  auto j = modulo::ParseJsonOrDiscarded(body);
  if (!j.is_discarded() && j.is_object()) {
    if (auto e = j.find("error"); e != j.end() && e->is_object()) {
      std::string m = JsonStr(*e, "message");
      if (std::string t = JsonStr(*e, "type"); !t.empty()) m += " (" + t + ")";
      return m;
    }
  }
  return {};  // an unstructured body is logged by the caller, never returned
}

}  // namespace modulo::generate
