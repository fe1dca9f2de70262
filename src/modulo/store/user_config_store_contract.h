// The contract every UserConfigStore implementation must pass. Records belong to users, so an
// implementation's factory returns its UserConfigStore together with an IdentityStore over the
// same database (to create and delete users):
//
//   UserConfigStoreFixture MakeSqlite() { ... }
//   INSTANTIATE_TEST_SUITE_P(Sqlite, UserConfigStoreContract, ::testing::Values(&MakeSqlite));
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "modulo/store/identity_store.h"
#include "modulo/store/user_config_store.h"

namespace modulo::store {

struct UserConfigStoreFixture {
  std::shared_ptr<UserConfigStore> configs;
  std::shared_ptr<IdentityStore> identity;  // the same database as `configs`
};

// Returns a fresh, empty pair of stores (which keep whatever they need alive).
using UserConfigStoreFactory = UserConfigStoreFixture (*)();

class UserConfigStoreContract : public ::testing::TestWithParam<UserConfigStoreFactory> {
 protected:
  void SetUp() override {
    fixture_ = GetParam()();
    ASSERT_TRUE(fixture_.configs);
    ASSERT_TRUE(fixture_.identity);
    store_ = fixture_.configs.get();
    identity_ = fixture_.identity.get();
  }

  // A new user's id (fails the test when it cannot be created).
  std::string NewUser(const std::string& name);
  // Creates a record (fails the test when it cannot); returns it as stored.
  ConfigRecord Put(const std::string& user_id, ConfigKind kind, const std::string& name,
                   const std::string& parent_id = "", const std::string& scope = "", bool is_default = false);
  // The ids of the user's records of `kind` that have is_default set.
  std::vector<std::string> DefaultsOf(const std::string& user_id, ConfigKind kind);

  UserConfigStoreFixture fixture_;
  UserConfigStore* store_ = nullptr;
  IdentityStore* identity_ = nullptr;
};

}  // namespace modulo::store
