// Pool: a bounded pool of libpq connections to one server, with the semantics the seed gives
// SQLAlchemy's QueuePool (pool_size=20, max_overflow=10, pool_pre_ping, pool_recycle=3600):
//
// - at most `size + max_overflow` connections are open; up to `size` are kept idle for reuse,
//   connections past that ("overflow") are closed when they come back;
// - connections are opened lazily, when no idle one is left;
// - pre-ping: a connection that sat idle for at least `pre_ping_after_idle` is checked with an
//   empty query before it is handed out; a dead one is closed and replaced, so a restarted
//   server or a killed backend costs the caller nothing;
// - recycle: a connection older than `recycle` is closed instead of reused;
// - when every connection is in use, Acquire waits up to `acquire_timeout`, then fails with
//   kUnavailable ("pool exhausted") instead of blocking forever;
// - a connection handed back broken, or still inside a transaction that cannot be rolled back,
//   is closed; its slot is freed at once.
//
// Metrics (PoolMetrics, one family set per registry, one label value per pool):
//   modulo_db_pool_connections{pool,state="in_use"|"idle"}  gauge
//   modulo_db_pool_waits_total{pool}                        counter: Acquire calls that had to wait
//   modulo_db_pool_wait_seconds{pool}                       histogram: how long those waited
//   modulo_db_pool_timeouts_total{pool}                     counter
//   modulo_db_pool_discarded_total{pool,reason}             counter: dead (pre-ping), broken, recycled
// and optionally the seed's rag_active_connections (in use, summed over pools).
//
// Thread-safety: Acquire is thread-safe; a Lease (and its Connection) belongs to one thread.
// The pool must outlive its leases.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/metrics/registry.h"
#include "modulo/store/postgres/pg.h"

namespace modulo::store::postgres {

struct PoolOptions {
  std::size_t size = 20;         // DB_POOL_SIZE: connections kept open
  std::size_t max_overflow = 10; // DB_MAX_OVERFLOW: extra connections under bursts
  std::chrono::milliseconds acquire_timeout{30000};      // wait for a free connection at most this long
  std::chrono::seconds recycle{3600};                    // reopen connections older than this
  std::chrono::milliseconds pre_ping_after_idle{1000};   // check connections idle this long (0: always)
  Connection::Options connection;
};

// The metric families of every pool of one registry.
class PoolMetrics {
 public:
  // `active` (optional): the seed's rag_active_connections gauge, moved with in-use counts.
  explicit PoolMetrics(metrics::Registry& registry, metrics::Gauge* active = nullptr);

  struct Cells {
    metrics::Gauge* in_use = nullptr;
    metrics::Gauge* idle = nullptr;
    metrics::Counter* waits = nullptr;
    metrics::Histogram* wait_seconds = nullptr;
    metrics::Counter* timeouts = nullptr;
    metrics::Counter* discarded_dead = nullptr;
    metrics::Counter* discarded_broken = nullptr;
    metrics::Counter* discarded_recycled = nullptr;
    metrics::Gauge* active = nullptr;
  };
  [[nodiscard]] Cells For(const std::string& pool_name);

 private:
  metrics::GaugeFamily& connections_;
  metrics::CounterFamily& waits_;
  metrics::HistogramFamily& wait_seconds_;
  metrics::CounterFamily& timeouts_;
  metrics::CounterFamily& discarded_;
  metrics::Gauge* active_;
};

class Pool {
 public:
  // Opens no connection yet; `metrics` may be null (no metrics).
  Pool(std::string name, std::string url, PoolOptions options, PoolMetrics* metrics = nullptr);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> c) : pool_(pool), conn_(std::move(c)) {}
    Lease(Lease&& o) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    Connection& operator*() { return *conn_; }
    Connection* operator->() { return conn_.get(); }
    [[nodiscard]] Pool& pool() const { return *pool_; }

   private:
    Pool* pool_;
    std::unique_ptr<Connection> conn_;
  };

  // A connection, pre-pinged when it was idle; waits up to acquire_timeout when all are in use.
  [[nodiscard]] Result<Lease> Acquire();

  struct Stats {
    std::size_t open = 0;    // connections open (idle + in use)
    std::size_t idle = 0;
    std::size_t in_use = 0;
    std::uint64_t waits = 0;
    std::uint64_t timeouts = 0;
    std::uint64_t replaced_dead = 0;  // idle connections found dead by the pre-ping
    std::uint64_t acquired = 0;       // successful Acquire calls
  };
  [[nodiscard]] Stats stats() const;
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const std::string& url() const noexcept { return url_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return options_.size + options_.max_overflow; }

 private:
  void Release(std::unique_ptr<Connection> c);
  void PublishLocked();

  const std::string name_;
  const std::string url_;
  const PoolOptions options_;
  PoolMetrics::Cells cells_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_; back = most recently used
  std::size_t open_ = 0;                           // guarded by mu_: idle + in use + being opened
  std::size_t in_use_ = 0;                         // guarded by mu_
  std::uint64_t waits_ = 0, timeouts_ = 0, replaced_dead_ = 0, acquired_ = 0;  // guarded by mu_
};

}  // namespace modulo::store::postgres
