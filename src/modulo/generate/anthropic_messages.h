// AnthropicMessagesProvider: the Anthropic Messages API.
//
//   POST {base_url}/v1/messages        (base_url default https://api.anthropic.com)
//   x-api-key: <api_key>, anthropic-version: 2023-06-01, content-type: application/json
//   {"model", "max_tokens", "messages": [{"role": "user"|"assistant", "content"}], "system"?,
//    "temperature", "top_p"?, "stop_sequences"?, "stream"?}
//
// Messages: "system" messages are not messages in this API: their contents, joined by a blank
// line, become the top-level "system" field. The others are passed in order (the API requires
// the first to be "user").
// Parameters: max_new_tokens → max_tokens (required), temperature (clamped to Anthropic's
// [0, 1]), top_p only when < 1 (recent Claude models refuse temperature and top_p together; such
// a refusal comes back as kInvalidArgument), stop → stop_sequences. top_k (whose RAG Modulo
// default 50 is a watsonx default) and repetition_penalty are not sent.
// Usage: prompt_tokens = input_tokens + cache_creation_input_tokens + cache_read_input_tokens;
// completion_tokens = output_tokens. finish_reason: end_turn/stop_sequence → "stop",
// max_tokens → "length", others as given (e.g. "refusal").
//
// Streaming: named SSE events message_start (model, usage.input_tokens), content_block_start,
// content_block_delta (delta.type "text_delta" → text; other delta types ignored),
// content_block_stop, message_delta (delta.stop_reason, usage.output_tokens, cumulative),
// message_stop (terminal), ping, error ({"type":"error","error":{"type","message"}}: e.g.
// overloaded_error → kUnavailable, retried only if no text was delivered). Unknown events are
// ignored, as Anthropic's versioning policy asks.
// Errors: {"type":"error","error":{"type","message"}}; 529 (overloaded) is retried like a 5xx.
#pragma once

#include <memory>

#include "modulo/generate/http_provider.h"

namespace modulo::generate {

class AnthropicMessagesProvider final : public detail::HttpLlmProvider {
 public:
  static constexpr const char* kApiVersion = "2023-06-01";

  // Needs config.model and config.api_key.
  [[nodiscard]] static Result<std::unique_ptr<AnthropicMessagesProvider>> Create(const ProviderConfig& config);

 protected:
  Result<detail::HttpRequest> BuildRequest(const std::vector<ChatMessage>& messages, const GenerationParams& params,
                                           bool stream, const CancelToken* cancel) override;
  Result<Generation> ParseResponse(const std::string& body) override;
  std::unique_ptr<detail::StreamDecoder> NewDecoder() override;
  std::string ErrorMessage(const std::string& body) const override;

 private:
  explicit AnthropicMessagesProvider(ProviderConfig config) : HttpLlmProvider("anthropic", std::move(config)) {}
};

}  // namespace modulo::generate
