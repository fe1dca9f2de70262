#include "modulo/auth/rate_limiter_contract.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

namespace modulo::auth {
namespace {

using namespace std::chrono_literals;

// Real time passes between calls (a network round trip for a shared limiter): refills of a few
// tokens per second move the numbers by far less than this.
constexpr double kTol = 0.05;

TEST_P(RateLimiterContract, NewBucketStartsFullAndDrains) {
  const BucketSpec spec{5, 2};
  for (int i = 0; i < 5; ++i) {
    Decision d = limiter_->Take("u", spec);
    EXPECT_TRUE(d.allowed) << i;
    EXPECT_NEAR(d.remaining, 4 - i, kTol);
    EXPECT_EQ(d.retry_after_seconds, 0);
  }
  Decision d = limiter_->Take("u", spec);
  EXPECT_FALSE(d.allowed);
  EXPECT_NEAR(d.retry_after_seconds, 0.5, kTol);
  EXPECT_NEAR(d.remaining, 0, kTol);
}

TEST_P(RateLimiterContract, RefillsOverTimeUpToCapacity) {
  const BucketSpec spec{4, 10};  // 10 tokens per second
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(limiter_->Take("k", spec).allowed);
  Decision empty = limiter_->Take("k", spec, 2);
  EXPECT_FALSE(empty.allowed) << "denials do not consume";
  EXPECT_NEAR(empty.retry_after_seconds, (2 - empty.remaining) / 10, 1e-6);
  std::this_thread::sleep_for(250ms);  // +2.5 tokens
  Decision d = limiter_->Take("k", spec, 2);
  EXPECT_TRUE(d.allowed);
  EXPECT_GE(d.remaining, 0.5 - kTol);
  EXPECT_LT(d.remaining, 2.0) << "not much more than 250 ms passed";
  std::this_thread::sleep_for(600ms);  // far more than needed to fill up
  d = limiter_->Take("k", spec, 0);
  EXPECT_TRUE(d.allowed);
  EXPECT_NEAR(d.remaining, 4, 1e-9) << "refill stops at capacity";
}

TEST_P(RateLimiterContract, ImpossibleRequestsWaitForever) {
  Decision d = limiter_->Take("k", {5, 1}, 6);
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(std::isinf(d.retry_after_seconds));
  EXPECT_NEAR(d.remaining, 5, kTol) << "nothing taken";
  // A zero refill rate: a fixed allowance.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter_->Take("fixed", {3, 0}).allowed);
  d = limiter_->Take("fixed", {3, 0});
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(std::isinf(d.retry_after_seconds));
  EXPECT_EQ(d.remaining, 0);
}

TEST_P(RateLimiterContract, KeysAreIndependent) {
  EXPECT_TRUE(limiter_->Take("a", {1, 0.01}).allowed);
  EXPECT_FALSE(limiter_->Take("a", {1, 0.01}).allowed);
  EXPECT_TRUE(limiter_->Take("b", {1, 0.01}).allowed);
  EXPECT_TRUE(limiter_->Take(std::string("a\0x", 3), {1, 0.01}).allowed) << "keys are binary-safe";
  EXPECT_TRUE(limiter_->Take("", {1, 0.01}).allowed);
}

TEST_P(RateLimiterContract, SpecChangesApplyAndClamp) {
  EXPECT_TRUE(limiter_->Take("k", {100, 1}).allowed);  // 99 left
  Decision d = limiter_->Take("k", {10, 1});           // clamped to 10, then one taken
  EXPECT_TRUE(d.allowed);
  EXPECT_NEAR(d.remaining, 9, kTol);
}

TEST_P(RateLimiterContract, NegativeInputsCountAsZero) {
  Decision d = limiter_->Take("k", {2, 1}, -5);
  EXPECT_TRUE(d.allowed);
  EXPECT_NEAR(d.remaining, 2, kTol);
  d = limiter_->Take("neg", {-1, -1});
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(std::isinf(d.retry_after_seconds));
}

TEST_P(RateLimiterContract, ConcurrentTakesNeverOverspend) {
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 250; ++i) {
        if (limiter_->Take("shared", {300, 0}).allowed) ++allowed;  // refill 0: the total is exact
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(allowed.load(), 300);
}

}  // namespace
}  // namespace modulo::auth
