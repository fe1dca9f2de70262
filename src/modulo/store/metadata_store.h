// MetadataStore: collections, files and chunks, the source of truth for everything a collection
// holds (vector indexes are rebuilt from it). Implementations: SqliteMetadataStore (embedded,
// store/sqlite/) and a PostgreSQL one for scale-out; both pass metadata_store_contract.h.
//
// Promises:
// - Every method either fully happens or not at all; ReplaceFileChunks swaps a file's chunks and
//   sets its status in one transaction, so a crash never leaves a file half-indexed, and running
//   it twice leaves exactly one copy of each chunk.
// - Any write that can change search results bumps the collection's `version`.
// - Deleting a collection removes its files and chunks; deleting a file removes its chunks.
// - NotFound for unknown ids, AlreadyExists for a duplicate collection name per owner.
//
// Thread-safety: all methods are thread-safe. They block (disk I/O): call them on the blocking
// pool, never on an I/O thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "modulo/core/error.h"

namespace modulo::store {

enum class CollectionStatus { kCreated, kProcessing, kCompleted, kError };
enum class FileStatus { kQueued, kProcessing, kCompleted, kFailed };

[[nodiscard]] std::string_view ToString(CollectionStatus s) noexcept;
[[nodiscard]] std::string_view ToString(FileStatus s) noexcept;
[[nodiscard]] std::optional<CollectionStatus> ParseCollectionStatus(std::string_view s) noexcept;
[[nodiscard]] std::optional<FileStatus> ParseFileStatus(std::string_view s) noexcept;

struct Collection {
  std::string id;
  std::string name;
  std::string description;
  std::string owner_id;              // a user id, or a team id when owner_type is "team"
  std::string owner_type = "user";   // "user" | "team"
  CollectionStatus status = CollectionStatus::kCreated;
  bool is_private = true;
  std::string settings_json = "{}";  // chunking and retrieval settings, owned by the layers above
  std::string embedding_model;
  std::int64_t generation = 1;       // the index generation searches read
  std::int64_t next_generation = 0;  // the generation a running reindex builds; 0 when none
  std::int64_t version = 1;          // bumped on every write that changes search results
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::int64_t file_count = 0;       // filled by Get/List
  std::int64_t chunk_count = 0;      // chunks of the active generation, filled by Get/List
};

struct NewCollection {
  std::string name;
  std::string description;
  std::string owner_id;
  std::string owner_type = "user";
  // Quota: QuotaExceeded when the owner already has this many collections (0: no limit). Checked
  // and enforced in the same transaction as the insert, so concurrent creations cannot pass it.
  std::int64_t owner_collection_limit = 0;
  bool is_private = true;
  std::string settings_json = "{}";
  std::string embedding_model;
};

struct FileRecord {
  std::string id;
  std::string collection_id;
  std::string filename;      // as uploaded (any UTF-8; never used as a path)
  std::int64_t size_bytes = 0;
  std::string content_hash;  // sha256 hex of the bytes
  std::string mime_type;
  std::string format;        // parser that handled it: pdf, docx, html, ...
  FileStatus status = FileStatus::kQueued;
  std::int64_t chunk_count = 0;
  std::int64_t page_count = 0;
  std::string error;         // why it failed
  std::string warnings_json = "[]";
  std::string storage_key;   // where the bytes are kept (blob store key)
  std::string task_id;       // the job that processes it
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

struct Chunk {
  std::int64_t id = 0;  // assigned by the store
  std::string collection_id;
  std::string file_id;
  std::int64_t generation = 1;
  std::int32_t chunk_number = 0;
  std::string text;
  std::int32_t page_number = 0;
  std::string section_path;  // "Heading > Subheading"
  std::int64_t char_start = 0;
  std::int64_t char_end = 0;
  std::int32_t token_count = 0;
  std::optional<std::int32_t> parent_number;  // hierarchical chunking: the parent's chunk_number
  bool is_parent = false;                     // parents are returned as context, not indexed
  std::vector<float> embedding;               // empty for parents
  std::string source;                         // its file's name; filled by GetChunks only
};

// A chunk that left a (collection, generation): the change feed indexes replay. `seq` grows with
// every removal, in commit order.
struct RemovedChunk {
  std::int64_t seq = 0;
  std::int64_t chunk_id = 0;
};

// Quotas AddFile enforces atomically (0: no limit).
struct FileLimits {
  std::int64_t files_per_collection = 0;
  std::int64_t owner_storage_bytes = 0;  // bytes of files across every collection of the same owner
};

// What ReplaceFileChunks sets on the file alongside its chunks.
struct FileOutcome {
  FileStatus status = FileStatus::kCompleted;
  std::string format;
  std::int64_t page_count = 0;
  std::string error;
  std::string warnings_json = "[]";
};

class MetadataStore {
 public:
  virtual ~MetadataStore() = default;

  [[nodiscard]] virtual Result<Collection> CreateCollection(const NewCollection& c) = 0;
  [[nodiscard]] virtual Result<Collection> GetCollection(const std::string& id) = 0;
  // The collection without file_count and chunk_count (left 0): one indexed row read, for the
  // search path.
  [[nodiscard]] virtual Result<Collection> GetCollectionState(const std::string& id) = 0;
  // All collections of `owner_id`, or of everyone when empty; newest first.
  [[nodiscard]] virtual Result<std::vector<Collection>> ListCollections(const std::string& owner_id) = 0;
  // These collections (unknown ids skipped), newest first; one query.
  [[nodiscard]] virtual Result<std::vector<Collection>> ListCollectionsByIds(const std::vector<std::string>& ids) = 0;
  [[nodiscard]] virtual Status DeleteCollection(const std::string& id) = 0;
  [[nodiscard]] virtual Status SetCollectionStatus(const std::string& id, CollectionStatus status) = 0;

  // Starts building generation + 1 (stale chunks of it from an aborted attempt are removed) and
  // stores `settings_json` for it; Conflict while another reindex runs. Returns the generation.
  [[nodiscard]] virtual Result<std::int64_t> BeginReindex(const std::string& collection_id,
                                                          const std::string& settings_json) = 0;
  // Atomically makes `generation` the one searches read and deletes every other generation.
  [[nodiscard]] virtual Status FinishReindex(const std::string& collection_id, std::int64_t generation) = 0;
  // Gives up a reindex into `generation`: searches keep the current one, its chunks are removed.
  [[nodiscard]] virtual Status AbortReindex(const std::string& collection_id, std::int64_t generation) = 0;

  // Adds a file; when the collection already holds a file with the same content hash, returns
  // that one and false instead of adding a duplicate. QuotaExceeded (with details resource,
  // usage, limit) when `limits` would be passed.
  [[nodiscard]] virtual Result<std::pair<FileRecord, bool>> AddFile(const FileRecord& f,
                                                                    const FileLimits& limits = {}) = 0;
  [[nodiscard]] virtual Result<FileRecord> GetFile(const std::string& file_id) = 0;
  [[nodiscard]] virtual Result<std::vector<FileRecord>> ListFiles(const std::string& collection_id) = 0;
  // How many files of a collection are in each status (statuses with none are absent).
  [[nodiscard]] virtual Result<std::map<FileStatus, std::int64_t>> CountFilesByStatus(
      const std::string& collection_id) = 0;
  // Files in any of `statuses`, across all collections (for crash recovery sweeps).
  [[nodiscard]] virtual Result<std::vector<FileRecord>> ListFilesWithStatus(const std::vector<FileStatus>& statuses) = 0;
  [[nodiscard]] virtual Status DeleteFile(const std::string& file_id) = 0;
  [[nodiscard]] virtual Status SetFileStatus(const std::string& file_id, FileStatus status,
                                             const std::string& error) = 0;

  // Atomically replaces the chunks of (file, generation) with `chunks` and records the outcome
  // on the file; bumps the collection version. Chunk ids in `chunks` are ignored and assigned.
  [[nodiscard]] virtual Status ReplaceFileChunks(const std::string& file_id, std::int64_t generation,
                                                 std::vector<Chunk> chunks, const FileOutcome& outcome) = 0;
  // The change feed that derived indexes replay (see docs/architecture.md, "Indexes"):
  // chunk ids grow in commit order and are never reused, so "chunks with id > the last one seen"
  // are the additions, and ListRemovedChunks gives the removals.
  //
  // Chunks of a collection's generation with id > after_id, in id order, at most `limit`.
  [[nodiscard]] virtual Result<std::vector<Chunk>> ListChunks(const std::string& collection_id,
                                                              std::int64_t generation, std::int64_t after_id,
                                                              std::size_t limit, bool with_embeddings) = 0;
  // Chunks removed from a collection's generation (by a file replaced or deleted, a reindex or an
  // aborted one) with seq > after_seq, in seq order, at most `limit`.
  [[nodiscard]] virtual Result<std::vector<RemovedChunk>> ListRemovedChunks(const std::string& collection_id,
                                                                           std::int64_t generation,
                                                                           std::int64_t after_seq,
                                                                           std::size_t limit) = 0;
  // The chunks with these ids (absent ids skipped), without embeddings, with `source` set, in the
  // order of `ids`. One round trip.
  [[nodiscard]] virtual Result<std::vector<Chunk>> GetChunks(const std::vector<std::int64_t>& ids) = 0;
  // Chunks of (file, generation) by chunk number (hierarchical expansion: a hit's parent).
  [[nodiscard]] virtual Result<std::vector<Chunk>> GetChunksByNumber(const std::string& file_id,
                                                                     std::int64_t generation,
                                                                     const std::vector<std::int32_t>& numbers) = 0;

  // Liveness of the store for /ready.
  [[nodiscard]] virtual Status Ping() = 0;
};

}  // namespace modulo::store
