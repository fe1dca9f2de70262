// HttpLlmProvider: what the three HTTP clients share. The base class owns the per-client
// concurrency limit, the retry loop (exponential back-off with jitter on 429/408/5xx/529 and
// connection failures, Retry-After honoured, never once text has been delivered), the timeouts,
// SSE parsing, cancellation and the checks that a stream really ended; each client supplies the
// request, the response parser, a stream decoder and its error-body parser.
//
// Thread-safety: as LlmProvider.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "modulo/generate/llm_provider.h"
#include "modulo/generate/transport.h"

namespace modulo::generate::detail {

// Lenient field readers for provider responses: a missing or mistyped field reads as empty / 0.
[[nodiscard]] inline std::string JsonStr(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}
[[nodiscard]] inline int JsonInt(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int>() : 0;
}

// Turns a provider's stream events into text deltas, usage and the finish reason.
class StreamDecoder {
 public:
  virtual ~StreamDecoder() = default;
  // One event; appends text (if any) to *delta. An error event or malformed data → the error.
  [[nodiscard]] virtual Status OnEvent(const SseEvent& event, std::string* delta) = 0;
  // The provider's terminal event was seen.
  [[nodiscard]] virtual bool finished() const = 0;
  // The stream may also count as complete when the connection closed cleanly at this point
  // (OpenAI-compatible servers that send a finish_reason but no "[DONE]").
  [[nodiscard]] virtual bool complete_at_clean_eof() const { return finished(); }

  Generation generation;     // usage, finish_reason, model so far (the text is kept by the caller)
  bool usage_known = false;  // some usage figure was reported
};

class HttpLlmProvider : public LlmProvider {
 public:
  HttpLlmProvider(std::string name, ProviderConfig config);

  [[nodiscard]] const std::string& name() const override { return name_; }
  [[nodiscard]] const std::string& model() const override { return config_.model; }
  [[nodiscard]] const ProviderConfig& config() const { return config_; }

  [[nodiscard]] Result<Generation> Generate(const std::vector<ChatMessage>& messages, const GenerationParams& params,
                                            const CancelToken* cancel = nullptr) override;
  [[nodiscard]] Result<Generation> Stream(const std::vector<ChatMessage>& messages, const GenerationParams& params,
                                          const StreamCallback& on_delta, const CancelToken* cancel = nullptr) override;

 protected:
  // The request of one attempt (called again for each retry).
  [[nodiscard]] virtual Result<HttpRequest> BuildRequest(const std::vector<ChatMessage>& messages,
                                                         const GenerationParams& params, bool stream,
                                                         const CancelToken* cancel) = 0;
  // A 2xx non-streaming body → the Generation (malformed → kUnavailable).
  [[nodiscard]] virtual Result<Generation> ParseResponse(const std::string& body) = 0;
  [[nodiscard]] virtual std::unique_ptr<StreamDecoder> NewDecoder() = 0;
  // The provider's message from a non-2xx error body ("" when none).
  [[nodiscard]] virtual std::string ErrorMessage(const std::string& body) const = 0;
  // After a 401: forget cached credentials; true = try once more at once (once per call).
  virtual bool RefreshCredentials() { return false; }

  // Limits for one request of this client.
  [[nodiscard]] TransferLimits Limits(bool stream) const;

 private:
  struct Attempt {
    Result<Generation> result = Fail(Error::Internal("no attempt"));
    bool retryable = false;
    bool delivered = false;  // text reached on_delta
    long status = 0;
    std::string retry_after;
  };
  [[nodiscard]] Result<Generation> Run(const std::vector<ChatMessage>& messages, const GenerationParams& params,
                                       const StreamCallback* on_delta, const CancelToken* cancel);
  [[nodiscard]] Attempt Once(const std::vector<ChatMessage>& messages, const GenerationParams& params,
                             const StreamCallback* on_delta, const CancelToken* cancel);

  std::string name_;
  ProviderConfig config_;
  Semaphore slots_;
};

// An HTTP status with the provider's message → the Error (the table in llm_provider.h).
[[nodiscard]] Error StatusError(long status, const std::string& provider, const std::string& message);
// Whether a status is worth another attempt: 408, 429, 5xx (529 included).
[[nodiscard]] bool RetryableStatus(long status);

}  // namespace modulo::generate::detail
