// SecretBox: authenticated encryption of small secrets at rest (LLM provider API keys) with the
// server key, AES-256-GCM on OpenSSL.
//
// Sealed format (binary): 0x01 (version) | 8-byte key id (the first bytes of SHA-256 of the key) |
// 12-byte random nonce | ciphertext | 16-byte tag. `context` is authenticated but not stored: a
// secret sealed for one record (e.g. "llm_provider:<user id>:<record id>") does not open for
// another, so copying ciphertext between rows or users is detected.
//
// Open() errors: kInvalidArgument for bytes that are not a sealed secret, kConflict when
// it was sealed with another server key (the key id differs), kPermissionDenied when the tag does
// not verify (tampered, or a different context). Never a partial plaintext.
//
// The server key: MODULO_SECRET_KEY (64 hex digits, or base64/base64url of 32 bytes), else the file
// <data dir>/secret.key, created (mode 0600, 32 random bytes, written atomically) when absent.
// Servers that share a database must share the key.
//
// Thread-safety: a SecretBox is immutable; Seal and Open may be called from any thread.
#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <string_view>

#include "modulo/core/error.h"

namespace modulo::auth {

class SecretBox {
 public:
  static constexpr std::size_t kKeyBytes = 32;
  static constexpr std::size_t kOverhead = 1 + 8 + 12 + 16;

  // InvalidArgument unless `key` is exactly 32 bytes.
  [[nodiscard]] static Result<SecretBox> FromKey(std::string_view key);
  // Parses a configured key: 64 hex digits, or standard/url-safe base64 (padding optional) of 32 bytes.
  [[nodiscard]] static Result<SecretBox> FromText(std::string_view text);
  // `configured` when not empty, else <data_dir>/secret.key (created when absent).
  [[nodiscard]] static Result<SecretBox> Load(std::string_view configured, const std::filesystem::path& data_dir);

  [[nodiscard]] Result<std::string> Seal(std::string_view plaintext, std::string_view context) const;
  [[nodiscard]] Result<std::string> Open(std::string_view sealed, std::string_view context) const;

  // The key id as 16 hex digits (safe to log).
  [[nodiscard]] std::string KeyId() const;

 private:
  std::array<unsigned char, kKeyBytes> key_{};
  std::array<unsigned char, 8> key_id_{};
};

}  // namespace modulo::auth
