// The contract every BlobStore implementation must pass. An implementation's test file
// instantiates it with a factory:
//
//   INSTANTIATE_TEST_SUITE_P(Local, BlobStoreContract, ::testing::Values(&MakeLocalBlobStore));
//
// What it holds implementations to (LocalBlobStore's behaviour):
// - Put(file, sha256) returns the sha256 as the key and consumes the source file; Fetch(key)
//   then gives a readable path with exactly those bytes (empty, binary and multi-megabyte
//   contents alike).
// - The same content put twice (also concurrently) is one blob; both Puts succeed.
// - A key that is not a lower-case sha256 hex digest is kInvalidArgument for Put, Fetch and
//   Delete (so no key can name a path outside the store), and Put leaves the file alone.
// - Fetch of a blob never stored, or deleted, is kNotFound; Delete of an absent blob succeeds;
//   deleting one blob leaves the others.
// - Put of a source file that does not exist fails and stores nothing.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "modulo/store/blob_store.h"

namespace modulo::store {

// Returns a fresh, empty store (and keeps whatever it needs alive until the next call).
using BlobStoreFactory = std::shared_ptr<BlobStore> (*)();

class BlobStoreContract : public ::testing::TestWithParam<BlobStoreFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Writes `bytes` to a new file in this test's scratch directory (outside the store).
  std::filesystem::path Write(const std::string& bytes);

  std::shared_ptr<BlobStore> store_;
  std::filesystem::path scratch_;
};

}  // namespace modulo::store
