#include "modulo/auth/api_key.h"

#include <set>

#include <gtest/gtest.h>

#include "modulo/auth/base64url.h"
#include "modulo/auth/principal.h"

namespace modulo::auth {
namespace {

TEST(ApiKeyTest, GeneratedKeysHaveTheDocumentedFormat) {
  auto key = GenerateApiKey();
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(key->key_id.size(), kApiKeyIdLength);
  EXPECT_EQ(key->key_id.find_first_not_of("abcdefghijklmnopqrstuvwxyz234567"), std::string::npos);
  EXPECT_EQ(key->prefix, "mdk_" + key->key_id);
  EXPECT_EQ(key->secret_text.size(), kApiKeyLength);
  EXPECT_EQ(kApiKeyLength, 60u);
  EXPECT_TRUE(key->secret_text.starts_with(key->prefix + "_"));
  const std::string secret = key->secret_text.substr(key->prefix.size() + 1);
  EXPECT_EQ(secret.size(), 43u);
  auto raw = Base64UrlDecode(secret);
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(raw->size(), 32u);
  EXPECT_EQ(key->hash, HashApiKey(key->secret_text));
  EXPECT_EQ(key->hash.size(), 64u);
  EXPECT_EQ(key->hash.find_first_not_of("0123456789abcdef"), std::string::npos);
  auto id = ParseApiKey(key->secret_text);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(*id, key->key_id);
  EXPECT_TRUE(VerifyApiKey(key->secret_text, key->hash));
  EXPECT_TRUE(LooksLikeApiKey(key->secret_text));
}

TEST(ApiKeyTest, GeneratedKeysAreUnique) {
  std::set<std::string> ids, secrets;
  for (int i = 0; i < 2000; ++i) {
    auto key = GenerateApiKey();
    ASSERT_TRUE(key.has_value());
    ids.insert(key->key_id);
    secrets.insert(key->secret_text);
    ASSERT_TRUE(ParseApiKey(key->secret_text).has_value()) << key->secret_text;  // every encoding is canonical
  }
  EXPECT_EQ(ids.size(), 2000u);
  EXPECT_EQ(secrets.size(), 2000u);
}

TEST(ApiKeyTest, HashIsHexSha256) {
  EXPECT_EQ(HashApiKey("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HashApiKey(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(ApiKeyTest, ParseRejectsMalformedKeys) {
  auto key = GenerateApiKey();
  ASSERT_TRUE(key.has_value());
  const std::string good = key->secret_text;
  const auto with = [&](std::size_t pos, char c) {
    std::string s = good;
    s[pos] = c;
    return s;
  };
  // The secret's last character carries 4 unused bits; 'B' has them set and is never canonical.
  std::vector<std::string> bad = {
      "",
      "mdk_",
      good.substr(0, 59),
      good + "A",
      "Mdk_" + good.substr(4),
      "mdx_" + good.substr(4),
      with(4, 'A'),   // uppercase id
      with(5, '1'),   // '0', '1', '8', '9' are not base32
      with(6, '8'),
      with(7, '-'),
      with(16, '-'),  // separator
      with(20, '+'),
      with(21, '/'),
      with(59, '='),
      with(59, 'B'),
      with(30, ' '),
      with(40, '\0'),
      " " + good.substr(1),
      good.substr(0, 59) + "\n",
      std::string(60, 'a'),
  };
  for (const std::string& s : bad) {
    auto r = ParseApiKey(s);
    ASSERT_FALSE(r.has_value()) << s;
    EXPECT_EQ(r.error().code(), ErrorCode::kUnauthenticated);
    EXPECT_EQ(r.error().message(), "malformed api key");  // never echoes the token
  }
}

TEST(ApiKeyTest, VerifyComparesTheHash) {
  auto key = GenerateApiKey();
  auto other = GenerateApiKey();
  ASSERT_TRUE(key.has_value() && other.has_value());
  EXPECT_TRUE(VerifyApiKey(key->secret_text, key->hash));
  EXPECT_FALSE(VerifyApiKey(other->secret_text, key->hash));
  EXPECT_FALSE(VerifyApiKey(key->secret_text, other->hash));
  EXPECT_FALSE(VerifyApiKey(key->secret_text, ""));
  EXPECT_FALSE(VerifyApiKey(key->secret_text, key->hash.substr(1)));
  EXPECT_FALSE(VerifyApiKey(key->secret_text, key->hash + "0"));
  std::string upper = key->hash;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper != key->hash) {
    EXPECT_FALSE(VerifyApiKey(key->secret_text, upper));  // stored hashes are lowercase
  }
  std::string flipped = key->secret_text;
  flipped[30] = flipped[30] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(VerifyApiKey(flipped, key->hash));
}

TEST(ApiKeyTest, LooksLikeApiKey) {
  EXPECT_TRUE(LooksLikeApiKey("mdk_x"));
  EXPECT_FALSE(LooksLikeApiKey("eyJhbGciOiJIUzI1NiJ9.e30.sig"));
  EXPECT_FALSE(LooksLikeApiKey(""));
  EXPECT_FALSE(LooksLikeApiKey("MDK_"));
}

TEST(PrincipalTest, DefaultsAndNames) {
  Principal p;
  EXPECT_EQ(p.role, Principal::Role::kUser);
  EXPECT_EQ(p.kind, Principal::Kind::kUser);
  EXPECT_FALSE(p.is_admin());
  p.role = Principal::Role::kAdmin;
  EXPECT_TRUE(p.is_admin());
  EXPECT_EQ(RoleName(Principal::Role::kAdmin), "admin");
  EXPECT_EQ(RoleName(Principal::Role::kUser), "user");
  EXPECT_EQ(KindName(Principal::Kind::kServiceAccount), "service_account");
  EXPECT_EQ(KindName(Principal::Kind::kUser), "user");
}

}  // namespace
}  // namespace modulo::auth
