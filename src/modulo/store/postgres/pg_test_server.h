// PgTestServer: a real PostgreSQL server for integration tests, in a temporary directory on a
// free loopback port (initdb -A trust, pg_ctl start, the unix socket inside the directory),
// stopped and removed when the object goes. PostgreSQL refuses to run as root, so when the test
// runs as root the server's commands run as the `postgres` system user (runuser) and the
// directory is handed to that user.
//
// The server binaries are looked up in $MODULO_PG_BIN, then /usr/lib/postgresql/<version>/bin,
// then PATH. When none is found, Start() fails with the command that installs them; tests must
// then fail, never pass silently.
//
// Thread-safety: not thread-safe; one test thread drives it (connections to it are free to
// come from any thread).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "modulo/core/error.h"

namespace modulo::store::postgres {

class PgTestServer {
 public:
  // Starts a primary (wal_level=replica, so replicas can follow it).
  [[nodiscard]] static Result<std::unique_ptr<PgTestServer>> Start();
  // Starts a streaming replica of `primary` (pg_basebackup -R) on its own port.
  [[nodiscard]] static Result<std::unique_ptr<PgTestServer>> StartReplicaOf(const PgTestServer& primary);
  ~PgTestServer();
  PgTestServer(const PgTestServer&) = delete;
  PgTestServer& operator=(const PgTestServer&) = delete;

  // postgresql://postgres@127.0.0.1:<port>/<database>
  [[nodiscard]] std::string Url(const std::string& database = "postgres") const;
  [[nodiscard]] int port() const noexcept { return port_; }

  // A new, empty database; returns its URL.
  [[nodiscard]] Result<std::string> CreateDatabase();
  // DROP DATABASE ... WITH (FORCE); errors are ignored (for cleanup).
  void DropDatabase(const std::string& url);

  // Stops the server (fast shutdown) / starts it again on the same port.
  [[nodiscard]] Status Stop();
  [[nodiscard]] Status Restart();

 private:
  PgTestServer() = default;
  [[nodiscard]] Status StartServer();

  std::filesystem::path dir_;
  std::filesystem::path data_;
  std::string bin_;
  int port_ = 0;
  bool running_ = false;
  int databases_ = 0;
};

// One server for the whole test binary (the contract factories take no arguments), started on
// first use. Throws std::runtime_error with the reason (and the install command) when it cannot
// start, which fails the calling test.
[[nodiscard]] PgTestServer& SharedPgTestServer();

}  // namespace modulo::store::postgres
