// AWS Signature Version 4 (header-based authentication), implemented on OpenSSL.
//
// The signer follows the published algorithm step by step, and each step is a function of its
// own so the official test vectors can check them one by one:
//
//   1. CanonicalRequest: method, the URI-encoded path, the canonical query string (names and
//      values URI-encoded, sorted by name then value), the canonical headers (lower-case names,
//      values trimmed with inner runs of spaces folded to one, sorted, repeated names joined by
//      commas), the signed header names, and the hex SHA-256 of the payload (or the literal
//      UNSIGNED-PAYLOAD).
//   2. StringToSign: "AWS4-HMAC-SHA256", the request time (YYYYMMDD'T'HHMMSS'Z'), the credential
//      scope (date/region/service/aws4_request) and the hex SHA-256 of the canonical request.
//   3. SigningKey: HMAC-SHA256 chained over "AWS4"+secret, date, region, service, "aws4_request".
//   4. The signature (hex HMAC-SHA256 of the string to sign with the signing key) and the
//      Authorization header.
//
// The path is encoded once, segment by segment, with '/' kept (S3's rule; other AWS services
// encode twice, which this signer does not do) and no dot-segment normalisation: S3 object keys
// are taken literally.
//
// Thread-safety: free functions without shared state.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace modulo::store::s3 {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // temporary credentials only; sent (and signed) as x-amz-security-token
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// One request as the signer sees it.
struct SignableRequest {
  std::string method;  // "GET", "PUT", ...
  std::string path;    // decoded, starting with '/', e.g. "/bucket/blobs/ab/abcd..."
  std::vector<std::pair<std::string, std::string>> query;  // decoded names and values
  HeaderList headers;  // every header to sign; must include host (any case for the names)
  std::string payload_hash;  // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

struct Signature {
  std::string canonical_request;
  std::string signed_headers;  // "host;x-amz-date"
  std::string string_to_sign;
  std::string signature;       // hex
  std::string authorization;   // the Authorization header's value
};

inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
// Hex SHA-256 of no bytes.
inline constexpr std::string_view kEmptyPayloadHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// RFC 3986 percent-encoding as SigV4 wants it: unreserved bytes (A-Z a-z 0-9 - . _ ~) are kept,
// every other byte becomes %XY (upper-case hex); '/' is kept only when `keep_slash`.
[[nodiscard]] std::string UriEncode(std::string_view s, bool keep_slash);

[[nodiscard]] std::string Sha256Hex(std::string_view data);
// Raw (32-byte) HMAC-SHA256.
[[nodiscard]] std::string HmacSha256(std::string_view key, std::string_view data);
[[nodiscard]] std::string HexEncode(std::string_view bytes);

// "20150830T123600Z" for a point in time (UTC).
[[nodiscard]] std::string AmzDate(std::chrono::system_clock::time_point t);

// Step 1. `signed_headers` receives the signed header list ("host;x-amz-date").
[[nodiscard]] std::string CanonicalRequest(const SignableRequest& r, std::string* signed_headers);
// Step 2. `amz_date` is "YYYYMMDDTHHMMSSZ"; the scope's date is its first 8 characters.
[[nodiscard]] std::string StringToSign(std::string_view amz_date, std::string_view region, std::string_view service,
                                       std::string_view canonical_request);
// Step 3 (raw bytes).
[[nodiscard]] std::string SigningKey(std::string_view secret_access_key, std::string_view date,
                                     std::string_view region, std::string_view service);

// All steps. The request must already carry the x-amz-date header equal to `amz_date` (and
// x-amz-security-token when the credentials have one); AddSigningHeaders does that.
[[nodiscard]] Signature Sign(const SignableRequest& r, const Credentials& credentials, std::string_view region,
                             std::string_view service, std::string_view amz_date);

// Adds x-amz-date (and x-amz-security-token for temporary credentials) to `r.headers`.
void AddSigningHeaders(SignableRequest& r, const Credentials& credentials, std::string_view amz_date);

}  // namespace modulo::store::s3
