// RedisClient: a small, blocking Redis client over hiredis, shared by the scale-out
// implementations (job queue, cache, rate limiter, event bus).
//
// What it promises:
//   - Commands are argv vectors, so keys and values are binary-safe (no format strings).
//   - A bounded pool of connections serves concurrent callers; a caller waits at most
//     `command_timeout` for a free connection, then gets kUnavailable.
//   - Connect and every command have timeouts. A command that fails on the wire (timeout, reset,
//     Redis gone) returns kUnavailable and the connection is dropped, never reused half-read.
//   - Reconnects with exponential backoff: after a failed connect, commands fail fast with
//     kUnavailable (no connect attempt) until the backoff window has passed; the first command
//     after that tries again, and once Redis answers every connection of the pool heals on its
//     own. An idle pooled connection that Redis closed (a restart) is noticed before it is used,
//     so the first command after Redis is back succeeds rather than failing on a stale socket.
//   - Error replies become Errors: LOADING/BUSY/READONLY/MASTERDOWN/TRYAGAIN/OOM (transient)
//     → kUnavailable, anything else → kInternal with Redis's message.
//   - Eval runs a Script by EVALSHA and falls back to EVAL (which caches it) on NOSCRIPT, so a
//     restarted Redis with an empty script cache is handled transparently.
//   - Every key a Modulo component writes is `key_prefix` + its own name (default "modulo:"), so
//     several deployments can share one Redis (separate prefixes) or one logical database.
//
// Metrics (when a registry is given; one RedisClient per registry):
//   modulo_redis_command_errors_total{kind="connect|backoff|io|timeout|reply|pool"}
//   modulo_redis_pool_waits_total, modulo_redis_pool_wait_seconds, modulo_redis_connections_open
//
// Thread-safety: RedisClient is thread-safe. A RedisConnection (a dedicated connection, e.g. for
// pub/sub) is used by one thread at a time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/metrics/registry.h"

struct redisContext;

namespace modulo::redis {

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string username;  // Redis 6 ACL user; empty: the default user
  std::string password;  // empty: no AUTH
  int db = 0;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds command_timeout{2000};  // also the longest wait for a pooled connection
  std::size_t pool_size = 8;
  std::chrono::milliseconds reconnect_backoff_initial{100};
  std::chrono::milliseconds reconnect_backoff_max{5000};
  std::string key_prefix = "modulo:";
};

// Parses `redis://[[user]:password@]host[:port][/db]` into `base` (other fields kept).
// Percent-escapes in user and password are decoded; IPv6 hosts go in brackets ([::1]:6379).
// TLS (rediss://) and Unix sockets are not supported: kInvalidArgument says so.
[[nodiscard]] Result<RedisOptions> ParseRedisUrl(std::string_view url, RedisOptions base = {});

// One reply, copied out of hiredis so no C object outlives the call.
struct RedisReply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  long long integer = 0;
  std::vector<RedisReply> elements;  // kArray

  [[nodiscard]] bool is_nil() const noexcept { return type == Type::kNil; }
  [[nodiscard]] bool is_error() const noexcept { return type == Type::kError; }
  // The value as text: a string or status as is, an integer in decimal; nullopt otherwise.
  [[nodiscard]] std::optional<std::string> AsString() const;
  // The value as an integer: an integer, or a string holding one; nullopt otherwise.
  [[nodiscard]] std::optional<long long> AsInteger() const;
};

// An error reply as an Error (see the mapping above).
[[nodiscard]] Error ReplyError(std::string_view message);

// A Lua script with its SHA-1, computed locally (the name EVALSHA uses).
class Script {
 public:
  explicit Script(std::string source);
  [[nodiscard]] const std::string& source() const noexcept { return source_; }
  [[nodiscard]] const std::string& sha1() const noexcept { return sha1_; }

 private:
  std::string source_;
  std::string sha1_;
};

// One connection, outside the pool: for a subscriber that reads pushed messages. Not
// reconnecting on its own: the owner opens a new one when this one fails.
class RedisConnection {
 public:
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Sends a command and reads its reply (error replies become Errors).
  [[nodiscard]] Result<RedisReply> Command(const std::vector<std::string>& argv);
  // Waits up to `timeout` for one pushed reply; nullopt when none came in time.
  // kUnavailable when the connection failed (it is unusable afterwards).
  [[nodiscard]] Result<std::optional<RedisReply>> Read(std::chrono::milliseconds timeout);
  // False once an I/O error was seen or Redis closed the connection.
  [[nodiscard]] bool healthy() const noexcept;

 private:
  friend class RedisClient;
  RedisConnection(redisContext* ctx, std::chrono::milliseconds timeout) : ctx_(ctx), timeout_(timeout) {}
  redisContext* ctx_;
  std::chrono::milliseconds timeout_;  // of Command's reply
};

class RedisClient {
 public:
  // Does not connect: the first command does (so a server can start while Redis is down and
  // report it through its health checks). Use Ping() to check at start-up.
  explicit RedisClient(RedisOptions options, metrics::Registry* registry = nullptr);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  [[nodiscard]] Result<RedisReply> Command(std::initializer_list<std::string_view> argv);
  [[nodiscard]] Result<RedisReply> Command(const std::vector<std::string>& argv);
  // Sends all commands on one connection, then reads all replies (one round trip). Per-command
  // error replies stay in the result as kError replies; only a connection failure fails the call.
  [[nodiscard]] Result<std::vector<RedisReply>> Pipeline(const std::vector<std::vector<std::string>>& commands);
  // EVALSHA with EVAL fallback. Error replies raised by the script become Errors.
  [[nodiscard]] Result<RedisReply> Eval(const Script& script, const std::vector<std::string>& keys,
                                        const std::vector<std::string>& args);
  [[nodiscard]] Status Ping();

  // A new connection outside the pool (subject to the same reconnect backoff).
  [[nodiscard]] Result<std::unique_ptr<RedisConnection>> OpenDedicated();

  [[nodiscard]] const RedisOptions& options() const noexcept { return options_; }
  [[nodiscard]] const std::string& key_prefix() const noexcept { return options_.key_prefix; }
  // key_prefix + name.
  [[nodiscard]] std::string Key(std::string_view name) const;
  // "host:port" for messages.
  [[nodiscard]] std::string Address() const;

 private:
  struct Slot;
  class SlotLease;

  Result<SlotLease> Acquire();
  void Release(Slot* slot);
  // Connects with the backoff gate; counts a failure and widens the window.
  Result<redisContext*> Connect();
  // Replaces a dead connection of `s` and opens one when it has none.
  Status EnsureConnected(Slot& s);
  Result<RedisReply> Run(const char* const* argv, const std::size_t* lens, std::size_t argc);
  void CountError(std::string_view kind);

  RedisOptions options_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Slot*> free_;  // guarded by mu_

  std::mutex gate_mu_;
  std::int64_t retry_at_ms_ = 0;  // guarded by gate_mu_: no connect attempt before this (steady ms)
  std::int64_t backoff_ms_ = 0;   // guarded by gate_mu_: the current window; 0 after a success
  std::string last_connect_error_;  // guarded by gate_mu_

  metrics::CounterFamily* errors_ = nullptr;
  metrics::Counter* pool_waits_ = nullptr;
  metrics::Histogram* pool_wait_seconds_ = nullptr;
  metrics::Gauge* open_ = nullptr;
};

// Allows one log line per interval and counts what it held back, so an outage logs a few lines
// rather than one per request. Thread-safe.
class LogThrottle {
 public:
  explicit LogThrottle(std::chrono::milliseconds interval = std::chrono::seconds(10)) : interval_(interval) {}
  // True when a line may be written now; `suppressed` is set to the lines held back since the last one.
  [[nodiscard]] bool Allow(std::int64_t& suppressed);

 private:
  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::int64_t next_ms_ = 0;      // guarded by mu_
  std::int64_t suppressed_ = 0;   // guarded by mu_
};

}  // namespace modulo::redis
