// PostgresMetadataStore: the scale-out MetadataStore over PostgreSQL (schema in database.cpp).
// It passes the same contract as the embedded SQLite store (metadata_store_contract.h).
//
// Where SQLite relies on its single writer, this store takes explicit locks inside the write
// transaction (READ COMMITTED):
// - the change feed ("chunk ids grow in commit order", "tombstone seq grows in commit order"):
//   identity columns hand out ids in the order transactions ask, not in the order they commit.
//   Every write that inserts or removes chunks of a collection (ReplaceFileChunks, DeleteFile,
//   Begin/Finish/AbortReindex) first takes pg_advisory_xact_lock on the collection, so ids are
//   assigned and committed by one transaction of that collection at a time; the lock is released
//   only after the commit is visible, so a reader that sees id n sees every id below it.
// - quotas: CreateCollection takes a transaction lock on the owner before counting; AddFile
//   locks the collection row (files per collection) and the owner (storage), then counts and
//   inserts in the same transaction, so concurrent requests cannot pass a limit.
// - lock order, always: owner lock, collection feed lock, collection row: no deadlock cycles
//   (and a deadlock or serialization failure would re-run the transaction anyway).
//
// Embeddings are bytea holding float32 in this host's byte order (little-endian on every
// platform Modulo builds for), the same bytes the SQLite store keeps.
//
// Reads and replicas (see database.h): the change feed (ListChunks, ListRemovedChunks),
// GetCollectionState (the version a search catches up to), ListFilesWithStatus (crash
// recovery), Ping and everything inside writes read the primary. Listings and lookups
// (GetCollection, ListCollections, ListCollectionsByIds, GetFile, ListFiles,
// CountFilesByStatus, GetChunks, GetChunksByNumber) may read a replica; GetChunks asks the
// primary again when a replica lacks some of the asked chunks (ids from an index that is ahead
// of the replica), so search results never lose hits to replica lag.
//
// Query counts (each a round trip; BEGIN and COMMIT count): GetCollection, GetCollectionState,
// ListCollections, ListFiles, GetChunks: 1 each.
//
// Thread-safety: all methods are thread-safe (connections come from the Database's pools).
#pragma once

#include "modulo/store/metadata_store.h"
#include "modulo/store/postgres/database.h"

namespace modulo::store::postgres {

class PostgresMetadataStore final : public MetadataStore {
 public:
  explicit PostgresMetadataStore(Database& db) : db_(db) {}

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

}  // namespace modulo::store::postgres
