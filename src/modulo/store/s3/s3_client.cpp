#include "modulo/store/s3/s3_client.h"

#include "modulo/net/http_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include "modulo/core/log.h"
#include "modulo/metrics/registry.h"

namespace modulo::store::s3 {

struct S3Client::Metrics {
  metrics::CounterFamily* requests = nullptr;
  metrics::HistogramFamily* duration = nullptr;
  metrics::CounterFamily* retries = nullptr;
};

struct S3Client::Request {
  std::string operation;  // metric label and log field: "head_object", "put_object", ...
  std::string method;     // HEAD, GET, PUT, DELETE
  std::string key;        // object key without the prefix; empty for bucket requests
  const std::filesystem::path* upload_file = nullptr;
  std::string_view upload_bytes;
  bool has_body = false;
  std::string payload_hash = std::string(kEmptyPayloadHash);
  const std::filesystem::path* download_file = nullptr;
  HeaderList headers;  // extra headers, signed
};

struct S3Client::Response {
  long status = 0;
  std::string body;  // error bodies only (capped); object bytes go to the download file
  std::string retry_after;
};

namespace {

constexpr std::size_t kMaxErrorBody = 64 * 1024;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlDeleter {
  void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
};

// This thread's handle, reset before each request (a reset keeps its live connections).
CURL* ThreadHandle() {
  thread_local std::unique_ptr<CURL, CurlDeleter> handle;
  if (!handle) handle.reset(curl_easy_init());
  else curl_easy_reset(handle.get());
  return handle.get();
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// State shared with the curl callbacks of one attempt.
struct Transfer {
  CURL* curl = nullptr;
  int upload_fd = -1;
  std::string_view upload_bytes;
  std::size_t upload_offset = 0;
  int download_fd = -1;
  std::string* error_body = nullptr;
  std::string* retry_after = nullptr;
  int local_errno = 0;  // a local read or write failed (not the network)
  std::string local_what;
};

size_t ReadBody(char* buffer, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t want = size * n;
  if (t->upload_fd < 0) {
    const size_t left = t->upload_bytes.size() - t->upload_offset;
    const size_t k = std::min(want, left);
    std::memcpy(buffer, t->upload_bytes.data() + t->upload_offset, k);
    t->upload_offset += k;
    return k;
  }
  while (true) {
    const ssize_t got = ::read(t->upload_fd, buffer, want);
    if (got >= 0) return static_cast<size_t>(got);
    if (errno == EINTR) continue;
    t->local_errno = errno;
    t->local_what = "read";
    return CURL_READFUNC_ABORT;
  }
}

int SeekBody(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (origin != SEEK_SET) return CURL_SEEKFUNC_CANTSEEK;
  if (t->upload_fd < 0) {
    if (offset < 0 || static_cast<size_t>(offset) > t->upload_bytes.size()) return CURL_SEEKFUNC_FAIL;
    t->upload_offset = static_cast<size_t>(offset);
    return CURL_SEEKFUNC_OK;
  }
  return ::lseek(t->upload_fd, static_cast<off_t>(offset), SEEK_SET) < 0 ? CURL_SEEKFUNC_FAIL : CURL_SEEKFUNC_OK;
}

size_t WriteBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (t->download_fd >= 0 && status >= 200 && status < 300) {
    size_t done = 0;
    while (done < len) {
      const ssize_t w = ::write(t->download_fd, data + done, len - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        t->local_errno = w < 0 ? errno : EIO;
        t->local_what = "write";
        return 0;  // CURLE_WRITE_ERROR
      }
      done += static_cast<size_t>(w);
    }
    return len;
  }
  if (t->error_body->size() < kMaxErrorBody) t->error_body->append(data, std::min(len, kMaxErrorBody - t->error_body->size()));
  return len;
}

size_t ReadHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (auto v = net::HeaderValue(std::string_view(data, size * n), "retry-after")) *t->retry_after = *v;
  return size * n;
}

// The text between <Tag> and </Tag> in an S3 XML error body, or "".
std::string XmlField(const std::string& body, const std::string& tag) {
  const std::string open = "<" + tag + ">";
  const auto a = body.find(open);
  if (a == std::string::npos) return {};
  const auto b = body.find("</" + tag + ">", a + open.size());
  if (b == std::string::npos) return {};
  return body.substr(a + open.size(), std::min<std::size_t>(b - a - open.size(), 500));
}

bool RetryableStatus(long status) { return status == 429 || status == 408 || (status >= 500 && status <= 599); }

// Transport failures worth another attempt (the configuration is not the problem).
bool RetryableCurl(CURLcode rc) {
  switch (rc) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_NOT_BUILT_IN:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CIPHER:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_ABORTED_BY_CALLBACK:
      return false;
    default:
      return true;
  }
}

bool ValidEndpointHost(std::string_view h) {
  if (h.empty()) return false;
  if (h.front() == '[') return h.back() == ']' && h.size() > 2;
  return std::all_of(h.begin(), h.end(), [](unsigned char c) { return std::isalnum(c) || c == '.' || c == '-'; });
}

}  // namespace

bool IsValidBucketName(const std::string& name) {
  if (name.size() < 3 || name.size() > 63) return false;
  for (unsigned char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) return false;
  }
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front()) || !alnum(name.back())) return false;
  if (name.find("..") != std::string::npos) return false;
  // Not an IPv4 address.
  int dots = 0;
  bool digits_and_dots = true;
  for (char c : name) {
    if (c == '.') ++dots;
    else if (!(c >= '0' && c <= '9')) digits_and_dots = false;
  }
  return !(digits_and_dots && dots == 3);
}

Result<std::unique_ptr<S3Client>> S3Client::Create(S3Options o, metrics::Registry* registry) {
  std::string_view ep = o.endpoint;
  std::string scheme;
  if (ep.starts_with("http://")) scheme = "http";
  else if (ep.starts_with("https://")) scheme = "https";
  else return Fail(Error::InvalidArgument("S3 endpoint must start with http:// or https:// (got '" + o.endpoint + "')"));
  std::string_view host = ep.substr(scheme.size() + 3);
  while (!host.empty() && host.back() == '/') host.remove_suffix(1);
  if (host.find_first_of("/?#@") != std::string_view::npos) {
    return Fail(Error::InvalidArgument("S3 endpoint must be scheme://host[:port] without a path, query or user (got '" +
                                       o.endpoint + "')"));
  }
  std::string_view name = host;
  if (const auto colon = host.rfind(':'); colon != std::string_view::npos && host.find(']', colon) == std::string_view::npos) {
    const std::string_view port = host.substr(colon + 1);
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit) ||
        std::stoi(std::string(port)) == 0 || std::stoi(std::string(port)) > 65535) {
      return Fail(Error::InvalidArgument("S3 endpoint has an invalid port (got '" + o.endpoint + "')"));
    }
    name = host.substr(0, colon);
  }
  if (!ValidEndpointHost(name)) return Fail(Error::InvalidArgument("S3 endpoint has an invalid host (got '" + o.endpoint + "')"));
  if (!IsValidBucketName(o.bucket)) {
    return Fail(Error::InvalidArgument("invalid S3 bucket name '" + o.bucket +
                                       "': 3-63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit"));
  }
  if (!o.path_style && o.bucket.find('.') != std::string::npos && scheme == "https") {
    return Fail(Error::InvalidArgument("S3 bucket '" + o.bucket +
                                       "' contains '.', which breaks TLS with virtual-host addressing; use path style"));
  }
  if (o.region.empty() || !std::all_of(o.region.begin(), o.region.end(), [](unsigned char c) {
        return std::islower(c) || std::isdigit(c) || c == '-';
      })) {
    return Fail(Error::InvalidArgument("invalid S3 region '" + o.region + "' (e.g. us-east-1)"));
  }
  if (o.credentials.access_key_id.empty() || o.credentials.secret_access_key.empty()) {
    return Fail(Error::InvalidArgument("S3 needs an access key id and a secret access key"));
  }
  if (o.key_prefix.starts_with('/') || o.key_prefix.find("//") != std::string::npos) {
    return Fail(Error::InvalidArgument("S3 key prefix must not start with '/' or contain '//' (got '" + o.key_prefix + "')"));
  }
  if (o.unsigned_payload && scheme != "https") {
    return Fail(Error::InvalidArgument("UNSIGNED-PAYLOAD uploads need an https endpoint"));
  }
  if (o.max_attempts < 1) o.max_attempts = 1;
  GlobalInit();
  return std::unique_ptr<S3Client>(new S3Client(std::move(o), std::move(scheme), std::string(host), registry));
}

S3Client::S3Client(S3Options options, std::string scheme, std::string host, metrics::Registry* registry)
    : options_(std::move(options)), scheme_(std::move(scheme)), host_(std::move(host)), metrics_(std::make_unique<Metrics>()) {
  if (registry != nullptr) {
    metrics_->requests = &registry->AddCounter("modulo_s3_requests_total", "S3 requests (every attempt) by outcome",
                                               {"operation", "status"});
    metrics_->duration = &registry->AddHistogram("modulo_s3_request_duration_seconds",
                                                 "Duration of one S3 request attempt", {"operation"});
    metrics_->retries = &registry->AddCounter("modulo_s3_retries_total", "S3 request attempts that were retried",
                                              {"operation"});
  }
}

S3Client::~S3Client() = default;

void S3Client::Target(const std::string& key, std::string* host, std::string* path) const {
  path->clear();
  if (options_.path_style) *path = "/" + options_.bucket;
  if (!key.empty()) *path += "/" + ObjectName(key);
  if (path->empty()) *path = "/";
  *host = options_.path_style ? host_ : options_.bucket + "." + host_;
}

std::string S3Client::Url(const std::string& key) const {
  std::string host;
  std::string path;
  Target(key, &host, &path);
  return scheme_ + "://" + host + UriEncode(path, /*keep_slash=*/true);
}

std::chrono::milliseconds S3Client::Backoff(int attempt, const std::string& retry_after) const {
  if (!retry_after.empty() && retry_after.size() < 7 && std::all_of(retry_after.begin(), retry_after.end(), ::isdigit)) {
    return std::min<std::chrono::milliseconds>(std::chrono::seconds(std::stoi(retry_after)), options_.max_delay);
  }
  const int shift = std::clamp(attempt - 1, 0, 16);
  const auto full = std::min<std::chrono::milliseconds>(options_.base_delay * (1 << shift), options_.max_delay);
  // Equal jitter: half fixed, half random, so concurrent clients spread out.
  thread_local std::mt19937 rng{std::random_device{}()};
  const auto half = full.count() / 2;
  std::uniform_int_distribution<long long> jitter(0, std::max<long long>(half, 0));
  return std::chrono::milliseconds(half + jitter(rng));
}

Result<S3Client::Response> S3Client::Once(const Request& req, bool* retryable) const {
  *retryable = false;  // until the network is involved
  CURL* curl = ThreadHandle();
  if (curl == nullptr) return Fail(Error::Internal("cannot create an HTTP client handle"));

  std::string host;
  std::string path;  // decoded: the signer and the URL encode it the same way
  Target(req.key, &host, &path);
  const std::string url = scheme_ + "://" + host + UriEncode(path, /*keep_slash=*/true);

  SignableRequest s;
  s.method = req.method;
  s.path = path;
  s.payload_hash = req.payload_hash;
  s.headers.emplace_back("host", host);
  s.headers.emplace_back("x-amz-content-sha256", req.payload_hash);
  for (const auto& h : req.headers) s.headers.push_back(h);
  const std::string amz_date = AmzDate(std::chrono::system_clock::now());
  AddSigningHeaders(s, options_.credentials, amz_date);
  const Signature sig = Sign(s, options_.credentials, options_.region, "s3", amz_date);

  curl_slist* list = nullptr;
  for (const auto& [name, value] : s.headers) list = curl_slist_append(list, (name + ": " + value).c_str());
  list = curl_slist_append(list, ("Authorization: " + sig.authorization).c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(list, &curl_slist_free_all);

  Response r;
  Transfer t;
  t.curl = curl;
  t.error_body = &r.body;
  t.retry_after = &r.retry_after;
  Fd upload;
  Fd download;
  curl_off_t upload_size = 0;
  if (req.upload_file != nullptr) {
    upload.fd = ::open(req.upload_file->c_str(), O_RDONLY | O_CLOEXEC);
    if (upload.fd < 0) {
      return Fail(Error::Unavailable("cannot read " + req.upload_file->string() + ": " + std::strerror(errno)));
    }
    struct stat st {};
    if (::fstat(upload.fd, &st) != 0) {
      return Fail(Error::Unavailable("cannot stat " + req.upload_file->string() + ": " + std::strerror(errno)));
    }
    upload_size = static_cast<curl_off_t>(st.st_size);
    t.upload_fd = upload.fd;
  } else if (req.has_body) {
    t.upload_bytes = req.upload_bytes;
    upload_size = static_cast<curl_off_t>(req.upload_bytes.size());
  }
  if (req.download_file != nullptr) {
    download.fd = ::open(req.download_file->c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (download.fd < 0) {
      return Fail(Error::Unavailable("cannot write " + req.download_file->string() + ": " + std::strerror(errno)));
    }
    t.download_fd = download.fd;
  }

  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  if (req.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (req.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (req.method == "PUT") {
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, &ReadBody);
    curl_easy_setopt(curl, CURLOPT_READDATA, &t);
    curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, &SeekBody);
    curl_easy_setopt(curl, CURLOPT_SEEKDATA, &t);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, upload_size);
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &ReadHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
  const bool streams = req.upload_file != nullptr || req.download_file != nullptr;
  if (streams) {
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.transfer_stall_timeout.count()));
  } else {
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
  }
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);

  const CURLcode rc = curl_easy_perform(curl);
  if (t.local_errno != 0) {
    const auto* file = t.local_what == "read" ? req.upload_file : req.download_file;
    return Fail(Error::Unavailable("cannot " + t.local_what + " " + (file ? file->string() : std::string("body")) +
                                   ": " + std::strerror(t.local_errno)));
  }
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    *retryable = true;
    return Fail(Error::DeadlineExceeded("S3 " + req.operation + " of bucket '" + options_.bucket + "' at " +
                                        options_.endpoint + " timed out"));
  }
  if (rc != CURLE_OK) {
    Error e = Error::Unavailable("S3 " + req.operation + " of bucket '" + options_.bucket + "' at " + options_.endpoint +
                                 " failed: " + curl_easy_strerror(rc));
    *retryable = RetryableCurl(rc);
    return Fail(std::move(e));
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  *retryable = RetryableStatus(r.status) || (r.status == 400 && XmlField(r.body, "Code") == "RequestTimeout");
  return r;
}

Result<S3Client::Response> S3Client::Perform(const Request& req) const {
  Result<Response> last = Fail(Error::Unavailable("no attempt made"));
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    const auto started = std::chrono::steady_clock::now();
    bool retry = false;
    last = Once(req, &retry);
    if (metrics_->requests != nullptr) {
      metrics_->requests->With({req.operation, last ? std::to_string(last->status) : std::string("error")}).Inc();
      metrics_->duration->With({req.operation})
          .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    }
    if (!retry || attempt == options_.max_attempts) break;
    const auto delay = Backoff(attempt, last ? last->retry_after : std::string());
    log::Warn("S3 request failed; retrying",
              {{"operation", req.operation},
               {"attempt", attempt},
               {"status", last ? std::to_string(last->status) : last.error().message()},
               {"delay_ms", static_cast<std::int64_t>(delay.count())}});
    if (metrics_->retries != nullptr) metrics_->retries->With({req.operation}).Inc();
    std::this_thread::sleep_for(delay);
  }
  return last;
}

Error S3Client::ErrorFor(const Request& req, const Response& r) const {
  const std::string code = XmlField(r.body, "Code");
  const std::string message = XmlField(r.body, "Message");
  std::string service = "HTTP " + std::to_string(r.status);
  if (!code.empty()) service += " " + code;
  if (!message.empty()) service += ": " + message;
  const std::string where = "S3 bucket '" + options_.bucket + "' at " + options_.endpoint;
  const std::string object = req.key.empty() ? std::string() : " (object '" + ObjectName(req.key) + "')";
  switch (r.status) {
    case 404:
      if (req.key.empty()) return Error::NotFound(where + " does not exist (" + service + ")");
      // The object's bucket is missing: a configuration problem, not a missing object.
      if (code == "NoSuchBucket") return Error::Unavailable(where + " does not exist (" + service + ")");
      return Error::NotFound("object '" + ObjectName(req.key) + "' not found in " + where);
    case 401:
    case 403: {
      static constexpr std::string_view kCredentialCodes[] = {
          "SignatureDoesNotMatch", "InvalidAccessKeyId", "ExpiredToken", "InvalidToken", "TokenRefreshRequired",
          "InvalidClientTokenId", "RequestTimeTooSkewed", "MissingSecurityHeader"};
      const bool credentials = r.status == 401 || std::find(std::begin(kCredentialCodes), std::end(kCredentialCodes),
                                                            code) != std::end(kCredentialCodes);
      if (credentials) {
        std::string hint = code == "RequestTimeTooSkewed" ? "this machine's clock is off; synchronise it"
                                                          : "check the access key id, the secret access key and the session token";
        return Error::Unauthenticated(where + " refused the credentials of access key '" +
                                      options_.credentials.access_key_id + "' for " + req.operation + object + " (" +
                                      service + "): " + hint);
      }
      return Error::PermissionDenied(
          "access denied to " + where + " for " + req.operation + object + " with access key '" +
          options_.credentials.access_key_id + "' (" + service +
          (code.empty() ? "; wrong credentials or missing permission" : "") + ")");
    }
    case 400:
      if (code == "XAmzContentSHA256Mismatch" || code == "BadDigest") {
        return Error::InvalidArgument("the bytes sent for " + ObjectName(req.key) + " do not match their sha256 (" +
                                      service + ")");
      }
      if (code == "AuthorizationHeaderMalformed" || code == "InvalidRegion" || code == "IllegalLocationConstraintException") {
        return Error::Unavailable(where + " is not in region '" + options_.region + "' (" + service + ")");
      }
      return Error::InvalidArgument(where + " refused " + req.operation + object + " (" + service + ")");
    case 301:
    case 307:
    case 308:
      return Error::Unavailable(where + " is served by another endpoint or region than '" + options_.region + "' (" +
                                service + ")");
    case 409:
      return Error::Conflict(where + ": " + req.operation + object + " conflicts (" + service + ")");
    default:
      return Error::Unavailable(where + " failed " + req.operation + object + " (" + service + ")");
  }
}

Error S3Client::HeadError(const Request& head, const Response& r) const {
  if (r.status != 403 || !r.body.empty()) return ErrorFor(head, r);
  // A HEAD answer has no body, so a 403 does not say whether the credentials are wrong or lack
  // the permission: ask the same with a GET (of one byte), whose error body does.
  Request get{.operation = head.operation, .method = "GET", .key = head.key};
  get.headers.emplace_back("range", "bytes=0-0");
  bool retryable = false;
  auto diag = Once(get, &retryable);
  if (diag && diag->status == 403 && !XmlField(diag->body, "Code").empty()) return ErrorFor(head, *diag);
  return ErrorFor(head, r);
}

Result<bool> S3Client::Exists(const std::string& key) const {
  Request req{.operation = "head_object", .method = "HEAD", .key = key};
  auto r = Perform(req);
  if (!r) return Fail(r.error());
  if (r->status >= 200 && r->status < 300) return true;
  if (r->status == 404) return false;
  return Fail(HeadError(req, *r));
}

Status S3Client::PutFile(const std::string& key, const std::filesystem::path& file, const std::string& sha256_hex) const {
  Request req{.operation = "put_object", .method = "PUT", .key = key};
  req.upload_file = &file;
  req.has_body = true;
  req.payload_hash = options_.unsigned_payload ? std::string(kUnsignedPayload) : sha256_hex;
  req.headers.emplace_back("content-type", "application/octet-stream");
  auto r = Perform(req);
  if (!r) return Fail(r.error());
  if (r->status >= 200 && r->status < 300) return {};
  return Fail(ErrorFor(req, *r));
}

Status S3Client::PutBytes(const std::string& key, std::string_view bytes) const {
  Request req{.operation = "put_object", .method = "PUT", .key = key};
  req.upload_bytes = bytes;
  req.has_body = true;
  req.payload_hash = Sha256Hex(bytes);
  req.headers.emplace_back("content-type", "application/octet-stream");
  auto r = Perform(req);
  if (!r) return Fail(r.error());
  if (r->status >= 200 && r->status < 300) return {};
  return Fail(ErrorFor(req, *r));
}

Status S3Client::GetToFile(const std::string& key, const std::filesystem::path& file) const {
  Request req{.operation = "get_object", .method = "GET", .key = key};
  req.download_file = &file;
  auto r = Perform(req);
  if (!r) return Fail(r.error());
  if (r->status == 200) return {};
  return Fail(ErrorFor(req, *r));
}

Status S3Client::Delete(const std::string& key) const {
  Request req{.operation = "delete_object", .method = "DELETE", .key = key};
  auto r = Perform(req);
  if (!r) return Fail(r.error());
  if ((r->status >= 200 && r->status < 300) || r->status == 404) {
    if (r->status == 404 && XmlField(r->body, "Code") == "NoSuchBucket") return Fail(ErrorFor(req, *r));
    return {};
  }
  return Fail(ErrorFor(req, *r));
}

Status S3Client::CheckBucket() const {
  Request req{.operation = "head_bucket", .method = "HEAD"};
  auto r = Perform(req);
  if (!r) return Fail(r.error());
  if (r->status >= 200 && r->status < 300) return {};
  return Fail(HeadError(req, *r));
}

Status S3Client::CreateBucket() const {
  Request req{.operation = "create_bucket", .method = "PUT"};
  std::string body;
  if (options_.region != "us-east-1") {
    body = "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>" +
           options_.region + "</LocationConstraint></CreateBucketConfiguration>";
  }
  req.upload_bytes = body;
  req.has_body = true;
  req.payload_hash = Sha256Hex(body);
  auto r = Perform(req);
  if (!r) return Fail(r.error());
  if (r->status >= 200 && r->status < 300) return {};
  if (r->status == 409) {
    // BucketAlreadyOwnedByYou, or a server that says BucketAlreadyExists for our own bucket:
    // fine when we can reach it.
    if (auto st = CheckBucket(); st) return {};
  }
  return Fail(ErrorFor(req, *r));
}

}  // namespace modulo::store::s3
