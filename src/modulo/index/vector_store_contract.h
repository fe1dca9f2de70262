// The contract every VectorStore implementation must pass. An implementation's test file
// instantiates it with a factory that makes a fresh, empty store of the requested dimension:
//
//   INSTANTIATE_TEST_SUITE_P(Hnsw, VectorStoreContract, ::testing::Values(&MakeHnswStore));
//
// The cases use small dimensions (8 to 32) and at most a few thousand vectors, so a remote
// implementation can run them too; each one works on its own collection ids.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <memory>

#include "modulo/index/vector_store.h"

namespace modulo::index {

// Returns a fresh, empty store whose dimension() is `dimension` (and keeps whatever it needs
// alive as long as the store lives).
using VectorStoreFactory = std::shared_ptr<VectorStore> (*)(std::size_t dimension);

class VectorStoreContract : public ::testing::TestWithParam<VectorStoreFactory> {
 protected:
  std::shared_ptr<VectorStore> Make(std::size_t dimension) { return GetParam()(dimension); }
};

}  // namespace modulo::index
