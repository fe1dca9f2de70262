// JwtVerifier: verifies compact JWS tokens (JWTs) signed with HS256 (a shared secret) or with
// RS256/ES256 (public keys from a JWKS document read from a file or fetched over http(s)).
//
// Promises:
// - A token is accepted only if its signature verifies with a key of the token's algorithm, and
//   `exp` is present, numeric and not past (with `leeway`), `nbf` (if present) is numeric and not
//   in the future (with `leeway`), `iss` equals `issuer` and `aud` (a string or an array) contains
//   `audience` when those options are set.
// - The algorithm comes from the token header but is checked against what the key allows: HS256
//   only with the configured shared secret; RS256 only with an RSA JWK, ES256 only with an EC
//   P-256 JWK; if the JWK carries `alg` it must match. `alg: none` (any spelling) is rejected.
// - Every rejection has a distinct JwtReason; as an Error it is kUnauthenticated with a message
//   that starts with the reason name ("expired: ..."). Messages never contain secrets or keys.
// - Inputs are bounded: tokens beyond `max_token_bytes` are rejected before any decoding;
//   base64url is decoded strictly (see base64url.h).
// - JWKS: loaded at construction (a failure is logged and kept in last_jwks_error(); verification
//   then fails with "no_keys" until a refresh succeeds). Keys are refreshed when older than
//   `jwks_refresh`, and when a token names an unknown `kid`; any fetch is attempted at most once
//   per `min_refresh_interval` (default 30 s), so unknown kids cannot hammer the JWKS URL.
//   A failed refresh keeps the previous keys.
//
// Blocking: HS256 verification and file-backed JWKS never block on the network. With a URL JWKS,
// a Verify call that triggers a refresh fetches in the calling thread (up to `jwks_timeout`);
// threads that find a stale-but-present key set while another thread refreshes do not wait, but a
// thread with an unknown kid waits for the refresh in progress. Call Verify off the I/O threads
// (RunOn the blocking pool) when a URL JWKS is configured.
//
// Thread-safety: all methods are thread-safe. The key set is an immutable
// std::shared_ptr<const KeySet> swapped atomically; verification takes no lock unless it refreshes.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "modulo/core/error.h"

namespace modulo::auth {

enum class JwtReason {
  kMalformed,       // "malformed": not three base64url segments, bad JSON, missing/non-numeric exp, too long
  kAlgNotAllowed,   // "alg_not_allowed": none, unknown alg, or alg not permitted for the key
  kBadSignature,    // "bad_signature": signature does not verify
  kExpired,         // "expired"
  kNotYetValid,     // "not_yet_valid"
  kWrongIssuer,     // "wrong_issuer"
  kWrongAudience,   // "wrong_audience"
  kUnknownKey,      // "unknown_key": kid not in the JWKS (after the allowed refresh)
  kNoKeys,          // "no_keys": no key for this algorithm is configured or loaded
};

// The stable name of a reason, e.g. "bad_signature".
[[nodiscard]] std::string_view JwtReasonName(JwtReason reason) noexcept;

struct JwtFailure {
  JwtReason reason;
  std::string message;  // starts with JwtReasonName(reason)

  // kUnauthenticated with `message`.
  [[nodiscard]] Error ToError() const { return Error::Unauthenticated(message); }
};

struct Claims {
  std::string subject;                 // sub
  std::string issuer;                  // iss
  std::vector<std::string> audience;   // aud (a string becomes one element)
  std::int64_t expires_at = 0;         // exp, seconds since the Unix epoch
  std::int64_t not_before = 0;         // nbf, 0 when absent
  std::int64_t issued_at = 0;          // iat, 0 when absent
  std::string email;                   // email, when a string
  std::string name;                    // name, when a string
  nlohmann::json raw;                  // the whole payload object
  std::string key_id;                  // header kid ("" when absent)
  std::string algorithm;               // header alg: "HS256", "RS256" or "ES256"
};

struct JwtVerifierOptions {
  // HS256 shared secret; std::nullopt disables HS256. At least 32 bytes when set (RFC 7518 §3.2).
  std::optional<std::string> hs256_secret;
  // JWKS source: "" for none, an "http://" or "https://" URL, or a file path.
  std::string jwks_source;
  std::chrono::milliseconds jwks_timeout{5000};   // whole-request timeout for a URL fetch
  std::string issuer;                              // required `iss` when not empty
  std::string audience;                            // required member of `aud` when not empty
  std::chrono::seconds leeway{60};                 // clock skew allowed on exp and nbf
  std::chrono::seconds jwks_refresh{300};          // refetch keys older than this
  std::chrono::seconds min_refresh_interval{30};   // at most one fetch per interval (except RefreshKeys())
  std::size_t max_token_bytes = 16 * 1024;
  std::size_t max_jwks_bytes = 1u << 20;
  // Wall clock, injectable for tests; defaults to std::chrono::system_clock::now.
  std::function<std::chrono::system_clock::time_point()> now;
};

class JwtVerifier {
 public:
  struct KeySet;  // parsed JWKS (opaque; defined in jwt.cpp)

  // InvalidArgument when the options are unusable: neither secret nor JWKS source, a secret
  // shorter than 32 bytes, a URL scheme other than http/https, negative or zero durations.
  // A JWKS that cannot be loaded yet is not an error here (see last_jwks_error()).
  [[nodiscard]] static Result<std::unique_ptr<JwtVerifier>> Create(JwtVerifierOptions options);

  ~JwtVerifier();
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  // The claims of a valid token, or kUnauthenticated ("<reason>: <detail>").
  [[nodiscard]] Result<Claims> Verify(std::string_view token) const;
  // The same, with the reason as an enum.
  [[nodiscard]] std::expected<Claims, JwtFailure> VerifyDetailed(std::string_view token) const;

  // Fetches the JWKS now, ignoring the rate limit (for an admin action or a timer). On failure
  // the previous keys stay. Unavailable for fetch errors, InvalidArgument for a bad document;
  // Ok (no-op) when no JWKS source is configured.
  [[nodiscard]] Status RefreshKeys() const;

  // Number of usable keys in the current JWKS (0 when none is loaded).
  [[nodiscard]] std::size_t key_count() const;
  // The error of the most recent failed JWKS load, cleared by a successful one.
  [[nodiscard]] std::optional<Error> last_jwks_error() const;
  // Number of JWKS fetches attempted so far (for tests and metrics).
  [[nodiscard]] std::uint64_t jwks_fetch_count() const;

 private:
  explicit JwtVerifier(JwtVerifierOptions options);
  struct State;
  std::unique_ptr<State> state_;
};

// Signs `claims` (a JSON object) as an HS256 JWT with header {"alg":"HS256","typ":"JWT"} (plus
// "kid" when `kid` is not empty). InvalidArgument for a non-object, claims that are not valid
// UTF-8, or an empty secret.
[[nodiscard]] Result<std::string> SignHs256(const nlohmann::json& claims, std::string_view secret,
                                            std::string_view kid = {});

}  // namespace modulo::auth
