#include "modulo/store/s3/s3_blob_store.h"

#include <algorithm>
#include <vector>

#include "modulo/core/log.h"
#include "modulo/core/request_id.h"
#include "modulo/metrics/registry.h"

namespace modulo::store::s3 {
namespace {

namespace fs = std::filesystem;

bool IsHexDigest(const std::string& s) {
  if (s.size() != 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

constexpr const char* kTmpDir = ".tmp";

}  // namespace

Result<std::unique_ptr<S3BlobStore>> S3BlobStore::Create(S3BlobStoreOptions options, metrics::Registry* registry) {
  if (options.cache_dir.empty()) return Fail(Error::InvalidArgument("S3 blob store needs a local cache directory"));
  std::error_code ec;
  fs::create_directories(options.cache_dir / kTmpDir, ec);
  if (ec) {
    return Fail(Error::Unavailable("cannot create the blob cache directory " + options.cache_dir.string() + ": " +
                                   ec.message()));
  }
  auto client = S3Client::Create(options.s3, registry);
  if (!client) return Fail(client.error());
  return std::unique_ptr<S3BlobStore>(new S3BlobStore(std::move(options), std::move(*client), registry));
}

S3BlobStore::S3BlobStore(S3BlobStoreOptions options, std::unique_ptr<S3Client> client, metrics::Registry* registry)
    : options_(std::move(options)), client_(std::move(client)), tmp_dir_(options_.cache_dir / kTmpDir) {
  if (registry != nullptr) {
    auto& cache = registry->AddCounter("modulo_s3_blob_cache_total",
                                       "Blob fetches by the local cache's answer (invalid: a copy whose sha256 "
                                       "did not match, downloaded again)",
                                       {"result"});
    hits_ = &cache.With({"hit"});
    misses_ = &cache.With({"miss"});
    invalid_ = &cache.With({"invalid"});
    skipped_ = &registry->AddCounter("modulo_s3_blob_uploads_skipped_total",
                                     "Blob puts whose content the bucket already held (no upload)")
                    .With({});
  }
  // Leftovers of downloads interrupted by a crash: older than a day, nobody is writing them.
  std::error_code ec;
  const auto day_ago = fs::file_time_type::clock::now() - std::chrono::hours(24);
  for (fs::directory_iterator it(tmp_dir_, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code e2;
    if (it->is_regular_file(e2) && it->last_write_time(e2) < day_ago) fs::remove(it->path(), e2);
  }
  if (options_.cache_max_bytes > 0) Evict();  // also measures the cache
}

std::string S3BlobStore::ObjectKey(const std::string& sha256) { return "blobs/" + sha256.substr(0, 2) + "/" + sha256; }

fs::path S3BlobStore::CachePath(const std::string& sha256) const {
  return options_.cache_dir / sha256.substr(0, 2) / sha256;
}

Result<std::string> S3BlobStore::Put(const fs::path& file, const std::string& sha256) {
  if (!IsHexDigest(sha256)) return Fail(Error::InvalidArgument("blob key must be a sha256 hex digest"));
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    return Fail(Error::Unavailable("cannot read " + file.string() + ": " +
                                   (ec ? ec.message() : std::string("not a regular file"))));
  }
  const std::string key = ObjectKey(sha256);
  auto exists = client_->Exists(key);
  if (!exists) return Fail(exists.error());
  if (*exists) {
    if (skipped_ != nullptr) skipped_->Inc();
  } else if (auto st = client_->PutFile(key, file, sha256); !st) {
    return Fail(st.error());
  }
  Adopt(file, sha256);
  return sha256;
}

void S3BlobStore::Adopt(const fs::path& file, const std::string& sha256) {
  std::error_code ec;
  const auto dest = CachePath(sha256);
  const auto size = fs::file_size(file, ec);
  if (!ec && !fs::exists(dest, ec)) {
    fs::create_directories(dest.parent_path(), ec);
    if (!ec) fs::rename(file, dest, ec);
    if (!ec) {
      Added(size);
      return;
    }
  }
  fs::remove(file, ec);  // stored in the bucket; the local copy is only a cache
}

Result<fs::path> S3BlobStore::Fetch(const std::string& key) {
  if (!IsHexDigest(key)) return Fail(Error::InvalidArgument("invalid blob key"));
  const auto path = CachePath(key);
  std::error_code ec;
  if (fs::exists(path, ec)) {
    auto digest = Sha256File(path);
    if (digest && *digest == key) {
      fs::last_write_time(path, fs::file_time_type::clock::now(), ec);  // recently used: kept by eviction
      if (hits_ != nullptr) hits_->Inc();
      return path;
    }
    // Damaged or replaced (or removed while being read): never trusted, downloaded again.
    log::Warn("cached blob does not match its sha256; downloading it again", {{"blob", key}});
    if (invalid_ != nullptr) invalid_->Inc();
    fs::remove(path, ec);
  }
  if (misses_ != nullptr) misses_->Inc();

  const fs::path tmp = tmp_dir_ / (key + "." + NewUuid() + ".part");
  auto remove_tmp = [&] {
    std::error_code e;
    fs::remove(tmp, e);
  };
  fs::create_directories(tmp_dir_, ec);
  if (auto st = client_->GetToFile(ObjectKey(key), tmp); !st) {
    remove_tmp();
    if (st.error().code() == ErrorCode::kNotFound) {
      return Fail(Error::NotFound("blob " + key + " is missing from the store (S3 bucket '" +
                                  client_->options().bucket + "')"));
    }
    return Fail(st.error());
  }
  auto digest = Sha256File(tmp);
  if (!digest) {
    remove_tmp();
    return Fail(digest.error());
  }
  if (*digest != key) {
    remove_tmp();
    return Fail(Error::Internal("blob " + key + " in S3 bucket '" + client_->options().bucket +
                                "' does not match its sha256 (got " + *digest + "): the stored object is damaged"));
  }
  const auto size = fs::file_size(tmp, ec);
  fs::create_directories(path.parent_path(), ec);
  fs::rename(tmp, path, ec);
  if (ec) {
    remove_tmp();
    return Fail(Error::Unavailable("cannot move the downloaded blob into " + path.string() + ": " + ec.message()));
  }
  Added(size);
  return path;
}

Status S3BlobStore::Delete(const std::string& key) {
  if (!IsHexDigest(key)) return Fail(Error::InvalidArgument("invalid blob key"));
  if (auto st = client_->Delete(ObjectKey(key)); !st) return st;
  std::error_code ec;
  fs::remove(CachePath(key), ec);
  if (ec) return Fail(Error::Unavailable("cannot delete the cached copy of blob " + key + ": " + ec.message()));
  return {};
}

void S3BlobStore::Added(std::uint64_t bytes) {
  if (options_.cache_max_bytes == 0) return;
  if (cache_bytes_.fetch_add(bytes) + bytes > options_.cache_max_bytes) Evict();
}

void S3BlobStore::Evict() {
  std::unique_lock lock(evict_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;  // another thread is at it
  struct Entry {
    fs::file_time_type used;
    std::uint64_t size;
    fs::path path;
  };
  std::vector<Entry> entries;
  std::uint64_t total = 0;
  std::error_code ec;
  for (fs::directory_iterator shard(options_.cache_dir, ec), end; !ec && shard != end; shard.increment(ec)) {
    std::error_code e2;
    if (!shard->is_directory(e2) || shard->path().filename() == kTmpDir) continue;
    for (fs::directory_iterator it(shard->path(), e2); !e2 && it != end; it.increment(e2)) {
      std::error_code e3;
      if (!it->is_regular_file(e3)) continue;
      const auto size = it->file_size(e3);
      const auto used = it->last_write_time(e3);
      if (e3) continue;
      entries.push_back({used, size, it->path()});
      total += size;
    }
  }
  const std::uint64_t target = options_.cache_max_bytes - options_.cache_max_bytes / 10;
  if (total > options_.cache_max_bytes) {
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.used < b.used; });
    const auto protect_after = fs::file_time_type::clock::now() - options_.cache_min_age;
    for (const auto& e : entries) {
      if (total <= target) break;
      if (e.used > protect_after) break;  // sorted: everything after is at least as recent
      std::error_code e4;
      if (fs::remove(e.path, e4)) total -= e.size;
    }
  }
  cache_bytes_.store(total);
}

}  // namespace modulo::store::s3
