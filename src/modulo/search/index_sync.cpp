#include "modulo/search/index_sync.h"

#include <vector>

#include "modulo/core/log.h"

namespace modulo::search {

IndexSync::IndexSync(store::MetadataStore& store, index::VectorStore* vectors, index::KeywordIndex* keywords,
                     IndexSyncOptions options, metrics::Registry* registry)
    : store_(store), vectors_(vectors), keywords_(keywords), options_(options) {
  if (options_.batch == 0) options_.batch = 1000;
  if (registry != nullptr) {
    replayed_ = &registry->AddCounter("modulo_index_replayed_total",
                                      "Chunk additions and removals replayed from the store into the indexes",
                                      {"op"});
  }
}

Status IndexSync::Drop(const index::IndexKey& key) {
  if (vectors_ != nullptr) {
    if (auto st = vectors_->Drop(key); !st) return st;
  }
  if (keywords_ != nullptr) {
    if (auto st = keywords_->Drop(key); !st) return st;
  }
  return {};
}

Status IndexSync::EnsureCurrent(const store::Collection& state, bool* current) {
  std::shared_ptr<Entry> e;
  {
    std::lock_guard lock(mu_);
    auto& slot = entries_[state.id];
    if (!slot) slot = std::make_shared<Entry>();
    e = slot;
  }
  Status st = Refresh(*e, state);
  if (current != nullptr) *current = st && e->version.load(std::memory_order_acquire) >= state.version;
  return st;
}

Status IndexSync::Refresh(Entry& e, const store::Collection& state) {
  const auto seen = e.version.load(std::memory_order_acquire);
  if (seen >= state.version) return {};
  std::unique_lock lock(e.mu, std::defer_lock);
  if (seen > 0) {
    // Caught up before: when someone else is catching up now, read what is there.
    if (!lock.try_lock()) return {};
  } else {
    lock.lock();
  }
  if (e.version.load(std::memory_order_acquire) >= state.version) return {};
  return CatchUp(e, state);
}

Status IndexSync::CatchUp(Entry& e, const store::Collection& state) {
  if (options_.checkpoints != nullptr) return CatchUpShared(e, state);
  if (e.generation != state.generation) {
    // A reindex switched generations (or this is the first build): start the live one afresh.
    if (e.generation != 0) {
      if (auto st = Drop(KeyOf(state, e.generation)); !st) return st;
    }
    if (auto st = Drop(KeyOf(state, state.generation)); !st) return st;
    if (options_.before_build) options_.before_build(state);
    e.generation = state.generation;
    e.owner_id = state.owner_id;
    e.owner_type = state.owner_type;
    e.last_chunk_id = 0;
    e.last_removal_seq = 0;
    e.version.store(0, std::memory_order_release);
  }
  std::size_t added = 0, removed = 0;
  if (auto st = Replay(state, KeyOf(state, state.generation), &e.last_chunk_id, &e.last_removal_seq, &added, &removed,
                       [] { return Status{}; });
      !st) {
    return st;
  }
  e.version.store(state.version, std::memory_order_release);
  Report(state, added, removed);
  return {};
}

Status IndexSync::CatchUpShared(Entry& e, const store::Collection& state) {
  SyncCheckpoints& cp = *options_.checkpoints;
  auto acquired = cp.Acquire(state.id, options_.owner, options_.lease);
  if (!acquired) return Fail(acquired.error());
  if (!*acquired) return {};  // another process is replaying: read the index as it is
  SyncPosition pos = **acquired;
  e.generation = state.generation;
  e.owner_id = state.owner_id;
  e.owner_type = state.owner_type;
  auto finish = [&](Status st) -> Status {
    if (auto released = cp.Release(state.id, options_.owner); !released && st) return released;
    return st;
  };
  if (pos.generation != state.generation) {
    // First build, or a reindex switched generations: the old generation's indexes go, and the
    // live one is built from scratch (whatever a lost position left there is dropped first).
    if (pos.generation != 0 && pos.generation != state.generation) {
      if (auto st = Drop(KeyOf(state, pos.generation)); !st) return finish(st);
    }
    if (auto st = Drop(KeyOf(state, state.generation)); !st) return finish(st);
    if (options_.before_build) options_.before_build(state);
    pos = SyncPosition{state.generation, 0, 0, 0};
    if (auto st = cp.Save(state.id, options_.owner, pos, options_.lease); !st) return finish(st);
  }
  if (pos.version >= state.version) {
    e.version.store(pos.version, std::memory_order_release);
    return finish({});
  }
  std::size_t added = 0, removed = 0;
  auto st = Replay(state, KeyOf(state, state.generation), &pos.last_chunk_id, &pos.last_removal_seq, &added, &removed,
                   [&] { return cp.Save(state.id, options_.owner, pos, options_.lease); });
  if (!st) return finish(st);
  pos.version = state.version;
  if (auto saved = cp.Save(state.id, options_.owner, pos, options_.lease); !saved) return finish(saved);
  e.version.store(state.version, std::memory_order_release);
  Report(state, added, removed);
  return finish({});
}

Status IndexSync::Replay(const store::Collection& state, const index::IndexKey& key, std::int64_t* last_chunk_id,
                         std::int64_t* last_removal_seq, std::size_t* added, std::size_t* removed,
                         const std::function<Status()>& after_batch) {
  // Additions: every chunk with an id past the last one seen.
  for (;;) {
    auto page = store_.ListChunks(state.id, state.generation, *last_chunk_id, options_.batch, vectors_ != nullptr);
    if (!page) return Fail(page.error());
    if (page->empty()) break;
    std::vector<index::IndexedChunk> items;
    items.reserve(page->size());
    // Keyword search also matches the headings a chunk sits under (a document's title among
    // them): a chunk deep in a section keeps the words that name its subject.
    std::vector<std::string> keyword_texts;
    keyword_texts.reserve(page->size());
    for (const auto& k : *page) {
      if (k.is_parent) continue;  // parents are context for their children, not search targets
      index::IndexedChunk ic;
      ic.chunk_id = k.id;
      ic.file_id = k.file_id;
      ic.page_number = k.page_number;
      ic.embedding = k.embedding.empty() ? nullptr : k.embedding.data();
      if (k.section_path.empty()) {
        ic.text = k.text;
      } else {
        keyword_texts.push_back(k.section_path + "\n" + k.text);
        ic.text = keyword_texts.back();
      }
      items.push_back(std::move(ic));
    }
    if (vectors_ != nullptr) {
      std::vector<index::IndexedChunk> with_vectors;
      with_vectors.reserve(items.size());
      for (const auto& ic : items) {
        if (ic.embedding != nullptr) with_vectors.push_back(ic);
      }
      if (auto st = vectors_->Upsert(key, with_vectors); !st) return st;
    }
    if (keywords_ != nullptr) {
      if (auto st = keywords_->Upsert(key, items); !st) return st;
    }
    *added += items.size();
    *last_chunk_id = page->back().id;
    if (auto st = after_batch(); !st) return st;
    if (page->size() < options_.batch) break;
  }
  // Removals after additions: a chunk added and removed since the last catch-up is removed again.
  for (;;) {
    auto page = store_.ListRemovedChunks(state.id, state.generation, *last_removal_seq, options_.batch);
    if (!page) return Fail(page.error());
    if (page->empty()) break;
    std::vector<std::int64_t> ids;
    ids.reserve(page->size());
    for (const auto& r : *page) ids.push_back(r.chunk_id);
    if (vectors_ != nullptr) {
      if (auto st = vectors_->Remove(key, ids); !st) return st;
    }
    if (keywords_ != nullptr) {
      if (auto st = keywords_->Remove(key, ids); !st) return st;
    }
    *removed += ids.size();
    *last_removal_seq = page->back().seq;
    if (auto st = after_batch(); !st) return st;
    if (page->size() < options_.batch) break;
  }
  return {};
}

void IndexSync::Report(const store::Collection& state, std::size_t added, std::size_t removed) {
  if (replayed_ != nullptr) {
    if (added > 0) replayed_->With({"add"}).Inc(static_cast<double>(added));
    if (removed > 0) replayed_->With({"remove"}).Inc(static_cast<double>(removed));
  }
  if (added + removed > 0) {
    log::Debug("index caught up", {{"collection_id", state.id},
                                   {"generation", state.generation},
                                   {"version", state.version},
                                   {"added", static_cast<std::int64_t>(added)},
                                   {"removed", static_cast<std::int64_t>(removed)}});
  }
}

void IndexSync::DropCollection(const store::Collection& deleted) {
  std::shared_ptr<Entry> e;
  {
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(deleted.id); it != entries_.end()) {
      e = it->second;
      entries_.erase(it);
    }
  }
  std::unique_lock<std::mutex> lock;
  if (e) lock = std::unique_lock(e->mu);
  // The live generation, one a reindex was building, and (in process) the one this process built.
  std::vector<std::int64_t> generations = {deleted.generation};
  if (deleted.next_generation > 0) generations.push_back(deleted.next_generation);
  if (e && e->generation != 0 && e->generation != deleted.generation) generations.push_back(e->generation);
  for (std::int64_t g : generations) {
    if (auto st = Drop(KeyOf(deleted, g)); !st) {
      log::Warn("dropping the indexes of a deleted collection failed",
                {{"collection_id", deleted.id}, {"generation", g}, {"error", st.error().message()}});
    }
  }
}

Result<std::size_t> IndexSync::SyncAll() {
  auto all = store_.ListCollections("");
  if (!all) return Fail(all.error());
  std::size_t n = 0;
  for (const auto& c : *all) {
    if (auto st = EnsureCurrent(c); !st) return Fail(st.error());
    ++n;
  }
  return n;
}

}  // namespace modulo::search
