#include "modulo/redis/client.h"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "modulo/core/log.h"

namespace modulo::redis {
namespace {

std::int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

timeval ToTimeval(std::chrono::milliseconds ms) {
  const auto v = std::max<std::int64_t>(1, ms.count());
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(v / 1000);
  tv.tv_usec = static_cast<suseconds_t>((v % 1000) * 1000);
  return tv;
}

RedisReply Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
      break;
  }
  return out;
}

struct ReplyDeleter {
  void operator()(void* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<void, ReplyDeleter>;

// True when an idle connection can still be used: no error recorded, and Redis has neither
// closed it (a restart) nor sent anything unasked.
bool Alive(redisContext* c) {
  if (c == nullptr || c->err != 0) return false;
  char b;
  const ssize_t n = ::recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return false;
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  return false;
}

// The message of a failed context, with "timed out" for a read timeout.
std::string WireError(redisContext* c, int saved_errno, std::chrono::milliseconds timeout, bool& timed_out) {
  timed_out = c->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK);
  if (timed_out) return "no reply within " + std::to_string(timeout.count()) + " ms";
  if (c->err == REDIS_ERR_EOF) return "connection closed by the server";
  return c->errstr[0] != '\0' ? std::string(c->errstr) : "connection error";
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return modulo::Fail(Error::InvalidArgument("redis URL: incomplete percent escape"));
    const int hi = HexValue(s[i + 1]);
    const int lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return modulo::Fail(Error::InvalidArgument("redis URL: bad percent escape"));
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

template <typename Int>
bool ParseInt(std::string_view s, Int& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// URL, replies, scripts

Result<RedisOptions> ParseRedisUrl(std::string_view url, RedisOptions base) {
  if (StartsWithNoCase(url, "rediss://")) {
    return modulo::Fail(Error::InvalidArgument("redis URL: TLS (rediss://) is not supported; use redis://"));
  }
  if (!StartsWithNoCase(url, "redis://")) {
    return modulo::Fail(Error::InvalidArgument("redis URL must look like redis://[:password@]host[:port][/db]"));
  }
  std::string_view rest = url.substr(8);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return modulo::Fail(Error::InvalidArgument("redis URL: query parameters are not supported"));
  }
  std::string_view path;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  std::string_view userinfo;
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
  }
  if (!userinfo.empty()) {
    std::string_view user = userinfo, pass;
    if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      user = userinfo.substr(0, colon);
      pass = userinfo.substr(colon + 1);
    }
    auto u = PercentDecode(user);
    if (!u) return modulo::Fail(u.error());
    auto p = PercentDecode(pass);
    if (!p) return modulo::Fail(p.error());
    base.username = std::move(*u);
    base.password = std::move(*p);
  }
  std::string_view host = rest, port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos) return modulo::Fail(Error::InvalidArgument("redis URL: unclosed '[' in host"));
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return modulo::Fail(Error::InvalidArgument("redis URL: junk after ']'"));
      port = after.substr(1);
      if (port.empty()) return modulo::Fail(Error::InvalidArgument("redis URL: empty port"));
    }
  } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (port.empty()) return modulo::Fail(Error::InvalidArgument("redis URL: empty port"));
  }
  if (host.empty()) return modulo::Fail(Error::InvalidArgument("redis URL: missing host"));
  base.host = std::string(host);
  if (!port.empty()) {
    int p = 0;
    if (!ParseInt(port, p) || p < 1 || p > 65535) {
      return modulo::Fail(Error::InvalidArgument("redis URL: port must be 1-65535, got '" + std::string(port) + "'"));
    }
    base.port = p;
  } else {
    base.port = 6379;
  }
  if (!path.empty()) {
    int db = 0;
    if (!ParseInt(path, db) || db < 0) {
      return modulo::Fail(
          Error::InvalidArgument("redis URL: the path must be a database number, got '" + std::string(path) + "'"));
    }
    base.db = db;
  } else {
    base.db = 0;
  }
  return base;
}

std::optional<std::string> RedisReply::AsString() const {
  switch (type) {
    case Type::kString:
    case Type::kStatus: return str;
    case Type::kInteger: return std::to_string(integer);
    default: return std::nullopt;
  }
}

std::optional<long long> RedisReply::AsInteger() const {
  if (type == Type::kInteger) return integer;
  if (type == Type::kString || type == Type::kStatus) {
    long long v = 0;
    if (ParseInt(std::string_view(str), v)) return v;
  }
  return std::nullopt;
}

Error ReplyError(std::string_view message) {
  static constexpr std::string_view kTransient[] = {"LOADING", "BUSY", "READONLY", "MASTERDOWN", "TRYAGAIN", "OOM"};
  for (auto prefix : kTransient) {
    if (message.starts_with(prefix) &&
        (message.size() == prefix.size() || message[prefix.size()] == ' ')) {
      return Error::Unavailable("redis: " + std::string(message));
    }
  }
  return Error::Internal("redis: " + std::string(message));
}

Script::Script(std::string source) : source_(std::move(source)) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(source_.data(), source_.size(), digest, &len, EVP_sha1(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  sha1_.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    sha1_.push_back(kHex[digest[i] >> 4]);
    sha1_.push_back(kHex[digest[i] & 0xf]);
  }
}

bool LogThrottle::Allow(std::int64_t& suppressed) {
  const auto now = SteadyMs();
  std::lock_guard lock(mu_);
  if (now < next_ms_) {
    ++suppressed_;
    return false;
  }
  suppressed = suppressed_;
  suppressed_ = 0;
  next_ms_ = now + interval_.count();
  return true;
}

// ---------------------------------------------------------------------------------------------
// RedisConnection

RedisConnection::~RedisConnection() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

bool RedisConnection::healthy() const noexcept { return ctx_ != nullptr && ctx_->err == 0; }

Result<RedisReply> RedisConnection::Command(const std::vector<std::string>& argv) {
  if (!healthy()) return modulo::Fail(Error::Unavailable("redis connection is closed"));
  std::vector<const char*> ptrs;
  std::vector<std::size_t> lens;
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  ReplyPtr r(redisCommandArgv(ctx_, static_cast<int>(argv.size()), ptrs.data(), lens.data()));
  if (!r) {
    bool timed_out = false;
    return modulo::Fail(Error::Unavailable("redis: " + WireError(ctx_, errno, timeout_, timed_out)));
  }
  RedisReply out = Convert(static_cast<redisReply*>(r.get()));
  if (out.is_error()) return modulo::Fail(ReplyError(out.str));
  return out;
}

Result<std::optional<RedisReply>> RedisConnection::Read(std::chrono::milliseconds timeout) {
  if (!healthy()) return modulo::Fail(Error::Unavailable("redis connection is closed"));
  void* raw = nullptr;
  if (redisGetReplyFromReader(ctx_, &raw) != REDIS_OK) {
    return modulo::Fail(Error::Unavailable(std::string("redis: ") + ctx_->errstr));
  }
  if (raw == nullptr) {
    pollfd p{ctx_->fd, POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(0, timeout.count())));
    if (n == 0 || (n < 0 && errno == EINTR)) return std::optional<RedisReply>{};
    if (n < 0) return modulo::Fail(Error::Unavailable(std::string("redis: poll: ") + std::strerror(errno)));
    if (redisBufferRead(ctx_) != REDIS_OK) {
      bool timed_out = false;
      return modulo::Fail(Error::Unavailable("redis: " + WireError(ctx_, errno, timeout, timed_out)));
    }
    if (redisGetReplyFromReader(ctx_, &raw) != REDIS_OK) {
      return modulo::Fail(Error::Unavailable(std::string("redis: ") + ctx_->errstr));
    }
    if (raw == nullptr) return std::optional<RedisReply>{};  // a partial reply; the rest comes later
  }
  ReplyPtr r(raw);
  return std::optional<RedisReply>(Convert(static_cast<redisReply*>(r.get())));
}

// ---------------------------------------------------------------------------------------------
// RedisClient

struct RedisClient::Slot {
  redisContext* ctx = nullptr;
};

class RedisClient::SlotLease {
 public:
  SlotLease(RedisClient* client, Slot* slot) : client_(client), slot_(slot) {}
  SlotLease(SlotLease&& o) noexcept : client_(o.client_), slot_(o.slot_) { o.slot_ = nullptr; }
  SlotLease& operator=(SlotLease&&) = delete;
  ~SlotLease() {
    if (slot_ != nullptr) client_->Release(slot_);
  }
  Slot& operator*() const { return *slot_; }
  Slot* operator->() const { return slot_; }

 private:
  RedisClient* client_;
  Slot* slot_;
};

RedisClient::RedisClient(RedisOptions options, metrics::Registry* registry) : options_(std::move(options)) {
  options_.pool_size = std::max<std::size_t>(1, options_.pool_size);
  if (options_.reconnect_backoff_initial.count() <= 0) options_.reconnect_backoff_initial = std::chrono::milliseconds(1);
  options_.reconnect_backoff_max = std::max(options_.reconnect_backoff_max, options_.reconnect_backoff_initial);
  for (std::size_t i = 0; i < options_.pool_size; ++i) {
    slots_.push_back(std::make_unique<Slot>());
    free_.push_back(slots_.back().get());
  }
  if (registry != nullptr) {
    errors_ = &registry->AddCounter("modulo_redis_command_errors_total",
                                    "Redis commands that failed, by kind (connect, backoff, io, timeout, reply, pool)",
                                    {"kind"});
    pool_waits_ = &registry->AddCounter("modulo_redis_pool_waits_total",
                                        "Redis commands that waited for a free pooled connection")
                       .With({});
    pool_wait_seconds_ = &registry->AddHistogram("modulo_redis_pool_wait_seconds",
                                                 "Time spent waiting for a free pooled Redis connection")
                              .With({});
    open_ = &registry->AddGauge("modulo_redis_connections_open", "Open pooled Redis connections").With({});
  }
}

RedisClient::~RedisClient() {
  for (auto& s : slots_) {
    if (s->ctx != nullptr) redisFree(s->ctx);
  }
}

std::string RedisClient::Key(std::string_view name) const {
  std::string k = options_.key_prefix;
  k.append(name);
  return k;
}

std::string RedisClient::Address() const {
  if (options_.host.find(':') != std::string::npos) return "[" + options_.host + "]:" + std::to_string(options_.port);
  return options_.host + ":" + std::to_string(options_.port);
}

void RedisClient::CountError(std::string_view kind) {
  if (errors_ != nullptr) errors_->With({kind}).Inc();
}

Result<RedisClient::SlotLease> RedisClient::Acquire() {
  std::unique_lock lock(mu_);
  if (free_.empty()) {
    const auto start = std::chrono::steady_clock::now();
    if (pool_waits_ != nullptr) pool_waits_->Inc();
    const bool got = cv_.wait_for(lock, options_.command_timeout, [this] { return !free_.empty(); });
    if (pool_wait_seconds_ != nullptr) {
      pool_wait_seconds_->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    if (!got) {
      CountError("pool");
      return modulo::Fail(Error::Unavailable("redis: all " + std::to_string(options_.pool_size) +
                                             " pooled connections stayed busy for " +
                                             std::to_string(options_.command_timeout.count()) + " ms"));
    }
  }
  Slot* s = free_.back();
  free_.pop_back();
  return SlotLease(this, s);
}

void RedisClient::Release(Slot* slot) {
  {
    std::lock_guard lock(mu_);
    free_.push_back(slot);
  }
  cv_.notify_one();
}

Result<redisContext*> RedisClient::Connect() {
  {
    std::lock_guard lock(gate_mu_);
    const auto now = SteadyMs();
    if (now < retry_at_ms_) {
      CountError("backoff");
      return modulo::Fail(Error::Unavailable("redis at " + Address() + " is unavailable (" + last_connect_error_ +
                                             "); next connection attempt in " +
                                             std::to_string(retry_at_ms_ - now) + " ms"));
    }
  }
  auto fail = [this](std::string message) -> Result<redisContext*> {
    CountError("connect");
    std::int64_t window = 0;
    {
      std::lock_guard lock(gate_mu_);
      backoff_ms_ = backoff_ms_ == 0 ? options_.reconnect_backoff_initial.count()
                                     : std::min<std::int64_t>(backoff_ms_ * 2, options_.reconnect_backoff_max.count());
      window = backoff_ms_;
      retry_at_ms_ = SteadyMs() + backoff_ms_;
      last_connect_error_ = message;
    }
    return modulo::Fail(Error::Unavailable("redis at " + Address() + " is unavailable: " + message +
                                           " (next attempt in " + std::to_string(window) + " ms)"));
  };

  redisContext* c = redisConnectWithTimeout(options_.host.c_str(), options_.port, ToTimeval(options_.connect_timeout));
  if (c == nullptr) return fail("cannot allocate a connection");
  std::unique_ptr<redisContext, void (*)(redisContext*)> guard(c, redisFree);
  if (c->err != 0) return fail(c->errstr);
  if (redisSetTimeout(c, ToTimeval(options_.command_timeout)) != REDIS_OK) return fail("cannot set the timeout");
  (void)redisEnableKeepAlive(c);

  auto run = [&](std::vector<std::string> argv) -> Status {
    std::vector<const char*> ptrs;
    std::vector<std::size_t> lens;
    for (const auto& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    ReplyPtr r(redisCommandArgv(c, static_cast<int>(argv.size()), ptrs.data(), lens.data()));
    if (!r) {
      bool timed_out = false;
      return modulo::Fail(Error::Unavailable(WireError(c, errno, options_.command_timeout, timed_out)));
    }
    auto* reply = static_cast<redisReply*>(r.get());
    if (reply->type == REDIS_REPLY_ERROR) {
      return modulo::Fail(Error::Unavailable(argv[0] + " refused: " + std::string(reply->str, reply->len)));
    }
    return {};
  };
  if (!options_.password.empty()) {
    Status st = options_.username.empty() ? run({"AUTH", options_.password})
                                          : run({"AUTH", options_.username, options_.password});
    if (!st) return fail(st.error().message());
  }
  if (options_.db != 0) {
    if (auto st = run({"SELECT", std::to_string(options_.db)}); !st) return fail(st.error().message());
  }
  {
    std::lock_guard lock(gate_mu_);
    if (backoff_ms_ != 0) log::Info("redis reachable again", {{"address", Address()}});
    backoff_ms_ = 0;
    retry_at_ms_ = 0;
  }
  return guard.release();
}

Status RedisClient::EnsureConnected(Slot& s) {
  if (s.ctx != nullptr && !Alive(s.ctx)) {
    redisFree(s.ctx);
    s.ctx = nullptr;
    if (open_ != nullptr) open_->Dec();
  }
  if (s.ctx == nullptr) {
    auto c = Connect();
    if (!c) return modulo::Fail(c.error());
    s.ctx = *c;
    if (open_ != nullptr) open_->Inc();
  }
  return {};
}

Result<RedisReply> RedisClient::Run(const char* const* argv, const std::size_t* lens, std::size_t argc) {
  auto lease = Acquire();
  if (!lease) return modulo::Fail(lease.error());
  Slot& s = **lease;
  if (auto st = EnsureConnected(s); !st) return modulo::Fail(st.error());
  errno = 0;
  ReplyPtr r(redisCommandArgv(s.ctx, static_cast<int>(argc), const_cast<const char**>(argv), lens));
  if (!r) {
    const int saved = errno;
    bool timed_out = false;
    std::string message = WireError(s.ctx, saved, options_.command_timeout, timed_out);
    CountError(timed_out ? "timeout" : "io");
    redisFree(s.ctx);
    s.ctx = nullptr;
    if (open_ != nullptr) open_->Dec();
    return modulo::Fail(Error::Unavailable("redis at " + Address() + ": " + message));
  }
  return Convert(static_cast<redisReply*>(r.get()));
}

Result<RedisReply> RedisClient::Command(std::initializer_list<std::string_view> argv) {
  std::vector<const char*> ptrs;
  std::vector<std::size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (auto a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  auto r = Run(ptrs.data(), lens.data(), ptrs.size());
  if (!r) return r;
  if (r->is_error()) {
    CountError("reply");
    return modulo::Fail(ReplyError(r->str));
  }
  return r;
}

Result<RedisReply> RedisClient::Command(const std::vector<std::string>& argv) {
  std::vector<const char*> ptrs;
  std::vector<std::size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  auto r = Run(ptrs.data(), lens.data(), ptrs.size());
  if (!r) return r;
  if (r->is_error()) {
    CountError("reply");
    return modulo::Fail(ReplyError(r->str));
  }
  return r;
}

Result<std::vector<RedisReply>> RedisClient::Pipeline(const std::vector<std::vector<std::string>>& commands) {
  std::vector<RedisReply> out;
  if (commands.empty()) return out;
  auto lease = Acquire();
  if (!lease) return modulo::Fail(lease.error());
  Slot& s = **lease;
  if (auto st = EnsureConnected(s); !st) return modulo::Fail(st.error());
  auto broken = [&](int saved) -> Result<std::vector<RedisReply>> {
    bool timed_out = false;
    std::string message = WireError(s.ctx, saved, options_.command_timeout, timed_out);
    CountError(timed_out ? "timeout" : "io");
    redisFree(s.ctx);
    s.ctx = nullptr;
    if (open_ != nullptr) open_->Dec();
    return modulo::Fail(Error::Unavailable("redis at " + Address() + ": " + message));
  };
  for (const auto& argv : commands) {
    std::vector<const char*> ptrs;
    std::vector<std::size_t> lens;
    for (const auto& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(s.ctx, static_cast<int>(argv.size()), ptrs.data(), lens.data()) != REDIS_OK) {
      return broken(errno);
    }
  }
  out.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    errno = 0;
    if (redisGetReply(s.ctx, &raw) != REDIS_OK || raw == nullptr) return broken(errno);
    ReplyPtr r(raw);
    out.push_back(Convert(static_cast<redisReply*>(r.get())));
    if (out.back().is_error()) CountError("reply");
  }
  return out;
}

Result<RedisReply> RedisClient::Eval(const Script& script, const std::vector<std::string>& keys,
                                     const std::vector<std::string>& args) {
  std::vector<std::string> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.emplace_back("EVALSHA");
  argv.push_back(script.sha1());
  argv.push_back(std::to_string(keys.size()));
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<const char*> ptrs;
  std::vector<std::size_t> lens;
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  auto r = Run(ptrs.data(), lens.data(), ptrs.size());
  if (!r) return r;
  if (r->is_error() && r->str.starts_with("NOSCRIPT")) {
    argv[0] = "EVAL";
    argv[1] = script.source();
    ptrs[0] = argv[0].data();
    lens[0] = argv[0].size();
    ptrs[1] = argv[1].data();
    lens[1] = argv[1].size();
    r = Run(ptrs.data(), lens.data(), ptrs.size());
    if (!r) return r;
  }
  if (r->is_error()) {
    CountError("reply");
    return modulo::Fail(ReplyError(r->str));
  }
  return r;
}

Status RedisClient::Ping() {
  auto r = Command({"PING"});
  if (!r) return modulo::Fail(r.error());
  return {};
}

Result<std::unique_ptr<RedisConnection>> RedisClient::OpenDedicated() {
  auto c = Connect();
  if (!c) return modulo::Fail(c.error());
  return std::unique_ptr<RedisConnection>(new RedisConnection(*c, options_.command_timeout));
}

}  // namespace modulo::redis
