// Rate limiting with token buckets.
//
// RateLimiter is the interface the server codes against; TokenBucketLimiter is the in-process
// implementation (one process). A Redis implementation (shared across replicas) can come later
// behind the same interface.
//
// Semantics of Take(key, spec, cost): the bucket of `key` holds up to spec.capacity tokens (a new
// bucket starts full) and gains spec.refill_per_second tokens per second. If it holds at least
// `cost` tokens they are removed and the request is allowed; otherwise nothing is removed and
// retry_after_seconds says when `cost` tokens will be there (+infinity if never: cost > capacity
// or a zero refill rate). `remaining` is the token count after the decision. The spec may differ
// between calls for the same key; the latest one applies (tokens are clamped to its capacity).
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace modulo::auth {

struct BucketSpec {
  double capacity = 0;
  double refill_per_second = 0;
};

struct Decision {
  bool allowed = false;
  double retry_after_seconds = 0;  // 0 when allowed
  double remaining = 0;
};

class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  [[nodiscard]] virtual Decision Take(std::string_view key, const BucketSpec& spec, double cost = 1) = 0;
  // "memory", "redis", ...
  [[nodiscard]] virtual std::string_view backend() const noexcept = 0;
};

struct TokenBucketOptions {
  std::size_t shards = 16;
  // Upper bound on buckets held. Buckets idle long enough to be full again are dropped first (that
  // changes nothing: a new bucket starts full); past the bound the least recently used bucket of
  // the shard is dropped even if not full (its key then starts over with a full bucket).
  std::size_t max_buckets = 100000;
};

class TokenBucketLimiter final : public RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  // `now` is injectable for tests; it defaults to the steady clock.
  explicit TokenBucketLimiter(TokenBucketOptions options = {}, std::function<Clock::time_point()> now = nullptr);

  [[nodiscard]] Decision Take(std::string_view key, const BucketSpec& spec, double cost = 1) override;
  [[nodiscard]] std::string_view backend() const noexcept override { return "memory"; }

  // Buckets currently held (across shards).
  [[nodiscard]] std::size_t size() const;

 private:
  struct Bucket {
    std::string key;
    double tokens = 0;
    double capacity = 0;
    double refill_per_second = 0;
    Clock::time_point updated;
  };
  struct Shard {
    mutable std::mutex mu;
    std::list<Bucket> lru;  // most recently used first; guarded by mu
    std::unordered_map<std::string_view, std::list<Bucket>::iterator> index;  // views into lru keys
    std::size_t takes_since_sweep = 0;
  };

  [[nodiscard]] Shard& ShardFor(std::string_view key);

  TokenBucketOptions options_;
  std::size_t buckets_per_shard_;
  std::function<Clock::time_point()> now_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace modulo::auth
