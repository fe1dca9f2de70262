// Database: the PostgreSQL database of a scaled-out Modulo: a connection pool to the primary,
// optional pools to streaming replicas, the routing of reads between them, and the versioned
// schema migrations.
//
// Migrations are numbered SQL steps in database.cpp, each applied in its own transaction and
// recorded in schema_migrations. Migrate() holds a session advisory lock while it works, so
// servers that start together migrate once: the others wait, then find nothing to do. A
// database migrated by a newer build is refused (kConflict), never written to.
//
// Reads and replicas (DATABASE_REPLICA_URLS):
// - writes, and reads that must see every commit (the change feed, anything inside a write, the
//   collection state a search replays from), always use the primary: Primary();
// - reads that may lag use Read(): a replica, round-robin, when one is up, lags at most
//   `max_replica_lag`, and has replayed every write this process committed (read-your-writes);
//   otherwise the primary. The stores call NoteWrite() after each commit; a background thread
//   measures every replica each `replica_check_interval` (its replay LSN against the primary's
//   current LSN read after the last write, and pg_last_xact_replay_timestamp() for the lag), so
//   a process's reads return to a replica as soon as the replica is seen to hold its writes.
// - a replica that fails a read is marked down and the read is run again on the primary
//   (WithRead); the checker brings it back when it answers again.
// Which reads may use replicas is decided per method by the stores (see pg_metadata_store.h).
//
// Thread-safety: all members are thread-safe; a Lease belongs to one thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/metrics/registry.h"
#include "modulo/store/postgres/pool.h"

namespace modulo::store::postgres {

struct DatabaseOptions {
  std::string primary_url;                // DATABASE_URL
  std::vector<std::string> replica_urls;  // DATABASE_REPLICA_URLS (comma-separated in the environment)
  PoolOptions pool;                       // for the primary and for each replica
  std::chrono::milliseconds max_replica_lag{5000};         // older replicas are not read from
  std::chrono::milliseconds replica_check_interval{500};   // how often replicas are measured
  bool migrate = true;  // apply pending migrations at Open (false: refuse an outdated schema)
};

// Splits "url1,url2" (blanks trimmed, empties dropped), for DATABASE_REPLICA_URLS.
[[nodiscard]] std::vector<std::string> SplitUrls(std::string_view list);

struct MigrationOutcome {
  int version = 0;  // the schema version after the call
  int applied = 0;  // steps this call applied (0 when another process had done them)
};

// Brings the schema at `url` to the latest version this build knows (`modulo migrate`).
[[nodiscard]] Result<MigrationOutcome> Migrate(const std::string& url);

class Database {
 public:
  // The schema version this build knows.
  static constexpr int kLatestSchema = 6;

  // `registry` (optional) receives the pool metrics; `active` (optional) is the seed's
  // rag_active_connections gauge. Connects to the primary once (and migrates when asked).
  [[nodiscard]] static Result<std::unique_ptr<Database>> Open(DatabaseOptions options,
                                                              metrics::Registry* registry = nullptr,
                                                              metrics::Gauge* active = nullptr);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // A connection to the primary.
  [[nodiscard]] Result<Pool::Lease> Primary() { return primary_->Acquire(); }
  // A connection for a read that may lag (a usable replica, else the primary).
  [[nodiscard]] Result<Pool::Lease> Read();

  // Runs fn(Connection&) -> Result<T> on Read(); when a replica fails with kUnavailable it is
  // marked down and fn runs again on the primary. A replica answering kNotFound is asked again
  // on the primary too: the row may be a moment old and written by another process (a server
  // that created a collection, a worker picking up a file another server just added), which
  // this process's own read-your-writes tracking cannot know about.
  template <typename F>
  auto WithRead(F&& fn) -> decltype(fn(std::declval<Connection&>())) {
    return WithRead(std::forward<F>(fn), [](const auto&) { return false; });
  }
  // The same, and a replica's successful answer for which suspect(value) is true is asked again
  // on the primary as well: the answer a lagging replica gives where "not found" has no error
  // code, such as an empty list of the children of a parent another process just wrote.
  template <typename F, typename S>
  auto WithRead(F&& fn, S&& suspect) -> decltype(fn(std::declval<Connection&>())) {
    auto lease = Read();
    if (!lease) return Fail(lease.error());
    const bool on_replica = &lease->pool() != primary_.get();
    auto out = fn(**lease);
    if (!on_replica) return out;
    if (out) {
      if (!suspect(*out)) return out;
    } else {
      const ErrorCode code = out.error().code();
      if (code != ErrorCode::kUnavailable && code != ErrorCode::kNotFound) return out;
      if (code == ErrorCode::kUnavailable) MarkDown(lease->pool());
    }
    auto again = Primary();
    if (!again) return Fail(again.error());
    return fn(**again);
  }
  // Runs fn on the primary.
  template <typename F>
  auto WithPrimary(F&& fn) -> decltype(fn(std::declval<Connection&>())) {
    auto lease = Primary();
    if (!lease) return Fail(lease.error());
    return fn(**lease);
  }

  // Runs fn(Connection&) -> Result<T> inside one transaction on the primary and commits when it
  // succeeds. A serialization failure or a deadlock (40001, 40P01) runs the whole transaction
  // again, up to kTransactionAttempts times. Notes the write (read-your-writes).
  static constexpr int kTransactionAttempts = 5;
  template <typename F>
  auto WithTransaction(F&& fn, Transaction::Isolation isolation = Transaction::Isolation::kReadCommitted)
      -> decltype(fn(std::declval<Connection&>())) {
    using R = decltype(fn(std::declval<Connection&>()));
    for (int attempt = 1;; ++attempt) {
      auto lease = Primary();
      if (!lease) return Fail(lease.error());
      Connection& c = **lease;
      std::string failed_state;
      R out = [&]() -> R {
        auto tx = Transaction::Begin(c, isolation);
        if (!tx) return Fail(tx.error());
        R r = fn(c);
        if (!r) {
          failed_state = c.last_sqlstate();  // before the rollback clears it
          return r;
        }
        if (auto st = tx->Commit(); !st) {
          failed_state = c.last_sqlstate();
          return Fail(st.error());
        }
        return r;
      }();
      if (out) {
        NoteWrite();
        return out;
      }
      if (attempt >= kTransactionAttempts || !IsRetryableState(failed_state)) return out;
      std::this_thread::sleep_for(std::chrono::milliseconds(5 * attempt));
    }
  }
  // Runs fn on the primary outside a transaction block (a single-statement write) and notes
  // the write when it succeeds.
  template <typename F>
  auto WithWrite(F&& fn) -> decltype(fn(std::declval<Connection&>())) {
    auto lease = Primary();
    if (!lease) return Fail(lease.error());
    auto out = fn(**lease);
    if (out) NoteWrite();
    return out;
  }

  // Call after committing a write: until a replica is seen to have replayed it, this process
  // reads from the primary.
  void NoteWrite() noexcept { write_epoch_.fetch_add(1, std::memory_order_acq_rel); }

  // Measures every replica now (the background thread does this every replica_check_interval).
  void CheckReplicas();

  struct ReplicaState {
    std::string name;          // "replica-<n>"
    bool up = false;           // answered the last check and is in recovery (a standby)
    bool usable = false;       // up, within the lag bound, and holds this process's writes
    std::int64_t lag_ms = 0;   // 0 when it had replayed everything the primary had
  };
  [[nodiscard]] std::vector<ReplicaState> replicas() const;
  [[nodiscard]] Pool& primary_pool() noexcept { return *primary_; }
  [[nodiscard]] std::vector<Pool*> replica_pools() const;
  [[nodiscard]] int schema_version() const noexcept { return schema_version_; }
  [[nodiscard]] const DatabaseOptions& options() const noexcept { return options_; }

 private:
  struct Replica {
    std::unique_ptr<Pool> pool;
    std::atomic<bool> up{false};
    std::atomic<std::int64_t> lag_ms{0};
    std::atomic<std::int64_t> covered_epoch{-1};  // write_epoch_ value the replica is known to hold
  };

  explicit Database(DatabaseOptions options) : options_(std::move(options)) {}
  void MarkDown(const Pool& pool);
  [[nodiscard]] bool Usable(const Replica& r) const noexcept;
  void CheckerLoop(std::stop_token stop);

  DatabaseOptions options_;
  std::unique_ptr<PoolMetrics> metrics_;
  std::unique_ptr<Pool> primary_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  int schema_version_ = 0;
  std::atomic<std::int64_t> write_epoch_{0};
  std::atomic<std::size_t> next_replica_{0};
  std::mutex check_mu_;  // one CheckReplicas at a time
  std::int64_t previous_epoch_ = -1;   // guarded by check_mu_: the last round's sample
  std::uint64_t previous_lsn_ = 0;     // guarded by check_mu_
  std::mutex stop_mu_;
  std::condition_variable_any stop_cv_;
  std::jthread checker_;
};

}  // namespace modulo::store::postgres
