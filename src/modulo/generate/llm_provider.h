// LlmProvider: the one interface through which Modulo talks to a large language model.
//
// Implementations (each in its own file): OpenAiChatProvider (OpenAI-compatible Chat
// Completions: OpenAI, vLLM, Ollama, llama.cpp server), AnthropicMessagesProvider (Anthropic
// Messages API) and WatsonxTextProvider (IBM watsonx.ai text generation with IAM token exchange).
// ProviderRegistry (provider_registry.h) creates them from a ProviderConfig and shares one client
// per configuration.
//
// Both calls block (run them on the blocking pool). Errors are modulo::Error:
//   kUnavailable        connection failed, 5xx after the retries, malformed or truncated response/stream
//   kRateLimited        429 after the retries; details {"retry_after": <seconds>}
//   kDeadlineExceeded   the request (or, while streaming, the wait for the next bytes) timed out
//   kInvalidArgument    the provider refused the request (400/404/413/422), with its message
//   kUnauthenticated    401/403 from the provider (bad API key), IAM refusing the key
//   kCancelled          CancelToken cancelled or on_delta returned false; details
//                       {"usage": {"prompt_tokens", "completion_tokens"}} when counts were known
// A stream that ends before the provider's terminal event is kUnavailable, never a success with a
// partial answer. Nothing is retried once text has been delivered to on_delta.
//
// Thread-safety: every LlmProvider may be used from any number of threads at once; at most
// ProviderConfig::max_concurrency calls run at a time per client, the others wait (cancellably).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/net/egress.h"

namespace modulo::generate {

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

// RAG Modulo's llm_parameters. Each provider maps what its API supports and ignores the rest
// (see the header of each client).
struct GenerationParams {
  int max_new_tokens = 512;
  double temperature = 0.7;
  double top_p = 1.0;
  int top_k = 50;
  double repetition_penalty = 1.1;
  std::vector<std::string> stop;
};

struct TokenUsage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

struct Generation {
  std::string text;
  TokenUsage usage;
  // Normalised: "stop" (natural end or a stop sequence), "length" (max_new_tokens or the model's
  // context), otherwise the provider's own value (e.g. "content_filter", "refusal", "time_limit").
  std::string finish_reason;
  std::string model;  // as reported by the provider (falls back to the configured model)
};

// The usage a failed call reports in its error details ({"usage": {"prompt_tokens",
// "completion_tokens"}}, as kCancelled carries it), or nullopt when it reports none.
[[nodiscard]] std::optional<TokenUsage> UsageOf(const Error& e);

// A thread-safe, one-way cancellation flag. Cancel() may be called from any thread; calls that
// observe it return kCancelled promptly (within ~50 ms), including while they wait for a slot, a
// retry back-off or the first byte of a response.
class CancelToken {
 public:
  void Cancel() noexcept;
  [[nodiscard]] bool cancelled() const noexcept { return cancelled_.load(std::memory_order_acquire); }
  // Sleeps up to `d`; returns true (early) if the token is or becomes cancelled.
  bool WaitFor(std::chrono::milliseconds d) const;

 private:
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
};

// Called with each piece of text as it arrives (never empty). Return false to stop: the call then
// ends with kCancelled.
using StreamCallback = std::function<bool(std::string_view delta)>;

class LlmProvider {
 public:
  virtual ~LlmProvider() = default;

  // The provider id: "openai" | "anthropic" | "watsonx".
  [[nodiscard]] virtual const std::string& name() const = 0;
  // The configured model id.
  [[nodiscard]] virtual const std::string& model() const = 0;

  // One completion, whole.
  [[nodiscard]] virtual Result<Generation> Generate(const std::vector<ChatMessage>& messages,
                                                    const GenerationParams& params,
                                                    const CancelToken* cancel = nullptr) = 0;

  // The same, streamed: on_delta receives the text as it arrives; the returned Generation holds
  // the whole text (the concatenation of the deltas), usage and finish_reason.
  [[nodiscard]] virtual Result<Generation> Stream(const std::vector<ChatMessage>& messages,
                                                  const GenerationParams& params, const StreamCallback& on_delta,
                                                  const CancelToken* cancel = nullptr) = 0;
};

struct ProviderConfig {
  std::string type;      // "openai" | "anthropic" | "watsonx"
  std::string base_url;  // openai: ".../v1" (default https://api.openai.com/v1);
                         // anthropic: default https://api.anthropic.com; watsonx: required
                         // (e.g. https://us-south.ml.cloud.ibm.com)
  std::string api_key;   // optional for openai-compatible servers without auth
  std::string model;
  std::string project_id;  // watsonx
  std::string iam_url;     // watsonx; default https://iam.cloud.ibm.com ("/identity/token" appended)
  // Non-streaming: the whole request. Streaming: the longest wait for the next bytes (the first
  // included); a stream as a whole may last up to 10 × timeout. Connecting: at most min(timeout, 10 s).
  std::chrono::seconds timeout{60};
  int max_retries = 3;       // extra attempts on 429/5xx/529/connection failures (0 = none)
  int max_concurrency = 8;   // calls in flight per client; <= 0 = unlimited
  // First back-off delay; doubles per attempt (with jitter), capped at 20 s. Retry-After wins.
  std::chrono::milliseconds retry_base_delay{500};
  // Set for a user's own provider: its base_url and iam_url must pass this policy (null: the
  // server's configured provider, whose URLs are the administrator's).
  std::shared_ptr<const net::EgressPolicy> egress;
};

}  // namespace modulo::generate
