// Test-only helpers (not part of modulo_auth): RSA/EC key generation, JWKs from keys, and
// RS256/ES256 token signing, used by the auth tests and benchmark.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace modulo::auth::testing {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::shared_ptr<EVP_PKEY>;

[[nodiscard]] Pkey GenerateRsa(int bits = 2048);
[[nodiscard]] Pkey GenerateEcP256();

// Public JWKs. `alg` is added when not empty.
[[nodiscard]] nlohmann::json RsaJwk(const Pkey& key, const std::string& kid, const std::string& alg = "");
[[nodiscard]] nlohmann::json EcJwk(const Pkey& key, const std::string& kid, const std::string& alg = "");

// The SubjectPublicKeyInfo PEM of a key (for algorithm-confusion tests).
[[nodiscard]] std::string PublicPem(const Pkey& key);

// "<b64(header)>.<b64(payload)>" and a signature over it.
[[nodiscard]] std::string SigningInput(const nlohmann::json& header, const nlohmann::json& payload);
[[nodiscard]] std::string SignRs256Raw(const Pkey& key, const std::string& input);   // raw PKCS#1 v1.5
[[nodiscard]] std::string SignEs256Raw(const Pkey& key, const std::string& input);   // r || s, 64 bytes

// A complete compact token signed with `key` according to header["alg"] (RS256 or ES256).
[[nodiscard]] std::string SignToken(const nlohmann::json& header, const nlohmann::json& payload, const Pkey& key);

}  // namespace modulo::auth::testing
