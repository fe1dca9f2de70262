#include "modulo/auth/jwt.h"

#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <fstream>
#include <limits>
#include <mutex>

#include "modulo/auth/base64url.h"
#include "modulo/core/json.h"
#include "modulo/core/log.h"

namespace modulo::auth {

using SysClock = std::chrono::system_clock;

namespace {

enum class Alg { kHs256, kRs256, kEs256 };
enum class KeyType { kRsa, kEc };

std::string_view AlgName(Alg a) {
  switch (a) {
    case Alg::kHs256: return "HS256";
    case Alg::kRs256: return "RS256";
    case Alg::kEs256: return "ES256";
  }
  return "";
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX* p) const { EVP_MAC_CTX_free(p); }
};
struct BnDeleter {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct ParamBldDeleter {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamDeleter {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct EcdsaSigDeleter {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;

std::unexpected<JwtFailure> Reject(JwtReason reason, std::string_view detail) {
  std::string message(JwtReasonName(reason));
  message += ": ";
  message += detail;
  return std::unexpected(JwtFailure{reason, std::move(message)});
}

// A kid is attacker-controlled: quote it in messages only when short and plain.
std::string QuoteKid(std::string_view kid) {
  const bool plain = kid.size() <= 64 && std::all_of(kid.begin(), kid.end(), [](unsigned char c) {
                       return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':';
                     });
  return plain ? "\"" + std::string(kid) + "\"" : std::string("(unprintable)");
}

const EVP_MAC* HmacAlgorithm() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

// HMAC-SHA256; false only on an OpenSSL failure.
bool HmacSha256(std::string_view key, std::string_view data, unsigned char out[32]) {
  const EVP_MAC* mac = HmacAlgorithm();
  if (mac == nullptr) return false;
  std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> ctx(EVP_MAC_CTX_new(const_cast<EVP_MAC*>(mac)));
  if (!ctx) return false;
  char digest_name[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
                         OSSL_PARAM_construct_end()};
  // EVP_MAC_init rejects a zero-length key pointer; HMAC itself accepts empty keys, callers don't.
  if (EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char*>(key.data()), key.size(), params) != 1) {
    return false;
  }
  if (EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) return false;
  std::size_t len = 0;
  if (EVP_MAC_final(ctx.get(), out, &len, 32) != 1 || len != 32) return false;
  return true;
}

// A keyed HMAC-SHA256 context to duplicate per message (saves the per-call algorithm fetch and
// key setup); nullptr on failure.
std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> KeyedHmac(std::string_view key) {
  const EVP_MAC* mac = HmacAlgorithm();
  if (mac == nullptr) return nullptr;
  std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> ctx(EVP_MAC_CTX_new(const_cast<EVP_MAC*>(mac)));
  if (!ctx) return nullptr;
  char digest_name[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
                         OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char*>(key.data()), key.size(), params) != 1) {
    return nullptr;
  }
  return ctx;
}

// HMAC of `data` from a keyed template (read-only: concurrent callers each work on a copy).
bool HmacFromTemplate(const EVP_MAC_CTX* keyed, std::string_view data, unsigned char out[32]) {
  std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> ctx(EVP_MAC_CTX_dup(keyed));
  if (!ctx) return false;
  if (EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) return false;
  std::size_t len = 0;
  return EVP_MAC_final(ctx.get(), out, &len, 32) == 1 && len == 32;
}

bool VerifyWithPkey(EVP_PKEY* pkey, std::string_view data, const unsigned char* sig, std::size_t sig_len) {
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  if (EVP_DigestVerifyInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, pkey, nullptr) != 1) return false;
  return EVP_DigestVerify(ctx.get(), sig, sig_len, reinterpret_cast<const unsigned char*>(data.data()),
                          data.size()) == 1;
}

// JWS ES256 signatures are r || s (32 bytes each); OpenSSL wants a DER ECDSA-Sig-Value.
std::optional<std::string> RawEcdsaToDer(std::string_view raw) {
  if (raw.size() != 64) return std::nullopt;
  BnPtr r(BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr));
  BnPtr s(BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr));
  if (!r || !s) return std::nullopt;
  std::unique_ptr<ECDSA_SIG, EcdsaSigDeleter> sig(ECDSA_SIG_new());
  if (!sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return std::nullopt;
  (void)r.release();  // owned by sig now
  (void)s.release();
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return std::nullopt;
  std::string der(static_cast<std::size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &p) != len) return std::nullopt;
  return der;
}

// ---- JWK parsing --------------------------------------------------------------------------

std::optional<std::string> JwkField(const nlohmann::json& jwk, const char* name, std::size_t max_bytes) {
  auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string()) return std::nullopt;
  return Base64UrlDecode(it->get_ref<const std::string&>(), max_bytes);
}

Result<PkeyPtr> RsaKeyFromJwk(const nlohmann::json& jwk) {
  auto n = JwkField(jwk, "n", 1024);  // up to 8192-bit moduli
  auto e = JwkField(jwk, "e", 16);
  if (!n || !e || n->empty() || e->empty()) return Fail(Error::InvalidArgument("RSA key without valid n/e"));
  BnPtr bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()), static_cast<int>(n->size()), nullptr));
  BnPtr bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()), static_cast<int>(e->size()), nullptr));
  if (!bn_n || !bn_e) return Fail(Error::Internal("BN_bin2bn failed"));
  if (BN_num_bits(bn_n.get()) < 2048) return Fail(Error::InvalidArgument("RSA key shorter than 2048 bits"));
  if (!BN_is_odd(bn_e.get()) || BN_is_one(bn_e.get())) return Fail(Error::InvalidArgument("RSA key with bad exponent"));
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldDeleter> bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return Fail(Error::Internal("OSSL_PARAM_BLD failed"));
  }
  std::unique_ptr<OSSL_PARAM, ParamDeleter> params(OSSL_PARAM_BLD_to_param(bld.get()));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return Fail(Error::InvalidArgument("RSA key rejected by OpenSSL"));
  }
  return PkeyPtr(raw);
}

Result<PkeyPtr> EcKeyFromJwk(const nlohmann::json& jwk) {
  auto crv = jwk.find("crv");
  if (crv == jwk.end() || !crv->is_string() || crv->get_ref<const std::string&>() != "P-256") {
    return Fail(Error::InvalidArgument("EC key not on P-256"));
  }
  auto x = JwkField(jwk, "x", 64);
  auto y = JwkField(jwk, "y", 64);
  if (!x || !y || x->size() != 32 || y->size() != 32) {
    return Fail(Error::InvalidArgument("EC key without valid x/y"));
  }
  std::string point;
  point.reserve(65);
  point.push_back('\x04');
  point += *x;
  point += *y;
  char group[] = "prime256v1";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end()};
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return Fail(Error::InvalidArgument("EC key rejected by OpenSSL"));
  }
  PkeyPtr key(raw);
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    return Fail(Error::InvalidArgument("EC key is not a valid P-256 point"));
  }
  return key;
}

// ---- HTTP / file sources -------------------------------------------------------------------

void CurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Sink {
  std::string body;
  std::size_t limit;
};

size_t WriteLimited(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  if (sink->body.size() + size * n > sink->limit) return 0;  // aborts the transfer
  sink->body.append(data, size * n);
  return size * n;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};

Result<std::string> HttpGet(const std::string& url, std::chrono::milliseconds timeout, std::size_t limit) {
  CurlGlobalInit();
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return Fail(Error::Internal("curl_easy_init failed"));
  Sink sink{{}, limit};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &WriteLimited);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl.get(), CURLOPT_USERAGENT, "modulo-jwks/1");
  const CURLcode rc = curl_easy_perform(curl.get());
  if (rc == CURLE_OPERATION_TIMEDOUT) return Fail(Error::DeadlineExceeded("jwks fetch timed out"));
  if (rc == CURLE_WRITE_ERROR) return Fail(Error::InvalidArgument("jwks document too large"));
  if (rc != CURLE_OK) {
    return Fail(Error::Unavailable(std::string("jwks fetch failed: ") +
                                   (errbuf[0] != 0 ? errbuf : curl_easy_strerror(rc))));
  }
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) return Fail(Error::Unavailable("jwks fetch returned HTTP " + std::to_string(status)));
  return std::move(sink.body);
}

Result<std::string> ReadFile(const std::string& path, std::size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(Error::Unavailable("cannot open jwks file " + path));
  std::string body;
  char buf[8192];
  while (in) {
    in.read(buf, sizeof buf);
    body.append(buf, static_cast<std::size_t>(in.gcount()));
    if (body.size() > limit) return Fail(Error::InvalidArgument("jwks document too large"));
  }
  if (in.bad()) return Fail(Error::Unavailable("cannot read jwks file " + path));
  return body;
}

bool IsUrl(std::string_view s) { return s.starts_with("http://") || s.starts_with("https://"); }

// NumericDate: a JSON number (integer or not), truncated to whole seconds.
std::optional<std::int64_t> NumericDate(const nlohmann::json& v) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned()) {
      const auto u = v.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
      return static_cast<std::int64_t>(u);
    }
    return v.get<std::int64_t>();
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d) || d >= 9.2e18 || d <= -9.2e18) return std::nullopt;
    return static_cast<std::int64_t>(std::floor(d));
  }
  return std::nullopt;
}

}  // namespace

std::string_view JwtReasonName(JwtReason reason) noexcept {
  switch (reason) {
    case JwtReason::kMalformed: return "malformed";
    case JwtReason::kAlgNotAllowed: return "alg_not_allowed";
    case JwtReason::kBadSignature: return "bad_signature";
    case JwtReason::kExpired: return "expired";
    case JwtReason::kNotYetValid: return "not_yet_valid";
    case JwtReason::kWrongIssuer: return "wrong_issuer";
    case JwtReason::kWrongAudience: return "wrong_audience";
    case JwtReason::kUnknownKey: return "unknown_key";
    case JwtReason::kNoKeys: return "no_keys";
  }
  return "unknown";
}

// ---- KeySet ---------------------------------------------------------------------------------

struct JwtVerifier::KeySet {
  struct Key {
    std::string kid;   // "" when the JWK has none
    KeyType type = KeyType::kRsa;
    std::string alg;   // the JWK's "alg", "" when absent
    std::shared_ptr<EVP_PKEY> pkey;
  };
  std::vector<Key> keys;
  SysClock::time_point fetched_at;
};

namespace {

// Parses a JWKS document. Keys that are not usable (other types or curves, "use" other than
// "sig", invalid or weak material) are skipped; a document with none left is an error.
Result<std::shared_ptr<const JwtVerifier::KeySet>> ParseJwks(std::string_view text, SysClock::time_point now) {
  nlohmann::json doc = modulo::ParseJsonOrDiscarded(text);
  if (doc.is_discarded() || !doc.is_object()) return Fail(Error::InvalidArgument("jwks is not a JSON object"));
  auto keys = doc.find("keys");
  if (keys == doc.end() || !keys->is_array()) return Fail(Error::InvalidArgument("jwks has no \"keys\" array"));
  auto set = std::make_shared<JwtVerifier::KeySet>();
  set->fetched_at = now;
  std::size_t skipped = 0;
  for (const auto& jwk : *keys) {
    if (!jwk.is_object()) {
      ++skipped;
      continue;
    }
    const auto str = [&](const char* name) -> std::string {
      auto it = jwk.find(name);
      return it != jwk.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    const std::string kty = str("kty");
    const std::string use = str("use");
    const std::string alg = str("alg");
    if (!use.empty() && use != "sig") {
      ++skipped;
      continue;
    }
    JwtVerifier::KeySet::Key key;
    key.kid = str("kid");
    key.alg = alg;
    Result<PkeyPtr> pkey = Fail(Error::InvalidArgument("unsupported kty"));
    // A key whose "alg" we do not support is still loaded (its kid is known), but ChooseKeys never
    // lets it verify anything: a token naming it is rejected as alg_not_allowed.
    if (kty == "RSA") {
      key.type = KeyType::kRsa;
      pkey = RsaKeyFromJwk(jwk);
    } else if (kty == "EC") {
      key.type = KeyType::kEc;
      pkey = EcKeyFromJwk(jwk);
    }
    if (!pkey) {
      ++skipped;
      continue;
    }
    key.pkey = std::shared_ptr<EVP_PKEY>(pkey->release(), PkeyDeleter{});
    set->keys.push_back(std::move(key));
  }
  if (set->keys.empty()) {
    return Fail(Error::InvalidArgument("jwks has no usable keys (" + std::to_string(skipped) + " skipped)"));
  }
  if (skipped > 0) log::Debug("jwks keys skipped", {{"skipped", skipped}, {"usable", set->keys.size()}});
  return std::shared_ptr<const JwtVerifier::KeySet>(std::move(set));
}

}  // namespace

// ---- State ------------------------------------------------------------------------------------

struct JwtVerifier::State {
  JwtVerifierOptions opt;
  bool jwks_is_url = false;
  bool has_jwks = false;
  std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> hmac;  // keyed with the HS256 secret; never modified

  std::atomic<std::shared_ptr<const KeySet>> keys;
  // Time of the last fetch attempt (ns since epoch of the injected clock); read without the lock
  // to decide cheaply whether a refresh is allowed.
  std::atomic<std::int64_t> last_attempt_ns{std::numeric_limits<std::int64_t>::min()};
  std::atomic<std::uint64_t> fetches{0};
  std::mutex refresh_mu;  // one fetch at a time

  mutable std::mutex error_mu;
  std::optional<Error> last_error;  // guarded by error_mu

  SysClock::time_point Now() const { return opt.now ? opt.now() : SysClock::now(); }

  static std::int64_t Ns(SysClock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  }

  // Whether the rate limit allows a fetch at `now` (a clock that went backwards allows one).
  bool FetchAllowed(SysClock::time_point now) const {
    const std::int64_t last = last_attempt_ns.load(std::memory_order_acquire);
    if (last == std::numeric_limits<std::int64_t>::min()) return true;
    const std::int64_t n = Ns(now);
    const std::int64_t interval =
        std::chrono::duration_cast<std::chrono::nanoseconds>(opt.min_refresh_interval).count();
    return n < last || n - last >= interval;
  }

  bool Stale(const std::shared_ptr<const KeySet>& set, SysClock::time_point now) const {
    return !set || now - set->fetched_at >= opt.jwks_refresh || now < set->fetched_at;
  }

  // Fetches and installs the JWKS. Caller holds refresh_mu.
  Status FetchLocked(SysClock::time_point now) {
    last_attempt_ns.store(Ns(now), std::memory_order_release);
    fetches.fetch_add(1, std::memory_order_relaxed);
    Result<std::string> body = jwks_is_url ? HttpGet(opt.jwks_source, opt.jwks_timeout, opt.max_jwks_bytes)
                                           : ReadFile(opt.jwks_source, opt.max_jwks_bytes);
    Result<std::shared_ptr<const KeySet>> set =
        body ? ParseJwks(*body, now) : Result<std::shared_ptr<const KeySet>>(Fail(body.error()));
    std::lock_guard lock(error_mu);
    if (!set) {
      last_error = set.error();
      log::Warn("jwks load failed", {{"error", set.error().message()}});
      return Fail(set.error());
    }
    keys.store(std::move(*set), std::memory_order_release);
    last_error.reset();
    return {};
  }

  // A refresh because the keys are stale or missing. Does not wait for another thread's fetch
  // when there are keys to use meanwhile.
  std::shared_ptr<const KeySet> MaybeRefreshStale(std::shared_ptr<const KeySet> current, SysClock::time_point now) {
    if (!FetchAllowed(now)) return current;
    std::unique_lock lock(refresh_mu, std::defer_lock);
    if (current) {
      if (!lock.try_lock()) return current;
    } else {
      lock.lock();
    }
    auto latest = keys.load(std::memory_order_acquire);
    if (Stale(latest, now) && FetchAllowed(now)) (void)FetchLocked(now);
    return keys.load(std::memory_order_acquire);
  }

  // A refresh because a token names a kid we do not have: waits for a fetch in progress, then
  // fetches itself if the rate limit allows.
  std::shared_ptr<const KeySet> RefreshForKid(std::string_view kid, SysClock::time_point now) {
    std::lock_guard lock(refresh_mu);
    auto latest = keys.load(std::memory_order_acquire);
    if (latest) {
      for (const auto& k : latest->keys) {
        if (k.kid == kid) return latest;  // another thread's refresh brought it
      }
    }
    if (FetchAllowed(now)) (void)FetchLocked(now);
    return keys.load(std::memory_order_acquire);
  }

  std::expected<Claims, JwtFailure> Verify(std::string_view token);
};

namespace {

struct KeyChoice {
  std::vector<const JwtVerifier::KeySet::Key*> candidates;
  bool kid_known = false;  // some key carries the token's kid
};

// The keys that may verify a token of `alg` with `kid` ("" = none given).
KeyChoice ChooseKeys(const JwtVerifier::KeySet* set, Alg alg, const std::string& kid) {
  KeyChoice c;
  if (set == nullptr) return c;
  const KeyType want = alg == Alg::kRs256 ? KeyType::kRsa : KeyType::kEc;
  for (const auto& k : set->keys) {
    if (!kid.empty()) {
      if (k.kid != kid) continue;
      c.kid_known = true;
    }
    if (k.type != want) continue;
    if (!k.alg.empty() && k.alg != AlgName(alg)) continue;
    c.candidates.push_back(&k);
  }
  return c;
}

}  // namespace

std::expected<Claims, JwtFailure> JwtVerifier::State::Verify(std::string_view token) {
  if (token.empty()) return Reject(JwtReason::kMalformed, "empty token");
  if (token.size() > opt.max_token_bytes) return Reject(JwtReason::kMalformed, "token too long");
  const std::size_t dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return Reject(JwtReason::kMalformed, "not a compact JWS");
  const std::size_t dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Reject(JwtReason::kMalformed, "not three segments");
  }
  const std::string_view header_b64 = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view sig_b64 = token.substr(dot2 + 1);
  const std::string_view signing_input = token.substr(0, dot2);
  if (header_b64.empty() || payload_b64.empty()) return Reject(JwtReason::kMalformed, "empty segment");

  // Header.
  auto header_text = Base64UrlDecode(header_b64, opt.max_token_bytes);
  if (!header_text) return Reject(JwtReason::kMalformed, "header is not base64url");
  nlohmann::json header = modulo::ParseJsonOrDiscarded(*header_text);
  if (header.is_discarded() || !header.is_object()) return Reject(JwtReason::kMalformed, "header is not a JSON object");
  auto alg_it = header.find("alg");
  if (alg_it == header.end() || !alg_it->is_string()) return Reject(JwtReason::kMalformed, "header has no alg");
  const std::string& alg_name = alg_it->get_ref<const std::string&>();
  Alg alg;
  if (alg_name == "HS256") {
    alg = Alg::kHs256;
  } else if (alg_name == "RS256") {
    alg = Alg::kRs256;
  } else if (alg_name == "ES256") {
    alg = Alg::kEs256;
  } else {
    std::string lower = alg_name;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower == "none") return Reject(JwtReason::kAlgNotAllowed, "unsigned tokens (alg none) are not accepted");
    return Reject(JwtReason::kAlgNotAllowed, "unsupported algorithm");
  }
  if (header.contains("crit")) return Reject(JwtReason::kMalformed, "critical header extensions are not supported");
  std::string kid;
  if (auto k = header.find("kid"); k != header.end()) {
    if (!k->is_string()) return Reject(JwtReason::kMalformed, "kid is not a string");
    kid = k->get<std::string>();
  }

  // Signature.
  if (sig_b64.empty()) return Reject(JwtReason::kMalformed, "empty signature");
  auto sig = Base64UrlDecode(sig_b64, 1024);
  if (!sig) return Reject(JwtReason::kMalformed, "signature is not base64url");

  const SysClock::time_point now = Now();
  if (alg == Alg::kHs256) {
    if (!opt.hs256_secret) return Reject(JwtReason::kAlgNotAllowed, "HS256 is not enabled");
    unsigned char mac[32];
    const bool computed = hmac ? HmacFromTemplate(hmac.get(), signing_input, mac)
                               : HmacSha256(*opt.hs256_secret, signing_input, mac);
    if (!computed) return Reject(JwtReason::kBadSignature, "HMAC failed");
    if (sig->size() != 32 || CRYPTO_memcmp(mac, sig->data(), 32) != 0) {
      OPENSSL_cleanse(mac, sizeof mac);
      return Reject(JwtReason::kBadSignature, "signature does not verify");
    }
    OPENSSL_cleanse(mac, sizeof mac);
  } else {
    if (!has_jwks) return Reject(JwtReason::kNoKeys, std::string(AlgName(alg)) + " needs a JWKS, none configured");
    std::shared_ptr<const KeySet> set = keys.load(std::memory_order_acquire);
    if (Stale(set, now)) set = MaybeRefreshStale(std::move(set), now);
    KeyChoice choice = ChooseKeys(set.get(), alg, kid);
    if (!kid.empty() && !choice.kid_known) {
      set = RefreshForKid(kid, now);
      choice = ChooseKeys(set.get(), alg, kid);
    }
    if (!set) return Reject(JwtReason::kNoKeys, "no JWKS loaded");
    if (!kid.empty() && !choice.kid_known) return Reject(JwtReason::kUnknownKey, "no key with kid " + QuoteKid(kid));
    if (choice.candidates.empty()) {
      if (!kid.empty()) {
        return Reject(JwtReason::kAlgNotAllowed,
                      std::string(AlgName(alg)) + " is not allowed for key " + QuoteKid(kid));
      }
      return Reject(JwtReason::kNoKeys, "no key for " + std::string(AlgName(alg)));
    }
    std::optional<std::string> der;
    const unsigned char* sig_bytes = reinterpret_cast<const unsigned char*>(sig->data());
    std::size_t sig_len = sig->size();
    if (alg == Alg::kEs256) {
      der = RawEcdsaToDer(*sig);
      if (!der) return Reject(JwtReason::kBadSignature, "ES256 signature must be 64 bytes");
      sig_bytes = reinterpret_cast<const unsigned char*>(der->data());
      sig_len = der->size();
    }
    bool ok = false;
    for (const KeySet::Key* k : choice.candidates) {
      if (alg == Alg::kRs256 && sig->size() != static_cast<std::size_t>(EVP_PKEY_get_size(k->pkey.get()))) continue;
      if (VerifyWithPkey(k->pkey.get(), signing_input, sig_bytes, sig_len)) {
        ok = true;
        if (kid.empty()) kid = k->kid;
        break;
      }
    }
    if (!ok) return Reject(JwtReason::kBadSignature, "signature does not verify");
  }

  // Payload (only after the signature: forged tokens never reach the JSON parser).
  auto payload_text = Base64UrlDecode(payload_b64, opt.max_token_bytes);
  if (!payload_text) return Reject(JwtReason::kMalformed, "payload is not base64url");
  nlohmann::json payload = modulo::ParseJsonOrDiscarded(*payload_text);
  if (payload.is_discarded() || !payload.is_object()) {
    return Reject(JwtReason::kMalformed, "payload is not a JSON object");
  }

  Claims c;
  c.algorithm = alg_name;
  c.key_id = kid;
  const auto string_claim = [&](const char* name, std::string& out) -> bool {
    auto it = payload.find(name);
    if (it == payload.end()) return true;
    if (!it->is_string()) return false;
    out = it->get<std::string>();
    return true;
  };
  if (!string_claim("sub", c.subject)) return Reject(JwtReason::kMalformed, "sub is not a string");
  // Every token without a subject would be one and the same user.
  if (c.subject.empty()) return Reject(JwtReason::kMalformed, "sub is required");
  if (!string_claim("iss", c.issuer)) return Reject(JwtReason::kMalformed, "iss is not a string");
  if (auto it = payload.find("email"); it != payload.end() && it->is_string()) c.email = it->get<std::string>();
  if (auto it = payload.find("name"); it != payload.end() && it->is_string()) c.name = it->get<std::string>();
  if (auto it = payload.find("aud"); it != payload.end()) {
    if (it->is_string()) {
      c.audience.push_back(it->get<std::string>());
    } else if (it->is_array()) {
      for (const auto& a : *it) {
        if (!a.is_string()) return Reject(JwtReason::kMalformed, "aud has a non-string member");
        c.audience.push_back(a.get<std::string>());
      }
    } else {
      return Reject(JwtReason::kMalformed, "aud is neither a string nor an array");
    }
  }
  auto exp_it = payload.find("exp");
  if (exp_it == payload.end()) return Reject(JwtReason::kMalformed, "exp is required");
  auto exp = NumericDate(*exp_it);
  if (!exp) return Reject(JwtReason::kMalformed, "exp is not a number");
  c.expires_at = *exp;
  if (auto it = payload.find("nbf"); it != payload.end()) {
    auto nbf = NumericDate(*it);
    if (!nbf) return Reject(JwtReason::kMalformed, "nbf is not a number");
    c.not_before = *nbf;
  }
  if (auto it = payload.find("iat"); it != payload.end()) {
    auto iat = NumericDate(*it);
    if (!iat) return Reject(JwtReason::kMalformed, "iat is not a number");
    c.issued_at = *iat;
  }

  const std::int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  const std::int64_t leeway = opt.leeway.count();
  if (c.expires_at < now_s - leeway) return Reject(JwtReason::kExpired, "token expired");
  if (c.not_before != 0 && c.not_before > now_s + leeway) return Reject(JwtReason::kNotYetValid, "token not valid yet");
  if (!opt.issuer.empty() && c.issuer != opt.issuer) return Reject(JwtReason::kWrongIssuer, "unexpected issuer");
  if (!opt.audience.empty() &&
      std::find(c.audience.begin(), c.audience.end(), opt.audience) == c.audience.end()) {
    return Reject(JwtReason::kWrongAudience, "token is not for this audience");
  }
  c.raw = std::move(payload);
  return c;
}

// ---- JwtVerifier --------------------------------------------------------------------------------

Result<std::unique_ptr<JwtVerifier>> JwtVerifier::Create(JwtVerifierOptions options) {
  // An identity provider's keys sign the tokens of every application it serves (and, for a
  // multi-tenant provider, of every tenant): without an issuer and an audience to check, a token
  // minted for someone else's application would sign in here.
  if (!options.jwks_source.empty() && (options.issuer.empty() || options.audience.empty())) {
    return Fail(Error::InvalidArgument(
        "a JWKS (MODULO_JWKS) needs MODULO_JWT_ISSUER and MODULO_JWT_AUDIENCE: the provider's keys also sign tokens "
        "for other applications"));
  }
  if (options.hs256_secret && options.hs256_secret->size() < 32) {
    return Fail(Error::InvalidArgument("the HS256 secret must be at least 32 bytes"));
  }
  if (!options.hs256_secret && options.jwks_source.empty()) {
    return Fail(Error::InvalidArgument("a JWT verifier needs an HS256 secret or a JWKS source"));
  }
  if (!options.jwks_source.empty() && !IsUrl(options.jwks_source) &&
      options.jwks_source.find("://") != std::string::npos) {
    return Fail(Error::InvalidArgument("the JWKS URL must be http:// or https://"));
  }
  if (options.leeway.count() < 0 || options.jwks_refresh.count() <= 0 || options.min_refresh_interval.count() < 0 ||
      options.jwks_timeout.count() <= 0 || options.max_token_bytes == 0) {
    return Fail(Error::InvalidArgument("JWT verifier options out of range"));
  }
  return std::unique_ptr<JwtVerifier>(new JwtVerifier(std::move(options)));
}

JwtVerifier::JwtVerifier(JwtVerifierOptions options) : state_(std::make_unique<State>()) {
  state_->opt = std::move(options);
  state_->has_jwks = !state_->opt.jwks_source.empty();
  state_->jwks_is_url = IsUrl(state_->opt.jwks_source);
  if (state_->opt.hs256_secret) state_->hmac = KeyedHmac(*state_->opt.hs256_secret);
  if (state_->has_jwks) {
    std::lock_guard lock(state_->refresh_mu);
    (void)state_->FetchLocked(state_->Now());
  }
}

JwtVerifier::~JwtVerifier() {
  if (state_ && state_->opt.hs256_secret) {
    OPENSSL_cleanse(state_->opt.hs256_secret->data(), state_->opt.hs256_secret->size());
  }
}

Result<Claims> JwtVerifier::Verify(std::string_view token) const {
  auto r = state_->Verify(token);
  if (!r) return Fail(r.error().ToError());
  return std::move(*r);
}

std::expected<Claims, JwtFailure> JwtVerifier::VerifyDetailed(std::string_view token) const {
  return state_->Verify(token);
}

Status JwtVerifier::RefreshKeys() const {
  if (!state_->has_jwks) return {};
  std::lock_guard lock(state_->refresh_mu);
  return state_->FetchLocked(state_->Now());
}

std::size_t JwtVerifier::key_count() const {
  auto set = state_->keys.load(std::memory_order_acquire);
  return set ? set->keys.size() : 0;
}

std::optional<Error> JwtVerifier::last_jwks_error() const {
  std::lock_guard lock(state_->error_mu);
  return state_->last_error;
}

std::uint64_t JwtVerifier::jwks_fetch_count() const { return state_->fetches.load(std::memory_order_relaxed); }

// ---- signing ------------------------------------------------------------------------------------

Result<std::string> SignHs256(const nlohmann::json& claims, std::string_view secret, std::string_view kid) {
  if (!claims.is_object()) return Fail(Error::InvalidArgument("JWT claims must be a JSON object"));
  if (secret.empty()) return Fail(Error::InvalidArgument("the HS256 secret must not be empty"));
  nlohmann::json header = {{"alg", "HS256"}, {"typ", "JWT"}};
  if (!kid.empty()) header["kid"] = std::string(kid);
  std::string token = Base64UrlEncode(header.dump());
  token.push_back('.');
  try {
    token += Base64UrlEncode(claims.dump());
  } catch (const nlohmann::json::exception&) {
    return Fail(Error::InvalidArgument("JWT claims are not valid UTF-8"));
  }
  unsigned char mac[32];
  if (!HmacSha256(secret, token, mac)) return Fail(Error::Internal("HMAC failed"));
  token.push_back('.');
  token += Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(mac), sizeof mac));
  OPENSSL_cleanse(mac, sizeof mac);
  return token;
}

}  // namespace modulo::auth
