#include "modulo/auth/api_key.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstdint>

#include "modulo/auth/base64url.h"

namespace modulo::auth {
namespace {

constexpr char kBase32[] = "abcdefghijklmnopqrstuvwxyz234567";

bool IsBase32(char c) { return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'); }

// SHA-256 with the algorithm fetched once (OpenSSL 3's implicit fetch per call is measurable).
const EVP_MD* Sha256() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md != nullptr ? md : EVP_sha256();
}

std::string HexLower(const unsigned char* p, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(n * 2, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[p[i] >> 4];
    out[2 * i + 1] = kHex[p[i] & 0x0f];
  }
  return out;
}

}  // namespace

Result<GeneratedApiKey> GenerateApiKey() {
  std::array<unsigned char, 8> id_bytes{};
  std::array<unsigned char, 32> secret{};
  if (RAND_bytes(id_bytes.data(), static_cast<int>(id_bytes.size())) != 1 ||
      RAND_bytes(secret.data(), static_cast<int>(secret.size())) != 1) {
    return Fail(Error::Internal("random generator failed"));
  }
  std::uint64_t bits = 0;
  for (unsigned char b : id_bytes) bits = (bits << 8) | b;
  GeneratedApiKey key;
  key.key_id.resize(kApiKeyIdLength);
  for (std::size_t i = 0; i < kApiKeyIdLength; ++i) {
    key.key_id[i] = kBase32[bits & 31];
    bits >>= 5;
  }
  key.prefix = std::string(kApiKeyPrefix) + key.key_id;
  key.secret_text = key.prefix + "_" +
                    Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(secret.data()), secret.size()));
  OPENSSL_cleanse(secret.data(), secret.size());
  key.hash = HashApiKey(key.secret_text);
  return key;
}

bool LooksLikeApiKey(std::string_view token) noexcept { return token.starts_with(kApiKeyPrefix); }

Result<std::string> ParseApiKey(std::string_view token) {
  const auto malformed = [] { return Fail(Error::Unauthenticated("malformed api key")); };
  if (token.size() != kApiKeyLength || !token.starts_with(kApiKeyPrefix)) return malformed();
  const std::string_view id = token.substr(kApiKeyPrefix.size(), kApiKeyIdLength);
  for (char c : id) {
    if (!IsBase32(c)) return malformed();
  }
  if (token[kApiKeyPrefix.size() + kApiKeyIdLength] != '_') return malformed();
  const std::string_view secret = token.substr(kApiKeyPrefix.size() + kApiKeyIdLength + 1);
  const auto decoded = Base64UrlDecode(secret, 32);
  if (!decoded || decoded->size() != 32) return malformed();
  return std::string(id);
}

std::string HashApiKey(std::string_view token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(token.data(), token.size(), digest, &len, Sha256(), nullptr) != 1) return {};
  return HexLower(digest, len);
}

bool VerifyApiKey(std::string_view token, std::string_view stored_hash) {
  const std::string actual = HashApiKey(token);
  if (actual.empty() || stored_hash.size() != actual.size()) return false;
  return CRYPTO_memcmp(actual.data(), stored_hash.data(), actual.size()) == 0;
}

}  // namespace modulo::auth
