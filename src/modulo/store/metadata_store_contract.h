// The contract every MetadataStore implementation must pass. An implementation's test file
// instantiates it with a factory:
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, MetadataStoreContract, ::testing::Values(&MakeSqliteStore));
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include "modulo/store/metadata_store.h"

namespace modulo::store {

// Returns a fresh, empty store (and keeps whatever it needs alive until the next call).
using MetadataStoreFactory = std::shared_ptr<MetadataStore> (*)();

class MetadataStoreContract : public ::testing::TestWithParam<MetadataStoreFactory> {
 protected:
  void SetUp() override { store_ = GetParam()(); }
  std::shared_ptr<MetadataStore> store_;
};

}  // namespace modulo::store
