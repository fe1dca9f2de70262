// WatsonxTextProvider: IBM watsonx.ai text generation, with IBM Cloud IAM token exchange.
//
//   POST {iam_url}/identity/token   (form) grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=...
//        → {"access_token", "expires_in", "expiration"}; the token is cached until 60 s before its
//          expiration (a tenth of its lifetime for short-lived tokens), fetched by one caller while
//          the others wait, and dropped and fetched again once when watsonx.ai answers 401.
//   POST {base_url}/ml/v1/text/generation?version=2023-05-29          (whole answer)
//   POST {base_url}/ml/v1/text/generation_stream?version=2023-05-29   (SSE)
//   Authorization: Bearer <token>
//   {"input", "model_id", "project_id", "parameters": {"decoding_method", "max_new_tokens",
//    "temperature", "top_p", "top_k" (sampling only), "repetition_penalty", "stop_sequences"?}}
//
// Parameters: decoding_method is "greedy" when temperature <= 0 (then temperature, top_p and top_k
// are not sent), else "sample"; values are clamped to watsonx's ranges (temperature [0, 2],
// top_p (0, 1], top_k [1, 100], repetition_penalty [1, 2]). Every GenerationParams field is used.
//
// The chat messages become one prompt (RenderWatsonxPrompt), chosen by the model id:
//   granite-3* / granite-4*:  <|start_of_role|>{role}<|end_of_role|>{content}<|end_of_text|>\n ...
//                             <|start_of_role|>assistant<|end_of_role|>
//   llama-3*:                 <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>
//                             ... <|start_header_id|>assistant<|end_header_id|>\n\n
//   anything else (plain):    {system contents, joined by blank lines}\n\n
//                             User: {content}\n\nAssistant: {content}\n\n ... Assistant:
//
// Results: results[0].generated_text, generated_token_count, input_token_count, stop_reason;
// finish_reason: eos_token/stop_sequence → "stop", max_tokens/token_limit → "length", else as given.
// Streaming: SSE events whose data is {"model_id", "results": [{"generated_text" (the new piece),
// "generated_token_count" (running total), "input_token_count", "stop_reason"}]}; the stream is
// complete at the first result whose stop_reason is not "not_finished".
// Errors: {"errors": [{"code", "message"}], "trace", "status_code"}; IAM: {"errorCode", "errorMessage"}
// (a refused API key → kUnauthenticated).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>

#include "modulo/generate/http_provider.h"

namespace modulo::generate {

// The prompt the watsonx client sends for `messages` and `model_id` (see above).
[[nodiscard]] std::string RenderWatsonxPrompt(const std::vector<ChatMessage>& messages, const std::string& model_id);

class WatsonxTextProvider final : public detail::HttpLlmProvider {
 public:
  static constexpr const char* kApiVersion = "2023-05-29";

  // Needs base_url, api_key, project_id and model; iam_url defaults to https://iam.cloud.ibm.com.
  [[nodiscard]] static Result<std::unique_ptr<WatsonxTextProvider>> Create(const ProviderConfig& config);

 protected:
  Result<detail::HttpRequest> BuildRequest(const std::vector<ChatMessage>& messages, const GenerationParams& params,
                                           bool stream, const CancelToken* cancel) override;
  Result<Generation> ParseResponse(const std::string& body) override;
  std::unique_ptr<detail::StreamDecoder> NewDecoder() override;
  std::string ErrorMessage(const std::string& body) const override;
  bool RefreshCredentials() override;

 private:
  explicit WatsonxTextProvider(ProviderConfig config) : HttpLlmProvider("watsonx", std::move(config)) {}
  [[nodiscard]] Result<std::string> Token(const CancelToken* cancel);

  std::mutex token_mu_;
  std::string token_;
  std::chrono::steady_clock::time_point refresh_at_;
};

}  // namespace modulo::generate
