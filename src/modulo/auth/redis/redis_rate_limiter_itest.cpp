// The RateLimiter contract and the shared-bucket behaviour of RedisRateLimiter, against a real
// redis-server.
#include "modulo/auth/redis/redis_rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <thread>
#include <vector>

#include "modulo/auth/rate_limiter_contract.h"
#include "modulo/redis/test_server.h"

namespace modulo::auth {
namespace {

using namespace std::chrono_literals;

redis::RedisOptions OptionsOrFail() {
  auto server = redis::SharedTestServer();
  if (!server) {
    ADD_FAILURE() << server.error().message();
    redis::RedisOptions unreachable;
    unreachable.port = 1;
    return unreachable;
  }
  return (*server)->Options(redis::UniqueTestPrefix());
}

// A RedisRateLimiter with its own client, as one server instance has.
class Instance final : public RateLimiter {
 public:
  explicit Instance(const redis::RedisOptions& o, metrics::Registry* registry = nullptr)
      : client_(std::make_unique<redis::RedisClient>(o)), limiter_(*client_, registry) {}
  Decision Take(std::string_view key, const BucketSpec& spec, double cost = 1) override {
    return limiter_.Take(key, spec, cost);
  }
  std::string_view backend() const noexcept override { return limiter_.backend(); }
  redis::RedisClient& client() { return *client_; }

 private:
  std::unique_ptr<redis::RedisClient> client_;
  RedisRateLimiter limiter_;
};

std::unique_ptr<RateLimiter> MakeRedisLimiter() { return std::make_unique<Instance>(OptionsOrFail()); }
INSTANTIATE_TEST_SUITE_P(Redis, RateLimiterContract, testing::Values(&MakeRedisLimiter));

TEST(RedisRateLimiterTest, TwoInstancesShareOneBucket) {
  const auto o = OptionsOrFail();
  Instance a(o), b(o);
  EXPECT_EQ(a.backend(), "redis");
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Instance& mine = t % 2 == 0 ? a : b;
      for (int i = 0; i < 100; ++i) {
        if (mine.Take("user:7|search", {150, 0}).allowed) ++allowed;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(allowed.load(), 150) << "one bucket across both instances";
  Decision d = b.Take("user:7|search", {150, 0});
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(std::isinf(d.retry_after_seconds));
  EXPECT_TRUE(a.Take("user:8|search", {150, 0}).allowed) << "other keys are untouched";
}

TEST(RedisRateLimiterTest, IdleBucketsExpireWhenFullAgain) {
  Instance a(OptionsOrFail());
  ASSERT_TRUE(a.Take("k", {10, 5}, 4).allowed);  // 6 left: full again in 0.8 s
  auto ttl = a.client().Command({"PTTL", a.client().Key("rl:k")});
  ASSERT_TRUE(ttl);
  EXPECT_GT(ttl->AsInteger().value_or(-1), 1000);
  EXPECT_LE(ttl->AsInteger().value_or(-1), 1800) << "time to refill (800 ms) plus a second";
  ASSERT_TRUE(a.Take("fixed", {3, 0}).allowed);
  auto never = a.client().Command({"PTTL", a.client().Key("rl:fixed")});
  EXPECT_GT(never->AsInteger().value_or(-1), 23 * 3600 * 1000) << "a bucket that never refills is kept for max_idle";
}

TEST(RedisRateLimiterTest, FallsBackToInProcessLimitsDuringAnOutage) {
  auto server = redis::RedisTestServer::Start({.fsync_always = true});
  ASSERT_TRUE(server) << server.error().message();
  metrics::Registry registry;
  Instance a((*server)->Options("rl-outage:"), &registry);
  ASSERT_TRUE(a.Take("k", {2, 0}).allowed);
  ASSERT_TRUE((*server)->Kill());
  const auto start = std::chrono::steady_clock::now();
  // The fallback bucket is this instance's own: it starts full, and it still limits.
  EXPECT_TRUE(a.Take("k", {2, 0}).allowed);
  EXPECT_TRUE(a.Take("k", {2, 0}).allowed);
  EXPECT_FALSE(a.Take("k", {2, 0}).allowed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_NE(registry.Expose().find("modulo_redis_rate_limiter_fallbacks_total 3"), std::string::npos)
      << registry.Expose();
  ASSERT_TRUE((*server)->Restart());
  std::this_thread::sleep_for(a.client().options().reconnect_backoff_max + 50ms);
  // Back on the shared bucket, as Redis replayed it from the AOF.
  Decision d = a.Take("k", {2, 0});
  EXPECT_TRUE(d.allowed);
  EXPECT_NEAR(d.remaining, 0, 1e-9) << "the bucket in Redis had one token left";
}

}  // namespace
}  // namespace modulo::auth
