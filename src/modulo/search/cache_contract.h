// The contract every Cache implementation passes. Instantiate with a factory:
//   INSTANTIATE_TEST_SUITE_P(Memory, CacheContract, testing::Values(&MakeMemoryCache));
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "modulo/search/cache.h"

namespace modulo::search {

using CacheFactory = std::unique_ptr<Cache> (*)();

class CacheContract : public testing::TestWithParam<CacheFactory> {
 protected:
  void SetUp() override { cache_ = GetParam()(); }
  std::unique_ptr<Cache> cache_;
};

}  // namespace modulo::search
