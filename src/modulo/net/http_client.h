// HttpClient: blocking HTTP(S) requests over libcurl for the clients of remote services (remote
// embedders, the Milvus vector store, later the LLM providers): timeouts, and retries with
// exponential backoff on 408, 429 and 5xx responses and on transport failures, honouring
// Retry-After.
//
// Connections are kept alive and reused: each thread keeps one curl handle (reset before every
// request, which keeps its connection cache), so a thread that talks to the same service again
// skips the TCP (and TLS) handshake. Handles are released when their thread ends.
//
// Retries resend the request. Callers whose request is not idempotent (an insert whose answer
// was lost may have been applied) pass RetryPolicy{.max_attempts = 1} and retry at a level where
// the whole operation is idempotent.
//
// Thread-safety: Get() and Post() may be called from any number of threads at once.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modulo/core/error.h"

namespace modulo::net {

struct HttpResponse {
  long status = 0;
  std::string body;
  std::string retry_after;  // the Retry-After header, if any
};

struct RetryPolicy {
  int max_attempts = 4;  // attempts in all, including the first (at least 1 is made)
  std::chrono::milliseconds base_delay{500};
  std::chrono::milliseconds max_delay{20000};
};

class HttpClient {
 public:
  // `timeout` bounds one attempt (connect + request + response); `connect_timeout` the TCP/TLS
  // connect alone (0: min(timeout, 10 s)).
  explicit HttpClient(std::chrono::milliseconds timeout, RetryPolicy retry = {},
                      std::chrono::milliseconds connect_timeout = std::chrono::milliseconds(0));

  // POSTs `body`; retries as described above. Returns the last response (any status) or an
  // Unavailable/DeadlineExceeded error when no response came.
  [[nodiscard]] Result<HttpResponse> Post(const std::string& url, const std::vector<std::string>& headers,
                                          const std::string& body) const;
  // GETs `url`, with the same retries and errors as Post.
  [[nodiscard]] Result<HttpResponse> Get(const std::string& url, const std::vector<std::string>& headers) const;

  // The delay before attempt `attempt` (1-based) after a failure, from Retry-After if given.
  [[nodiscard]] std::chrono::milliseconds Backoff(int attempt, const std::string& retry_after) const;

 private:
  [[nodiscard]] Result<HttpResponse> Send(const std::string& url, const std::vector<std::string>& headers,
                                          const std::string* body) const;
  [[nodiscard]] Result<HttpResponse> Once(const std::string& url, const std::vector<std::string>& headers,
                                          const std::string* body) const;
  std::chrono::milliseconds timeout_;
  std::chrono::milliseconds connect_timeout_;
  RetryPolicy retry_;
};

// Maps a non-2xx response to an Error with the service's message ({"error": {"message"}},
// {"errors": [{"message"}]}, {"errorMessage"}, {"detail"}, {"message"}, or the body's start).
[[nodiscard]] Error HttpError(const HttpResponse& r, const std::string& what);

// `s` with every byte outside [A-Za-z0-9-._~] percent-encoded, for query strings.
[[nodiscard]] std::string UrlEncode(std::string_view s);

// The value of header `name` (lower case, e.g. "retry-after") in one raw header line as curl's
// CURLOPT_HEADERFUNCTION receives it ("Retry-After: 3\r\n"), trimmed; nullopt for another header.
[[nodiscard]] std::optional<std::string> HeaderValue(std::string_view line, std::string_view name);

}  // namespace modulo::net
