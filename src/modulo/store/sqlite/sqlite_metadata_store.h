// SqliteMetadataStore: the embedded MetadataStore over the data directory's SQLite database.
// Embeddings are stored with their chunks (float32 blobs), so the metadata store is the source
// of truth for vectors and in-memory indexes are rebuilt from it after a restart.
//
// Thread-safety: all methods are thread-safe (connections come from the Database pool).
#pragma once

#include "modulo/store/metadata_store.h"
#include "modulo/store/sqlite/database.h"

namespace modulo::store::sqlite {

class SqliteMetadataStore final : public MetadataStore {
 public:
  explicit SqliteMetadataStore(Database& db) : db_(db) {}

  Result<Collection> CreateCollection(const NewCollection& c) override;
  Result<Collection> GetCollection(const std::string& id) override;
  Result<Collection> GetCollectionState(const std::string& id) override;
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
  Result<std::vector<FileRecord>> ListFilesWithStatus(const std::vector<FileStatus>& statuses) override;
  Status DeleteFile(const std::string& file_id) override;
  Status SetFileStatus(const std::string& file_id, FileStatus status, const std::string& error) override;

  Status ReplaceFileChunks(const std::string& file_id, std::int64_t generation, std::vector<Chunk> chunks,
                           const FileOutcome& outcome) override;
  Result<std::vector<Chunk>> ListChunks(const std::string& collection_id, std::int64_t generation,
                                        std::int64_t after_id, std::size_t limit, bool with_embeddings) override;
  Result<std::vector<RemovedChunk>> ListRemovedChunks(const std::string& collection_id, std::int64_t generation,
                                                      std::int64_t after_seq, std::size_t limit) override;
  Result<std::vector<Chunk>> GetChunks(const std::vector<std::int64_t>& ids) override;
  Result<std::vector<Chunk>> GetChunksByNumber(const std::string& file_id, std::int64_t generation,
                                               const std::vector<std::int32_t>& numbers) override;

  Status Ping() override;

 private:
  Database& db_;
};

}  // namespace modulo::store::sqlite
