#include "modulo/store/user_config_store_contract.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>

namespace modulo::store {

std::string UserConfigStoreContract::NewUser(const std::string& name) {
  User u;
  u.name = name;
  auto created = identity_->CreateUser(u);
  EXPECT_TRUE(created) << created.error().ToString();
  return created ? created->id : std::string();
}

ConfigRecord UserConfigStoreContract::Put(const std::string& user_id, ConfigKind kind, const std::string& name,
                                          const std::string& parent_id, const std::string& scope, bool is_default) {
  ConfigRecord r;
  r.user_id = user_id;
  r.kind = kind;
  r.name = name;
  r.parent_id = parent_id;
  r.scope = scope;
  r.is_default = is_default;
  auto created = store_->Create(r);
  EXPECT_TRUE(created) << created.error().ToString();
  return created ? *created : ConfigRecord{};
}

std::vector<std::string> UserConfigStoreContract::DefaultsOf(const std::string& user_id, ConfigKind kind) {
  std::vector<std::string> out;
  auto all = store_->List(user_id, kind);
  EXPECT_TRUE(all) << all.error().ToString();
  if (all) {
    for (const auto& r : *all) {
      if (r.is_default) out.push_back(r.id);
    }
  }
  return out;
}

namespace {

ErrorCode CodeOf(const Status& s) { return s ? ErrorCode::kInternal : s.error().code(); }

template <typename T>
ErrorCode CodeOf(const Result<T>& r) {
  return r ? ErrorCode::kInternal : r.error().code();
}

// Every byte value, NUL and 0xFF among them.
std::string AllBytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s + std::string("\0\xff\0", 3);
}

constexpr ConfigKind kAllKinds[] = {ConfigKind::kLlmProvider, ConfigKind::kLlmModel, ConfigKind::kLlmParameters,
                                    ConfigKind::kPromptTemplate, ConfigKind::kPipeline};

TEST(ConfigKindTest, NamesRoundTrip) {
  for (auto k : kAllKinds) EXPECT_EQ(ParseConfigKind(ToString(k)), k);
  EXPECT_EQ(ToString(ConfigKind::kLlmProvider), "llm_provider");
  EXPECT_EQ(ToString(ConfigKind::kLlmModel), "llm_model");
  EXPECT_EQ(ToString(ConfigKind::kLlmParameters), "llm_parameters");
  EXPECT_EQ(ToString(ConfigKind::kPromptTemplate), "prompt_template");
  EXPECT_EQ(ToString(ConfigKind::kPipeline), "pipeline");
  EXPECT_FALSE(ParseConfigKind("provider"));
  EXPECT_FALSE(ParseConfigKind(""));
}

TEST(ValidateConfigRecordTest, ChecksEveryField) {
  ConfigRecord ok;
  ok.user_id = "u";
  ok.name = "watsonx";
  EXPECT_TRUE(ValidateConfigRecord(ok));
  auto code = [](ConfigRecord r) { return CodeOf(ValidateConfigRecord(r)); };
  auto with = [&](auto change) {
    ConfigRecord r = ok;
    change(r);
    return code(r);
  };
  EXPECT_EQ(with([](ConfigRecord& r) { r.user_id.clear(); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](ConfigRecord& r) { r.name.clear(); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](ConfigRecord& r) { r.name = std::string(256, 'n'); }), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(ValidateConfigRecord([&] {
    ConfigRecord r = ok;
    r.name = std::string(255, 'n');
    return r;
  }()));
  EXPECT_TRUE(ValidateConfigRecord([&] {
    ConfigRecord r = ok;
    r.name = "Modèle – 日本語 🚀";
    return r;
  }()));
  EXPECT_EQ(with([](ConfigRecord& r) { r.name = "tab\there"; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](ConfigRecord& r) { r.name = std::string("nul\0x", 5); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](ConfigRecord& r) { r.name = "del\x7f"; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](ConfigRecord& r) { r.name = "c1\xc2\x85"; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](ConfigRecord& r) { r.name = "bad\xff"; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](ConfigRecord& r) { r.name = "overlong\xc0\xaf"; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](ConfigRecord& r) { r.body = ""; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](ConfigRecord& r) { r.body = "[1, 2]"; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](ConfigRecord& r) { r.body = "{\"a\": "; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](ConfigRecord& r) { r.body = "\"text\""; }), ErrorCode::kInvalidArgument);
  // 1 MiB of JSON object is fine, one byte more is not.
  const std::string prefix = "{\"t\":\"";
  const std::string suffix = "\"}";
  std::string big = prefix + std::string((std::size_t{1} << 20) - prefix.size() - suffix.size(), 'x') + suffix;
  EXPECT_TRUE(ValidateConfigRecord([&] {
    ConfigRecord r = ok;
    r.body = big;
    return r;
  }()));
  big.insert(prefix.size(), "x");
  EXPECT_EQ(with([&](ConfigRecord& r) { r.body = big; }), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(ValidateConfigRecord([&] {
    ConfigRecord r = ok;
    r.secret = std::string(16 * 1024, '\xff');
    return r;
  }()));
  EXPECT_EQ(with([](ConfigRecord& r) { r.secret = std::string(16 * 1024 + 1, 's'); }), ErrorCode::kInvalidArgument);
  // parent_id: exactly for models.
  EXPECT_EQ(with([](ConfigRecord& r) { r.kind = ConfigKind::kLlmModel; }), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(ValidateConfigRecord([&] {
    ConfigRecord r = ok;
    r.kind = ConfigKind::kLlmModel;
    r.parent_id = "p";
    return r;
  }()));
  for (auto k : {ConfigKind::kLlmProvider, ConfigKind::kLlmParameters, ConfigKind::kPromptTemplate,
                 ConfigKind::kPipeline}) {
    EXPECT_EQ(with([&](ConfigRecord& r) {
                r.kind = k;
                r.parent_id = "p";
              }),
              ErrorCode::kInvalidArgument)
        << ToString(k);
  }
  // The error names the field.
  ConfigRecord bad = ok;
  bad.body = "[]";
  EXPECT_NE(ValidateConfigRecord(bad).error().message().find("body"), std::string::npos);
  bad = ok;
  bad.secret = std::string(20000, 's');
  EXPECT_NE(ValidateConfigRecord(bad).error().message().find("secret"), std::string::npos);
}

TEST_P(UserConfigStoreContract, RecordsCanBeCreatedReadListedUpdatedAndDeleted) {
  const auto alice = NewUser("alice");
  ConfigRecord in;
  in.user_id = alice;
  in.kind = ConfigKind::kLlmProvider;
  in.name = "watsonx";
  in.body = R"({"base_url":"https://us-south.ml.cloud.ibm.com","project_id":"p-1"})";
  in.secret = "encrypted-key";
  auto created = store_->Create(in);
  ASSERT_TRUE(created) << created.error().ToString();
  EXPECT_EQ(created->id.size(), 36u);
  EXPECT_GT(created->created_at_ms, 0);
  EXPECT_EQ(created->created_at_ms, created->updated_at_ms);
  EXPECT_EQ(created->name, "watsonx");
  EXPECT_FALSE(created->is_default);

  auto got = store_->Get(alice, ConfigKind::kLlmProvider, created->id);
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(got->id, created->id);
  EXPECT_EQ(got->user_id, alice);
  EXPECT_EQ(got->kind, ConfigKind::kLlmProvider);
  EXPECT_EQ(got->parent_id, "");
  EXPECT_EQ(got->name, "watsonx");
  EXPECT_EQ(got->scope, "");
  EXPECT_EQ(got->body, in.body);
  EXPECT_EQ(got->secret, "encrypted-key");
  EXPECT_EQ(got->created_at_ms, created->created_at_ms);
  EXPECT_EQ(got->updated_at_ms, created->updated_at_ms);

  // A given id is kept.
  ConfigRecord with_id;
  with_id.id = "2b9d7f2e-2d53-4c8e-9a43-6f1de1f1a001";
  with_id.user_id = alice;
  with_id.kind = ConfigKind::kPipeline;
  with_id.name = "default pipeline";
  auto kept = store_->Create(with_id);
  ASSERT_TRUE(kept) << kept.error().ToString();
  EXPECT_EQ(kept->id, with_id.id);
  EXPECT_EQ(store_->Get(alice, ConfigKind::kPipeline, with_id.id)->name, "default pipeline");

  auto providers = store_->List(alice, ConfigKind::kLlmProvider);
  ASSERT_TRUE(providers) << providers.error().ToString();
  ASSERT_EQ(providers->size(), 1u);
  EXPECT_EQ((*providers)[0].secret, "encrypted-key");
  EXPECT_EQ(store_->List(alice, ConfigKind::kPipeline)->size(), 1u);
  EXPECT_TRUE(store_->List(alice, ConfigKind::kPromptTemplate)->empty());
  EXPECT_TRUE(store_->List("no-such-user", ConfigKind::kLlmProvider)->empty());

  // Update replaces name, scope, is_default and body; the secret only when asked.
  ConfigRecord change = *got;
  change.name = "watsonx-eu";
  change.scope = "s";
  change.body = R"({"base_url":"https://eu-de.ml.cloud.ibm.com"})";
  change.secret = "ignored";
  change.created_at_ms = 1;
  auto updated = store_->Update(change, false);
  ASSERT_TRUE(updated) << updated.error().ToString();
  EXPECT_EQ(updated->name, "watsonx-eu");
  EXPECT_EQ(updated->scope, "s");
  EXPECT_EQ(updated->body, change.body);
  EXPECT_EQ(updated->secret, "encrypted-key") << "kept without replace_secret";
  EXPECT_EQ(updated->created_at_ms, created->created_at_ms);
  EXPECT_GE(updated->updated_at_ms, created->updated_at_ms);
  auto reread = store_->Get(alice, ConfigKind::kLlmProvider, created->id);
  ASSERT_TRUE(reread);
  EXPECT_EQ(reread->name, "watsonx-eu");
  EXPECT_EQ(reread->secret, "encrypted-key");
  EXPECT_EQ(reread->created_at_ms, created->created_at_ms);

  change.secret = "rotated";
  auto rotated = store_->Update(change, true);
  ASSERT_TRUE(rotated) << rotated.error().ToString();
  EXPECT_EQ(rotated->secret, "rotated");
  EXPECT_EQ(store_->Get(alice, ConfigKind::kLlmProvider, created->id)->secret, "rotated");
  change.secret.clear();
  ASSERT_TRUE(store_->Update(change, true));
  EXPECT_EQ(store_->Get(alice, ConfigKind::kLlmProvider, created->id)->secret, "") << "an empty secret removes it";

  // Malformed updates change nothing.
  change.body = "not json";
  EXPECT_EQ(CodeOf(store_->Update(change, false)), ErrorCode::kInvalidArgument);
  change.body = "{}";
  change.name = "";
  EXPECT_EQ(CodeOf(store_->Update(change, false)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->Get(alice, ConfigKind::kLlmProvider, created->id)->name, "watsonx-eu");

  // Delete.
  ASSERT_TRUE(store_->Delete(alice, ConfigKind::kLlmProvider, created->id));
  EXPECT_EQ(CodeOf(store_->Get(alice, ConfigKind::kLlmProvider, created->id)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->Delete(alice, ConfigKind::kLlmProvider, created->id)), ErrorCode::kNotFound);
  EXPECT_TRUE(store_->List(alice, ConfigKind::kLlmProvider)->empty());
  EXPECT_EQ(store_->List(alice, ConfigKind::kPipeline)->size(), 1u);
}

TEST_P(UserConfigStoreContract, SecretsAreBinarySafe) {
  const auto alice = NewUser("alice");
  ConfigRecord in;
  in.user_id = alice;
  in.kind = ConfigKind::kLlmProvider;
  in.name = "openai";
  in.secret = AllBytes();
  auto created = store_->Create(in);
  ASSERT_TRUE(created) << created.error().ToString();
  auto got = store_->Get(alice, ConfigKind::kLlmProvider, created->id);
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(got->secret.size(), in.secret.size());
  EXPECT_EQ(got->secret, in.secret);
  EXPECT_EQ((*store_->List(alice, ConfigKind::kLlmProvider))[0].secret, in.secret);

  // A secret that is only a NUL, and the largest one allowed.
  ConfigRecord change = *got;
  change.secret = std::string(1, '\0');
  ASSERT_TRUE(store_->Update(change, true));
  EXPECT_EQ(store_->Get(alice, ConfigKind::kLlmProvider, created->id)->secret, std::string(1, '\0'));
  std::string largest(16 * 1024, '\0');
  for (std::size_t i = 0; i < largest.size(); ++i) largest[i] = static_cast<char>((i * 131) & 0xff);
  change.secret = largest;
  ASSERT_TRUE(store_->Update(change, true));
  EXPECT_EQ(store_->Get(alice, ConfigKind::kLlmProvider, created->id)->secret, largest);
  change.secret += "x";
  EXPECT_EQ(CodeOf(store_->Update(change, true)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->Get(alice, ConfigKind::kLlmProvider, created->id)->secret, largest);

  ConfigRecord too_big = in;
  too_big.name = "too big";
  too_big.secret = std::string(16 * 1024 + 1, '\xff');
  EXPECT_EQ(CodeOf(store_->Create(too_big)), ErrorCode::kInvalidArgument);
}

TEST_P(UserConfigStoreContract, NamesAreUniquePerUserKindAndParent) {
  const auto alice = NewUser("alice");
  const auto bob = NewUser("bob");
  const auto openai = Put(alice, ConfigKind::kLlmProvider, "openai");
  const auto anthropic = Put(alice, ConfigKind::kLlmProvider, "anthropic");

  ConfigRecord dup;
  dup.user_id = alice;
  dup.kind = ConfigKind::kLlmProvider;
  dup.name = "openai";
  EXPECT_EQ(CodeOf(store_->Create(dup)), ErrorCode::kAlreadyExists);
  // Another kind, another user: free.
  Put(alice, ConfigKind::kLlmParameters, "openai");
  Put(bob, ConfigKind::kLlmProvider, "openai");
  // Models: unique per provider.
  Put(alice, ConfigKind::kLlmModel, "gpt-4o", openai.id);
  Put(alice, ConfigKind::kLlmModel, "gpt-4o", anthropic.id);
  ConfigRecord model;
  model.user_id = alice;
  model.kind = ConfigKind::kLlmModel;
  model.parent_id = openai.id;
  model.name = "gpt-4o";
  EXPECT_EQ(CodeOf(store_->Create(model)), ErrorCode::kAlreadyExists);
  // A taken id.
  ConfigRecord same_id;
  same_id.id = openai.id;
  same_id.user_id = alice;
  same_id.kind = ConfigKind::kLlmProvider;
  same_id.name = "another";
  EXPECT_EQ(CodeOf(store_->Create(same_id)), ErrorCode::kAlreadyExists);
  EXPECT_EQ(store_->List(alice, ConfigKind::kLlmProvider)->size(), 2u);
  EXPECT_EQ(store_->List(alice, ConfigKind::kLlmModel)->size(), 2u);

  // Renaming onto a taken name.
  ConfigRecord rename = anthropic;
  rename.name = "openai";
  EXPECT_EQ(CodeOf(store_->Update(rename, false)), ErrorCode::kAlreadyExists);
  EXPECT_EQ(store_->Get(alice, ConfigKind::kLlmProvider, anthropic.id)->name, "anthropic");
  rename.name = "anthropic";  // its own name is fine
  EXPECT_TRUE(store_->Update(rename, false));
  // A deleted record's name is free again.
  ASSERT_TRUE(store_->Delete(alice, ConfigKind::kLlmProvider, anthropic.id));
  dup.name = "anthropic";
  EXPECT_TRUE(store_->Create(dup));
}

TEST_P(UserConfigStoreContract, CreateChecksTheUserTheParentAndTheFields) {
  const auto alice = NewUser("alice");
  const auto bob = NewUser("bob");
  const auto provider = Put(alice, ConfigKind::kLlmProvider, "openai");
  const auto params = Put(alice, ConfigKind::kLlmParameters, "precise");
  const auto bobs = Put(bob, ConfigKind::kLlmProvider, "bobs");

  ConfigRecord r;
  r.user_id = "no-such-user";
  r.kind = ConfigKind::kPipeline;
  r.name = "p";
  EXPECT_EQ(CodeOf(store_->Create(r)), ErrorCode::kNotFound);

  ConfigRecord model;
  model.user_id = alice;
  model.kind = ConfigKind::kLlmModel;
  model.name = "gpt";
  model.parent_id = "no-such-provider";
  EXPECT_EQ(CodeOf(store_->Create(model)), ErrorCode::kNotFound);
  model.parent_id = bobs.id;  // another user's provider
  EXPECT_EQ(CodeOf(store_->Create(model)), ErrorCode::kNotFound);
  model.parent_id = params.id;  // not a provider
  EXPECT_EQ(CodeOf(store_->Create(model)), ErrorCode::kNotFound);
  model.parent_id = "";
  EXPECT_EQ(CodeOf(store_->Create(model)), ErrorCode::kInvalidArgument);
  model.parent_id = provider.id;
  model.body = "[]";
  EXPECT_EQ(CodeOf(store_->Create(model)), ErrorCode::kInvalidArgument);
  model.body = "{}";
  model.name = std::string(256, 'm');
  EXPECT_EQ(CodeOf(store_->Create(model)), ErrorCode::kInvalidArgument);
  ConfigRecord orphan_parent;
  orphan_parent.user_id = alice;
  orphan_parent.kind = ConfigKind::kPromptTemplate;
  orphan_parent.name = "t";
  orphan_parent.parent_id = provider.id;
  EXPECT_EQ(CodeOf(store_->Create(orphan_parent)), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(store_->List(alice, ConfigKind::kLlmModel)->empty()) << "nothing stored by refused creates";
  EXPECT_TRUE(store_->List(alice, ConfigKind::kPromptTemplate)->empty());

  model.name = "gpt";
  auto ok = store_->Create(model);
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(ok->parent_id, provider.id);
}

TEST_P(UserConfigStoreContract, UpdateNeverChangesParentOrOwner) {
  const auto alice = NewUser("alice");
  const auto openai = Put(alice, ConfigKind::kLlmProvider, "openai");
  const auto other = Put(alice, ConfigKind::kLlmProvider, "other");
  const auto model = Put(alice, ConfigKind::kLlmModel, "gpt-4o", openai.id);
  ConfigRecord change = model;
  change.parent_id = other.id;
  change.name = "gpt-4o-mini";
  auto updated = store_->Update(change, false);
  ASSERT_TRUE(updated) << updated.error().ToString();
  EXPECT_EQ(updated->parent_id, openai.id);
  EXPECT_EQ(store_->Get(alice, ConfigKind::kLlmModel, model.id)->parent_id, openai.id);
  change.parent_id = "";  // may be left out
  change.name = "gpt-4.1";
  ASSERT_TRUE(store_->Update(change, false));
  EXPECT_EQ(store_->List(alice, ConfigKind::kLlmModel, openai.id)->size(), 1u);
  EXPECT_TRUE(store_->List(alice, ConfigKind::kLlmModel, other.id)->empty());
}

TEST_P(UserConfigStoreContract, OneDefaultPerUserKindAndScope) {
  const auto alice = NewUser("alice");
  const auto bob = NewUser("bob");
  const auto a = Put(alice, ConfigKind::kPromptTemplate, "a", "", "RAG_QUERY", true);
  EXPECT_TRUE(a.is_default);
  EXPECT_EQ(store_->GetDefault(alice, ConfigKind::kPromptTemplate, "RAG_QUERY")->id, a.id);
  EXPECT_EQ(CodeOf(store_->GetDefault(alice, ConfigKind::kPromptTemplate, "COT_REASONING")), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->GetDefault(alice, ConfigKind::kLlmParameters, "RAG_QUERY")), ErrorCode::kNotFound);

  // Creating another default of the scope clears the first.
  const auto b = Put(alice, ConfigKind::kPromptTemplate, "b", "", "RAG_QUERY", true);
  EXPECT_EQ(DefaultsOf(alice, ConfigKind::kPromptTemplate), std::vector<std::string>{b.id});
  EXPECT_EQ(store_->GetDefault(alice, ConfigKind::kPromptTemplate, "RAG_QUERY")->id, b.id);
  EXPECT_FALSE(store_->Get(alice, ConfigKind::kPromptTemplate, a.id)->is_default);

  // Other scopes, kinds and users keep theirs.
  const auto cot = Put(alice, ConfigKind::kPromptTemplate, "cot", "", "COT_REASONING", true);
  const auto params = Put(alice, ConfigKind::kLlmParameters, "params", "", "RAG_QUERY", true);
  const auto bobs = Put(bob, ConfigKind::kPromptTemplate, "b", "", "RAG_QUERY", true);
  const auto c = Put(alice, ConfigKind::kPromptTemplate, "c", "", "RAG_QUERY", false);
  EXPECT_EQ(store_->GetDefault(alice, ConfigKind::kPromptTemplate, "RAG_QUERY")->id, b.id);
  EXPECT_EQ(store_->GetDefault(alice, ConfigKind::kPromptTemplate, "COT_REASONING")->id, cot.id);
  EXPECT_EQ(store_->GetDefault(alice, ConfigKind::kLlmParameters, "RAG_QUERY")->id, params.id);
  EXPECT_EQ(store_->GetDefault(bob, ConfigKind::kPromptTemplate, "RAG_QUERY")->id, bobs.id);

  // SetDefault.
  auto set = store_->SetDefault(alice, ConfigKind::kPromptTemplate, a.id);
  ASSERT_TRUE(set) << set.error().ToString();
  EXPECT_TRUE(set->is_default);
  EXPECT_EQ(set->name, "a");
  EXPECT_EQ(store_->GetDefault(alice, ConfigKind::kPromptTemplate, "RAG_QUERY")->id, a.id);
  EXPECT_FALSE(store_->Get(alice, ConfigKind::kPromptTemplate, b.id)->is_default);
  EXPECT_EQ(store_->GetDefault(alice, ConfigKind::kPromptTemplate, "COT_REASONING")->id, cot.id);
  EXPECT_EQ(store_->GetDefault(bob, ConfigKind::kPromptTemplate, "RAG_QUERY")->id, bobs.id);
  ASSERT_TRUE(store_->SetDefault(alice, ConfigKind::kPromptTemplate, a.id)) << "setting it twice is fine";
  EXPECT_EQ(DefaultsOf(alice, ConfigKind::kPromptTemplate).size(), 2u);

  // Update with is_default.
  ConfigRecord change = c;
  change.is_default = true;
  auto updated = store_->Update(change, false);
  ASSERT_TRUE(updated) << updated.error().ToString();
  EXPECT_TRUE(updated->is_default);
  EXPECT_EQ(store_->GetDefault(alice, ConfigKind::kPromptTemplate, "RAG_QUERY")->id, c.id);
  EXPECT_FALSE(store_->Get(alice, ConfigKind::kPromptTemplate, a.id)->is_default);
  EXPECT_EQ(store_->GetDefault(alice, ConfigKind::kPromptTemplate, "COT_REASONING")->id, cot.id);

  // Moving a default to another scope clears that scope's default, not the old one's.
  change.scope = "COT_REASONING";
  ASSERT_TRUE(store_->Update(change, false));
  EXPECT_EQ(store_->GetDefault(alice, ConfigKind::kPromptTemplate, "COT_REASONING")->id, c.id);
  EXPECT_FALSE(store_->Get(alice, ConfigKind::kPromptTemplate, cot.id)->is_default);
  EXPECT_EQ(CodeOf(store_->GetDefault(alice, ConfigKind::kPromptTemplate, "RAG_QUERY")), ErrorCode::kNotFound);

  // Clearing the flag leaves the scope without a default.
  change.is_default = false;
  ASSERT_TRUE(store_->Update(change, false));
  EXPECT_EQ(CodeOf(store_->GetDefault(alice, ConfigKind::kPromptTemplate, "COT_REASONING")), ErrorCode::kNotFound);
  // Deleting the default leaves none either.
  ASSERT_TRUE(store_->Delete(alice, ConfigKind::kLlmParameters, params.id));
  EXPECT_EQ(CodeOf(store_->GetDefault(alice, ConfigKind::kLlmParameters, "RAG_QUERY")), ErrorCode::kNotFound);
  EXPECT_EQ(store_->GetDefault(bob, ConfigKind::kPromptTemplate, "RAG_QUERY")->id, bobs.id);
}

TEST_P(UserConfigStoreContract, ConcurrentDefaultChangesLeaveExactlyOneDefault) {
  const auto alice = NewUser("alice");
  std::vector<ConfigRecord> records;
  for (int i = 0; i < 6; ++i) {
    records.push_back(Put(alice, ConfigKind::kLlmParameters, "p" + std::to_string(i), "", "", i == 0));
  }
  constexpr int kRounds = 15;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < records.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        Result<ConfigRecord> r = Fail(Error::Internal("not run"));
        if (i % 2 == 0) {
          r = store_->SetDefault(alice, ConfigKind::kLlmParameters, records[t].id);
        } else {
          ConfigRecord change = records[t];
          change.is_default = true;
          r = store_->Update(change, false);
        }
        if (!r) {
          ++failures;
          ADD_FAILURE() << r.error().ToString();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(DefaultsOf(alice, ConfigKind::kLlmParameters).size(), 1u);
  EXPECT_TRUE(store_->GetDefault(alice, ConfigKind::kLlmParameters, ""));
}

TEST_P(UserConfigStoreContract, AnotherUsersRecordIsNotFound) {
  const auto alice = NewUser("alice");
  const auto bob = NewUser("bob");
  ConfigRecord in;
  in.user_id = alice;
  in.kind = ConfigKind::kLlmProvider;
  in.name = "openai";
  in.secret = "alice's key";
  auto record = store_->Create(in);
  ASSERT_TRUE(record) << record.error().ToString();
  const std::string id = record->id;

  EXPECT_EQ(CodeOf(store_->Get(bob, ConfigKind::kLlmProvider, id)), ErrorCode::kNotFound);
  ConfigRecord steal = *record;
  steal.user_id = bob;
  steal.name = "mine now";
  steal.secret = "bob's key";
  EXPECT_EQ(CodeOf(store_->Update(steal, true)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->SetDefault(bob, ConfigKind::kLlmProvider, id)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->Delete(bob, ConfigKind::kLlmProvider, id)), ErrorCode::kNotFound);
  EXPECT_TRUE(store_->List(bob, ConfigKind::kLlmProvider)->empty());
  // A model under another user's provider is not listed either.
  EXPECT_TRUE(store_->List(bob, ConfigKind::kLlmModel, id)->empty());

  // The same id under another kind, or an unknown id.
  EXPECT_EQ(CodeOf(store_->Get(alice, ConfigKind::kLlmParameters, id)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->Delete(alice, ConfigKind::kPipeline, id)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->SetDefault(alice, ConfigKind::kPromptTemplate, id)), ErrorCode::kNotFound);
  ConfigRecord other_kind = *record;
  other_kind.kind = ConfigKind::kLlmParameters;
  EXPECT_EQ(CodeOf(store_->Update(other_kind, false)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->Get(alice, ConfigKind::kLlmProvider, "no-such-id")), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->SetDefault(alice, ConfigKind::kLlmProvider, "no-such-id")), ErrorCode::kNotFound);
  ConfigRecord unknown = *record;
  unknown.id = "no-such-id";
  EXPECT_EQ(CodeOf(store_->Update(unknown, false)), ErrorCode::kNotFound);

  // Alice's record is as she left it.
  auto still = store_->Get(alice, ConfigKind::kLlmProvider, id);
  ASSERT_TRUE(still) << still.error().ToString();
  EXPECT_EQ(still->name, "openai");
  EXPECT_EQ(still->secret, "alice's key");
  EXPECT_FALSE(still->is_default);
}

TEST_P(UserConfigStoreContract, ListsFilterByParentInCreationOrder) {
  const auto alice = NewUser("alice");
  const auto openai = Put(alice, ConfigKind::kLlmProvider, "openai");
  const auto watsonx = Put(alice, ConfigKind::kLlmProvider, "watsonx");
  for (int i = 0; i < 5; ++i) {
    Put(alice, ConfigKind::kLlmModel, "gpt-" + std::to_string(i), openai.id);
    Put(alice, ConfigKind::kLlmModel, "granite-" + std::to_string(i), watsonx.id);
  }
  auto all = store_->List(alice, ConfigKind::kLlmModel);
  ASSERT_TRUE(all) << all.error().ToString();
  EXPECT_EQ(all->size(), 10u);
  for (std::size_t i = 1; i < all->size(); ++i) {
    const auto& prev = (*all)[i - 1];
    const auto& cur = (*all)[i];
    EXPECT_TRUE(std::pair(prev.created_at_ms, prev.id) < std::pair(cur.created_at_ms, cur.id))
        << "ordered by created_at, then id";
  }
  auto of_openai = store_->List(alice, ConfigKind::kLlmModel, openai.id);
  ASSERT_TRUE(of_openai) << of_openai.error().ToString();
  ASSERT_EQ(of_openai->size(), 5u);
  for (const auto& m : *of_openai) {
    EXPECT_EQ(m.parent_id, openai.id);
    EXPECT_EQ(m.name.rfind("gpt-", 0), 0u) << m.name;
  }
  EXPECT_EQ(store_->List(alice, ConfigKind::kLlmModel, watsonx.id)->size(), 5u);
  EXPECT_TRUE(store_->List(alice, ConfigKind::kLlmModel, std::string("no-such-provider"))->empty());
  EXPECT_TRUE(store_->List(alice, ConfigKind::kLlmProvider, openai.id)->empty()) << "providers have no parent";
}

TEST_P(UserConfigStoreContract, DeletingAProviderDeletesItsModels) {
  const auto alice = NewUser("alice");
  const auto openai = Put(alice, ConfigKind::kLlmProvider, "openai");
  const auto watsonx = Put(alice, ConfigKind::kLlmProvider, "watsonx");
  const auto gpt = Put(alice, ConfigKind::kLlmModel, "gpt-4o", openai.id, openai.id, true);
  Put(alice, ConfigKind::kLlmModel, "gpt-4o-mini", openai.id, openai.id);
  const auto granite = Put(alice, ConfigKind::kLlmModel, "granite", watsonx.id, watsonx.id, true);

  ASSERT_TRUE(store_->Delete(alice, ConfigKind::kLlmProvider, openai.id));
  EXPECT_EQ(CodeOf(store_->Get(alice, ConfigKind::kLlmModel, gpt.id)), ErrorCode::kNotFound);
  EXPECT_TRUE(store_->List(alice, ConfigKind::kLlmModel, openai.id)->empty());
  EXPECT_EQ(CodeOf(store_->GetDefault(alice, ConfigKind::kLlmModel, openai.id)), ErrorCode::kNotFound);
  auto left = store_->List(alice, ConfigKind::kLlmModel);
  ASSERT_TRUE(left);
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].id, granite.id);
  EXPECT_EQ(store_->GetDefault(alice, ConfigKind::kLlmModel, watsonx.id)->id, granite.id);

  // Deleting a model leaves its provider.
  ASSERT_TRUE(store_->Delete(alice, ConfigKind::kLlmModel, granite.id));
  EXPECT_TRUE(store_->Get(alice, ConfigKind::kLlmProvider, watsonx.id));
}

TEST_P(UserConfigStoreContract, DeletingAUserDeletesTheirRecords) {
  const auto alice = NewUser("alice");
  const auto bob = NewUser("bob");
  const auto provider = Put(alice, ConfigKind::kLlmProvider, "openai");
  const auto model = Put(alice, ConfigKind::kLlmModel, "gpt-4o", provider.id);
  const auto tmpl = Put(alice, ConfigKind::kPromptTemplate, "rag", "", "RAG_QUERY", true);
  const auto bobs = Put(bob, ConfigKind::kPromptTemplate, "rag", "", "RAG_QUERY", true);

  ASSERT_TRUE(identity_->DeleteUser(alice));
  for (auto k : kAllKinds) EXPECT_TRUE(store_->List(alice, k)->empty()) << ToString(k);
  EXPECT_EQ(CodeOf(store_->Get(alice, ConfigKind::kLlmProvider, provider.id)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->Get(alice, ConfigKind::kLlmModel, model.id)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->GetDefault(alice, ConfigKind::kPromptTemplate, "RAG_QUERY")), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->Get(alice, ConfigKind::kPromptTemplate, tmpl.id)), ErrorCode::kNotFound);
  // Another user's records stay; a deleted user can own nothing new.
  EXPECT_EQ(store_->GetDefault(bob, ConfigKind::kPromptTemplate, "RAG_QUERY")->id, bobs.id);
  ConfigRecord late;
  late.user_id = alice;
  late.kind = ConfigKind::kPipeline;
  late.name = "late";
  EXPECT_EQ(CodeOf(store_->Create(late)), ErrorCode::kNotFound);
  // A new user of the same name inherits nothing.
  const auto alice2 = NewUser("alice");
  EXPECT_TRUE(store_->List(alice2, ConfigKind::kLlmProvider)->empty());
}

}  // namespace
}  // namespace modulo::store
