#include "modulo/auth/rate_limiter.h"

#include <algorithm>
#include <limits>

namespace modulo::auth {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Tolerance for floating-point refill arithmetic (a bucket that is "full up to rounding" is full).
constexpr double kEpsilon = 1e-9;
// Idle full buckets dropped from the cold end of a shard per Take (bounded, amortised work).
constexpr int kSweepPerTake = 4;
// A full sweep of a shard happens once per max(kFullSweepMin, buckets in the shard) Takes.
constexpr std::size_t kFullSweepMin = 64;

double Elapsed(TokenBucketLimiter::Clock::time_point from, TokenBucketLimiter::Clock::time_point to) {
  if (to <= from) return 0;
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace

TokenBucketLimiter::TokenBucketLimiter(TokenBucketOptions options, std::function<Clock::time_point()> now)
    : options_(options), now_(std::move(now)) {
  if (options_.shards == 0) options_.shards = 1;
  if (options_.max_buckets == 0) options_.max_buckets = 1;
  buckets_per_shard_ = std::max<std::size_t>(1, options_.max_buckets / options_.shards);
  if (!now_) now_ = [] { return Clock::now(); };
  shards_.reserve(options_.shards);
  for (std::size_t i = 0; i < options_.shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

TokenBucketLimiter::Shard& TokenBucketLimiter::ShardFor(std::string_view key) {
  return *shards_[std::hash<std::string_view>{}(key) % shards_.size()];
}

Decision TokenBucketLimiter::Take(std::string_view key, const BucketSpec& spec, double cost) {
  const double capacity = std::max(0.0, spec.capacity);
  const double refill = std::max(0.0, spec.refill_per_second);
  cost = std::max(0.0, cost);
  const Clock::time_point now = now_();
  Shard& s = ShardFor(key);
  std::lock_guard lock(s.mu);

  // Forget buckets that have refilled completely (that changes nothing: a new bucket starts
  // full): a few at the cold end on every Take, and the whole shard once per `size` Takes, so the
  // work stays amortised O(1) and a slow bucket at the cold end cannot shelter the others.
  const auto full = [now](const Bucket& b) {
    const double tokens = b.tokens + Elapsed(b.updated, now) * b.refill_per_second;
    return tokens >= b.capacity - kEpsilon;
  };
  if (++s.takes_since_sweep >= std::max<std::size_t>(kFullSweepMin, s.lru.size())) {
    s.takes_since_sweep = 0;
    for (auto it = s.lru.begin(); it != s.lru.end();) {
      if (full(*it) && it->key != key) {
        s.index.erase(it->key);
        it = s.lru.erase(it);
      } else {
        ++it;
      }
    }
  } else {
    auto it = s.lru.end();
    for (int i = 0; i < kSweepPerTake && it != s.lru.begin(); ++i) {
      --it;
      if (full(*it) && it->key != key) {
        s.index.erase(it->key);
        it = s.lru.erase(it);
      }
    }
  }

  auto found = s.index.find(key);
  std::list<Bucket>::iterator it;
  if (found == s.index.end()) {
    while (s.lru.size() >= buckets_per_shard_) {  // memory bound: drop the least recently used
      s.index.erase(s.lru.back().key);
      s.lru.pop_back();
    }
    s.lru.push_front(Bucket{std::string(key), capacity, capacity, refill, now});
    it = s.lru.begin();
    s.index.emplace(it->key, it);
  } else {
    it = found->second;
    s.lru.splice(s.lru.begin(), s.lru, it);
    Bucket& b = *it;
    b.tokens = std::min(capacity, b.tokens + Elapsed(b.updated, now) * refill);
    b.capacity = capacity;
    b.refill_per_second = refill;
    b.updated = std::max(b.updated, now);
  }

  Bucket& b = *it;
  Decision d;
  if (b.tokens + kEpsilon >= cost) {
    b.tokens = std::max(0.0, b.tokens - cost);
    d.allowed = true;
    d.retry_after_seconds = 0;
  } else {
    d.allowed = false;
    d.retry_after_seconds = (cost > capacity || refill <= 0) ? kInf : (cost - b.tokens) / refill;
  }
  d.remaining = b.tokens;
  return d;
}

std::size_t TokenBucketLimiter::size() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s->mu);
    n += s->lru.size();
  }
  return n;
}

}  // namespace modulo::auth
