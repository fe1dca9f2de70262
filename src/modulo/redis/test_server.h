// RedisTestServer: a real `redis-server` for tests, on a free loopback port, with its data in a
// fresh temporary directory (AOF on, RDB snapshots off), stopped and removed at the end.
//
// When redis-server is not installed, Start() returns an Error that says how to install it, so
// the test fails with that message rather than passing without having run.
// The server is found as $MODULO_REDIS_SERVER, else `redis-server` on PATH, /usr/bin, /usr/sbin.
// It dies with the test process (PR_SET_PDEATHSIG), so a crashed test leaves no server behind.
//
// Thread-safety: not thread-safe; drive one server from one thread (the test body).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "modulo/core/error.h"
#include "modulo/redis/client.h"

namespace modulo::redis {

struct TestServerOptions {
  // appendfsync always: every acknowledged write is on disk before the reply, for tests that
  // kill -9 the server and expect the data back.
  bool fsync_always = false;
};

class RedisTestServer {
 public:
  [[nodiscard]] static Result<std::unique_ptr<RedisTestServer>> Start(TestServerOptions options = {});
  ~RedisTestServer();
  RedisTestServer(const RedisTestServer&) = delete;
  RedisTestServer& operator=(const RedisTestServer&) = delete;

  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] const std::string& dir() const noexcept { return dir_; }
  [[nodiscard]] std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  // Client options for this server with the given key prefix and short timeouts and backoff.
  [[nodiscard]] RedisOptions Options(std::string key_prefix) const;

  // SIGKILL, as a crash would (nothing is flushed beyond what the AOF policy wrote).
  [[nodiscard]] Status Kill();
  // Starts the server again on the same port and directory (the AOF is replayed), and waits
  // until it answers.
  [[nodiscard]] Status Restart();
  [[nodiscard]] bool running() const noexcept { return pid_ > 0; }

 private:
  RedisTestServer() = default;
  Status Launch();

  TestServerOptions options_;
  std::string binary_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// One server shared by the tests of this process, started on first use (contract factories take
// no arguments). The Error, when it cannot start, carries the install hint.
[[nodiscard]] Result<RedisTestServer*> SharedTestServer();

// A key prefix no other caller in this process gets: "test:<pid>:<n>:".
[[nodiscard]] std::string UniqueTestPrefix();

}  // namespace modulo::redis
