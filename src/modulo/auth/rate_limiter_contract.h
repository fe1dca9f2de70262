// The contract every RateLimiter implementation passes, with the real clock (timings carry a
// tolerance). Instantiate with a factory:
//   INSTANTIATE_TEST_SUITE_P(Memory, RateLimiterContract, testing::Values(&MakeMemoryLimiter));
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "modulo/auth/rate_limiter.h"

namespace modulo::auth {

using RateLimiterFactory = std::unique_ptr<RateLimiter> (*)();

class RateLimiterContract : public testing::TestWithParam<RateLimiterFactory> {
 protected:
  void SetUp() override { limiter_ = GetParam()(); }
  std::unique_ptr<RateLimiter> limiter_;
};

}  // namespace modulo::auth
