// IndexSync: keeps the derived indexes (a VectorStore and a KeywordIndex) in step with the
// metadata store, which is the source of truth for chunks and their vectors.
//
// Each index of a (collection, generation) remembers how far it has replayed the store's change
// feed: the last chunk id it added (chunk ids grow in commit order and are never reused) and the
// last removal it applied. EnsureCurrent() compares the collection's version with the version the
// index last caught up to; when they differ it replays what happened since, in batches. So the
// indexes survive any crash by construction (they are rebuilt from the store at start-up), a
// `modulo worker` in another process needs no channel to the server (the next search catches up),
// and a search during a reindex reads the live generation while g+1 is built beside it.
//
// Shared indexes (Milvus vectors with PostgreSQL full-text search, used by every server and
// worker alike) keep their positions in SyncCheckpoints instead: a process takes the collection's
// replay lease, resumes from the stored position, saves it after each batch and lets go. A process
// that finds the lease taken reads the index as it is (another one is bringing it up to date).
// Workers catch up a collection as each of its jobs finishes, so searches seldom replay anything.
//
// Thread-safety: all methods are thread-safe. Catch-up of one index is serialised; a search that
// finds another thread catching up the same index does not wait for it when the index was
// caught up before (it reads what is there), only on the first build.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "modulo/core/error.h"
#include "modulo/index/keyword_index.h"
#include "modulo/index/vector_store.h"
#include "modulo/metrics/registry.h"
#include "modulo/search/sync_checkpoints.h"
#include "modulo/store/metadata_store.h"

namespace modulo::search {

struct IndexSyncOptions {
  std::size_t batch = 1000;  // chunks read and indexed per step (VECTOR_BATCH_SIZE)
  // Called before the indexes of a collection's generation are first built, to apply the
  // collection's own index parameters (its settings are in `state.settings_json`).
  std::function<void(const store::Collection& state)> before_build;
  // Shared indexes: where positions and the replay lease live (null: in-process indexes, positions
  // in memory), this process's name as a lease holder, and how long a lease lasts unrenewed.
  SyncCheckpoints* checkpoints = nullptr;
  std::string owner;
  std::chrono::milliseconds lease{60000};
};

class IndexSync {
 public:
  // Either index may be null (no embedder: keyword only).
  IndexSync(store::MetadataStore& store, index::VectorStore* vectors, index::KeywordIndex* keywords,
            IndexSyncOptions options = {}, metrics::Registry* registry = nullptr);

  // Brings the indexes of `state`'s live generation up to at least `state.version` (a collection
  // read from the store just before). Drops indexes of generations that are no longer live.
  // When another thread (or, for shared indexes, another process) is catching up at that moment,
  // returns at once and the indexes are read as they are: `current` (when given) then says false,
  // so that a caller does not keep what it read as the collection's state at this version.
  [[nodiscard]] Status EnsureCurrent(const store::Collection& state, bool* current = nullptr);

  // Drops every index of a deleted collection (`deleted`: its state read before the deletion).
  void DropCollection(const store::Collection& deleted);

  // Catches up every collection (start-up warm-up); returns how many were caught up.
  [[nodiscard]] Result<std::size_t> SyncAll();

  [[nodiscard]] static index::IndexKey KeyOf(const store::Collection& c, std::int64_t generation) {
    return {c.id, generation, c.owner_id, c.owner_type};
  }

 private:
  struct Entry {
    std::mutex mu;                           // serialises catch-up
    std::atomic<std::int64_t> version{0};    // collection version caught up to (0: never)
    std::int64_t generation = 0;             // guarded by mu
    std::string owner_id;                    // guarded by mu
    std::string owner_type = "user";         // guarded by mu
    std::int64_t last_chunk_id = 0;          // guarded by mu
    std::int64_t last_removal_seq = 0;       // guarded by mu
  };

  Status Refresh(Entry& e, const store::Collection& state);
  Status CatchUp(Entry& e, const store::Collection& state);
  Status CatchUpShared(Entry& e, const store::Collection& state);
  // Replays additions past *last_chunk_id and removals past *last_removal_seq into the indexes of
  // `key`, advancing both; `after_batch` runs after each batch (false stops with its error).
  Status Replay(const store::Collection& state, const index::IndexKey& key, std::int64_t* last_chunk_id,
                std::int64_t* last_removal_seq, std::size_t* added, std::size_t* removed,
                const std::function<Status()>& after_batch);
  void Report(const store::Collection& state, std::size_t added, std::size_t removed);
  Status Drop(const index::IndexKey& key);

  store::MetadataStore& store_;
  index::VectorStore* vectors_;
  index::KeywordIndex* keywords_;
  IndexSyncOptions options_;
  metrics::CounterFamily* replayed_ = nullptr;

  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Entry>> entries_;  // by collection id; guarded by mu_
};

}  // namespace modulo::search
