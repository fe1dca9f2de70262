// API keys: long-lived bearer credentials for users and service accounts.
//
// Format: "mdk_<key_id>_<secret>" (60 characters), where key_id is 12 characters of lowercase
// base32 (a-z, 2-7; 60 random bits) that identify the key publicly (safe to log and show), and
// secret is 43 characters of base64url (32 bytes from RAND_bytes). The full token is shown to the
// user once; the server stores only key_id, the display prefix and the SHA-256 of the full token
// (a plain hash is adequate for 256-bit random secrets: there is nothing to brute-force).
//
// Promises: ParseApiKey accepts exactly that format (strict charset and lengths, canonical
// base64url) and never looks anything up; VerifyApiKey compares in constant time.
//
// Thread-safety: free functions, safe from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "modulo/core/error.h"

namespace modulo::auth {

inline constexpr std::string_view kApiKeyPrefix = "mdk_";
inline constexpr std::size_t kApiKeyIdLength = 12;
inline constexpr std::size_t kApiKeySecretLength = 43;
inline constexpr std::size_t kApiKeyLength = 4 + kApiKeyIdLength + 1 + kApiKeySecretLength;  // 60

struct GeneratedApiKey {
  std::string key_id;       // e.g. "k3j5x7q2abcd"
  std::string secret_text;  // the full token, "mdk_<key_id>_<secret>"; show once, never store
  std::string prefix;       // "mdk_<key_id>", for display in key lists
  std::string hash;         // lowercase hex SHA-256 of secret_text; store this
};

// A fresh key. Internal only if the system's random generator fails.
[[nodiscard]] Result<GeneratedApiKey> GenerateApiKey();

// True when `token` starts with "mdk_" (cheap routing between API keys and JWTs; not validation).
[[nodiscard]] bool LooksLikeApiKey(std::string_view token) noexcept;

// The key_id of a well-formed token; kUnauthenticated ("malformed api key") otherwise. The
// message never echoes the token.
[[nodiscard]] Result<std::string> ParseApiKey(std::string_view token);

// Lowercase hex SHA-256 of `token`.
[[nodiscard]] std::string HashApiKey(std::string_view token);

// True when HashApiKey(token) equals `stored_hash` (lowercase hex), compared in constant time.
[[nodiscard]] bool VerifyApiKey(std::string_view token, std::string_view stored_hash);

}  // namespace modulo::auth
