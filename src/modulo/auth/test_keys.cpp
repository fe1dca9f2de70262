#include "modulo/auth/test_keys.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <stdexcept>

#include "modulo/auth/base64url.h"

namespace modulo::auth::testing {
namespace {

[[noreturn]] void Die(const char* what) { throw std::runtime_error(std::string("openssl: ") + what); }

std::string BnParam(const Pkey& key, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key.get(), name, &bn) != 1) Die(name);
  std::string out(pad > 0 ? pad : BN_num_bytes(bn), '\0');
  if (pad > 0) {
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), pad);
  } else {
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  }
  BN_free(bn);
  return out;
}

std::string DigestSign(const Pkey& key, const std::string& input) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::size_t len = 0;
  if (EVP_DigestSignInit_ex(ctx, nullptr, "SHA256", nullptr, nullptr, key.get(), nullptr) != 1 ||
      EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    EVP_MD_CTX_free(ctx);
    Die("DigestSign");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    EVP_MD_CTX_free(ctx);
    Die("DigestSign");
  }
  EVP_MD_CTX_free(ctx);
  sig.resize(len);
  return sig;
}

}  // namespace

Pkey GenerateRsa(int bits) {
  EVP_PKEY* k = EVP_RSA_gen(static_cast<unsigned>(bits));
  if (k == nullptr) Die("EVP_RSA_gen");
  return Pkey(k, PkeyFree{});
}

Pkey GenerateEcP256() {
  EVP_PKEY* k = EVP_EC_gen("P-256");
  if (k == nullptr) Die("EVP_EC_gen");
  return Pkey(k, PkeyFree{});
}

nlohmann::json RsaJwk(const Pkey& key, const std::string& kid, const std::string& alg) {
  nlohmann::json j = {{"kty", "RSA"},
                      {"kid", kid},
                      {"use", "sig"},
                      {"n", Base64UrlEncode(BnParam(key, OSSL_PKEY_PARAM_RSA_N))},
                      {"e", Base64UrlEncode(BnParam(key, OSSL_PKEY_PARAM_RSA_E))}};
  if (!alg.empty()) j["alg"] = alg;
  return j;
}

nlohmann::json EcJwk(const Pkey& key, const std::string& kid, const std::string& alg) {
  nlohmann::json j = {{"kty", "EC"},
                      {"kid", kid},
                      {"crv", "P-256"},
                      {"x", Base64UrlEncode(BnParam(key, OSSL_PKEY_PARAM_EC_PUB_X, 32))},
                      {"y", Base64UrlEncode(BnParam(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32))}};
  if (!alg.empty()) j["alg"] = alg;
  return j;
}

std::string PublicPem(const Pkey& key) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (PEM_write_bio_PUBKEY(bio, key.get()) != 1) Die("PEM_write_bio_PUBKEY");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return pem;
}

std::string SigningInput(const nlohmann::json& header, const nlohmann::json& payload) {
  return Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(payload.dump());
}

std::string SignRs256Raw(const Pkey& key, const std::string& input) { return DigestSign(key, input); }

std::string SignEs256Raw(const Pkey& key, const std::string& input) {
  const std::string der = DigestSign(key, input);
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (sig == nullptr) Die("d2i_ECDSA_SIG");
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  return raw;
}

std::string SignToken(const nlohmann::json& header, const nlohmann::json& payload, const Pkey& key) {
  const std::string input = SigningInput(header, payload);
  const std::string alg = header.value("alg", "");
  std::string sig;
  if (alg == "RS256") {
    sig = SignRs256Raw(key, input);
  } else if (alg == "ES256") {
    sig = SignEs256Raw(key, input);
  } else {
    throw std::runtime_error("SignToken: unsupported alg " + alg);
  }
  return input + "." + Base64UrlEncode(sig);
}

}  // namespace modulo::auth::testing
