// The contract every IdentityStore implementation must pass. Grants and access levels need
// collections, so an implementation's factory returns its IdentityStore together with a
// MetadataStore over the same database:
//
//   IdentityStoreFixture MakeSqlite() { ... }
//   INSTANTIATE_TEST_SUITE_P(Sqlite, IdentityStoreContract, ::testing::Values(&MakeSqlite));
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "modulo/store/identity_store.h"
#include "modulo/store/metadata_store.h"

namespace modulo::store {

struct IdentityStoreFixture {
  std::shared_ptr<IdentityStore> identity;
  std::shared_ptr<MetadataStore> metadata;  // the same database as `identity`
  // Optional: sets a collection's owner_type ("user" | "team") directly, for a MetadataStore
  // that does not store NewCollection::owner_type itself. The suite calls it only when a
  // collection created as team-owned does not read back as such.
  std::function<void(const std::string& collection_id, const std::string& owner_type)> set_owner_type;
};

// Returns a fresh, empty pair of stores (which keep whatever they need alive).
using IdentityStoreFactory = IdentityStoreFixture (*)();

class IdentityStoreContract : public ::testing::TestWithParam<IdentityStoreFactory> {
 protected:
  void SetUp() override {
    fixture_ = GetParam()();
    ASSERT_TRUE(fixture_.identity);
    ASSERT_TRUE(fixture_.metadata);
    store_ = fixture_.identity.get();
    meta_ = fixture_.metadata.get();
  }

  // A new user (fails the test when it cannot be created).
  User NewUser(const std::string& name, const std::string& role = "user", const std::string& subject = "");
  // A new collection owned by a user or a team; returns its id ("" after a test failure).
  std::string NewCollectionOf(const std::string& name, const std::string& owner_id,
                              const std::string& owner_type = "user");
  // The user's team ids, as the request path computes them.
  std::vector<std::string> TeamsOf(const std::string& user_id);
  // AccessLevelFor with the user's current teams.
  AccessLevel LevelOf(const std::string& user_id, const std::string& collection_id);

  IdentityStoreFixture fixture_;
  IdentityStore* store_ = nullptr;
  MetadataStore* meta_ = nullptr;
};

}  // namespace modulo::store
