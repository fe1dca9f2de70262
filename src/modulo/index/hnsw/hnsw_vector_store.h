// HnswVectorStore: the embedded VectorStore. One in-memory index per (collection, generation),
// inner product on L2-normalised vectors, built on hnswlib 0.8.0 (vendored in third_party/hnswlib,
// see bench/vector/README.md for why) with a runtime-dispatched SIMD dot (AVX-512F / AVX2+FMA /
// scalar, see simd_distance.h).
//
// How an index searches:
// - Exact below HnswOptions::exact_threshold live vectors: a brute-force scan of a flat array
//   (faster than the graph at that size, and exact). When an Upsert takes the index past the
//   threshold, the writer builds the HNSW graph from the flat array privately (searches keep
//   using the flat array meanwhile), then swaps it in under a short exclusive section. An index
//   never goes back to exact mode when it shrinks (the graph stays correct).
// - HNSW above it (M, ef_construction, ef_search). Returned scores are recomputed exactly
//   (<query, vector>), ordered best first, ties by chunk id ascending. If the graph returns fewer
//   than min(k, live) hits (possible after many deletes), the search falls back to an exact scan.
// - Filters are applied inside the search, never by post-filtering: the vectors matching the
//   filter are counted first (per-file posting lists for file ids, the page table for page
//   ranges, stopping at the cut-off); if at most HnswOptions::filter_exact_threshold match, they
//   are scanned exactly; otherwise the graph search skips non-matching vectors itself (hnswlib's
//   filter functor), with the same exact fallback if it returns fewer than k.
//
// Keys: an index is identified by (collection_id, generation); owner_id is not part of the key.
// Chunk ids are labels' owners only: hnswlib labels are dense slot numbers of this store (slots
// of removed chunks are reused), and each slot keeps (chunk id, file ordinal, page) compactly;
// file ids are interned per index into uint32 ordinals.
//
// Options: the constructor takes the defaults; SetCollectionOptions() overrides them for one
// collection (every generation). m, ef_construction and exact_threshold apply to indexes created
// after the call; ef_search (and filter_exact_threshold) also apply at once to existing indexes.
//
// Memory: per vector, dim*4 bytes of vector + hnswlib's level-0 links (2*M*4 + 4 bytes) + label
// (8) + upper levels (~M*4/ln(M) bytes on average) + this store's slot table (~24 bytes) and
// chunk-id map (~40 bytes); about 1.8 KB per 384-d vector at M=16 (measured: bench/vector).
// Capacity grows geometrically (x1.5); the vectors are kept only here (no other copy).
//
// Thread-safety: every method is thread-safe. Per index, writers (Upsert/Remove/ef changes) are
// serialised by a mutex; searches run concurrently with each other. hnswlib does not allow a
// search during an insertion (upstream issues #29, #562), so an index has a two-room lock: any
// number of searches, or any number of inserting threads (hnswlib inserts are thread-safe among
// themselves), never both; inserting threads take it per vector and yield to waiting searches,
// so a write never blocks a search for longer than about one insertion (~1 ms). Bookkeeping,
// capacity growth (hnswlib resizeIndex) and the exact-to-graph swap run in the writer's room
// alone. Drop removes the index from the map; searches already running on it finish on it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "modulo/index/vector_store.h"

namespace modulo::index {

struct HnswOptions {
  std::size_t m = 16;                 // graph degree (level 0 has 2*m links)
  std::size_t ef_construction = 256;  // candidate list while inserting
  std::size_t ef_search = 64;         // candidate list while searching (at least k is used)
  // Live vectors up to which search is a brute-force scan: at 384 dimensions on the benchmark
  // machine the scan is as fast as the graph at ~3-5k vectors (0.14 vs 0.11 ms at 5k) and exact,
  // and no graph has to be built (bench/vector/README.md). 0 = always HNSW.
  std::size_t exact_threshold = 5000;
  // A filtered search scans the matching vectors exactly when at most this many match (a graph
  // search that must skip most vectors is much slower than a plain one: 20k exact dots ~0.7 ms).
  std::size_t filter_exact_threshold = 20000;
  // Threads an Upsert (and the exact-to-graph build) inserts with; 0 = hardware concurrency.
  // Batches smaller than 256 vectors are inserted by the calling thread alone.
  std::size_t build_threads = 0;
};

// Counters of one index, for tests, benchmarks and metrics.
struct HnswIndexStats {
  std::size_t live = 0;      // vectors searchable (== Count)
  std::size_t slots = 0;     // slots used, live or free for reuse
  std::size_t capacity = 0;  // slots allocated
  bool graph = false;        // true once the HNSW graph is built (above exact_threshold)
  std::size_t bytes = 0;     // estimated bytes held by this index
};

class HnswVectorStore final : public VectorStore {
 public:
  explicit HnswVectorStore(std::size_t dimension, HnswOptions defaults = {});
  ~HnswVectorStore() override;
  HnswVectorStore(const HnswVectorStore&) = delete;
  HnswVectorStore& operator=(const HnswVectorStore&) = delete;

  [[nodiscard]] std::string_view backend() const noexcept override { return "embedded-hnsw"; }
  [[nodiscard]] std::size_t dimension() const noexcept override { return dimension_; }

  [[nodiscard]] Status Upsert(const IndexKey& key, std::span<const IndexedChunk> chunks) override;
  [[nodiscard]] Status Remove(const IndexKey& key, std::span<const std::int64_t> chunk_ids) override;
  [[nodiscard]] Status Drop(const IndexKey& key) override;
  [[nodiscard]] Result<std::size_t> Count(const IndexKey& key) const override;
  [[nodiscard]] Result<std::vector<Hit>> Search(const IndexKey& key, std::span<const float> query, std::size_t k,
                                                const SearchFilter& filter) const override;

  // Overrides the defaults for one collection (all its generations); see the class comment for
  // which fields apply to existing indexes. InvalidArgument for m < 2 or ef values of 0.
  [[nodiscard]] Status SetCollectionOptions(std::string_view collection_id, const HnswOptions& options);
  void ClearCollectionOptions(std::string_view collection_id);
  // The options an index of this collection is (or would be) created with.
  [[nodiscard]] HnswOptions OptionsFor(std::string_view collection_id) const;

  // nullopt when the index does not exist.
  [[nodiscard]] std::optional<HnswIndexStats> Stats(const IndexKey& key) const;

  class Index;  // one (collection, generation); defined in the .cpp

 private:
  [[nodiscard]] std::shared_ptr<Index> Find(const IndexKey& key) const;
  [[nodiscard]] std::shared_ptr<Index> FindOrCreate(const IndexKey& key);

  const std::size_t dimension_;
  const HnswOptions defaults_;
  mutable std::shared_mutex mu_;  // guards the two maps (not the indexes themselves)
  std::unordered_map<std::string, HnswOptions> collection_options_;
  std::unordered_map<std::string, std::shared_ptr<Index>> indexes_;  // "<collection>\x1f<generation>"
};

}  // namespace modulo::index
