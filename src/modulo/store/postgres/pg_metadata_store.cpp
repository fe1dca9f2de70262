#include "modulo/store/postgres/pg_metadata_store.h"

#include <cstring>
#include <limits>
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "modulo/core/clock.h"
#include "modulo/core/request_id.h"

namespace modulo::store::postgres {
namespace {

// Advisory lock namespaces (first key of the two-int form; 19791 is the migration lock).
constexpr const char* kOwnerLock = "SELECT pg_advisory_xact_lock(19792, hashtext($1))";
constexpr const char* kFeedLock = "SELECT pg_advisory_xact_lock(19793, hashtext($1))";

constexpr const char* kCollectionColumns =
    "c.id, c.name, c.description, c.owner_id, c.status, c.is_private, c.settings, c.embedding_model, "
    "c.generation, c.version, c.created_at, c.updated_at, "
    "(SELECT count(*) FROM files f WHERE f.collection_id = c.id), "
    "(SELECT count(*) FROM chunks k WHERE k.collection_id = c.id AND k.generation = c.generation "
    "AND NOT k.is_parent), c.next_generation, c.owner_type";
constexpr const char* kCollectionStateColumns =
    "c.id, c.name, c.description, c.owner_id, c.status, c.is_private, c.settings, c.embedding_model, "
    "c.generation, c.version, c.created_at, c.updated_at, 0, 0, c.next_generation, c.owner_type";

Collection ReadCollection(const PgResult& r, int i) {
  Collection c;
  c.id = r.Text(i, 0);
  c.name = r.Text(i, 1);
  c.description = r.Text(i, 2);
  c.owner_id = r.Text(i, 3);
  c.status = ParseCollectionStatus(r.View(i, 4)).value_or(CollectionStatus::kError);
  c.is_private = r.Bool(i, 5);
  c.settings_json = r.Text(i, 6);
  c.embedding_model = r.Text(i, 7);
  c.generation = r.Int(i, 8);
  c.version = r.Int(i, 9);
  c.created_at_ms = r.Int(i, 10);
  c.updated_at_ms = r.Int(i, 11);
  c.file_count = r.Int(i, 12);
  c.chunk_count = r.Int(i, 13);
  c.next_generation = r.Int(i, 14);
  c.owner_type = r.Text(i, 15);
  return c;
}

constexpr const char* kFileColumns =
    "id, collection_id, filename, size_bytes, content_hash, mime_type, format, status, chunk_count, page_count, "
    "error, warnings, storage_key, task_id, created_at, updated_at";

FileRecord ReadFile(const PgResult& r, int i) {
  FileRecord f;
  f.id = r.Text(i, 0);
  f.collection_id = r.Text(i, 1);
  f.filename = r.Text(i, 2);
  f.size_bytes = r.Int(i, 3);
  f.content_hash = r.Text(i, 4);
  f.mime_type = r.Text(i, 5);
  f.format = r.Text(i, 6);
  f.status = ParseFileStatus(r.View(i, 7)).value_or(FileStatus::kFailed);
  f.chunk_count = r.Int(i, 8);
  f.page_count = r.Int(i, 9);
  f.error = r.Text(i, 10);
  f.warnings_json = r.Text(i, 11);
  f.storage_key = r.Text(i, 12);
  f.task_id = r.Text(i, 13);
  f.created_at_ms = r.Int(i, 14);
  f.updated_at_ms = r.Int(i, 15);
  return f;
}

// Columns 0..12, then the embedding (or NULL) at 13 and the file name (or NULL) at 14.
constexpr const char* kChunkColumns =
    "k.id, k.collection_id, k.file_id, k.generation, k.chunk_number, k.text, k.page_number, k.section_path, "
    "k.char_start, k.char_end, k.token_count, k.parent_number, k.is_parent";

Chunk ReadChunk(const PgResult& r, int i) {
  Chunk k;
  k.id = r.Int(i, 0);
  k.collection_id = r.Text(i, 1);
  k.file_id = r.Text(i, 2);
  k.generation = r.Int(i, 3);
  k.chunk_number = static_cast<std::int32_t>(r.Int(i, 4));
  k.text = r.Text(i, 5);
  k.page_number = static_cast<std::int32_t>(r.Int(i, 6));
  k.section_path = r.Text(i, 7);
  k.char_start = r.Int(i, 8);
  k.char_end = r.Int(i, 9);
  k.token_count = static_cast<std::int32_t>(r.Int(i, 10));
  if (!r.IsNull(i, 11)) k.parent_number = static_cast<std::int32_t>(r.Int(i, 11));
  k.is_parent = r.Bool(i, 12);
  if (!r.IsNull(i, 13)) {
    const auto bytes = r.Bytes(i, 13);
    k.embedding.resize(bytes.size() / sizeof(float));
    std::memcpy(k.embedding.data(), bytes.data(), k.embedding.size() * sizeof(float));
  }
  if (!r.IsNull(i, 14)) k.source = r.Text(i, 14);
  return k;
}

std::int64_t ClampLimit(std::size_t limit) {
  return static_cast<std::int64_t>(
      std::min<std::size_t>(limit, static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())));
}

Error QuotaError(const std::string& resource, std::int64_t usage, std::int64_t limit, std::int64_t adding = 1) {
  return Error::QuotaExceeded("Quota exceeded for " + resource + ": " + std::to_string(usage) + " used of " +
                              std::to_string(limit) + (adding > 1 ? ", " + std::to_string(adding) + " more asked" : ""))
      .WithDetails(nlohmann::json{{"resource", resource}, {"usage", usage}, {"limit", limit}}.dump());
}

Status BumpVersion(Connection& c, const std::string& collection_id) {
  auto r = c.Exec("UPDATE collections SET version = version + 1, updated_at = $2 WHERE id = $1",
                  Params().Add(collection_id).Add(NowMs()));
  if (!r) return Fail(r.error());
  return {};
}

Status LockFeed(Connection& c, const std::string& collection_id) {
  auto r = c.Exec(kFeedLock, Params().Add(collection_id));
  if (!r) return Fail(r.error());
  return {};
}

Result<std::string> CollectionOfFile(Connection& c, const std::string& file_id) {
  auto r = c.Exec("SELECT collection_id FROM files WHERE id = $1", Params().Add(file_id));
  if (!r) return Fail(r.error());
  if (r->empty()) return Fail(Error::NotFound("file " + file_id + " not found"));
  return r->Text(0, 0);
}

Result<std::vector<Collection>> CollectionRows(Result<PgResult> r) {
  if (!r) return Fail(r.error());
  std::vector<Collection> out;
  out.reserve(static_cast<std::size_t>(r->rows()));
  for (int i = 0; i < r->rows(); ++i) out.push_back(ReadCollection(*r, i));
  return out;
}

Result<std::vector<FileRecord>> FileRows(Result<PgResult> r) {
  if (!r) return Fail(r.error());
  std::vector<FileRecord> out;
  out.reserve(static_cast<std::size_t>(r->rows()));
  for (int i = 0; i < r->rows(); ++i) out.push_back(ReadFile(*r, i));
  return out;
}

Result<Collection> OneCollection(Connection& c, const char* columns, const std::string& id) {
  auto r = c.Exec(std::string("SELECT ") + columns + " FROM collections c WHERE c.id = $1", Params().Add(id));
  if (!r) return Fail(r.error());
  if (r->empty()) return Fail(Error::NotFound("collection " + id + " not found"));
  return ReadCollection(*r, 0);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Collections

Result<Collection> PostgresMetadataStore::CreateCollection(const NewCollection& in) {
  if (in.name.empty()) return Fail(Error::InvalidArgument("collection name must not be empty"));
  if (in.owner_type != "user" && in.owner_type != "team") {
    return Fail(Error::InvalidArgument("owner_type must be 'user' or 'team'"));
  }
  Collection out;
  out.id = NewUuid();
  out.name = in.name;
  out.description = in.description;
  out.owner_id = in.owner_id;
  out.owner_type = in.owner_type;
  out.is_private = in.is_private;
  out.settings_json = in.settings_json;
  out.embedding_model = in.embedding_model;
  out.created_at_ms = out.updated_at_ms = NowMs();
  auto insert = [&](Connection& c) -> Status {
    auto r = c.Exec(
        "INSERT INTO collections (id, name, description, owner_id, status, is_private, settings, embedding_model, "
        "created_at, updated_at, owner_type) VALUES ($1, $2, $3, $4, 'created', $5, $6, $7, $8, $8, $9)",
        Params()
            .Add(out.id)
            .Add(in.name)
            .Add(in.description)
            .Add(in.owner_id)
            .Add(in.is_private)
            .Add(in.settings_json)
            .Add(in.embedding_model)
            .Add(out.created_at_ms)
            .Add(in.owner_type));
    if (!r) {
      if (r.error().code() == ErrorCode::kAlreadyExists) {
        return Fail(Error::AlreadyExists("a collection named '" + in.name + "' already exists"));
      }
      return Fail(r.error());
    }
    return {};
  };
  Status st;
  if (in.owner_collection_limit <= 0) {
    st = db_.WithWrite(insert);
  } else {
    // The owner's lock, then the count, then the insert: one creation per owner at a time.
    st = db_.WithTransaction([&](Connection& c) -> Status {
      if (auto l = c.Exec(kOwnerLock, Params().Add(in.owner_type + ":" + in.owner_id)); !l) return Fail(l.error());
      auto n = c.Exec("SELECT count(*) FROM collections WHERE owner_type = $1 AND owner_id = $2",
                      Params().Add(in.owner_type).Add(in.owner_id));
      if (!n) return Fail(n.error());
      const std::int64_t owned = n->Int(0, 0);
      if (owned >= in.owner_collection_limit) return Fail(QuotaError("collections", owned, in.owner_collection_limit));
      return insert(c);
    });
  }
  if (!st) return Fail(st.error());
  return out;
}

Result<Collection> PostgresMetadataStore::GetCollection(const std::string& id) {
  return db_.WithRead([&](Connection& c) { return OneCollection(c, kCollectionColumns, id); });
}

Result<Collection> PostgresMetadataStore::GetCollectionState(const std::string& id) {
  return db_.WithPrimary([&](Connection& c) { return OneCollection(c, kCollectionStateColumns, id); });
}

Result<std::vector<Collection>> PostgresMetadataStore::ListCollections(const std::string& owner_id) {
  return db_.WithRead([&](Connection& c) {
    return CollectionRows(c.Exec(std::string("SELECT ") + kCollectionColumns +
                                     " FROM collections c WHERE ($1 = '' OR c.owner_id = $1) "
                                     "ORDER BY c.created_at DESC, c.id",
                                 Params().Add(owner_id)));
  });
}

Result<std::vector<Collection>> PostgresMetadataStore::ListCollectionsByIds(const std::vector<std::string>& ids) {
  if (ids.empty()) return std::vector<Collection>{};
  return db_.WithRead([&](Connection& c) {
    return CollectionRows(c.Exec(std::string("SELECT ") + kCollectionColumns +
                                     " FROM collections c WHERE c.id = ANY($1::text[]) ORDER BY c.created_at DESC, c.id",
                                 Params().AddTextArray(ids)));
  });
}

Status PostgresMetadataStore::DeleteCollection(const std::string& id) {
  return db_.WithTransaction([&](Connection& c) -> Status {
    auto d = c.Exec("DELETE FROM collections WHERE id = $1", Params().Add(id));
    if (!d) return Fail(d.error());
    if (d->affected() == 0) return Fail(Error::NotFound("collection " + id + " not found"));
    // The cascade left a tombstone per chunk; indexes of a deleted collection are dropped whole.
    auto t = c.Exec("DELETE FROM chunk_tombstones WHERE collection_id = $1", Params().Add(id));
    if (!t) return Fail(t.error());
    return {};
  });
}

Status PostgresMetadataStore::SetCollectionStatus(const std::string& id, CollectionStatus status) {
  return db_.WithWrite([&](Connection& c) -> Status {
    auto r = c.Exec("UPDATE collections SET status = $1, updated_at = $2 WHERE id = $3",
                    Params().Add(ToString(status)).Add(NowMs()).Add(id));
    if (!r) return Fail(r.error());
    if (r->affected() == 0) return Fail(Error::NotFound("collection " + id + " not found"));
    return {};
  });
}

// ---------------------------------------------------------------------------------------------
// Reindexing

Result<std::int64_t> PostgresMetadataStore::BeginReindex(const std::string& collection_id,
                                                         const std::string& settings_json) {
  return db_.WithTransaction([&](Connection& c) -> Result<std::int64_t> {
    if (auto st = LockFeed(c, collection_id); !st) return Fail(st.error());
    auto q = c.Exec("SELECT generation, next_generation FROM collections WHERE id = $1 FOR UPDATE",
                    Params().Add(collection_id));
    if (!q) return Fail(q.error());
    if (q->empty()) return Fail(Error::NotFound("collection " + collection_id + " not found"));
    const std::int64_t generation = q->Int(0, 0), pending = q->Int(0, 1);
    if (pending > generation) {
      return Fail(Error::Conflict("collection " + collection_id + " is already being reindexed"));
    }
    const std::int64_t next = generation + 1;
    auto del = c.Exec("DELETE FROM chunks WHERE collection_id = $1 AND generation = $2",
                      Params().Add(collection_id).Add(next));
    if (!del) return Fail(del.error());
    auto up = c.Exec("UPDATE collections SET next_generation = $1, settings = $2, updated_at = $3 WHERE id = $4",
                     Params().Add(next).Add(settings_json).Add(NowMs()).Add(collection_id));
    if (!up) return Fail(up.error());
    return next;
  });
}

Status PostgresMetadataStore::FinishReindex(const std::string& collection_id, std::int64_t generation) {
  return db_.WithTransaction([&](Connection& c) -> Status {
    if (auto st = LockFeed(c, collection_id); !st) return st;
    auto up = c.Exec(
        "UPDATE collections SET generation = $1, next_generation = 0, version = version + 1, updated_at = $2 "
        "WHERE id = $3 AND next_generation = $1",
        Params().Add(generation).Add(NowMs()).Add(collection_id));
    if (!up) return Fail(up.error());
    if (up->affected() == 0) {
      return Fail(Error::Conflict("collection " + collection_id + " is not being reindexed into generation " +
                                  std::to_string(generation)));
    }
    auto del = c.Exec("DELETE FROM chunks WHERE collection_id = $1 AND generation <> $2",
                      Params().Add(collection_id).Add(generation));
    if (!del) return Fail(del.error());
    // Indexes of the replaced generations are dropped whole, so their removals need no replay.
    auto t = c.Exec("DELETE FROM chunk_tombstones WHERE collection_id = $1 AND generation <> $2",
                    Params().Add(collection_id).Add(generation));
    if (!t) return Fail(t.error());
    return {};
  });
}

Status PostgresMetadataStore::AbortReindex(const std::string& collection_id, std::int64_t generation) {
  return db_.WithTransaction([&](Connection& c) -> Status {
    if (auto st = LockFeed(c, collection_id); !st) return st;
    auto up = c.Exec("UPDATE collections SET next_generation = 0, updated_at = $1 WHERE id = $2 AND next_generation = $3",
                     Params().Add(NowMs()).Add(collection_id).Add(generation));
    if (!up) return Fail(up.error());
    if (up->affected() == 0) {
      return Fail(Error::Conflict("collection " + collection_id + " is not being reindexed into generation " +
                                  std::to_string(generation)));
    }
    auto del = c.Exec("DELETE FROM chunks WHERE collection_id = $1 AND generation = $2",
                      Params().Add(collection_id).Add(generation));
    if (!del) return Fail(del.error());
    return {};
  });
}

// ---------------------------------------------------------------------------------------------
// Files

Result<std::pair<FileRecord, bool>> PostgresMetadataStore::AddFile(const FileRecord& f, const FileLimits& limits) {
  FileRecord out = f;
  if (out.id.empty()) out.id = NewUuid();
  return db_.WithTransaction([&](Connection& c) -> Result<std::pair<FileRecord, bool>> {
    // The collection row first: it serializes additions to one collection (the files quota and
    // the content-hash check below see every committed addition).
    auto col = c.Exec("SELECT owner_type, owner_id FROM collections WHERE id = $1 FOR UPDATE",
                      Params().Add(f.collection_id));
    if (!col) return Fail(col.error());
    if (col->empty()) return Fail(Error::NotFound("collection " + f.collection_id + " not found"));
    const std::string owner_key = col->Text(0, 0) + ":" + col->Text(0, 1);
    auto dup = c.Exec(std::string("SELECT ") + kFileColumns + " FROM files WHERE collection_id = $1 AND content_hash = $2",
                      Params().Add(f.collection_id).Add(f.content_hash));
    if (!dup) return Fail(dup.error());
    if (!dup->empty()) return std::make_pair(ReadFile(*dup, 0), false);
    if (limits.files_per_collection > 0) {
      auto n = c.Exec("SELECT count(*) FROM files WHERE collection_id = $1", Params().Add(f.collection_id));
      if (!n) return Fail(n.error());
      if (n->Int(0, 0) >= limits.files_per_collection) {
        return Fail(QuotaError("files per collection", n->Int(0, 0), limits.files_per_collection));
      }
    }
    if (limits.owner_storage_bytes > 0) {
      if (auto l = c.Exec(kOwnerLock, Params().Add(owner_key)); !l) return Fail(l.error());
      auto used = c.Exec(
          "SELECT COALESCE(SUM(f.size_bytes), 0) FROM files f JOIN collections c ON c.id = f.collection_id "
          "JOIN collections mine ON mine.owner_type = c.owner_type AND mine.owner_id = c.owner_id WHERE mine.id = $1",
          Params().Add(f.collection_id));
      if (!used) return Fail(used.error());
      if (used->Int(0, 0) + f.size_bytes > limits.owner_storage_bytes) {
        return Fail(QuotaError("storage", used->Int(0, 0), limits.owner_storage_bytes, f.size_bytes));
      }
    }
    out.created_at_ms = out.updated_at_ms = NowMs();
    auto ins = c.Exec(std::string("INSERT INTO files (") + kFileColumns +
                          ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
                      Params()
                          .Add(out.id)
                          .Add(out.collection_id)
                          .Add(out.filename)
                          .Add(out.size_bytes)
                          .Add(out.content_hash)
                          .Add(out.mime_type)
                          .Add(out.format)
                          .Add(ToString(out.status))
                          .Add(out.chunk_count)
                          .Add(out.page_count)
                          .Add(out.error)
                          .Add(out.warnings_json)
                          .Add(out.storage_key)
                          .Add(out.task_id)
                          .Add(out.created_at_ms)
                          .Add(out.updated_at_ms));
    if (!ins) {
      if (ins.error().code() == ErrorCode::kAlreadyExists) {
        return Fail(Error::AlreadyExists("a file with id " + out.id + " already exists"));
      }
      return Fail(ins.error());
    }
    if (auto st = BumpVersion(c, out.collection_id); !st) return Fail(st.error());
    return std::make_pair(out, true);
  });
}

Result<FileRecord> PostgresMetadataStore::GetFile(const std::string& file_id) {
  return db_.WithRead([&](Connection& c) -> Result<FileRecord> {
    auto r = c.Exec(std::string("SELECT ") + kFileColumns + " FROM files WHERE id = $1", Params().Add(file_id));
    if (!r) return Fail(r.error());
    if (r->empty()) return Fail(Error::NotFound("file " + file_id + " not found"));
    return ReadFile(*r, 0);
  });
}

Result<std::vector<FileRecord>> PostgresMetadataStore::ListFiles(const std::string& collection_id) {
  return db_.WithRead([&](Connection& c) {
    return FileRows(c.Exec(std::string("SELECT ") + kFileColumns +
                               " FROM files WHERE collection_id = $1 ORDER BY created_at, id",
                           Params().Add(collection_id)));
  });
}

Result<std::map<FileStatus, std::int64_t>> PostgresMetadataStore::CountFilesByStatus(const std::string& collection_id) {
  return db_.WithRead([&](Connection& c) -> Result<std::map<FileStatus, std::int64_t>> {
    auto r = c.Exec("SELECT status, count(*) FROM files WHERE collection_id = $1 GROUP BY status",
                    Params().Add(collection_id));
    if (!r) return Fail(r.error());
    std::map<FileStatus, std::int64_t> out;
    for (int i = 0; i < r->rows(); ++i) {
      if (auto s = ParseFileStatus(r->View(i, 0))) out[*s] = r->Int(i, 1);
    }
    return out;
  });
}

Result<std::vector<FileRecord>> PostgresMetadataStore::ListFilesWithStatus(const std::vector<FileStatus>& statuses) {
  if (statuses.empty()) return std::vector<FileRecord>{};
  std::vector<std::string> names;
  for (auto s : statuses) names.emplace_back(ToString(s));
  return db_.WithPrimary([&](Connection& c) {
    return FileRows(c.Exec(std::string("SELECT ") + kFileColumns +
                               " FROM files WHERE status = ANY($1::text[]) ORDER BY created_at, id",
                           Params().AddTextArray(names)));
  });
}

Status PostgresMetadataStore::DeleteFile(const std::string& file_id) {
  return db_.WithTransaction([&](Connection& c) -> Status {
    auto owner = CollectionOfFile(c, file_id);  // a file never changes collection
    if (!owner) return Fail(owner.error());
    if (auto st = LockFeed(c, *owner); !st) return st;
    auto d = c.Exec("DELETE FROM files WHERE id = $1", Params().Add(file_id));
    if (!d) return Fail(d.error());
    if (d->affected() == 0) return Fail(Error::NotFound("file " + file_id + " not found"));
    return BumpVersion(c, *owner);
  });
}

Status PostgresMetadataStore::SetFileStatus(const std::string& file_id, FileStatus status, const std::string& error) {
  return db_.WithWrite([&](Connection& c) -> Status {
    auto r = c.Exec("UPDATE files SET status = $1, error = $2, updated_at = $3 WHERE id = $4",
                    Params().Add(ToString(status)).Add(error).Add(NowMs()).Add(file_id));
    if (!r) return Fail(r.error());
    if (r->affected() == 0) return Fail(Error::NotFound("file " + file_id + " not found"));
    return {};
  });
}

// ---------------------------------------------------------------------------------------------
// Chunks

Status PostgresMetadataStore::ReplaceFileChunks(const std::string& file_id, std::int64_t generation,
                                                std::vector<Chunk> chunks, const FileOutcome& outcome) {
  {
    std::set<std::int32_t> numbers;
    for (const auto& k : chunks) {
      if (!numbers.insert(k.chunk_number).second) {
        return Fail(Error::InvalidArgument("chunk number " + std::to_string(k.chunk_number) + " appears twice"));
      }
    }
  }
  // One statement inserts the whole batch: parallel arrays, unnested in order.
  ArrayLiteral number, text, page, section, cstart, cend, tokens, parent, is_parent, embedding;
  std::int64_t indexed = 0;
  for (const Chunk& k : chunks) {
    number.Int(k.chunk_number);
    text.Text(SanitizeUtf8(k.text));
    page.Int(k.page_number);
    section.Text(SanitizeUtf8(k.section_path));
    cstart.Int(k.char_start);
    cend.Int(k.char_end);
    tokens.Int(k.token_count);
    if (k.parent_number) parent.Int(*k.parent_number);
    else parent.Null();
    is_parent.Bool(k.is_parent);
    if (k.embedding.empty()) embedding.Null();
    else embedding.Bytes(std::as_bytes(std::span<const float>(k.embedding)));
    indexed += k.is_parent ? 0 : 1;
  }
  return db_.WithTransaction([&](Connection& c) -> Status {
    auto owner = CollectionOfFile(c, file_id);
    if (!owner) return Fail(owner.error());
    const std::string& collection_id = *owner;
    // Ids are assigned and committed by one writer of this collection at a time (see the header).
    if (auto st = LockFeed(c, collection_id); !st) return st;
    auto del = c.Exec("DELETE FROM chunks WHERE file_id = $1 AND generation = $2", Params().Add(file_id).Add(generation));
    if (!del) return Fail(del.error());
    if (!chunks.empty()) {
      auto ins = c.Exec(
          "INSERT INTO chunks (collection_id, file_id, generation, chunk_number, text, page_number, section_path, "
          "char_start, char_end, token_count, parent_number, is_parent, embedding) "
          "SELECT $1, $2, $3, u.n, u.t, u.p, u.s, u.cs, u.ce, u.tc, u.pn, u.ip, u.e "
          "FROM unnest($4::int[], $5::text[], $6::int[], $7::text[], $8::bigint[], $9::bigint[], $10::int[], "
          "$11::int[], $12::boolean[], $13::bytea[]) WITH ORDINALITY AS u(n, t, p, s, cs, ce, tc, pn, ip, e, ord) "
          "ORDER BY u.ord",
          Params()
              .Add(collection_id)
              .Add(file_id)
              .Add(generation)
              .Add(number.str())
              .Add(text.str())
              .Add(page.str())
              .Add(section.str())
              .Add(cstart.str())
              .Add(cend.str())
              .Add(tokens.str())
              .Add(parent.str())
              .Add(is_parent.str())
              .Add(embedding.str()));
      if (!ins) return Fail(ins.error());
    }
    auto up = c.Exec(
        "UPDATE files SET status = $1, format = $2, page_count = $3, error = $4, warnings = $5, chunk_count = $6, "
        "updated_at = $7 WHERE id = $8",
        Params()
            .Add(ToString(outcome.status))
            .Add(outcome.format)
            .Add(outcome.page_count)
            .Add(outcome.error)
            .Add(outcome.warnings_json)
            .Add(indexed)
            .Add(NowMs())
            .Add(file_id));
    if (!up) return Fail(up.error());
    return BumpVersion(c, collection_id);
  });
}

Result<std::vector<Chunk>> PostgresMetadataStore::ListChunks(const std::string& collection_id, std::int64_t generation,
                                                             std::int64_t after_id, std::size_t limit,
                                                             bool with_embeddings) {
  // The change feed reads the primary: a lagging replica would make a reader skip chunks.
  return db_.WithPrimary([&](Connection& c) -> Result<std::vector<Chunk>> {
    auto r = c.Exec(std::string("SELECT ") + kChunkColumns +
                        ", CASE WHEN $5 THEN k.embedding END, NULL FROM chunks k "
                        "WHERE k.collection_id = $1 AND k.generation = $2 AND k.id > $3 ORDER BY k.id LIMIT $4",
                    Params().Add(collection_id).Add(generation).Add(after_id).Add(ClampLimit(limit)).Add(with_embeddings));
    if (!r) return Fail(r.error());
    std::vector<Chunk> out;
    out.reserve(static_cast<std::size_t>(r->rows()));
    for (int i = 0; i < r->rows(); ++i) out.push_back(ReadChunk(*r, i));
    return out;
  });
}

Result<std::vector<RemovedChunk>> PostgresMetadataStore::ListRemovedChunks(const std::string& collection_id,
                                                                          std::int64_t generation,
                                                                          std::int64_t after_seq, std::size_t limit) {
  return db_.WithPrimary([&](Connection& c) -> Result<std::vector<RemovedChunk>> {
    auto r = c.Exec(
        "SELECT seq, chunk_id FROM chunk_tombstones WHERE collection_id = $1 AND generation = $2 AND seq > $3 "
        "ORDER BY seq LIMIT $4",
        Params().Add(collection_id).Add(generation).Add(after_seq).Add(ClampLimit(limit)));
    if (!r) return Fail(r.error());
    std::vector<RemovedChunk> out;
    out.reserve(static_cast<std::size_t>(r->rows()));
    for (int i = 0; i < r->rows(); ++i) out.push_back({r->Int(i, 0), r->Int(i, 1)});
    return out;
  });
}

Result<std::vector<Chunk>> PostgresMetadataStore::GetChunks(const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return std::vector<Chunk>{};
  const std::string sql = std::string("SELECT ") + kChunkColumns +
                          ", NULL::bytea, f.filename FROM chunks k JOIN files f ON f.id = k.file_id "
                          "WHERE k.id = ANY($1::bigint[])";
  auto run = [&](Connection& c) -> Result<std::unordered_map<std::int64_t, Chunk>> {
    auto r = c.Exec(sql, Params().AddIntArray(std::span<const std::int64_t>(ids)));
    if (!r) return Fail(r.error());
    std::unordered_map<std::int64_t, Chunk> found;
    found.reserve(static_cast<std::size_t>(r->rows()));
    for (int i = 0; i < r->rows(); ++i) {
      Chunk k = ReadChunk(*r, i);
      found.emplace(k.id, std::move(k));
    }
    return found;
  };
  std::set<std::int64_t> distinct(ids.begin(), ids.end());
  auto lease = db_.Read();
  if (!lease) return Fail(lease.error());
  const bool on_replica = &lease->pool() != &db_.primary_pool();
  auto found = run(**lease);
  if (on_replica && (!found || found->size() < distinct.size())) {
    // A replica behind the index that produced these ids (or down): ask the primary.
    auto primary = db_.Primary();
    if (!primary) return Fail(primary.error());
    found = run(**primary);
  }
  if (!found) return Fail(found.error());
  std::vector<Chunk> out;
  out.reserve(found->size());
  for (auto id : ids) {
    if (auto it = found->find(id); it != found->end()) {
      out.push_back(std::move(it->second));
      found->erase(it);
    }
  }
  return out;
}

Result<std::vector<Chunk>> PostgresMetadataStore::GetChunksByNumber(const std::string& file_id,
                                                                    std::int64_t generation,
                                                                    const std::vector<std::int32_t>& numbers) {
  if (numbers.empty()) return std::vector<Chunk>{};
  return db_.WithRead([&](Connection& c) -> Result<std::vector<Chunk>> {
    auto r = c.Exec(std::string("SELECT ") + kChunkColumns +
                        ", NULL::bytea, f.filename FROM chunks k JOIN files f ON f.id = k.file_id "
                        "WHERE k.file_id = $1 AND k.generation = $2 AND k.chunk_number = ANY($3::int[]) "
                        "ORDER BY k.chunk_number",
                    Params().Add(file_id).Add(generation).AddIntArray(std::span<const std::int32_t>(numbers)));
    if (!r) return Fail(r.error());
    std::vector<Chunk> out;
    for (int i = 0; i < r->rows(); ++i) out.push_back(ReadChunk(*r, i));
    return out;
  });
}

Status PostgresMetadataStore::Ping() {
  return db_.WithPrimary([](Connection& c) -> Status {
    auto r = c.Exec("SELECT 1");
    if (!r) return Fail(r.error());
    return {};
  });
}

}  // namespace modulo::store::postgres
