#include "modulo/auth/secret_box.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

namespace modulo::auth {
namespace {

namespace fs = std::filesystem;

SecretBox Box(char fill = 'k') {
  return *SecretBox::FromKey(std::string(32, fill));
}

TEST(SecretBox, RoundTripsBinarySecrets) {
  const SecretBox box = Box();
  const std::string secret = std::string("sk-\0\xff\x01 key", 10);
  auto sealed = box.Seal(secret, "llm_provider:u1:p1");
  ASSERT_TRUE(sealed) << sealed.error().ToString();
  EXPECT_EQ(sealed->size(), secret.size() + SecretBox::kOverhead);
  EXPECT_EQ(sealed->find("sk-"), std::string::npos);  // not in clear
  auto opened = box.Open(*sealed, "llm_provider:u1:p1");
  ASSERT_TRUE(opened) << opened.error().ToString();
  EXPECT_EQ(*opened, secret);
  // Empty secrets seal too.
  auto empty = box.Seal("", "c");
  ASSERT_TRUE(empty);
  EXPECT_EQ(*box.Open(*empty, "c"), "");
}

TEST(SecretBox, EverySealUsesAFreshNonce) {
  const SecretBox box = Box();
  EXPECT_NE(*box.Seal("same", "c"), *box.Seal("same", "c"));
}

TEST(SecretBox, RefusesAnotherContextTamperingAndAnotherKey) {
  const SecretBox box = Box();
  const std::string sealed = *box.Seal("secret", "llm_provider:u1:p1");
  auto other_row = box.Open(sealed, "llm_provider:u2:p1");
  ASSERT_FALSE(other_row);
  EXPECT_EQ(other_row.error().code(), ErrorCode::kPermissionDenied);
  for (std::size_t i = 9; i < sealed.size(); ++i) {  // every byte after the key id is covered
    std::string t = sealed;
    t[i] = static_cast<char>(t[i] ^ 0x01);
    auto r = box.Open(t, "llm_provider:u1:p1");
    ASSERT_FALSE(r) << "byte " << i;
    EXPECT_EQ(r.error().code(), ErrorCode::kPermissionDenied);
  }
  auto truncated = box.Open(sealed.substr(0, sealed.size() - 1), "llm_provider:u1:p1");
  ASSERT_FALSE(truncated);
  auto wrong_key = Box('x').Open(sealed, "llm_provider:u1:p1");
  ASSERT_FALSE(wrong_key);
  EXPECT_EQ(wrong_key.error().code(), ErrorCode::kConflict);
  auto garbage = box.Open("plain text api key", "c");
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code(), ErrorCode::kInvalidArgument);
}

TEST(SecretBox, ParsesConfiguredKeys) {
  const std::string hex(64, 'a');
  auto a = SecretBox::FromText(hex);
  ASSERT_TRUE(a) << a.error().ToString();
  auto b = SecretBox::FromText("qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqo=");  // base64 of 32 × 0xaa
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_EQ(a->KeyId(), b->KeyId());
  EXPECT_FALSE(SecretBox::FromText("too short"));
  EXPECT_FALSE(SecretBox::FromText(std::string(63, 'a')));
  EXPECT_FALSE(SecretBox::FromText(std::string(64, 'g')));
  EXPECT_FALSE(SecretBox::FromKey(std::string(31, 'k')));
}

TEST(SecretBox, CreatesOnePrivateKeyFileAndReusesIt) {
  const fs::path dir = fs::temp_directory_path() / ("modulo_secret_box_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<std::string> ids(4);
  {
    std::vector<std::jthread> threads;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      threads.emplace_back([&, i] {
        auto box = SecretBox::Load("", dir);
        ASSERT_TRUE(box) << box.error().ToString();
        ids[i] = box->KeyId();
      });
    }
  }
  for (const auto& id : ids) EXPECT_EQ(id, ids[0]);  // racing first starts agree on one key
  struct stat st {};
  ASSERT_EQ(::stat((dir / "secret.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const auto again = SecretBox::Load("", dir);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->KeyId(), ids[0]);
  // A configured key wins over the file.
  EXPECT_NE(SecretBox::Load(std::string(64, 'b'), dir)->KeyId(), ids[0]);
  // A corrupt file is an error naming it, not a new key.
  { std::ofstream(dir / "secret.key") << "corrupt"; }
  auto bad = SecretBox::Load("", dir);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("secret.key"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace modulo::auth
