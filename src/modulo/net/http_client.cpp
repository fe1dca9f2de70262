#include "modulo/net/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "modulo/core/json.h"

namespace modulo::net {
namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

constexpr std::size_t kMaxResponseBytes = 256u * 1024 * 1024;

size_t WriteBody(char* data, size_t size, size_t n, void* user) {
  auto* out = static_cast<std::string*>(user);
  if (out->size() + size * n > kMaxResponseBytes) return 0;  // refuse absurd responses
  out->append(data, size * n);
  return size * n;
}

size_t ReadHeader(char* data, size_t size, size_t n, void* user) {
  if (auto v = HeaderValue(std::string_view(data, size * n), "retry-after")) *static_cast<std::string*>(user) = *v;
  return size * n;
}

bool Retryable(long status) { return status == 429 || status == 408 || (status >= 500 && status <= 599); }

struct CurlDeleter {
  void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
};

// This thread's handle: reused (after curl_easy_reset, which keeps live connections) so that
// keep-alive connections survive from one request to the next.
CURL* ThreadHandle() {
  thread_local std::unique_ptr<CURL, CurlDeleter> handle;
  if (!handle) handle.reset(curl_easy_init());
  else curl_easy_reset(handle.get());
  return handle.get();
}

}  // namespace

HttpClient::HttpClient(std::chrono::milliseconds timeout, RetryPolicy retry, std::chrono::milliseconds connect_timeout)
    : timeout_(timeout),
      connect_timeout_(connect_timeout.count() > 0 ? connect_timeout
                                                   : std::min<std::chrono::milliseconds>(timeout, std::chrono::seconds(10))),
      retry_(retry) {
  GlobalInit();
}

std::chrono::milliseconds HttpClient::Backoff(int attempt, const std::string& retry_after) const {
  if (!retry_after.empty() && std::all_of(retry_after.begin(), retry_after.end(), ::isdigit) &&
      retry_after.size() < 7) {
    return std::min<std::chrono::milliseconds>(std::chrono::seconds(std::stoi(retry_after)), retry_.max_delay);
  }
  const int shift = std::clamp(attempt - 1, 0, 16);
  return std::min<std::chrono::milliseconds>(retry_.base_delay * (1 << shift), retry_.max_delay);
}

Result<HttpResponse> HttpClient::Once(const std::string& url, const std::vector<std::string>& headers,
                                      const std::string* body) const {
  CURL* curl = ThreadHandle();
  if (curl == nullptr) return Fail(Error::Internal("cannot create an HTTP client handle"));
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_list(list, &curl_slist_free_all);
  HttpResponse r;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  if (body != nullptr) {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  } else {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list.get());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect_timeout_.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &ReadHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &r.retry_after);
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
  const CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return Fail(Error::DeadlineExceeded("request to " + url + " timed out after " + std::to_string(timeout_.count()) +
                                        " ms"));
  }
  if (rc != CURLE_OK) return Fail(Error::Unavailable("request to " + url + " failed: " + curl_easy_strerror(rc)));
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  return r;
}

Result<HttpResponse> HttpClient::Send(const std::string& url, const std::vector<std::string>& headers,
                                      const std::string* body) const {
  Result<HttpResponse> last = Fail(Error::Unavailable("no attempt made"));
  const int attempts = std::max(1, retry_.max_attempts);
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    last = Once(url, headers, body);
    const bool retry = !last || Retryable(last->status);
    if (!retry || attempt == attempts) break;
    std::this_thread::sleep_for(Backoff(attempt, last ? last->retry_after : std::string()));
  }
  return last;
}

Result<HttpResponse> HttpClient::Post(const std::string& url, const std::vector<std::string>& headers,
                                      const std::string& body) const {
  return Send(url, headers, &body);
}

Result<HttpResponse> HttpClient::Get(const std::string& url, const std::vector<std::string>& headers) const {
  return Send(url, headers, nullptr);
}

Error HttpError(const HttpResponse& r, const std::string& what) {
  // OpenAI: {"error": {"message"}}; watsonx: {"errors": [{"message"}]}; IAM: {"errorMessage"};
  // Milvus and others: {"message"}.
  std::string message;
  auto j = modulo::ParseJsonOrDiscarded(r.body);
  if (!j.is_discarded() && j.is_object()) {
    if (j.contains("error") && j["error"].is_object()) message = j["error"].value("message", "");
    else if (j.contains("error") && j["error"].is_string()) message = j["error"].get<std::string>();
    else if (j.contains("errors") && j["errors"].is_array() && !j["errors"].empty() && j["errors"][0].is_object())
      message = j["errors"][0].value("message", "");
    else if (j.contains("errorMessage") && j["errorMessage"].is_string()) message = j.value("errorMessage", "");
    else if (j.contains("detail") && j["detail"].is_string()) message = j["detail"].get<std::string>();
    else if (j.contains("message") && j["message"].is_string()) message = j["message"].get<std::string>();
  }
  if (message.empty()) message = r.body.substr(0, 300);
  std::string text = what + " answered HTTP " + std::to_string(r.status) + ": " + message;
  if (r.status == 401) return Error::Unauthenticated(std::move(text));
  if (r.status == 403) return Error::PermissionDenied(std::move(text));
  if (r.status == 404) return Error::NotFound(std::move(text));
  if (r.status == 429) return Error::RateLimited(std::move(text));
  if (r.status == 400 || r.status == 413 || r.status == 422) return Error::InvalidArgument(std::move(text));
  return Error::Unavailable(std::move(text));
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::optional<std::string> HeaderValue(std::string_view line, std::string_view name) {
  if (line.size() <= name.size() || line[name.size()] != ':') return std::nullopt;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return std::nullopt;
  }
  std::string v(line.substr(name.size() + 1));
  v.erase(0, v.find_first_not_of(" \t"));
  v.erase(v.find_last_not_of(" \t\r\n") + 1);
  return v;
}

}  // namespace modulo::net
