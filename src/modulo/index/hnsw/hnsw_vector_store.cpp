#include "modulo/index/hnsw/hnsw_vector_store.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_set>

// hnswlib is header-only and defines helpers at namespace scope: include it in this one file.
#include <hnswlib/hnswlib.h>

#include "modulo/index/hnsw/room_lock.h"
#include "modulo/index/hnsw/simd_distance.h"

namespace modulo::index {
namespace {

using hnsw::Dot;
using hnsw::InRoom;
using hnsw::RoomLock;

constexpr std::uint32_t kNoFile = 0xffffffffu;
constexpr std::size_t kParallelMinBatch = 256;  // smaller batches are inserted by the caller alone
constexpr std::size_t kWriteSlice = 1024;       // chunks per exclusive section in exact mode

// hnswlib's SpaceInterface over the runtime-dispatched SIMD dot: distance = 1 - <a, b>.
class SimdIpSpace final : public hnswlib::SpaceInterface<float> {
 public:
  explicit SimdIpSpace(std::size_t dim) : dim_(dim), fn_(hnsw::IpDistanceFunction()) {}
  std::size_t get_data_size() override { return dim_ * sizeof(float); }
  hnswlib::DISTFUNC<float> get_dist_func() override { return fn_; }
  void* get_dist_func_param() override { return &dim_; }

 private:
  std::size_t dim_;
  hnswlib::DISTFUNC<float> fn_;
};

std::string MapKey(std::string_view collection, std::int64_t generation) {
  std::string k(collection);
  k.push_back('\x1f');
  k += std::to_string(generation);
  return k;
}

std::size_t ThreadsFor(std::size_t configured, std::size_t items) {
  if (items < kParallelMinBatch) return 1;
  std::size_t t = configured ? configured : std::max(1u, std::thread::hardware_concurrency());
  return std::max<std::size_t>(1, std::min(t, items / (kParallelMinBatch / 2)));
}

// Runs fn(i) for i in [0, n) on `threads` threads (the caller is one of them); stops handing
// out work after the first exception and returns its message.
template <class Fn>
std::optional<std::string> ParallelFor(std::size_t n, std::size_t threads, Fn&& fn) {
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex err_mu;
  std::optional<std::string> err;
  auto work = [&] {
    for (;;) {
      if (failed.load(std::memory_order_relaxed)) return;
      const std::size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n) return;
      try {
        fn(i);
      } catch (const std::exception& e) {
        std::lock_guard lock(err_mu);
        if (!err) err = e.what();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  return err;
}

// Best first, ties by chunk id ascending.
bool Better(const Hit& a, const Hit& b) {
  return a.score != b.score ? a.score > b.score : a.chunk_id < b.chunk_id;
}

// Keeps the k best hits seen (a heap with the worst on top).
class TopK {
 public:
  explicit TopK(std::size_t k) : k_(k) { heap_.reserve(k + 1); }
  void Push(Hit h) {
    if (heap_.size() < k_) {
      heap_.push_back(h);
      std::push_heap(heap_.begin(), heap_.end(), Better);
    } else if (Better(h, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), Better);
      heap_.back() = h;
      std::push_heap(heap_.begin(), heap_.end(), Better);
    }
  }
  std::vector<Hit> Take() && {
    std::sort_heap(heap_.begin(), heap_.end(), Better);
    return std::move(heap_);
  }

 private:
  std::size_t k_;
  std::vector<Hit> heap_;
};

Status ValidateOptions(const HnswOptions& o) {
  if (o.m < 2 || o.m > 256) return Fail(Error::InvalidArgument("hnsw: m must be in [2, 256]"));
  if (o.ef_construction == 0 || o.ef_search == 0)
    return Fail(Error::InvalidArgument("hnsw: ef_construction and ef_search must be positive"));
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// One (collection, generation).
//
// Locking: write_mu serialises writers. `room` separates searches (kSearch) from everything that
// mutates what searches read (kWrite). Fields marked [W] are mutated only inside the write room
// (by the writer alone, or by inserting threads under meta_mu) and read in the search room;
// fields marked [P] are private to the writer (read and written only under write_mu).
class HnswVectorStore::Index {
 public:
  Index(std::size_t dim, HnswOptions options) : dim_(dim), options_(options), space_(dim) {}

  Status Upsert(std::span<const IndexedChunk> chunks);
  void Remove(std::span<const std::int64_t> ids);
  Result<std::vector<Hit>> Search(const float* query, std::size_t k, const SearchFilter& filter) const;
  void SetSearchOptions(const HnswOptions& o);
  HnswIndexStats Stats() const;
  std::size_t live() const { return live_.load(std::memory_order_relaxed); }

 private:
  struct Slot {
    std::int64_t chunk_id = 0;      // 0: free (not live)
    std::uint32_t file = kNoFile;   // interned file ordinal
    std::int32_t page = 0;
    std::uint32_t internal = 0;     // hnswlib internal id (graph mode)
    std::uint32_t posting_pos = 0;  // index in postings_[file]
  };
  struct Work {
    const IndexedChunk* chunk;
    std::uint32_t slot;
    std::uint32_t file;
  };

  const float* Vector(std::uint32_t slot) const {
    return graph_ ? reinterpret_cast<const float*>(graph_->getDataByInternalId(slots_[slot].internal))
                  : flat_.data() + std::size_t(slot) * dim_;
  }
  std::uint32_t Intern(const std::string& file);  // [W], writer alone
  std::uint32_t AllocateSlot(std::int64_t chunk_id, bool& is_new);
  void SetMeta(std::uint32_t slot, const Work& w, std::uint32_t internal);  // [W]
  void ClearMeta(std::uint32_t slot);                                       // [W]
  Status BuildGraph(std::size_t incoming);
  Status UpsertExact(std::vector<Work>& work);
  Status UpsertGraph(std::vector<Work>& work);

  // Exact top-k over the given slots (all live slots when `slots` is null) that pass `pred`.
  template <class Pred>
  std::vector<Hit> Scan(const float* q, std::size_t k, const std::vector<std::uint32_t>* only, Pred&& pred) const;
  std::vector<Hit> Rescore(const float* q, std::size_t k,
                           std::priority_queue<std::pair<float, hnswlib::labeltype>>& r) const;

  const std::size_t dim_;
  HnswOptions options_;  // [W] ef_search / filter_exact_threshold may change
  SimdIpSpace space_;

  std::mutex write_mu_;
  mutable RoomLock room_;
  std::mutex meta_mu_;  // inserting threads updating slots_/postings_ together

  std::unordered_map<std::int64_t, std::uint32_t> slot_of_;  // [P] chunk id -> slot
  std::vector<std::uint32_t> free_slots_;                    // [P] slots of removed chunks

  std::vector<Slot> slots_;                                   // [W]
  std::vector<std::vector<std::uint32_t>> postings_;          // [W] file ordinal -> live slots
  std::unordered_map<std::string, std::uint32_t> file_ord_;   // [W]
  std::vector<float> flat_;                                   // [W] exact mode: slot-major vectors
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph_;    // [W] graph mode
  std::atomic<std::size_t> live_{0};
};

std::uint32_t HnswVectorStore::Index::Intern(const std::string& file) {
  auto [it, inserted] = file_ord_.try_emplace(file, static_cast<std::uint32_t>(file_ord_.size()));
  if (inserted) postings_.emplace_back();
  return it->second;
}

// [P] plus slots_ growth, so it runs in the write room.
std::uint32_t HnswVectorStore::Index::AllocateSlot(std::int64_t chunk_id, bool& is_new) {
  if (auto it = slot_of_.find(chunk_id); it != slot_of_.end()) {
    is_new = false;
    return it->second;
  }
  is_new = true;
  std::uint32_t s;
  if (!free_slots_.empty()) {
    s = free_slots_.back();
    free_slots_.pop_back();
  } else {
    if (slots_.size() >= 0xfffffff0u) throw std::length_error("hnsw: too many vectors in one index");
    s = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  slot_of_.emplace(chunk_id, s);
  return s;
}

void HnswVectorStore::Index::SetMeta(std::uint32_t slot, const Work& w, std::uint32_t internal) {
  Slot& s = slots_[slot];
  if (s.chunk_id != 0 && s.file != w.file) ClearMeta(slot);
  if (s.chunk_id == 0) {
    auto& p = postings_[w.file];
    s.posting_pos = static_cast<std::uint32_t>(p.size());
    p.push_back(slot);
    live_.fetch_add(1, std::memory_order_relaxed);
  }
  s.chunk_id = w.chunk->chunk_id;
  s.file = w.file;
  s.page = w.chunk->page_number;
  s.internal = internal;
}

void HnswVectorStore::Index::ClearMeta(std::uint32_t slot) {
  Slot& s = slots_[slot];
  if (s.chunk_id == 0) return;
  auto& p = postings_[s.file];
  const std::uint32_t moved = p.back();
  p[s.posting_pos] = moved;
  slots_[moved].posting_pos = s.posting_pos;
  p.pop_back();
  s.chunk_id = 0;
  s.file = kNoFile;
  live_.fetch_sub(1, std::memory_order_relaxed);
}

Status HnswVectorStore::Index::Upsert(std::span<const IndexedChunk> chunks) {
  for (const auto& c : chunks) {
    if (c.embedding == nullptr)
      return Fail(Error::InvalidArgument("vector store: chunk " + std::to_string(c.chunk_id) + " has no embedding"));
    if (c.chunk_id <= 0)
      return Fail(Error::InvalidArgument("vector store: chunk ids must be positive, got " + std::to_string(c.chunk_id)));
  }
  // The last occurrence of an id in the batch wins.
  std::vector<Work> work;
  work.reserve(chunks.size());
  {
    std::unordered_map<std::int64_t, std::size_t> last;
    last.reserve(chunks.size());
    for (std::size_t i = 0; i < chunks.size(); ++i) last[chunks[i].chunk_id] = i;
    for (std::size_t i = 0; i < chunks.size(); ++i)
      if (last[chunks[i].chunk_id] == i) work.push_back({&chunks[i], 0, kNoFile});
  }
  if (work.empty()) return {};

  std::lock_guard writer(write_mu_);
  try {
    std::size_t incoming = 0;
    for (const auto& w : work) incoming += slot_of_.contains(w.chunk->chunk_id) ? 0 : 1;
    if (!graph_ && live() + incoming > options_.exact_threshold) {
      if (auto s = BuildGraph(incoming); !s) return s;
    }
    return graph_ ? UpsertGraph(work) : UpsertExact(work);
  } catch (const std::exception& e) {
    return Fail(Error::Internal(std::string("hnsw upsert: ") + e.what()));
  }
}

Status HnswVectorStore::Index::UpsertExact(std::vector<Work>& work) {
  for (std::size_t begin = 0; begin < work.size(); begin += kWriteSlice) {
    const std::size_t end = std::min(work.size(), begin + kWriteSlice);
    InRoom in(room_, RoomLock::kWrite);
    for (std::size_t i = begin; i < end; ++i) {
      Work& w = work[i];
      bool is_new = false;
      w.slot = AllocateSlot(w.chunk->chunk_id, is_new);
      w.file = Intern(w.chunk->file_id);
      if (flat_.size() < slots_.size() * dim_) flat_.resize(slots_.size() * dim_);
      std::copy_n(w.chunk->embedding, dim_, flat_.data() + std::size_t(w.slot) * dim_);
      SetMeta(w.slot, w, 0);
    }
  }
  return {};
}

Status HnswVectorStore::Index::UpsertGraph(std::vector<Work>& work) {
  {
    // Slots, file ordinals and capacity, by the writer alone (fast, no vector work).
    InRoom in(room_, RoomLock::kWrite);
    for (Work& w : work) {
      bool is_new = false;
      w.slot = AllocateSlot(w.chunk->chunk_id, is_new);
      w.file = Intern(w.chunk->file_id);
    }
    if (slots_.size() > graph_->max_elements_) {
      graph_->resizeIndex(std::max(slots_.size(), graph_->max_elements_ + graph_->max_elements_ / 2));
    }
  }
  // The vectors, one insertion per entry into the write room, on several threads.
  auto err = ParallelFor(work.size(), ThreadsFor(options_.build_threads, work.size()), [&](std::size_t i) {
    const Work& w = work[i];
    InRoom in(room_, RoomLock::kWrite);
    const auto internal = graph_->addPoint(w.chunk->embedding, w.slot, -1);
    std::lock_guard meta(meta_mu_);
    SetMeta(w.slot, w, internal);
  });
  if (err) return Fail(Error::Internal("hnsw insert: " + *err));
  return {};
}

// Exact -> graph: build the graph from the flat vectors while searches keep using them (the
// writer is the only one who could change them), then swap it in.
Status HnswVectorStore::Index::BuildGraph(std::size_t incoming) {
  const std::size_t capacity = std::max<std::size_t>(1024, (slots_.size() + incoming) * 3 / 2);
  auto graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(&space_, capacity, options_.m,
                                                                 options_.ef_construction, /*random_seed=*/100);
  graph->setEf(options_.ef_search);
  std::vector<std::uint32_t> live_slots;
  live_slots.reserve(live());
  for (std::uint32_t s = 0; s < slots_.size(); ++s)
    if (slots_[s].chunk_id != 0) live_slots.push_back(s);
  std::vector<std::uint32_t> internal(slots_.size(), 0);
  auto err = ParallelFor(live_slots.size(), ThreadsFor(options_.build_threads, live_slots.size()), [&](std::size_t i) {
    const std::uint32_t s = live_slots[i];
    internal[s] = graph->addPoint(flat_.data() + std::size_t(s) * dim_, s, -1);
  });
  if (err) return Fail(Error::Internal("hnsw build: " + *err));
  InRoom in(room_, RoomLock::kWrite);
  for (std::uint32_t s : live_slots) slots_[s].internal = internal[s];
  graph_ = std::move(graph);
  std::vector<float>().swap(flat_);
  return {};
}

void HnswVectorStore::Index::Remove(std::span<const std::int64_t> ids) {
  std::lock_guard writer(write_mu_);
  for (std::size_t begin = 0; begin < ids.size(); begin += kWriteSlice) {
    const std::size_t end = std::min(ids.size(), begin + kWriteSlice);
    InRoom in(room_, RoomLock::kWrite);
    for (std::size_t i = begin; i < end; ++i) {
      auto it = slot_of_.find(ids[i]);
      if (it == slot_of_.end()) continue;
      const std::uint32_t s = it->second;
      slot_of_.erase(it);
      // A slot allocated in exact mode and freed before the graph was built has no label.
      if (graph_ && graph_->label_lookup_.contains(s)) graph_->markDelete(s);
      ClearMeta(s);
      free_slots_.push_back(s);
    }
  }
}

void HnswVectorStore::Index::SetSearchOptions(const HnswOptions& o) {
  std::lock_guard writer(write_mu_);
  InRoom in(room_, RoomLock::kWrite);
  options_.ef_search = o.ef_search;
  options_.filter_exact_threshold = o.filter_exact_threshold;
  if (graph_) graph_->setEf(o.ef_search);
}

HnswIndexStats HnswVectorStore::Index::Stats() const {
  InRoom in(room_, RoomLock::kSearch);
  HnswIndexStats st;
  st.live = live();
  st.slots = slots_.size();
  st.graph = graph_ != nullptr;
  st.capacity = graph_ ? graph_->max_elements_ : flat_.capacity() / dim_;
  st.bytes = slots_.capacity() * sizeof(Slot) + slot_of_.size() * 40 + st.slots * 4;
  if (graph_) {
    const auto& g = *graph_;
    std::size_t upper = 0;
    for (std::size_t i = 0; i < g.cur_element_count; ++i)
      upper += std::size_t(g.element_levels_[i]) * g.size_links_per_element_;
    st.bytes += g.max_elements_ * (g.size_data_per_element_ + sizeof(void*) + sizeof(int) + sizeof(std::mutex)) +
                upper + g.label_lookup_.size() * 32 + g.label_op_locks_.size() * sizeof(std::mutex);
  } else {
    st.bytes += flat_.capacity() * sizeof(float);
  }
  return st;
}

template <class Pred>
std::vector<Hit> HnswVectorStore::Index::Scan(const float* q, std::size_t k, const std::vector<std::uint32_t>* only,
                                              Pred&& pred) const {
  TopK top(k);
  auto visit = [&](std::uint32_t s) {
    const Slot& sl = slots_[s];
    if (sl.chunk_id == 0 || !pred(sl)) return;
    top.Push({sl.chunk_id, Dot(q, Vector(s), dim_)});
  };
  if (only) {
    for (std::uint32_t s : *only) visit(s);
  } else {
    for (std::uint32_t s = 0; s < slots_.size(); ++s) visit(s);
  }
  return std::move(top).Take();
}

// Graph results -> hits with exact scores, best first, ties by chunk id.
std::vector<Hit> HnswVectorStore::Index::Rescore(const float* q, std::size_t k,
                                                 std::priority_queue<std::pair<float, hnswlib::labeltype>>& r) const {
  std::vector<Hit> hits;
  hits.reserve(r.size());
  for (; !r.empty(); r.pop()) {
    const auto s = static_cast<std::uint32_t>(r.top().second);
    if (s >= slots_.size() || slots_[s].chunk_id == 0) continue;
    hits.push_back({slots_[s].chunk_id, Dot(q, Vector(s), dim_)});
  }
  std::sort(hits.begin(), hits.end(), Better);
  if (hits.size() > k) hits.resize(k);
  return hits;
}

Result<std::vector<Hit>> HnswVectorStore::Index::Search(const float* q, std::size_t k,
                                                        const SearchFilter& filter) const {
  InRoom in(room_, RoomLock::kSearch);
  const std::size_t live_now = live();
  if (live_now == 0) return std::vector<Hit>{};
  const auto all = [](const Slot&) { return true; };
  try {
    if (filter.empty()) {
      if (!graph_) return Scan(q, k, nullptr, all);
      auto r = graph_->searchKnn(q, k);
      if (r.size() < std::min(k, live_now)) return Scan(q, k, nullptr, all);  // the graph lost some: be exact
      return Rescore(q, k, r);
    }

    // Which files (as a bitmap over ordinals) and pages pass.
    std::vector<std::uint32_t> files;
    std::vector<char> file_ok;
    if (filter.file_ids) {
      file_ok.assign(file_ord_.size(), 0);
      for (const auto& f : *filter.file_ids) {
        auto it = file_ord_.find(f);
        if (it != file_ord_.end() && !file_ok[it->second]) {
          file_ok[it->second] = 1;
          files.push_back(it->second);
        }
      }
      if (files.empty()) return std::vector<Hit>{};
    }
    const std::int32_t pmin = filter.page_min.value_or(INT32_MIN), pmax = filter.page_max.value_or(INT32_MAX);
    if (pmin > pmax) return std::vector<Hit>{};
    const bool by_file = filter.file_ids.has_value();
    auto pred = [&](const Slot& s) {
      return s.page >= pmin && s.page <= pmax && (!by_file || (s.file < file_ok.size() && file_ok[s.file]));
    };

    // Count the matches up to the cut-off; few enough: scan exactly those.
    const std::size_t cutoff = options_.filter_exact_threshold;
    std::vector<std::uint32_t> match;
    bool overflow = false;
    if (by_file) {
      for (std::uint32_t f : files) {
        for (std::uint32_t s : postings_[f]) {
          if (slots_[s].page < pmin || slots_[s].page > pmax) continue;
          if (match.size() >= cutoff) { overflow = true; break; }
          match.push_back(s);
        }
        if (overflow) break;
      }
    } else {
      for (std::uint32_t s = 0; s < slots_.size() && !overflow; ++s) {
        if (slots_[s].chunk_id == 0 || !pred(slots_[s])) continue;
        if (match.size() >= cutoff) { overflow = true; break; }
        match.push_back(s);
      }
    }
    if (!overflow) return Scan(q, k, &match, pred);
    if (!graph_) return Scan(q, k, nullptr, pred);

    // Many matches: filter inside the graph traversal.
    struct Allowed final : hnswlib::BaseFilterFunctor {
      const std::vector<Slot>* slots;
      const decltype(pred)* p;
      bool operator()(hnswlib::labeltype label) override {
        const Slot& s = (*slots)[label];
        return s.chunk_id != 0 && (*p)(s);
      }
    } allowed;
    allowed.slots = &slots_;
    allowed.p = &pred;
    auto r = graph_->searchKnn(q, k, &allowed);
    if (r.size() < k) return Scan(q, k, nullptr, pred);  // fewer than k found: make sure exactly
    return Rescore(q, k, r);
  } catch (const std::exception& e) {
    return Fail(Error::Internal(std::string("hnsw search: ") + e.what()));
  }
}

// ---------------------------------------------------------------------------------------------

HnswVectorStore::HnswVectorStore(std::size_t dimension, HnswOptions defaults)
    : dimension_(dimension), defaults_(defaults) {
  if (dimension == 0) throw std::invalid_argument("HnswVectorStore: dimension must be positive");
  if (auto s = ValidateOptions(defaults); !s) throw std::invalid_argument(s.error().message());
}

HnswVectorStore::~HnswVectorStore() = default;

std::shared_ptr<HnswVectorStore::Index> HnswVectorStore::Find(const IndexKey& key) const {
  std::shared_lock lock(mu_);
  auto it = indexes_.find(MapKey(key.collection_id, key.generation));
  return it == indexes_.end() ? nullptr : it->second;
}

std::shared_ptr<HnswVectorStore::Index> HnswVectorStore::FindOrCreate(const IndexKey& key) {
  const std::string k = MapKey(key.collection_id, key.generation);
  {
    std::shared_lock lock(mu_);
    if (auto it = indexes_.find(k); it != indexes_.end()) return it->second;
  }
  std::unique_lock lock(mu_);
  auto& slot = indexes_[k];
  if (!slot) {
    auto o = collection_options_.find(key.collection_id);
    slot = std::make_shared<Index>(dimension_, o == collection_options_.end() ? defaults_ : o->second);
  }
  return slot;
}

Status HnswVectorStore::Upsert(const IndexKey& key, std::span<const IndexedChunk> chunks) {
  if (chunks.empty()) return {};
  return FindOrCreate(key)->Upsert(chunks);
}

Status HnswVectorStore::Remove(const IndexKey& key, std::span<const std::int64_t> chunk_ids) {
  if (auto idx = Find(key)) idx->Remove(chunk_ids);
  return {};
}

Status HnswVectorStore::Drop(const IndexKey& key) {
  std::shared_ptr<Index> dropped;  // destroyed outside the lock (and after running searches end)
  std::unique_lock lock(mu_);
  auto it = indexes_.find(MapKey(key.collection_id, key.generation));
  if (it != indexes_.end()) {
    dropped = std::move(it->second);
    indexes_.erase(it);
  }
  lock.unlock();
  return {};
}

Result<std::size_t> HnswVectorStore::Count(const IndexKey& key) const {
  auto idx = Find(key);
  return idx ? idx->live() : 0;
}

Result<std::vector<Hit>> HnswVectorStore::Search(const IndexKey& key, std::span<const float> query, std::size_t k,
                                                 const SearchFilter& filter) const {
  if (query.size() != dimension_)
    return Fail(Error::InvalidArgument("vector store: query has " + std::to_string(query.size()) +
                                       " dimensions, the index has " + std::to_string(dimension_)));
  if (k == 0) return Fail(Error::InvalidArgument("vector store: k must be positive"));
  auto idx = Find(key);
  if (!idx) return std::vector<Hit>{};
  return idx->Search(query.data(), k, filter);
}

Status HnswVectorStore::SetCollectionOptions(std::string_view collection_id, const HnswOptions& options) {
  if (auto s = ValidateOptions(options); !s) return s;
  std::vector<std::shared_ptr<Index>> existing;
  {
    std::unique_lock lock(mu_);
    collection_options_[std::string(collection_id)] = options;
    const std::string prefix = std::string(collection_id) + '\x1f';
    for (const auto& [k, idx] : indexes_)
      if (k.starts_with(prefix)) existing.push_back(idx);
  }
  for (const auto& idx : existing) idx->SetSearchOptions(options);
  return {};
}

void HnswVectorStore::ClearCollectionOptions(std::string_view collection_id) {
  std::unique_lock lock(mu_);
  collection_options_.erase(std::string(collection_id));
}

HnswOptions HnswVectorStore::OptionsFor(std::string_view collection_id) const {
  std::shared_lock lock(mu_);
  auto it = collection_options_.find(std::string(collection_id));
  return it == collection_options_.end() ? defaults_ : it->second;
}

std::optional<HnswIndexStats> HnswVectorStore::Stats(const IndexKey& key) const {
  auto idx = Find(key);
  if (!idx) return std::nullopt;
  return idx->Stats();
}

}  // namespace modulo::index
