#include "modulo/store/scoped_metadata_store.h"

#include <algorithm>
#include <set>

namespace modulo::store {

namespace {

Error Hidden(const std::string& what, const std::string& id) { return Error::NotFound(what + " " + id + " not found"); }

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

Result<AccessLevel> ScopedMetadataStore::LevelOn(const std::string& collection_id) {
  if (scope_.system_admin) return AccessLevel::kAdmin;
  {
    std::lock_guard lock(mu_);
    if (auto it = levels_.find(collection_id); it != levels_.end()) return it->second;
  }
  auto level = identity_.AccessLevelFor(scope_.user_id, scope_.team_ids, collection_id);
  if (!level) return Fail(level.error());
  std::lock_guard lock(mu_);
  levels_[collection_id] = *level;
  return *level;
}

Status ScopedMetadataStore::Require(const std::string& collection_id, AccessLevel needed) {
  auto level = LevelOn(collection_id);
  if (!level) return Fail(level.error());
  if (*level == AccessLevel::kNone) return Fail(Hidden("collection", collection_id));
  if (static_cast<int>(*level) < static_cast<int>(needed)) {
    return Fail(Error::PermissionDenied("this needs " + std::string(ToString(needed)) + " access to collection " +
                                        collection_id + "; you have " + std::string(ToString(*level))));
  }
  return {};
}

Result<FileRecord> ScopedMetadataStore::FileWith(const std::string& file_id, AccessLevel needed) {
  auto f = inner_.GetFile(file_id);
  if (!f) return Fail(f.error());
  auto level = LevelOn(f->collection_id);
  if (!level) return Fail(level.error());
  if (*level == AccessLevel::kNone) return Fail(Hidden("file", file_id));
  if (auto st = Require(f->collection_id, needed); !st) return Fail(st.error());
  return f;
}

Result<Collection> ScopedMetadataStore::CreateCollection(const NewCollection& c) {
  if (!scope_.system_admin) {
    if (c.owner_type == "user" && c.owner_id != scope_.user_id) {
      return Fail(Error::PermissionDenied("a collection can only be created for yourself or one of your teams"));
    }
    if (c.owner_type == "team" && !Contains(scope_.admin_team_ids, c.owner_id)) {
      return Fail(Error::PermissionDenied("only a team admin can create a collection for team " + c.owner_id));
    }
  }
  return inner_.CreateCollection(c);
}

Result<Collection> ScopedMetadataStore::GetCollection(const std::string& id) {
  if (auto st = Require(id, AccessLevel::kRead); !st) return Fail(st.error());
  return inner_.GetCollection(id);
}

Result<Collection> ScopedMetadataStore::GetCollectionState(const std::string& id) {
  if (auto st = Require(id, AccessLevel::kRead); !st) return Fail(st.error());
  return inner_.GetCollectionState(id);
}

Result<std::vector<Collection>> ScopedMetadataStore::ListCollections(const std::string& owner_id) {
  if (scope_.system_admin) return inner_.ListCollections(owner_id);
  auto ids = identity_.ReadableCollectionIds(scope_.user_id, scope_.team_ids);
  if (!ids) return Fail(ids.error());
  return inner_.ListCollectionsByIds(*ids);
}

Result<std::vector<Collection>> ScopedMetadataStore::ListCollectionsByIds(const std::vector<std::string>& ids) {
  std::vector<std::string> visible;
  for (const auto& id : ids) {
    auto level = LevelOn(id);
    if (!level) return Fail(level.error());
    if (*level != AccessLevel::kNone) visible.push_back(id);
  }
  return inner_.ListCollectionsByIds(visible);
}

Status ScopedMetadataStore::DeleteCollection(const std::string& id) {
  if (auto st = Require(id, AccessLevel::kAdmin); !st) return st;
  return inner_.DeleteCollection(id);
}

Status ScopedMetadataStore::SetCollectionStatus(const std::string& id, CollectionStatus status) {
  if (auto st = Require(id, AccessLevel::kWrite); !st) return st;
  return inner_.SetCollectionStatus(id, status);
}

Result<std::int64_t> ScopedMetadataStore::BeginReindex(const std::string& collection_id,
                                                       const std::string& settings_json) {
  if (auto st = Require(collection_id, AccessLevel::kWrite); !st) return Fail(st.error());
  return inner_.BeginReindex(collection_id, settings_json);
}

Status ScopedMetadataStore::FinishReindex(const std::string& collection_id, std::int64_t generation) {
  if (auto st = Require(collection_id, AccessLevel::kWrite); !st) return st;
  return inner_.FinishReindex(collection_id, generation);
}

Status ScopedMetadataStore::AbortReindex(const std::string& collection_id, std::int64_t generation) {
  if (auto st = Require(collection_id, AccessLevel::kWrite); !st) return st;
  return inner_.AbortReindex(collection_id, generation);
}

Result<std::pair<FileRecord, bool>> ScopedMetadataStore::AddFile(const FileRecord& f, const FileLimits& limits) {
  if (auto st = Require(f.collection_id, AccessLevel::kWrite); !st) return Fail(st.error());
  return inner_.AddFile(f, limits);
}

Result<FileRecord> ScopedMetadataStore::GetFile(const std::string& file_id) {
  return FileWith(file_id, AccessLevel::kRead);
}

Result<std::vector<FileRecord>> ScopedMetadataStore::ListFiles(const std::string& collection_id) {
  if (auto st = Require(collection_id, AccessLevel::kRead); !st) return Fail(st.error());
  return inner_.ListFiles(collection_id);
}

Result<std::map<FileStatus, std::int64_t>> ScopedMetadataStore::CountFilesByStatus(const std::string& collection_id) {
  if (auto st = Require(collection_id, AccessLevel::kRead); !st) return Fail(st.error());
  return inner_.CountFilesByStatus(collection_id);
}

Result<std::vector<FileRecord>> ScopedMetadataStore::ListFilesWithStatus(const std::vector<FileStatus>& statuses) {
  auto all = inner_.ListFilesWithStatus(statuses);
  if (!all) return Fail(all.error());
  std::vector<FileRecord> out;
  for (auto& f : *all) {
    auto level = LevelOn(f.collection_id);
    if (!level) return Fail(level.error());
    if (*level != AccessLevel::kNone) out.push_back(std::move(f));
  }
  return out;
}

Status ScopedMetadataStore::DeleteFile(const std::string& file_id) {
  if (auto f = FileWith(file_id, AccessLevel::kWrite); !f) return Fail(f.error());
  return inner_.DeleteFile(file_id);
}

Status ScopedMetadataStore::SetFileStatus(const std::string& file_id, FileStatus status, const std::string& error) {
  if (auto f = FileWith(file_id, AccessLevel::kWrite); !f) return Fail(f.error());
  return inner_.SetFileStatus(file_id, status, error);
}

Status ScopedMetadataStore::ReplaceFileChunks(const std::string& file_id, std::int64_t generation,
                                              std::vector<Chunk> chunks, const FileOutcome& outcome) {
  if (auto f = FileWith(file_id, AccessLevel::kWrite); !f) return Fail(f.error());
  return inner_.ReplaceFileChunks(file_id, generation, std::move(chunks), outcome);
}

Result<std::vector<Chunk>> ScopedMetadataStore::ListChunks(const std::string& collection_id, std::int64_t generation,
                                                           std::int64_t after_id, std::size_t limit,
                                                           bool with_embeddings) {
  if (auto st = Require(collection_id, AccessLevel::kRead); !st) return Fail(st.error());
  return inner_.ListChunks(collection_id, generation, after_id, limit, with_embeddings);
}

Result<std::vector<RemovedChunk>> ScopedMetadataStore::ListRemovedChunks(const std::string& collection_id,
                                                                         std::int64_t generation,
                                                                         std::int64_t after_seq, std::size_t limit) {
  if (auto st = Require(collection_id, AccessLevel::kRead); !st) return Fail(st.error());
  return inner_.ListRemovedChunks(collection_id, generation, after_seq, limit);
}

Result<std::vector<Chunk>> ScopedMetadataStore::GetChunks(const std::vector<std::int64_t>& ids) {
  auto chunks = inner_.GetChunks(ids);
  if (!chunks) return Fail(chunks.error());
  std::vector<Chunk> out;
  out.reserve(chunks->size());
  for (auto& k : *chunks) {
    auto level = LevelOn(k.collection_id);
    if (!level) return Fail(level.error());
    if (*level != AccessLevel::kNone) out.push_back(std::move(k));
  }
  return out;
}

Result<std::vector<Chunk>> ScopedMetadataStore::GetChunksByNumber(const std::string& file_id, std::int64_t generation,
                                                                  const std::vector<std::int32_t>& numbers) {
  if (auto f = FileWith(file_id, AccessLevel::kRead); !f) return Fail(f.error());
  return inner_.GetChunksByNumber(file_id, generation, numbers);
}

}  // namespace modulo::store
