// The contract every KeywordIndex implementation must pass. It tests behaviour (ranking order,
// analysis, filters, lifecycle), never exact scores. An implementation's test file instantiates
// it with a factory:
//
//   INSTANTIATE_TEST_SUITE_P(Bm25, KeywordIndexContract, ::testing::Values(&MakeBm25Index));
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "modulo/index/keyword_index.h"

namespace modulo::index {

// Returns a fresh, empty index (and keeps whatever it needs alive until the next call).
using KeywordIndexFactory = std::shared_ptr<KeywordIndex> (*)();

class KeywordIndexContract : public ::testing::TestWithParam<KeywordIndexFactory> {
 protected:
  void SetUp() override { index_ = GetParam()(); }
  std::shared_ptr<KeywordIndex> index_;
};

}  // namespace modulo::index
