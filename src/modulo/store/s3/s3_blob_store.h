// S3BlobStore: the BlobStore for servers and workers on different machines. Blobs live in an
// S3 bucket (AWS S3 or any S3-compatible server) under the same layout as LocalBlobStore:
// object `<key_prefix>blobs/ab/<sha256>`.
//
// Promises (the BlobStore contract, plus):
// - Put is durable when it returns: the object was acknowledged by the server (S3 answers a PUT
//   once the object is stored). Same content is stored once: Put asks first (HEAD) and skips the
//   upload when the object exists. The upload streams from the file and is signed with the
//   file's sha256 as its payload hash, so the server refuses bytes that do not match their key.
//   The source file is consumed, as with LocalBlobStore: it is moved into the local cache (or
//   removed when that is not possible), so a Fetch in the same process needs no download.
// - Fetch returns a file in the local cache directory (`cache_dir/ab/<sha256>`). A cached copy is
//   used only after its sha256 was checked; a copy that does not match is removed and the blob
//   downloaded again. Downloads go to a temporary file in the cache directory, are checked
//   against their sha256, and are renamed into place, so a reader never sees a partial file.
// - The cache is bounded by `cache_max_bytes` (0: unbounded): past it, the least recently used
//   files are removed, except files used in the last `cache_min_age`, so a path returned by Fetch
//   stays readable at least that long.
// - Delete removes the object (an absent one is not an error) and the cached copy.
// - Errors: see S3Client (404 → kNotFound, 403 → kUnauthenticated / kPermissionDenied naming the
//   bucket, retries with backoff on 5xx/429/transport failures, kUnavailable once spent).
//
// Metrics (when a registry is given): S3Client's, plus
// modulo_s3_blob_cache_total{result="hit|miss|invalid"} and modulo_s3_blob_uploads_skipped_total.
//
// Thread-safety: all methods are thread-safe; they block (network and disk). Several processes
// may share one cache directory.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "modulo/store/blob_store.h"
#include "modulo/store/s3/s3_client.h"

namespace modulo::metrics {
class Registry;
class Counter;
}  // namespace modulo::metrics

namespace modulo::store::s3 {

struct S3BlobStoreOptions {
  S3Options s3;
  std::filesystem::path cache_dir;           // local copies for Fetch (created if missing)
  std::uint64_t cache_max_bytes = 0;         // 0: unbounded
  std::chrono::seconds cache_min_age{600};   // files used more recently than this are never evicted
};

class S3BlobStore final : public BlobStore {
 public:
  // Validates the options and creates the cache directory. Makes no request: call CheckBucket()
  // at start-up to fail early on a wrong endpoint, bucket or credentials.
  [[nodiscard]] static Result<std::unique_ptr<S3BlobStore>> Create(S3BlobStoreOptions options,
                                                                   metrics::Registry* registry = nullptr);

  Result<std::string> Put(const std::filesystem::path& file, const std::string& sha256) override;
  Result<std::filesystem::path> Fetch(const std::string& key) override;
  Status Delete(const std::string& key) override;

  // The bucket exists and the credentials may use it.
  [[nodiscard]] Status CheckBucket() const { return client_->CheckBucket(); }
  [[nodiscard]] const S3Client& client() const noexcept { return *client_; }
  // The object key of a blob, without the configured prefix: "blobs/ab/<sha256>".
  [[nodiscard]] static std::string ObjectKey(const std::string& sha256);
  // Where Fetch keeps a blob's local copy.
  [[nodiscard]] std::filesystem::path CachePath(const std::string& sha256) const;

 private:
  S3BlobStore(S3BlobStoreOptions options, std::unique_ptr<S3Client> client, metrics::Registry* registry);
  // Moves `file` (whose sha256 is `sha256`) into the cache; removes it when that fails.
  void Adopt(const std::filesystem::path& file, const std::string& sha256);
  // Removes least recently used files while the cache is over its bound.
  void Evict();
  void Added(std::uint64_t bytes);

  S3BlobStoreOptions options_;
  std::unique_ptr<S3Client> client_;
  std::filesystem::path tmp_dir_;
  std::atomic<std::uint64_t> cache_bytes_{0};  // an estimate between scans
  std::mutex evict_mu_;                        // one eviction scan at a time
  metrics::Counter* hits_ = nullptr;
  metrics::Counter* misses_ = nullptr;
  metrics::Counter* invalid_ = nullptr;
  metrics::Counter* skipped_ = nullptr;
};

}  // namespace modulo::store::s3
