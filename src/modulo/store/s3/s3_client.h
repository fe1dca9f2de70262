// S3Client: the few S3 operations the blob store needs (HEAD, PUT from a file, GET into a file,
// DELETE, bucket creation and checks), signed with AWS Signature Version 4 and sent over libcurl.
// It talks to AWS S3 and to S3-compatible servers (SeaweedFS, MinIO, Ceph RGW, ...).
//
// Addressing: path style (http://host:port/bucket/key, the default, what most self-hosted
// servers expect) or virtual-host style (http://bucket.host:port/key, what AWS prefers; the
// bucket must then be a valid DNS label).
//
// Promises:
// - Bodies stream: uploads are read from the file as they are sent (the payload hash is the file's
//   SHA-256, supplied by the caller, so the server verifies the bytes it stored; or
//   UNSIGNED-PAYLOAD when configured), downloads are written to the file as they arrive.
// - Every operation here is idempotent and is retried with exponential backoff and jitter on
//   transport failures, timeouts, 429 and 5xx (honouring Retry-After), up to `max_attempts`
//   attempts in all; each attempt is signed anew.
// - Errors by meaning: 404 → kNotFound (but an object request to a bucket that does not exist →
//   kUnavailable: the configuration is wrong, not the object missing); 403 with bad credentials (SignatureDoesNotMatch,
//   InvalidAccessKeyId, ExpiredToken, ...) → kUnauthenticated, other 403s → kPermissionDenied,
//   both naming the bucket and the endpoint; 400 → kInvalidArgument; the last transport
//   failure or 5xx once retries are spent → kUnavailable; a timeout → kDeadlineExceeded. The
//   service's own error code and message (from its XML body) are part of the message. Secrets
//   never appear in messages or logs.
//
// Metrics (when a registry is given): modulo_s3_requests_total{operation,status},
// modulo_s3_request_duration_seconds{operation}, modulo_s3_retries_total{operation}.
//
// Thread-safety: all methods may be called from any number of threads at once (each call uses
// its thread's own curl handle, kept between calls so connections are reused).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "modulo/core/error.h"
#include "modulo/store/s3/sigv4.h"

namespace modulo::metrics {
class Registry;
class Counter;
template <typename Cell>
class Family;
class Histogram;
}  // namespace modulo::metrics

namespace modulo::store::s3 {

struct S3Options {
  std::string endpoint;             // scheme://host[:port], http or https, e.g. "https://s3.eu-west-1.amazonaws.com"
  std::string bucket;               // 3-63 characters: a-z 0-9 . -
  std::string region = "us-east-1"; // signing region (self-hosted servers usually accept any)
  Credentials credentials;
  bool path_style = true;           // false: virtual-host addressing (bucket.host)
  std::string key_prefix;           // prepended to every object key, e.g. "modulo/" (no leading '/')
  bool unsigned_payload = false;    // sign uploads as UNSIGNED-PAYLOAD (https endpoints only)
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds request_timeout{30'000};  // one attempt of a request without a body
  std::chrono::seconds transfer_stall_timeout{60};    // an upload or download slower than 1 KiB/s this long fails
  int max_attempts = 4;                               // attempts in all, including the first
  std::chrono::milliseconds base_delay{200};          // backoff before the second attempt (doubles)
  std::chrono::milliseconds max_delay{10'000};
};

class S3Client {
 public:
  // Validates the options (endpoint, bucket name, credentials, region, prefix). Makes no request.
  [[nodiscard]] static Result<std::unique_ptr<S3Client>> Create(S3Options options,
                                                                metrics::Registry* registry = nullptr);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  [[nodiscard]] const S3Options& options() const noexcept { return options_; }
  // The object's full name in the bucket: key_prefix + key.
  [[nodiscard]] std::string ObjectName(const std::string& key) const { return options_.key_prefix + key; }
  // The URL of an object (key without the prefix), or of the bucket when `key` is empty.
  [[nodiscard]] std::string Url(const std::string& key) const;

  // HEAD: true when the object exists, false on 404.
  [[nodiscard]] Result<bool> Exists(const std::string& key) const;
  // PUT of the file's bytes; `sha256_hex` is the file's SHA-256 (the server checks it unless the
  // client signs UNSIGNED-PAYLOAD).
  [[nodiscard]] Status PutFile(const std::string& key, const std::filesystem::path& file,
                               const std::string& sha256_hex) const;
  // PUT of bytes held in memory.
  [[nodiscard]] Status PutBytes(const std::string& key, std::string_view bytes) const;
  // GET into `file` (created or truncated). kNotFound when the object does not exist.
  [[nodiscard]] Status GetToFile(const std::string& key, const std::filesystem::path& file) const;
  // DELETE; an object that does not exist is not an error.
  [[nodiscard]] Status Delete(const std::string& key) const;

  // HEAD of the bucket: OK, kNotFound (no such bucket), or the credential errors above.
  [[nodiscard]] Status CheckBucket() const;
  // Creates the bucket (in the configured region); a bucket that exists and is ours is fine.
  [[nodiscard]] Status CreateBucket() const;

 private:
  struct Request;
  struct Response;
  struct Metrics;
  S3Client(S3Options options, std::string scheme, std::string host, metrics::Registry* registry);

  [[nodiscard]] Result<Response> Perform(const Request& request) const;
  // One attempt; `retryable` tells whether another attempt may help (local failures: no).
  [[nodiscard]] Result<Response> Once(const Request& request, bool* retryable) const;
  [[nodiscard]] Error ErrorFor(const Request& request, const Response& response) const;
  // ErrorFor a HEAD, whose 403 carries no body: a one-byte GET tells bad credentials from a
  // missing permission.
  [[nodiscard]] Error HeadError(const Request& head, const Response& response) const;
  // The Host header and the (decoded) path of an object, or of the bucket when `key` is empty.
  void Target(const std::string& key, std::string* host, std::string* path) const;
  [[nodiscard]] std::chrono::milliseconds Backoff(int attempt, const std::string& retry_after) const;

  S3Options options_;
  std::string scheme_;  // "http" or "https"
  std::string host_;    // host[:port] of the endpoint (without the bucket)
  std::unique_ptr<Metrics> metrics_;
};

// True when `name` is a valid S3 bucket name (3-63 of a-z 0-9 . -, starting and ending with a
// letter or digit, not shaped like an IPv4 address).
[[nodiscard]] bool IsValidBucketName(const std::string& name);

}  // namespace modulo::store::s3
