#include "modulo/store/sqlite/sqlite_metadata_store.h"

#include <chrono>
#include <cstring>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "modulo/core/clock.h"
#include "modulo/core/request_id.h"

namespace modulo::store::sqlite {
namespace {


constexpr const char* kCollectionColumns =
    "c.id, c.name, c.description, c.owner_id, c.status, c.is_private, c.settings, c.embedding_model, "
    "c.generation, c.version, c.created_at, c.updated_at, "
    "(SELECT COUNT(*) FROM files f WHERE f.collection_id = c.id), "
    "(SELECT COUNT(*) FROM chunks k WHERE k.collection_id = c.id AND k.generation = c.generation "
    "AND k.is_parent = 0), c.next_generation, c.owner_type";
// The same row without the two counts.
constexpr const char* kCollectionStateColumns =
    "c.id, c.name, c.description, c.owner_id, c.status, c.is_private, c.settings, c.embedding_model, "
    "c.generation, c.version, c.created_at, c.updated_at, 0, 0, c.next_generation, c.owner_type";

Collection ReadCollection(const Statement& s) {
  Collection c;
  c.id = s.Text(0);
  c.name = s.Text(1);
  c.description = s.Text(2);
  c.owner_id = s.Text(3);
  c.status = ParseCollectionStatus(s.Text(4)).value_or(CollectionStatus::kError);
  c.is_private = s.Int(5) != 0;
  c.settings_json = s.Text(6);
  c.embedding_model = s.Text(7);
  c.generation = s.Int(8);
  c.version = s.Int(9);
  c.created_at_ms = s.Int(10);
  c.updated_at_ms = s.Int(11);
  c.file_count = s.Int(12);
  c.chunk_count = s.Int(13);
  c.next_generation = s.Int(14);
  c.owner_type = s.Text(15);
  return c;
}

constexpr const char* kFileColumns =
    "id, collection_id, filename, size_bytes, content_hash, mime_type, format, status, chunk_count, page_count, "
    "error, warnings, storage_key, task_id, created_at, updated_at";

FileRecord ReadFile(const Statement& s) {
  FileRecord f;
  f.id = s.Text(0);
  f.collection_id = s.Text(1);
  f.filename = s.Text(2);
  f.size_bytes = s.Int(3);
  f.content_hash = s.Text(4);
  f.mime_type = s.Text(5);
  f.format = s.Text(6);
  f.status = ParseFileStatus(s.Text(7)).value_or(FileStatus::kFailed);
  f.chunk_count = s.Int(8);
  f.page_count = s.Int(9);
  f.error = s.Text(10);
  f.warnings_json = s.Text(11);
  f.storage_key = s.Text(12);
  f.task_id = s.Text(13);
  f.created_at_ms = s.Int(14);
  f.updated_at_ms = s.Int(15);
  return f;
}

constexpr const char* kChunkColumns =
    "id, collection_id, file_id, generation, chunk_number, text, page_number, section_path, char_start, char_end, "
    "token_count, parent_number, is_parent";
// kChunkColumns qualified for a join with files, then no embedding, then the file's name.
constexpr const char* kChunkWithSourceColumns =
    "k.id, k.collection_id, k.file_id, k.generation, k.chunk_number, k.text, k.page_number, k.section_path, "
    "k.char_start, k.char_end, k.token_count, k.parent_number, k.is_parent, NULL, f.filename";

Chunk ReadChunk(const Statement& s, bool with_embedding) {
  Chunk k;
  k.id = s.Int(0);
  k.collection_id = s.Text(1);
  k.file_id = s.Text(2);
  k.generation = s.Int(3);
  k.chunk_number = static_cast<std::int32_t>(s.Int(4));
  k.text = s.Text(5);
  k.page_number = static_cast<std::int32_t>(s.Int(6));
  k.section_path = s.Text(7);
  k.char_start = s.Int(8);
  k.char_end = s.Int(9);
  k.token_count = static_cast<std::int32_t>(s.Int(10));
  if (!s.IsNull(11)) k.parent_number = static_cast<std::int32_t>(s.Int(11));
  k.is_parent = s.Int(12) != 0;
  if (with_embedding && !s.IsNull(13)) {
    auto blob = s.Blob(13);
    k.embedding.resize(blob.size() / sizeof(float));
    std::memcpy(k.embedding.data(), blob.data(), k.embedding.size() * sizeof(float));
  }
  return k;
}

// The collection a file belongs to (NotFound when the file does not exist).
Result<std::string> CollectionOfFile(Connection& c, const std::string& file_id) {
  auto q = c.Prepare("SELECT collection_id FROM files WHERE id = ?");
  if (!q) return Fail(q.error());
  q->Bind(1, file_id);
  return q->One([](const Statement& row) { return row.Text(0); }, Error::NotFound("file " + file_id + " not found"));
}

Status BumpVersion(Connection& c, const std::string& collection_id, std::int64_t now) {
  auto s = c.Prepare("UPDATE collections SET version = version + 1, updated_at = ? WHERE id = ?");
  if (!s) return Fail(s.error());
  return s->Bind(1, now).Bind(2, collection_id).Run();
}

}  // namespace

static Error QuotaError(const std::string& resource, std::int64_t usage, std::int64_t limit, std::int64_t adding = 1) {
  return Error::QuotaExceeded("Quota exceeded for " + resource + ": " + std::to_string(usage) + " used of " +
                              std::to_string(limit) + (adding > 1 ? ", " + std::to_string(adding) + " more asked" : ""))
      .WithDetails(nlohmann::json{{"resource", resource}, {"usage", usage}, {"limit", limit}}.dump());
}

Result<Collection> SqliteMetadataStore::CreateCollection(const NewCollection& in) {
  if (in.name.empty()) return Fail(Error::InvalidArgument("collection name must not be empty"));
  if (in.owner_type != "user" && in.owner_type != "team") {
    return Fail(Error::InvalidArgument("owner_type must be 'user' or 'team'"));
  }
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);  // the quota check and the insert are one write transaction
  if (!tx) return Fail(tx.error());
  if (in.owner_collection_limit > 0) {
    auto q = c->Prepare("SELECT COUNT(*) FROM collections WHERE owner_type = ? AND owner_id = ?");
    if (!q) return Fail(q.error());
    q->Bind(1, in.owner_type).Bind(2, in.owner_id);
    auto owned = q->One([](const Statement& row) { return row.Int(0); }, Error::Internal("count failed"));
    if (!owned) return Fail(owned.error());
    if (*owned >= in.owner_collection_limit) return Fail(QuotaError("collections", *owned, in.owner_collection_limit));
  }
  const std::string id = NewUuid();
  const auto now = NowMs();
  auto s = c->Prepare(
      "INSERT INTO collections (id, name, description, owner_id, status, is_private, settings, embedding_model, "
      "created_at, updated_at, owner_type) VALUES (?, ?, ?, ?, 'created', ?, ?, ?, ?, ?, ?)");
  if (!s) return Fail(s.error());
  auto st = s->Bind(1, id)
                .Bind(2, in.name)
                .Bind(3, in.description)
                .Bind(4, in.owner_id)
                .Bind(5, in.is_private ? 1 : 0)
                .Bind(6, in.settings_json)
                .Bind(7, in.embedding_model)
                .Bind(8, now)
                .Bind(9, now)
                .Bind(10, in.owner_type)
                .Run();
  if (!st) {
    if (st.error().code() == ErrorCode::kAlreadyExists) {
      return Fail(Error::AlreadyExists("a collection named '" + in.name + "' already exists"));
    }
    return Fail(st.error());
  }
  if (auto cm = tx->Commit(); !cm) return Fail(cm.error());
  Collection out;
  out.owner_type = in.owner_type;
  out.id = id;
  out.name = in.name;
  out.description = in.description;
  out.owner_id = in.owner_id;
  out.is_private = in.is_private;
  out.settings_json = in.settings_json;
  out.embedding_model = in.embedding_model;
  out.created_at_ms = out.updated_at_ms = now;
  return out;
}

Result<Collection> SqliteMetadataStore::GetCollection(const std::string& id) {
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kCollectionColumns + " FROM collections c WHERE c.id = ?");
  if (!s) return Fail(s.error());
  s->Bind(1, id);
  return s->One(ReadCollection, Error::NotFound("collection " + id + " not found"));
}

Result<Collection> SqliteMetadataStore::GetCollectionState(const std::string& id) {
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kCollectionStateColumns + " FROM collections c WHERE c.id = ?");
  if (!s) return Fail(s.error());
  s->Bind(1, id);
  return s->One(ReadCollection, Error::NotFound("collection " + id + " not found"));
}

Result<std::vector<Collection>> SqliteMetadataStore::ListCollections(const std::string& owner_id) {
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kCollectionColumns +
                      " FROM collections c WHERE (? = '' OR c.owner_id = ?) ORDER BY c.created_at DESC, c.id");
  if (!s) return Fail(s.error());
  s->Bind(1, owner_id).Bind(2, owner_id);
  std::vector<Collection> out;
  if (auto st = s->ForEachRow([&](const Statement& row) { out.push_back(ReadCollection(row)); }); !st) return Fail(st.error());
  return out;
}

Result<std::vector<Collection>> SqliteMetadataStore::ListCollectionsByIds(const std::vector<std::string>& ids) {
  std::vector<Collection> out;
  if (ids.empty()) return out;
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kCollectionColumns +
                      " FROM collections c WHERE c.id IN (SELECT value FROM json_each(?)) ORDER BY c.created_at DESC, c.id");
  if (!s) return Fail(s.error());
  s->Bind(1, nlohmann::json(ids).dump());
  if (auto st = s->ForEachRow([&](const Statement& row) { out.push_back(ReadCollection(row)); }); !st) return Fail(st.error());
  return out;
}

Status SqliteMetadataStore::DeleteCollection(const std::string& id) {
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  auto s = c->Prepare("DELETE FROM collections WHERE id = ?");
  if (!s) return Fail(s.error());
  if (auto st = s->Bind(1, id).Run(); !st) return st;
  if (c->Changes() == 0) return Fail(Error::NotFound("collection " + id + " not found"));
  // The cascade left a tombstone per chunk; indexes of a deleted collection are dropped whole.
  auto t = c->Prepare("DELETE FROM chunk_tombstones WHERE collection_id = ?");
  if (!t) return Fail(t.error());
  if (auto st = t->Bind(1, id).Run(); !st) return st;
  return tx->Commit();
}

Status SqliteMetadataStore::SetCollectionStatus(const std::string& id, CollectionStatus status) {
  auto c = db_.Acquire();
  auto s = c->Prepare("UPDATE collections SET status = ?, updated_at = ? WHERE id = ?");
  if (!s) return Fail(s.error());
  if (auto st = s->Bind(1, ToString(status)).Bind(2, NowMs()).Bind(3, id).Run(); !st) return st;
  if (c->Changes() == 0) return Fail(Error::NotFound("collection " + id + " not found"));
  return {};
}

Result<std::int64_t> SqliteMetadataStore::BeginReindex(const std::string& collection_id,
                                                       const std::string& settings_json) {
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  auto q = c->Prepare("SELECT generation, next_generation FROM collections WHERE id = ?");
  if (!q) return Fail(q.error());
  q->Bind(1, collection_id);
  auto row = q->Step();
  if (!row) return Fail(row.error());
  if (!*row) return Fail(Error::NotFound("collection " + collection_id + " not found"));
  const std::int64_t generation = q->Int(0), pending = q->Int(1);
  q->Reset();
  if (pending > generation) {
    return Fail(Error::Conflict("collection " + collection_id + " is already being reindexed"));
  }
  const std::int64_t next = generation + 1;
  auto del = c->Prepare("DELETE FROM chunks WHERE collection_id = ? AND generation = ?");
  if (!del) return Fail(del.error());
  if (auto st = del->Bind(1, collection_id).Bind(2, next).Run(); !st) return Fail(st.error());
  auto up = c->Prepare("UPDATE collections SET next_generation = ?, settings = ?, updated_at = ? WHERE id = ?");
  if (!up) return Fail(up.error());
  if (auto st = up->Bind(1, next).Bind(2, settings_json).Bind(3, NowMs()).Bind(4, collection_id).Run(); !st) {
    return Fail(st.error());
  }
  if (auto st = tx->Commit(); !st) return Fail(st.error());
  return next;
}

Status SqliteMetadataStore::FinishReindex(const std::string& collection_id, std::int64_t generation) {
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  auto up = c->Prepare(
      "UPDATE collections SET generation = ?, next_generation = 0, version = version + 1, updated_at = ? "
      "WHERE id = ? AND next_generation = ?");
  if (!up) return Fail(up.error());
  if (auto st = up->Bind(1, generation).Bind(2, NowMs()).Bind(3, collection_id).Bind(4, generation).Run(); !st) {
    return st;
  }
  if (c->Changes() == 0) {
    return Fail(Error::Conflict("collection " + collection_id + " is not being reindexed into generation " +
                                std::to_string(generation)));
  }
  auto del = c->Prepare("DELETE FROM chunks WHERE collection_id = ? AND generation <> ?");
  if (!del) return Fail(del.error());
  if (auto st = del->Bind(1, collection_id).Bind(2, generation).Run(); !st) return st;
  // Indexes of the replaced generations are dropped whole, so their removals need no replay.
  auto t = c->Prepare("DELETE FROM chunk_tombstones WHERE collection_id = ? AND generation <> ?");
  if (!t) return Fail(t.error());
  if (auto st = t->Bind(1, collection_id).Bind(2, generation).Run(); !st) return st;
  return tx->Commit();
}

Status SqliteMetadataStore::AbortReindex(const std::string& collection_id, std::int64_t generation) {
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  auto up = c->Prepare(
      "UPDATE collections SET next_generation = 0, updated_at = ? WHERE id = ? AND next_generation = ?");
  if (!up) return Fail(up.error());
  if (auto st = up->Bind(1, NowMs()).Bind(2, collection_id).Bind(3, generation).Run(); !st) return st;
  if (c->Changes() == 0) {
    return Fail(Error::Conflict("collection " + collection_id + " is not being reindexed into generation " +
                                std::to_string(generation)));
  }
  auto del = c->Prepare("DELETE FROM chunks WHERE collection_id = ? AND generation = ?");
  if (!del) return Fail(del.error());
  if (auto st = del->Bind(1, collection_id).Bind(2, generation).Run(); !st) return st;
  return tx->Commit();
}

Result<std::pair<FileRecord, bool>> SqliteMetadataStore::AddFile(const FileRecord& f, const FileLimits& limits) {
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  {
    auto q = c->Prepare(std::string("SELECT ") + kFileColumns + " FROM files WHERE collection_id = ? AND content_hash = ?");
    if (!q) return Fail(q.error());
    q->Bind(1, f.collection_id).Bind(2, f.content_hash);
    auto row = q->Step();
    if (!row) return Fail(row.error());
    if (*row) {
      FileRecord existing = ReadFile(*q);
      q->Reset();
      return std::make_pair(std::move(existing), false);
    }
  }
  if (limits.files_per_collection > 0) {
    auto q = c->Prepare("SELECT COUNT(*) FROM files WHERE collection_id = ?");
    if (!q) return Fail(q.error());
    q->Bind(1, f.collection_id);
    auto n = q->One([](const Statement& row) { return row.Int(0); }, Error::Internal("count failed"));
    if (!n) return Fail(n.error());
    if (*n >= limits.files_per_collection) return Fail(QuotaError("files per collection", *n, limits.files_per_collection));
  }
  if (limits.owner_storage_bytes > 0) {
    auto q = c->Prepare(
        "SELECT COALESCE(SUM(f.size_bytes), 0) FROM files f JOIN collections c ON c.id = f.collection_id "
        "JOIN collections mine ON mine.owner_type = c.owner_type AND mine.owner_id = c.owner_id WHERE mine.id = ?");
    if (!q) return Fail(q.error());
    q->Bind(1, f.collection_id);
    auto used = q->One([](const Statement& row) { return row.Int(0); }, Error::Internal("sum failed"));
    if (!used) return Fail(used.error());
    if (*used + f.size_bytes > limits.owner_storage_bytes) {
      return Fail(QuotaError("storage", *used, limits.owner_storage_bytes, f.size_bytes));
    }
  }
  FileRecord out = f;
  if (out.id.empty()) out.id = NewUuid();
  out.created_at_ms = out.updated_at_ms = NowMs();
  auto s = c->Prepare(std::string("INSERT INTO files (") + kFileColumns +
                      ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!s) return Fail(s.error());
  auto st = s->Bind(1, out.id)
                .Bind(2, out.collection_id)
                .Bind(3, out.filename)
                .Bind(4, out.size_bytes)
                .Bind(5, out.content_hash)
                .Bind(6, out.mime_type)
                .Bind(7, out.format)
                .Bind(8, ToString(out.status))
                .Bind(9, out.chunk_count)
                .Bind(10, out.page_count)
                .Bind(11, out.error)
                .Bind(12, out.warnings_json)
                .Bind(13, out.storage_key)
                .Bind(14, out.task_id)
                .Bind(15, out.created_at_ms)
                .Bind(16, out.updated_at_ms)
                .Run();
  if (!st) {
    if (st.error().code() == ErrorCode::kAlreadyExists) {
      return Fail(Error::NotFound("collection " + out.collection_id + " not found"));  // foreign key
    }
    return Fail(st.error());
  }
  if (auto v = BumpVersion(*c, out.collection_id, out.created_at_ms); !v) return Fail(v.error());
  if (auto cm = tx->Commit(); !cm) return Fail(cm.error());
  return std::make_pair(std::move(out), true);
}

Result<FileRecord> SqliteMetadataStore::GetFile(const std::string& file_id) {
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kFileColumns + " FROM files WHERE id = ?");
  if (!s) return Fail(s.error());
  s->Bind(1, file_id);
  return s->One(ReadFile, Error::NotFound("file " + file_id + " not found"));
}

Result<std::vector<FileRecord>> SqliteMetadataStore::ListFiles(const std::string& collection_id) {
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kFileColumns +
                      " FROM files WHERE collection_id = ? ORDER BY created_at, id");
  if (!s) return Fail(s.error());
  s->Bind(1, collection_id);
  std::vector<FileRecord> out;
  if (auto st = s->ForEachRow([&](const Statement& row) { out.push_back(ReadFile(row)); }); !st) return Fail(st.error());
  return out;
}

Result<std::map<FileStatus, std::int64_t>> SqliteMetadataStore::CountFilesByStatus(const std::string& collection_id) {
  auto c = db_.Acquire();
  auto s = c->Prepare("SELECT status, COUNT(*) FROM files WHERE collection_id = ? GROUP BY status");
  if (!s) return Fail(s.error());
  s->Bind(1, collection_id);
  std::map<FileStatus, std::int64_t> out;
  if (auto st = s->ForEachRow([&](const Statement& row) {
        if (auto status = ParseFileStatus(row.Text(0))) out[*status] = row.Int(1);
      });
      !st) {
    return Fail(st.error());
  }
  return out;
}

Result<std::vector<FileRecord>> SqliteMetadataStore::ListFilesWithStatus(const std::vector<FileStatus>& statuses) {
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kFileColumns + " FROM files WHERE status = ? ORDER BY created_at, id");
  if (!s) return Fail(s.error());
  std::vector<FileRecord> out;
  for (auto status : statuses) {
    s->Reset();
    s->Bind(1, ToString(status));
    if (auto st = s->ForEachRow([&](const Statement& row) { out.push_back(ReadFile(row)); }); !st) {
      return Fail(st.error());
    }
  }
  return out;
}

Status SqliteMetadataStore::DeleteFile(const std::string& file_id) {
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  auto owner = CollectionOfFile(*c, file_id);
  if (!owner) return Fail(owner.error());
  const std::string& collection_id = *owner;
  auto s = c->Prepare("DELETE FROM files WHERE id = ?");
  if (!s) return Fail(s.error());
  if (auto st = s->Bind(1, file_id).Run(); !st) return st;
  if (auto st = BumpVersion(*c, collection_id, NowMs()); !st) return st;
  return tx->Commit();
}

Status SqliteMetadataStore::SetFileStatus(const std::string& file_id, FileStatus status, const std::string& error) {
  auto c = db_.Acquire();
  auto s = c->Prepare("UPDATE files SET status = ?, error = ?, updated_at = ? WHERE id = ?");
  if (!s) return Fail(s.error());
  if (auto st = s->Bind(1, ToString(status)).Bind(2, error).Bind(3, NowMs()).Bind(4, file_id).Run(); !st) return st;
  if (c->Changes() == 0) return Fail(Error::NotFound("file " + file_id + " not found"));
  return {};
}

Status SqliteMetadataStore::ReplaceFileChunks(const std::string& file_id, std::int64_t generation,
                                              std::vector<Chunk> chunks, const FileOutcome& outcome) {
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  auto owner = CollectionOfFile(*c, file_id);
  if (!owner) return Fail(owner.error());
  const std::string& collection_id = *owner;
  {
    auto del = c->Prepare("DELETE FROM chunks WHERE file_id = ? AND generation = ?");
    if (!del) return Fail(del.error());
    if (auto st = del->Bind(1, file_id).Bind(2, generation).Run(); !st) return st;
  }
  auto ins = c->Prepare(
      "INSERT INTO chunks (collection_id, file_id, generation, chunk_number, text, page_number, section_path, "
      "char_start, char_end, token_count, parent_number, is_parent, embedding) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!ins) return Fail(ins.error());
  std::int64_t indexed = 0;
  for (const Chunk& k : chunks) {
    ins->Reset();
    ins->Bind(1, collection_id)
        .Bind(2, file_id)
        .Bind(3, generation)
        .Bind(4, k.chunk_number)
        .Bind(5, k.text)
        .Bind(6, k.page_number)
        .Bind(7, k.section_path)
        .Bind(8, k.char_start)
        .Bind(9, k.char_end)
        .Bind(10, k.token_count)
        .Bind(12, k.is_parent ? 1 : 0);
    if (k.parent_number) ins->Bind(11, *k.parent_number);
    if (!k.embedding.empty()) {
      ins->BindBlob(13, std::as_bytes(std::span<const float>(k.embedding)));
    }
    if (auto st = ins->Run(); !st) return st;
    indexed += k.is_parent ? 0 : 1;
  }
  {
    auto up = c->Prepare(
        "UPDATE files SET status = ?, format = ?, page_count = ?, error = ?, warnings = ?, chunk_count = ?, "
        "updated_at = ? WHERE id = ?");
    if (!up) return Fail(up.error());
    if (auto st = up->Bind(1, ToString(outcome.status))
                      .Bind(2, outcome.format)
                      .Bind(3, outcome.page_count)
                      .Bind(4, outcome.error)
                      .Bind(5, outcome.warnings_json)
                      .Bind(6, indexed)
                      .Bind(7, NowMs())
                      .Bind(8, file_id)
                      .Run();
        !st) {
      return st;
    }
  }
  if (auto st = BumpVersion(*c, collection_id, NowMs()); !st) return st;
  return tx->Commit();
}

Result<std::vector<Chunk>> SqliteMetadataStore::ListChunks(const std::string& collection_id, std::int64_t generation,
                                                           std::int64_t after_id, std::size_t limit,
                                                           bool with_embeddings) {
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kChunkColumns +
                      ", embedding FROM chunks WHERE collection_id = ? AND generation = ? AND id > ? "
                      "ORDER BY id LIMIT ?");
  if (!s) return Fail(s.error());
  s->Bind(1, collection_id).Bind(2, generation).Bind(3, after_id).Bind(4, static_cast<std::int64_t>(limit));
  std::vector<Chunk> out;
  if (auto st = s->ForEachRow([&](const Statement& row) { out.push_back(ReadChunk(row, with_embeddings)); }); !st) return Fail(st.error());
  return out;
}

Result<std::vector<RemovedChunk>> SqliteMetadataStore::ListRemovedChunks(const std::string& collection_id,
                                                                        std::int64_t generation,
                                                                        std::int64_t after_seq, std::size_t limit) {
  auto c = db_.Acquire();
  auto s = c->Prepare(
      "SELECT seq, chunk_id FROM chunk_tombstones WHERE collection_id = ? AND generation = ? AND seq > ? "
      "ORDER BY seq LIMIT ?");
  if (!s) return Fail(s.error());
  s->Bind(1, collection_id).Bind(2, generation).Bind(3, after_seq).Bind(4, static_cast<std::int64_t>(limit));
  std::vector<RemovedChunk> out;
  if (auto st = s->ForEachRow([&](const Statement& row) { out.push_back({row.Int(0), row.Int(1)}); }); !st) {
    return Fail(st.error());
  }
  return out;
}

Result<std::vector<Chunk>> SqliteMetadataStore::GetChunks(const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return std::vector<Chunk>{};
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kChunkWithSourceColumns +
                      " FROM chunks k JOIN files f ON f.id = k.file_id WHERE k.id IN (SELECT value FROM json_each(?))");
  if (!s) return Fail(s.error());
  s->Bind(1, nlohmann::json(ids).dump());
  std::unordered_map<std::int64_t, Chunk> found;
  found.reserve(ids.size());
  if (auto st = s->ForEachRow([&](const Statement& row) {
        Chunk k = ReadChunk(row, false);
        k.source = row.Text(14);
        found.emplace(k.id, std::move(k));
      });
      !st) {
    return Fail(st.error());
  }
  std::vector<Chunk> out;
  out.reserve(found.size());
  for (auto id : ids) {
    if (auto it = found.find(id); it != found.end()) out.push_back(std::move(it->second)), found.erase(it);
  }
  return out;
}

Result<std::vector<Chunk>> SqliteMetadataStore::GetChunksByNumber(const std::string& file_id, std::int64_t generation,
                                                                  const std::vector<std::int32_t>& numbers) {
  if (numbers.empty()) return std::vector<Chunk>{};
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kChunkWithSourceColumns +
                      " FROM chunks k JOIN files f ON f.id = k.file_id WHERE k.file_id = ? AND k.generation = ? "
                      "AND k.chunk_number IN (SELECT value FROM json_each(?)) ORDER BY k.chunk_number");
  if (!s) return Fail(s.error());
  s->Bind(1, file_id).Bind(2, generation).Bind(3, nlohmann::json(numbers).dump());
  std::vector<Chunk> out;
  if (auto st = s->ForEachRow([&](const Statement& row) {
        Chunk k = ReadChunk(row, false);
        k.source = row.Text(14);
        out.push_back(std::move(k));
      });
      !st) {
    return Fail(st.error());
  }
  return out;
}

Status SqliteMetadataStore::Ping() {
  auto c = db_.Acquire();
  auto s = c->Prepare("SELECT 1");
  if (!s) return Fail(s.error());
  return s->Run();
}

}  // namespace modulo::store::sqlite
