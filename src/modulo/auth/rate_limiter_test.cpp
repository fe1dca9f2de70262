#include "modulo/auth/rate_limiter.h"

#include <atomic>
#include <cmath>
#include <thread>

#include <gtest/gtest.h>

#include "modulo/auth/rate_limiter_contract.h"

namespace modulo::auth {
namespace {

std::unique_ptr<RateLimiter> MakeMemoryLimiter() { return std::make_unique<TokenBucketLimiter>(); }
INSTANTIATE_TEST_SUITE_P(Memory, RateLimiterContract, testing::Values(&MakeMemoryLimiter));

// Below: the in-process limiter's own tests, with an injected clock for exact refill arithmetic.

using Clock = TokenBucketLimiter::Clock;
using std::chrono::milliseconds;

struct FakeClock {
  std::shared_ptr<std::atomic<std::int64_t>> ns = std::make_shared<std::atomic<std::int64_t>>(1'000'000'000'000);
  void Advance(milliseconds d) { ns->fetch_add(std::chrono::nanoseconds(d).count()); }
  void Back(milliseconds d) { ns->fetch_sub(std::chrono::nanoseconds(d).count()); }
  [[nodiscard]] std::function<Clock::time_point()> Fn() const {
    auto p = ns;
    return [p] { return Clock::time_point(std::chrono::nanoseconds(p->load())); };
  }
};

TEST(TokenBucketTest, NewBucketStartsFullAndDrains) {
  FakeClock clock;
  TokenBucketLimiter limiter({}, clock.Fn());
  const BucketSpec spec{5, 2};
  for (int i = 0; i < 5; ++i) {
    Decision d = limiter.Take("u", spec);
    EXPECT_TRUE(d.allowed);
    EXPECT_DOUBLE_EQ(d.remaining, 4 - i);
    EXPECT_EQ(d.retry_after_seconds, 0);
  }
  Decision d = limiter.Take("u", spec);
  EXPECT_FALSE(d.allowed);
  EXPECT_NEAR(d.retry_after_seconds, 0.5, 1e-9);
  EXPECT_NEAR(d.remaining, 0, 1e-9);
  EXPECT_EQ(limiter.backend(), "memory");
}

TEST(TokenBucketTest, RefillMath) {
  FakeClock clock;
  TokenBucketLimiter limiter({}, clock.Fn());
  const BucketSpec spec{10, 4};  // 4 tokens per second
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(limiter.Take("k", spec).allowed);
  clock.Advance(milliseconds(125));  // +0.5 token
  Decision d = limiter.Take("k", spec);
  EXPECT_FALSE(d.allowed);
  EXPECT_NEAR(d.remaining, 0.5, 1e-9);
  EXPECT_NEAR(d.retry_after_seconds, 0.125, 1e-9);
  clock.Advance(milliseconds(125));
  d = limiter.Take("k", spec);
  EXPECT_TRUE(d.allowed);
  EXPECT_NEAR(d.remaining, 0, 1e-9);
  // Denials do not consume; a cost above the tokens waits for the difference.
  clock.Advance(milliseconds(500));  // +2
  d = limiter.Take("k", spec, 3);
  EXPECT_FALSE(d.allowed);
  EXPECT_NEAR(d.remaining, 2, 1e-9);
  EXPECT_NEAR(d.retry_after_seconds, 0.25, 1e-9);
  d = limiter.Take("k", spec, 2);
  EXPECT_TRUE(d.allowed);
  // Refill stops at capacity.
  clock.Advance(milliseconds(60'000));
  d = limiter.Take("k", spec, 0);
  EXPECT_TRUE(d.allowed);
  EXPECT_NEAR(d.remaining, 10, 1e-9);
}

TEST(TokenBucketTest, ImpossibleRequestsWaitForever) {
  FakeClock clock;
  TokenBucketLimiter limiter({}, clock.Fn());
  Decision d = limiter.Take("k", {5, 1}, 6);
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(std::isinf(d.retry_after_seconds));
  EXPECT_NEAR(d.remaining, 5, 1e-9);
  // A zero refill rate: a fixed allowance.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Take("fixed", {3, 0}).allowed);
  clock.Advance(milliseconds(1'000'000));
  d = limiter.Take("fixed", {3, 0});
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(std::isinf(d.retry_after_seconds));
}

TEST(TokenBucketTest, KeysAreIndependent) {
  FakeClock clock;
  TokenBucketLimiter limiter({}, clock.Fn());
  EXPECT_TRUE(limiter.Take("a", {1, 1}).allowed);
  EXPECT_FALSE(limiter.Take("a", {1, 1}).allowed);
  EXPECT_TRUE(limiter.Take("b", {1, 1}).allowed);
  EXPECT_TRUE(limiter.Take(std::string("a\0x", 3), {1, 1}).allowed);
}

TEST(TokenBucketTest, SpecChangesApplyAndClamp) {
  FakeClock clock;
  TokenBucketLimiter limiter({}, clock.Fn());
  EXPECT_TRUE(limiter.Take("k", {100, 1}).allowed);  // 99 left
  Decision d = limiter.Take("k", {10, 1});             // clamped to 10, then one taken
  EXPECT_TRUE(d.allowed);
  EXPECT_NEAR(d.remaining, 9, 1e-9);
}

TEST(TokenBucketTest, ClockGoingBackwardsDoesNotRefill) {
  FakeClock clock;
  TokenBucketLimiter limiter({}, clock.Fn());
  EXPECT_TRUE(limiter.Take("k", {1, 1}).allowed);
  clock.Back(milliseconds(5000));
  EXPECT_FALSE(limiter.Take("k", {1, 1}).allowed);
  clock.Advance(milliseconds(5000));
  EXPECT_FALSE(limiter.Take("k", {1, 1}).allowed);
  clock.Advance(milliseconds(1000));
  EXPECT_TRUE(limiter.Take("k", {1, 1}).allowed);
}

TEST(TokenBucketTest, FullBucketsAreForgotten) {
  FakeClock clock;
  TokenBucketLimiter limiter({.shards = 1, .max_buckets = 100000}, clock.Fn());
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter.Take("k" + std::to_string(i), {10, 10}).allowed);
  EXPECT_EQ(limiter.size(), 1000u);
  clock.Advance(milliseconds(100));  // each bucket is back to 10 tokens
  for (int i = 0; i < 300; ++i) (void)limiter.Take("fresh", {10, 1000});
  EXPECT_LT(limiter.size(), 1000u - 300u * 3);  // several idle buckets dropped per Take
  // Forgetting full buckets changes nothing observable.
  for (int i = 0; i < 1000; ++i) {
    Decision d = limiter.Take("k" + std::to_string(i), {10, 10});
    EXPECT_TRUE(d.allowed);
    EXPECT_NEAR(d.remaining, 9, 1e-9);
  }
  // A bucket that is not yet full is kept.
  TokenBucketLimiter l2({.shards = 1}, clock.Fn());
  for (int i = 0; i < 5; ++i) (void)l2.Take("slow", {5, 0.001});
  for (int i = 0; i < 100; ++i) (void)l2.Take("other" + std::to_string(i), {1, 1000});
  clock.Advance(milliseconds(10));
  for (int i = 0; i < 100; ++i) (void)l2.Take("x", {1, 1000});
  EXPECT_FALSE(l2.Take("slow", {5, 0.001}).allowed);
  EXPECT_LE(l2.size(), 3u);  // the full ones behind "slow" went in a full sweep
}

TEST(TokenBucketTest, BucketCountIsBounded) {
  FakeClock clock;
  TokenBucketLimiter limiter({.shards = 4, .max_buckets = 100}, clock.Fn());
  for (int i = 0; i < 20000; ++i) {
    (void)limiter.Take("attacker-" + std::to_string(i), {5, 0.0001});  // never full again soon
    ASSERT_LE(limiter.size(), 100u);
  }
  EXPECT_GE(limiter.size(), 90u);
}

TEST(TokenBucketTest, ConcurrentTakesNeverOverspend) {
  TokenBucketLimiter limiter;  // real clock; refill 0 makes the total exact
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        if (limiter.Take("shared", {1000, 0}).allowed) ++allowed;
        (void)limiter.Take("own-" + std::to_string(t) + "-" + std::to_string(i % 50), {3, 0});
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(allowed.load(), 1000);
  EXPECT_EQ(limiter.size(), 1u + 4 * 50);
}

}  // namespace
}  // namespace modulo::auth
