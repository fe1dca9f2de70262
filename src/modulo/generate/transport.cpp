#include "modulo/generate/transport.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <random>
#include <thread>

namespace modulo::generate {

namespace detail {
namespace {

constexpr std::size_t kMaxBufferedBody = 32u * 1024 * 1024;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct TransferState {
  CURL* easy = nullptr;
  HttpReply* reply = nullptr;
  const BodySink* sink = nullptr;
  const CancelToken* cancel = nullptr;
  std::chrono::steady_clock::time_point last_activity;
  bool cancelled = false;
  bool got_body = false;
};

std::string HeaderValue(std::string_view line, std::string_view lower_name) {
  if (line.size() <= lower_name.size()) return {};
  for (std::size_t i = 0; i < lower_name.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != lower_name[i]) return {};
  }
  std::string v(line.substr(lower_name.size()));
  v.erase(0, v.find_first_not_of(" \t"));
  const auto end = v.find_last_not_of(" \t\r\n");
  v.erase(end == std::string::npos ? 0 : end + 1);
  return v;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* st = static_cast<TransferState*>(user);
  st->last_activity = std::chrono::steady_clock::now();
  std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {  // a new response (e.g. after a redirect or 100 Continue)
    st->reply->retry_after.clear();
    st->reply->content_type.clear();
  }
  if (auto v = HeaderValue(line, "retry-after:"); !v.empty()) st->reply->retry_after = v;
  if (auto v = HeaderValue(line, "content-type:"); !v.empty()) st->reply->content_type = v;
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* st = static_cast<TransferState*>(user);
  st->last_activity = std::chrono::steady_clock::now();
  st->got_body = true;
  if (st->cancel && st->cancel->cancelled()) {
    st->cancelled = true;
    return 0;
  }
  if (st->reply->status == 0) curl_easy_getinfo(st->easy, CURLINFO_RESPONSE_CODE, &st->reply->status);
  const std::string_view piece(data, size * n);
  const bool ok_status = st->reply->status >= 200 && st->reply->status < 300;
  if (ok_status && st->sink && *st->sink) {
    if (!(*st->sink)(piece)) {
      st->reply->sink_stopped = true;
      return 0;
    }
    return size * n;
  }
  if (st->reply->body.size() + piece.size() > kMaxBufferedBody) return 0;
  st->reply->body.append(piece);
  return size * n;
}

}  // namespace

Result<HttpReply> Perform(const HttpRequest& request, const TransferLimits& limits, const BodySink* sink,
                          const CancelToken* cancel) {
  GlobalInit();
  if (cancel && cancel->cancelled()) return Fail(Error::Cancelled("the request was cancelled"));
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy(curl_easy_init(), &curl_easy_cleanup);
  std::unique_ptr<CURLM, decltype(&curl_multi_cleanup)> multi(curl_multi_init(), &curl_multi_cleanup);
  if (!easy || !multi) return Fail(Error::Internal("cannot create an HTTP client handle"));
  for (const auto& h : request.headers) {
    if (std::any_of(h.begin(), h.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
      return Fail(Error::InvalidArgument("a request header holds a control character; nothing was sent"));
    }
  }
  curl_slist* list = nullptr;
  for (const auto& h : request.headers) list = curl_slist_append(list, h.c_str());
  list = curl_slist_append(list, "Expect:");  // no 100-continue round trip for large prompts
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_list(list, &curl_slist_free_all);

  HttpReply reply;
  TransferState st;
  st.easy = easy.get();
  st.reply = &reply;
  st.sink = sink;
  st.cancel = cancel;
  st.last_activity = std::chrono::steady_clock::now();

  curl_slist* pinned = nullptr;
  if (request.egress != nullptr) {
    auto target = request.egress->Check(request.url);
    if (!target) return Fail(std::move(target.error()));
    pinned = curl_slist_append(nullptr, target->CurlResolve().c_str());
  }
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> pinned_list(pinned, &curl_slist_free_all);

  CURL* c = easy.get();
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (pinned != nullptr) {
    // Connect to the checked address only, and never through a proxy (which would resolve the
    // host again, on its own side of the network).
    curl_easy_setopt(c, CURLOPT_RESOLVE, pinned);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
  }
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, header_list.get());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(limits.total_timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(limits.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &st);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &st);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  if (!sink) curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // no compression on event streams

  CURLM* m = multi.get();
  curl_multi_add_handle(m, c);
  struct Detach {
    CURLM* m;
    CURL* c;
    ~Detach() { curl_multi_remove_handle(m, c); }
  } detach{m, c};

  bool idle_expired = false;
  int running = 1;
  while (true) {
    if (curl_multi_perform(m, &running) != CURLM_OK) {
      return Fail(Error::Internal("libcurl failed while driving the request to " + request.url));
    }
    if (running == 0) break;
    if (cancel && cancel->cancelled()) {
      st.cancelled = true;
      break;
    }
    if (limits.idle_timeout.count() > 0 &&
        std::chrono::steady_clock::now() - st.last_activity > limits.idle_timeout) {
      idle_expired = true;
      break;
    }
    curl_multi_poll(m, nullptr, 0, 50, nullptr);
  }
  if (st.cancelled) return Fail(Error::Cancelled("the request to " + request.url + " was cancelled"));
  if (idle_expired) {
    return Fail(Error::DeadlineExceeded("no data from " + request.url + " for " +
                                        std::to_string(limits.idle_timeout.count()) + " ms"));
  }
  CURLcode rc = CURLE_OK;
  int queued = 0;
  while (CURLMsg* msg = curl_multi_info_read(m, &queued)) {
    if (msg->msg == CURLMSG_DONE) rc = msg->data.result;
  }
  if (reply.status == 0) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply.status);
  if (reply.sink_stopped) return reply;
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return Fail(Error::DeadlineExceeded("request to " + request.url + " timed out (limit " +
                                        std::to_string(limits.total_timeout.count()) + " ms)"));
  }
  if (rc != CURLE_OK) {
    if (reply.status > 0 && (st.got_body || rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR ||
                             rc == CURLE_GOT_NOTHING)) {
      reply.truncated = true;  // the response started, then the connection broke
      return reply;
    }
    return Fail(Error::Unavailable("request to " + request.url + " failed: " + curl_easy_strerror(rc)));
  }
  return reply;
}

bool SseParser::Feed(std::string_view bytes, const std::function<bool(const SseEvent&)>& on_event) {
  buffer_.append(bytes);
  std::size_t start = 0;
  while (true) {
    const std::size_t nl = buffer_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view line(buffer_.data() + start, nl - start);
    start = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {  // dispatch
      if (has_data_) {
        if (current_.event.empty()) current_.event = "message";
        SseEvent e = std::move(current_);
        current_ = {};
        has_data_ = false;
        if (!on_event(e)) {
          buffer_.erase(0, start);
          return false;
        }
      } else {
        current_.event.clear();
      }
      continue;
    }
    if (line.front() == ':') continue;  // comment (keep-alive)
    const std::size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field == "data") {
      if (has_data_) current_.data += '\n';
      current_.data.append(value);
      has_data_ = true;
    } else if (field == "event") {
      current_.event.assign(value);
    } else if (field == "id") {
      current_.id.assign(value);
    }  // "retry" and unknown fields are ignored
  }
  buffer_.erase(0, start);
  return true;
}

long long RetryAfterSeconds(const std::string& retry_after) {
  if (retry_after.empty() || retry_after.size() > 9) return -1;
  if (!std::all_of(retry_after.begin(), retry_after.end(), [](unsigned char ch) { return std::isdigit(ch); })) {
    return -1;
  }
  return std::stoll(retry_after);
}

std::chrono::milliseconds Backoff(int attempt, std::chrono::milliseconds base, const std::string& retry_after) {
  if (const long long s = RetryAfterSeconds(retry_after); s >= 0) return std::chrono::seconds(s);
  constexpr std::chrono::milliseconds kMax{20000};
  const int shift = std::clamp(attempt - 1, 0, 16);
  const auto full = std::min<std::chrono::milliseconds>(base * (1LL << shift), kMax);
  thread_local std::minstd_rand rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return std::chrono::milliseconds(static_cast<long long>(static_cast<double>(full.count()) * jitter(rng)));
}

Status Semaphore::Acquire(const CancelToken* cancel) {
  if (unlimited_) return {};
  std::unique_lock lock(mu_);
  while (count_ <= 0) {
    if (cancel && cancel->cancelled()) return Fail(Error::Cancelled("cancelled while waiting for a free LLM slot"));
    cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
  --count_;
  return {};
}

void Semaphore::Release() {
  if (unlimited_) return;
  {
    std::lock_guard lock(mu_);
    ++count_;
  }
  cv_.notify_one();
}

std::string TrimSlash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

}  // namespace detail
}  // namespace modulo::generate
