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

Status IndexSync::EnsureCurrent(const store::Collection& state) {
  std::shared_ptr<Entry> e;
  {
    std::lock_guard lock(mu_);
    auto& slot = entries_[state.id];
    if (!slot) slot = std::make_shared<Entry>();
    e = slot;
  }
  const auto seen = e->version.load(std::memory_order_acquire);
  if (seen >= state.version) return {};
  std::unique_lock lock(e->mu, std::defer_lock);
  if (seen > 0) {
    // Caught up before: when someone else is catching up now, read what is there.
    if (!lock.try_lock()) return {};
  } else {
    lock.lock();
  }
  if (e->version.load(std::memory_order_acquire) >= state.version) return {};
  return CatchUp(*e, state);
}

Status IndexSync::CatchUp(Entry& e, const store::Collection& state) {
  if (e.generation != state.generation) {
    // A reindex switched generations (or this is the first build): start the live one afresh.
    if (e.generation != 0) {
      if (auto st = Drop(KeyOf(state, e.generation)); !st) return st;
    }
    if (auto st = Drop(KeyOf(state, state.generation)); !st) return st;
    if (options_.before_build) options_.before_build(state);
    e.generation = state.generation;
    e.owner_id = state.owner_id;
    e.last_chunk_id = 0;
    e.last_removal_seq = 0;
    e.version.store(0, std::memory_order_release);
  }
  const auto key = KeyOf(state, state.generation);
  std::size_t added = 0, removed = 0;
  // Additions: every chunk with an id past the last one seen.
  for (;;) {
    auto page = store_.ListChunks(state.id, state.generation, e.last_chunk_id, options_.batch, vectors_ != nullptr);
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
    added += items.size();
    e.last_chunk_id = page->back().id;
    if (page->size() < options_.batch) break;
  }
  // Removals after additions: a chunk added and removed since the last catch-up is removed again.
  for (;;) {
    auto page = store_.ListRemovedChunks(state.id, state.generation, e.last_removal_seq, options_.batch);
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
    removed += ids.size();
    e.last_removal_seq = page->back().seq;
    if (page->size() < options_.batch) break;
  }
  e.version.store(state.version, std::memory_order_release);
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
  return {};
}

void IndexSync::DropCollection(const std::string& collection_id) {
  std::shared_ptr<Entry> e;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(collection_id);
    if (it == entries_.end()) return;
    e = it->second;
    entries_.erase(it);
  }
  std::lock_guard lock(e->mu);
  if (e->generation != 0) {
    store::Collection c;
    c.id = collection_id;
    c.owner_id = e->owner_id;
    if (auto st = Drop(KeyOf(c, e->generation)); !st) {
      log::Warn("dropping the indexes of a deleted collection failed",
                {{"collection_id", collection_id}, {"error", st.error().message()}});
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
