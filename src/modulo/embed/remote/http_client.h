// HttpClient: blocking HTTPS requests (libcurl) for the remote embedders and, later, the LLM
// providers: timeouts, and retries with exponential backoff on 429 and 5xx responses and on
// transport failures, honouring Retry-After.
//
// Thread-safety: Post() may be called from any number of threads (one curl handle per call).
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "modulo/core/error.h"

namespace modulo::embed::remote {

struct HttpResponse {
  long status = 0;
  std::string body;
  std::string retry_after;  // the Retry-After header, if any
};

struct RetryPolicy {
  int max_attempts = 4;
  std::chrono::milliseconds base_delay{500};
  std::chrono::milliseconds max_delay{20000};
};

class HttpClient {
 public:
  explicit HttpClient(std::chrono::milliseconds timeout, RetryPolicy retry = {});

  // POSTs `body`; retries as described above. Returns the last response (any status) or an
  // Unavailable/DeadlineExceeded error when no response came.
  [[nodiscard]] Result<HttpResponse> Post(const std::string& url, const std::vector<std::string>& headers,
                                          const std::string& body) const;

  // The delay before attempt `attempt` (1-based) after a failure, from Retry-After if given.
  [[nodiscard]] std::chrono::milliseconds Backoff(int attempt, const std::string& retry_after) const;

 private:
  [[nodiscard]] Result<HttpResponse> Once(const std::string& url, const std::vector<std::string>& headers,
                                          const std::string& body) const;
  std::chrono::milliseconds timeout_;
  RetryPolicy retry_;
};

// Maps a non-2xx response to an Error with the provider's message.
[[nodiscard]] Error HttpError(const HttpResponse& r, const std::string& what);

}  // namespace modulo::embed::remote
