// Authentication costs per request: JWT verification (HS256, RS256, ES256), API key
// parse + hash + compare, and a rate limiter Take. Product bar: <= 50 us p50 on the API key and
// HS256 paths.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "modulo/auth/api_key.h"
#include "modulo/auth/jwt.h"
#include "modulo/auth/rate_limiter.h"
#include "modulo/auth/test_keys.h"

namespace modulo::auth {
namespace {

namespace t = testing;
using nlohmann::json;

const std::string kSecret = "0123456789abcdef0123456789abcdef-bench-secret";

struct Fixture {
  t::Pkey rsa = t::GenerateRsa();
  t::Pkey ec = t::GenerateEcP256();
  std::string jwks_path;
  std::unique_ptr<JwtVerifier> verifier;
  std::string hs_token, rs_token, es_token;

  Fixture() {
    jwks_path = (std::filesystem::temp_directory_path() / ("modulo_auth_bench_" + std::to_string(::getpid()) + ".json")).string();
    {
      std::ofstream out(jwks_path);
      out << json{{"keys", {t::RsaJwk(rsa, "rsa"), t::EcJwk(ec, "ec")}}}.dump();
    }
    JwtVerifierOptions o;
    o.hs256_secret = kSecret;
    o.jwks_source = jwks_path;
    o.issuer = "https://issuer.example";
    o.audience = "modulo";
    verifier = std::move(*JwtVerifier::Create(o));
    const std::int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    const json claims = {{"sub", "user-123"}, {"iss", "https://issuer.example"}, {"aud", "modulo"},
                         {"exp", now + 3600}, {"iat", now}, {"email", "user@example.com"}, {"name", "A User"}};
    hs_token = *SignHs256(claims, kSecret);
    rs_token = t::SignToken({{"alg", "RS256"}, {"kid", "rsa"}, {"typ", "JWT"}}, claims, rsa);
    es_token = t::SignToken({{"alg", "ES256"}, {"kid", "ec"}, {"typ", "JWT"}}, claims, ec);
  }
  ~Fixture() { std::filesystem::remove(jwks_path); }
};

Fixture& F() {
  static Fixture f;
  return f;
}

void VerifyToken(benchmark::State& state, const std::string& token) {
  const JwtVerifier& v = *F().verifier;
  for (auto _ : state) {
    auto c = v.Verify(token);
    if (!c) state.SkipWithError(c.error().message().c_str());
    benchmark::DoNotOptimize(c);
  }
}

void BM_JwtVerifyHs256(benchmark::State& state) { VerifyToken(state, F().hs_token); }
void BM_JwtVerifyRs256(benchmark::State& state) { VerifyToken(state, F().rs_token); }
void BM_JwtVerifyEs256(benchmark::State& state) { VerifyToken(state, F().es_token); }

void BM_ApiKeyParseHashCompare(benchmark::State& state) {
  const GeneratedApiKey key = *GenerateApiKey();
  for (auto _ : state) {
    auto id = ParseApiKey(key.secret_text);
    bool ok = id.has_value() && VerifyApiKey(key.secret_text, key.hash);
    if (!ok) state.SkipWithError("api key rejected");
    benchmark::DoNotOptimize(ok);
  }
}

void BM_ApiKeyGenerate(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(GenerateApiKey());
}

void BM_RateLimiterTake(benchmark::State& state) {
  static TokenBucketLimiter limiter;
  const std::string key = "user-" + std::to_string(state.thread_index());
  for (auto _ : state) benchmark::DoNotOptimize(limiter.Take(key, {1e9, 1e9}));
}

void BM_RateLimiterTakeManyKeys(benchmark::State& state) {
  static TokenBucketLimiter limiter;
  std::vector<std::string> keys;
  for (int i = 0; i < 10000; ++i) keys.push_back("client-" + std::to_string(i));
  std::size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(limiter.Take(keys[i++ % keys.size()], {100, 10}));
}

BENCHMARK(BM_JwtVerifyHs256);
BENCHMARK(BM_JwtVerifyHs256)->Threads(2);
BENCHMARK(BM_JwtVerifyRs256);
BENCHMARK(BM_JwtVerifyRs256)->Threads(2);
BENCHMARK(BM_JwtVerifyEs256);
BENCHMARK(BM_ApiKeyParseHashCompare);
BENCHMARK(BM_ApiKeyGenerate);
BENCHMARK(BM_RateLimiterTake);
BENCHMARK(BM_RateLimiterTake)->Threads(2);
BENCHMARK(BM_RateLimiterTakeManyKeys);

}  // namespace
}  // namespace modulo::auth
