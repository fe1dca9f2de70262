#include "modulo/store/postgres/pool.h"

#include "modulo/core/log.h"

namespace modulo::store::postgres {

PoolMetrics::PoolMetrics(metrics::Registry& registry, metrics::Gauge* active)
    : connections_(registry.AddGauge("modulo_db_pool_connections", "Database connections by state",
                                     {"pool", "state"})),
      waits_(registry.AddCounter("modulo_db_pool_waits_total",
                                 "Connection requests that waited because every connection was in use", {"pool"})),
      wait_seconds_(registry.AddHistogram("modulo_db_pool_wait_seconds",
                                          "Time spent waiting for a free database connection", {"pool"})),
      timeouts_(registry.AddCounter("modulo_db_pool_timeouts_total",
                                    "Connection requests that gave up after the pool timeout", {"pool"})),
      discarded_(registry.AddCounter("modulo_db_pool_discarded_total",
                                     "Connections closed instead of reused, by reason", {"pool", "reason"})),
      active_(active) {}

PoolMetrics::Cells PoolMetrics::For(const std::string& pool_name) {
  Cells c;
  c.in_use = &connections_.With({pool_name, "in_use"});
  c.idle = &connections_.With({pool_name, "idle"});
  c.waits = &waits_.With({pool_name});
  c.wait_seconds = &wait_seconds_.With({pool_name});
  c.timeouts = &timeouts_.With({pool_name});
  c.discarded_dead = &discarded_.With({pool_name, "dead"});
  c.discarded_broken = &discarded_.With({pool_name, "broken"});
  c.discarded_recycled = &discarded_.With({pool_name, "recycled"});
  c.active = active_;
  return c;
}

Pool::Pool(std::string name, std::string url, PoolOptions options, PoolMetrics* metrics)
    : name_(std::move(name)), url_(std::move(url)), options_(std::move(options)) {
  if (metrics != nullptr) cells_ = metrics->For(name_);
}

Pool::~Pool() {
  std::lock_guard lock(mu_);
  idle_.clear();
}

void Pool::PublishLocked() {
  if (cells_.in_use != nullptr) cells_.in_use->Set(static_cast<double>(in_use_));
  if (cells_.idle != nullptr) cells_.idle->Set(static_cast<double>(idle_.size()));
}

Result<Pool::Lease> Pool::Acquire() {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + options_.acquire_timeout;
  std::unique_lock lock(mu_);
  bool waited = false;
  const auto wait_start = Clock::now();
  while (true) {
    // 1. An idle connection: the most recently used one (the likeliest to be alive).
    while (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      ++in_use_;
      ++acquired_;
      if (cells_.active != nullptr) cells_.active->Inc();
      PublishLocked();
      lock.unlock();
      const auto now = Clock::now();
      enum class Verdict { kGood, kRecycle, kDead } verdict = Verdict::kGood;
      if (now - c->opened_at() >= options_.recycle) {
        verdict = Verdict::kRecycle;
      } else if (c->Broken() || (now - c->last_used() >= options_.pre_ping_after_idle && !c->Ping())) {
        verdict = Verdict::kDead;
        log::Warn("database connection found dead, replacing it", {{"pool", name_}});
      }
      if (verdict == Verdict::kGood) {
        if (waited && cells_.wait_seconds != nullptr) {
          cells_.wait_seconds->Observe(std::chrono::duration<double>(Clock::now() - wait_start).count());
        }
        return Lease(this, std::move(c));
      }
      // Replace it with a fresh connection in the same slot.
      c.reset();
      metrics::Counter* why = verdict == Verdict::kDead ? cells_.discarded_dead : cells_.discarded_recycled;
      if (why != nullptr) why->Inc();
      auto fresh = Connection::Open(url_, options_.connection);
      lock.lock();
      if (verdict == Verdict::kDead) ++replaced_dead_;
      if (fresh) {
        lock.unlock();
        return Lease(this, std::move(*fresh));
      }
      --in_use_;
      --open_;
      --acquired_;
      if (cells_.active != nullptr) cells_.active->Dec();
      PublishLocked();
      cv_.notify_one();
      return Fail(fresh.error());
    }
    // 2. Room for another connection.
    if (open_ < options_.size + options_.max_overflow) {
      ++open_;
      ++in_use_;
      ++acquired_;
      if (cells_.active != nullptr) cells_.active->Inc();
      PublishLocked();
      lock.unlock();
      auto fresh = Connection::Open(url_, options_.connection);
      if (fresh) {
        if (waited && cells_.wait_seconds != nullptr) {
          cells_.wait_seconds->Observe(std::chrono::duration<double>(Clock::now() - wait_start).count());
        }
        return Lease(this, std::move(*fresh));
      }
      lock.lock();
      --open_;
      --in_use_;
      --acquired_;
      if (cells_.active != nullptr) cells_.active->Dec();
      PublishLocked();
      cv_.notify_one();
      return Fail(fresh.error());
    }
    // 3. Wait for one to come back.
    if (!waited) {
      waited = true;
      ++waits_;
      if (cells_.waits != nullptr) cells_.waits->Inc();
    }
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= options_.size + options_.max_overflow) {
      ++timeouts_;
      if (cells_.timeouts != nullptr) cells_.timeouts->Inc();
      if (cells_.wait_seconds != nullptr) {
        cells_.wait_seconds->Observe(std::chrono::duration<double>(Clock::now() - wait_start).count());
      }
      return Fail(Error::Unavailable(
          "database pool '" + name_ + "' exhausted: all " + std::to_string(options_.size + options_.max_overflow) +
          " connections in use for " + std::to_string(options_.acquire_timeout.count()) + " ms"));
    }
  }
}

void Pool::Release(std::unique_ptr<Connection> c) {
  // A connection still inside a transaction (an early return that skipped the Transaction's
  // destructor cannot happen, but a failed ROLLBACK can) is rolled back or dropped.
  if (!c->Broken() && c->InTransaction() && !c->ExecScript("ROLLBACK")) c.reset();
  if (c && c->Broken()) c.reset();
  std::unique_lock lock(mu_);
  --in_use_;
  if (cells_.active != nullptr) cells_.active->Dec();
  if (!c) {
    --open_;
    if (cells_.discarded_broken != nullptr) cells_.discarded_broken->Inc();
  } else if (idle_.size() >= options_.size) {
    --open_;  // overflow: closed on return
    lock.unlock();
    c.reset();
    lock.lock();
  } else {
    idle_.push_back(std::move(c));
  }
  PublishLocked();
  lock.unlock();
  cv_.notify_one();
}

Pool::Lease::~Lease() {
  if (conn_ != nullptr) pool_->Release(std::move(conn_));
}

Pool::Stats Pool::stats() const {
  std::lock_guard lock(mu_);
  return Stats{open_, idle_.size(), in_use_, waits_, timeouts_, replaced_dead_, acquired_};
}

}  // namespace modulo::store::postgres
