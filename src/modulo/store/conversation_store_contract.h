// The contract every ConversationStore implementation must pass. Sessions belong to a user and a
// collection, so an implementation's factory returns its ConversationStore together with an
// IdentityStore and a MetadataStore over the same database:
//
//   ConversationStoreFixture MakeSqlite() { ... }
//   INSTANTIATE_TEST_SUITE_P(Sqlite, ConversationStoreContract, ::testing::Values(&MakeSqlite));
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "modulo/store/conversation_store.h"
#include "modulo/store/identity_store.h"
#include "modulo/store/metadata_store.h"

namespace modulo::store {

struct ConversationStoreFixture {
  std::shared_ptr<ConversationStore> conversations;
  std::shared_ptr<IdentityStore> identity;  // the same database as `conversations`
  std::shared_ptr<MetadataStore> metadata;  // the same database as `conversations`
};

// Returns a fresh, empty set of stores (which keep whatever they need alive).
using ConversationStoreFactory = ConversationStoreFixture (*)();

class ConversationStoreContract : public ::testing::TestWithParam<ConversationStoreFactory> {
 protected:
  void SetUp() override {
    fixture_ = GetParam()();
    ASSERT_TRUE(fixture_.conversations);
    ASSERT_TRUE(fixture_.identity);
    ASSERT_TRUE(fixture_.metadata);
    store_ = fixture_.conversations.get();
    identity_ = fixture_.identity.get();
    meta_ = fixture_.metadata.get();
  }

  // A new user's id (fails the test when it cannot be created).
  std::string NewUser(const std::string& name);
  // A new collection of `owner_id`; returns its id ("" after a test failure).
  std::string NewCollectionOf(const std::string& name, const std::string& owner_id);
  // A new session (fails the test when it cannot be created).
  ConversationSession NewSession(const std::string& user_id, const std::string& collection_id,
                                 const std::string& name = "chat");
  // Appends a user question with `content`; returns it as stored.
  ConversationMessage Say(const std::string& session_id, const std::string& content);

  ConversationStoreFixture fixture_;
  ConversationStore* store_ = nullptr;
  IdentityStore* identity_ = nullptr;
  MetadataStore* meta_ = nullptr;
};

}  // namespace modulo::store
