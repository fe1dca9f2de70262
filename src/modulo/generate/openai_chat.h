// OpenAiChatProvider: OpenAI-compatible Chat Completions (OpenAI, vLLM, Ollama, llama.cpp server).
//
//   POST {base_url}/chat/completions   (base_url includes the version, e.g. https://api.openai.com/v1,
//                                       http://localhost:8000/v1, http://localhost:11434/v1)
//   Authorization: Bearer <api_key>    (omitted when api_key is empty: local servers)
//   {"model", "messages": [{"role", "content"}], "max_tokens", "temperature", "top_p", "stop"?,
//    "stream": true, "stream_options": {"include_usage": true}}   (the last two only when streaming)
//
// Parameters: max_new_tokens → max_tokens (accepted by every compatible server; OpenAI's reasoning
// models want max_completion_tokens and will refuse), temperature, top_p, stop (omitted when empty;
// OpenAI accepts at most 4). top_k and repetition_penalty are not part of the OpenAI API and are
// not sent (OpenAI refuses unknown fields).
//
// Streaming: SSE "data: {chat.completion.chunk}" lines; text in choices[0].delta.content,
// finish_reason in choices[0].finish_reason, usage in the final chunk (choices: []) when the server
// supports include_usage, then "data: [DONE]". A stream counts as complete at "[DONE]", or at a
// clean end of the connection after a chunk with a finish_reason (servers without "[DONE]").
// A chunk {"error": {...}} mid-stream ends the call with that error.
// Errors: {"error": {"message", "type", "code"}} (vLLM's older top-level {"message", "type",
// "code"} too).
#pragma once

#include <memory>

#include "modulo/generate/http_provider.h"

namespace modulo::generate {

class OpenAiChatProvider final : public detail::HttpLlmProvider {
 public:
  // Needs config.model; base_url defaults to https://api.openai.com/v1.
  [[nodiscard]] static Result<std::unique_ptr<OpenAiChatProvider>> Create(const ProviderConfig& config);

 protected:
  Result<detail::HttpRequest> BuildRequest(const std::vector<ChatMessage>& messages, const GenerationParams& params,
                                           bool stream, const CancelToken* cancel) override;
  Result<Generation> ParseResponse(const std::string& body) override;
  std::unique_ptr<detail::StreamDecoder> NewDecoder() override;
  std::string ErrorMessage(const std::string& body) const override;

 private:
  explicit OpenAiChatProvider(ProviderConfig config) : HttpLlmProvider("openai", std::move(config)) {}
};

}  // namespace modulo::generate
