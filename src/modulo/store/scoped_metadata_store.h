// ScopedMetadataStore: the metadata store as one principal may see it. Every request-path read
// and write goes through one of these, so isolation does not rest on each handler remembering a
// check: a collection (and its files and chunks) the principal cannot read does not exist for
// this store (NotFound, never a hint that it exists), and writes need the matching level
// (PermissionDenied when the collection is visible but the level is too low).
//
//   read:  get/list collections, files, chunks; search
//   write: add/delete files, replace chunks, reindex
//   admin: delete the collection (and, above the store, change its sharing)
//
// Access levels come from IdentityStore::AccessLevelFor and are remembered for the lifetime of
// the object (one request). Background jobs use the unscoped store.
//
// Thread-safety: like the wrapped stores; the level memo is guarded by a mutex.
#pragma once

#include <map>
#include <mutex>

#include "modulo/store/identity_store.h"
#include "modulo/store/metadata_store.h"

namespace modulo::store {

class ScopedMetadataStore final : public MetadataStore {
 public:
  // `known`: levels already checked for this principal (by the request's guard), not asked again.
  ScopedMetadataStore(MetadataStore& inner, IdentityStore& identity, AccessScope scope,
                      std::map<std::string, AccessLevel> known = {})
      : inner_(inner), identity_(identity), scope_(std::move(scope)), levels_(std::move(known)) {}

  [[nodiscard]] const AccessScope& scope() const noexcept { return scope_; }
  // The principal's level on a collection (kNone when it does not exist).
  [[nodiscard]] Result<AccessLevel> LevelOn(const std::string& collection_id);
  // NotFound unless readable; PermissionDenied unless at least `needed`.
  [[nodiscard]] Status Require(const std::string& collection_id, AccessLevel needed);

  Result<Collection> CreateCollection(const NewCollection& c) override;
  Result<Collection> GetCollection(const std::string& id) override;
  Result<Collection> GetCollectionState(const std::string& id) override;
  // Every collection the principal can read (owner_id is ignored unless the scope is an admin's).
  Result<std::vector<Collection>> ListCollections(const std::string& owner_id) override;
  Result<std::vector<Collection>> ListCollectionsByIds(const std::vector<std::string>& ids) override;
  Status DeleteCollection(const std::string& id) override;
  Status SetCollectionStatus(const std::string& id, CollectionStatus status) override;
  Result<std::int64_t> BeginReindex(const std::string& collection_id, const std::string& settings_json) override;
  Status FinishReindex(const std::string& collection_id, std::int64_t generation) override;
  Status AbortReindex(const std::string& collection_id, std::int64_t generation) override;
  Result<std::pair<FileRecord, bool>> AddFile(const FileRecord& f, const FileLimits& limits = {}) override;
  Result<FileRecord> GetFile(const std::string& file_id) override;
  Result<std::vector<FileRecord>> ListFiles(const std::string& collection_id) override;
  Result<std::map<FileStatus, std::int64_t>> CountFilesByStatus(const std::string& collection_id) override;
  // Only files of readable collections.
  Result<std::vector<FileRecord>> ListFilesWithStatus(const std::vector<FileStatus>& statuses) override;
  Status DeleteFile(const std::string& file_id) override;
  Status SetFileStatus(const std::string& file_id, FileStatus status, const std::string& error) override;
  Status ReplaceFileChunks(const std::string& file_id, std::int64_t generation, std::vector<Chunk> chunks,
                           const FileOutcome& outcome) override;
  Result<std::vector<Chunk>> ListChunks(const std::string& collection_id, std::int64_t generation,
                                        std::int64_t after_id, std::size_t limit, bool with_embeddings) override;
  Result<std::vector<RemovedChunk>> ListRemovedChunks(const std::string& collection_id, std::int64_t generation,
                                                      std::int64_t after_seq, std::size_t limit) override;
  // Chunks of collections the principal cannot read are dropped, as if they did not exist.
  Result<std::vector<Chunk>> GetChunks(const std::vector<std::int64_t>& ids) override;
  Result<std::vector<Chunk>> GetChunksByNumber(const std::string& file_id, std::int64_t generation,
                                               const std::vector<std::int32_t>& numbers) override;
  Status Ping() override { return inner_.Ping(); }

 private:
  // The file, if its collection is readable (NotFound otherwise), and `needed` is met.
  Result<FileRecord> FileWith(const std::string& file_id, AccessLevel needed);

  MetadataStore& inner_;
  IdentityStore& identity_;
  AccessScope scope_;
  std::mutex mu_;
  std::map<std::string, AccessLevel> levels_;  // guarded by mu_
};

}  // namespace modulo::store
