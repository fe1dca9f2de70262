// Internals shared by the LLM clients: one streaming HTTP POST over libcurl (multi interface,
// polled every 50 ms so cancellation and idle timeouts act promptly), an incremental
// Server-Sent Events parser, back-off, and a cancellable counting semaphore.
//
// Thread-safety: Perform() may be called from any number of threads (one curl handle per call);
// SseParser is single-threaded; Semaphore is thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/generate/llm_provider.h"
#include "modulo/net/egress.h"

namespace modulo::generate::detail {

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  // A user-aimed request: the URL's host must pass this policy, and the connection goes to the
  // address it checked. Null: the administrator's own URL, not checked.
  const net::EgressPolicy* egress = nullptr;
};

struct HttpReply {
  long status = 0;
  std::string body;          // non-2xx bodies; 2xx bodies when no sink was given
  std::string retry_after;   // the Retry-After header, if any
  std::string content_type;
  bool sink_stopped = false;  // the sink returned false (the transfer was aborted there)
  bool truncated = false;     // the connection broke after the response started (partial body)
};

struct TransferLimits {
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds total_timeout{60000};
  std::chrono::milliseconds idle_timeout{0};  // longest gap between received bytes; 0 = none
};

// Receives a 2xx body piece by piece; return false to abort the transfer.
using BodySink = std::function<bool(std::string_view)>;

// One POST. With a sink, a 2xx body goes to the sink as it arrives (not into reply.body).
// Redirects are never followed; only http and https are spoken. A header holding a control
// character (CR, LF, NUL...) is refused before anything is sent.
// Errors: kCancelled (token), kDeadlineExceeded (total/idle/connect timeout), kUnavailable
// (no response: connection refused, reset before the headers, DNS, TLS), kPermissionDenied (the
// egress policy refused the host), kInvalidArgument (a header with a control character),
// kInternal (curl setup).
[[nodiscard]] Result<HttpReply> Perform(const HttpRequest& request, const TransferLimits& limits,
                                        const BodySink* sink, const CancelToken* cancel);

struct SseEvent {
  std::string event;  // "message" when the stream gave none
  std::string data;   // data lines joined with '\n'
  std::string id;
};

// Incremental text/event-stream parser (WHATWG rules: "field: value" lines, ':' comments, data
// lines joined, an empty line dispatches; CRLF or LF line ends). An event not terminated by an
// empty line when the stream ends is dropped, as the spec says.
class SseParser {
 public:
  // Feeds bytes; calls on_event for each complete event. Stops early (returns false) when
  // on_event returns false.
  bool Feed(std::string_view bytes, const std::function<bool(const SseEvent&)>& on_event);

 private:
  std::string buffer_;
  SseEvent current_;
  bool has_data_ = false;
};

// The delay before retry `attempt` (1-based): base × 2^(attempt-1), capped at 20 s, times a
// random factor in [0.5, 1]; Retry-After (integer seconds) wins when given.
[[nodiscard]] std::chrono::milliseconds Backoff(int attempt, std::chrono::milliseconds base,
                                                const std::string& retry_after);
// Retry-After as whole seconds, or -1 when absent or not an integer.
[[nodiscard]] long long RetryAfterSeconds(const std::string& retry_after);

// A counting semaphore whose waiters give up when their CancelToken is cancelled.
class Semaphore {
 public:
  explicit Semaphore(int count) : count_(count), unlimited_(count <= 0) {}
  [[nodiscard]] Status Acquire(const CancelToken* cancel);
  void Release();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_;
  bool unlimited_;
};

// "/"-trimmed base URL.
[[nodiscard]] std::string TrimSlash(std::string url);

}  // namespace modulo::generate::detail
