// Database: the embedded SQLite database of a Modulo data directory (`<data-dir>/modulo.db`),
// with a small pool of connections and the versioned schema migrations.
//
// WAL mode lets readers run while one writer commits; writers take BEGIN IMMEDIATE and wait on
// the busy timeout. Migrations are SQL in the code, applied in order at open, each in its own
// transaction and recorded in schema_migrations, so an older database is upgraded in place and
// a newer one is refused.
//
// Thread-safety: Acquire() is thread-safe; each Lease is used by one thread.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/metrics/registry.h"
#include "modulo/store/sqlite/sqlite.h"

namespace modulo::store::sqlite {

class Database {
 public:
  // `in_use` (optional) tracks connections handed out: the seed's rag_active_connections.
  [[nodiscard]] static Result<std::unique_ptr<Database>> Open(const std::string& path, std::size_t pool_size,
                                                              metrics::Gauge* in_use = nullptr);

  class Lease {
   public:
    Lease(Database* db, std::unique_ptr<Connection> c) : db_(db), conn_(std::move(c)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    Connection& operator*() { return *conn_; }
    Connection* operator->() { return conn_.get(); }

   private:
    Database* db_;
    std::unique_ptr<Connection> conn_;
  };

  [[nodiscard]] Lease Acquire();
  [[nodiscard]] int schema_version() const noexcept { return schema_version_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  // The schema version this build knows.
  static constexpr int kLatestSchema = 6;

 private:
  Database(std::string path, metrics::Gauge* in_use) : path_(std::move(path)), in_use_(in_use) {}
  Status Migrate(Connection& c);
  void Release(std::unique_ptr<Connection> c);

  std::string path_;
  metrics::Gauge* in_use_;
  int schema_version_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_
};

}  // namespace modulo::store::sqlite
