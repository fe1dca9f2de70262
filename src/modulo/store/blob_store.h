// BlobStore: where uploaded bytes are kept, by content (sha256). Implementations: LocalBlobStore
// (a directory; shared by processes on one machine or on a shared volume) and an S3-compatible
// one for servers and workers on different machines.
//
// Put() is durable when it returns: the bytes are fsynced and renamed into place, so an upload
// that was acknowledged survives a crash. Putting the same content twice stores it once.
//
// Thread-safety: all methods are thread-safe; they block (disk or network).
#pragma once

#include <filesystem>
#include <string>

#include "modulo/core/error.h"

namespace modulo::store {

class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // Moves (or copies) `file` into the store under its sha256 hex digest; returns the key.
  [[nodiscard]] virtual Result<std::string> Put(const std::filesystem::path& file, const std::string& sha256) = 0;
  // A local path from which the blob can be read (the blob itself, or a downloaded copy).
  [[nodiscard]] virtual Result<std::filesystem::path> Fetch(const std::string& key) = 0;
  [[nodiscard]] virtual Status Delete(const std::string& key) = 0;
};

class LocalBlobStore final : public BlobStore {
 public:
  explicit LocalBlobStore(std::filesystem::path root) : root_(std::move(root)) {}
  Result<std::string> Put(const std::filesystem::path& file, const std::string& sha256) override;
  Result<std::filesystem::path> Fetch(const std::string& key) override;
  Status Delete(const std::string& key) override;

 private:
  std::filesystem::path PathOf(const std::string& key) const;
  std::filesystem::path root_;
};

// The sha256 hex digest of a file's bytes.
[[nodiscard]] Result<std::string> Sha256File(const std::filesystem::path& file);

}  // namespace modulo::store
