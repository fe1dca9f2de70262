// RedisRateLimiter: token buckets shared by every server instance, in Redis, with the semantics
// of RateLimiter (rate_limiter.h) — it passes rate_limiter_contract.h like TokenBucketLimiter.
//
// One Lua script decides atomically: the bucket is a hash (<key_prefix>rl:<key>: tokens and the
// last refill time) refilled from the Redis server's clock (TIME), so all instances see one
// bucket whatever their own clocks say. Each write sets PEXPIRE to the time the bucket needs to
// be full again (plus a second): an idle bucket vanishes exactly when forgetting it changes
// nothing, so Redis holds only buckets in use. A bucket that never refills (refill 0) is kept
// for `max_idle`, after which its key starts over with a full bucket.
//
// When Redis cannot be reached, Take falls back to an in-process TokenBucketLimiter (limits
// then hold per instance rather than across them), counts the fallback in
// modulo_redis_rate_limiter_fallbacks_total and logs at most once per 10 s. Requests are
// neither all refused nor let through unlimited during an outage.
//
// Thread-safety: all methods are thread-safe. The RedisClient must outlive the limiter.
#pragma once

#include <chrono>
#include <string>

#include "modulo/auth/rate_limiter.h"
#include "modulo/metrics/registry.h"
#include "modulo/redis/client.h"

namespace modulo::auth {

struct RedisRateLimiterOptions {
  std::chrono::milliseconds max_idle = std::chrono::hours(24);
  TokenBucketOptions fallback;  // the in-process limiter used while Redis is unreachable
};

class RedisRateLimiter final : public RateLimiter {
 public:
  explicit RedisRateLimiter(redis::RedisClient& client, metrics::Registry* registry = nullptr,
                            RedisRateLimiterOptions options = {});

  [[nodiscard]] Decision Take(std::string_view key, const BucketSpec& spec, double cost = 1) override;
  [[nodiscard]] std::string_view backend() const noexcept override { return "redis"; }

 private:
  redis::RedisClient& client_;
  RedisRateLimiterOptions options_;
  std::string prefix_;
  TokenBucketLimiter fallback_;
  redis::LogThrottle log_;
  metrics::Counter* fallbacks_ = nullptr;
};

}  // namespace modulo::auth
