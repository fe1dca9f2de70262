// VectorStore: nearest-neighbour search over chunk embeddings, one index per (collection,
// generation). Implementations: HnswVectorStore (embedded, in-process, index/hnsw/) and a Milvus
// adapter for scale-out; both pass vector_store_contract.h.
//
// Promises:
// - Scores are inner products of L2-normalised vectors (cosine), best first, ties by chunk id.
// - Upsert of an id already present replaces its vector; Remove of an absent id is not an error.
// - Search on an index that does not exist returns no hits (a collection with nothing indexed yet).
// - Search honours the filter exactly: it never returns a chunk outside it, and returns up to
//   k chunks inside it when there are that many (no silent under-filling by post-filtering).
//
// Thread-safety: every method is thread-safe; Search is const and runs concurrently with other
// searches and with writes to the same index (a write never blocks a search for long).
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/index/types.h"

namespace modulo::index {

class VectorStore {
 public:
  virtual ~VectorStore() = default;

  // "embedded-hnsw", "milvus": the label of vector_search_duration_seconds{backend}.
  [[nodiscard]] virtual std::string_view backend() const noexcept = 0;
  [[nodiscard]] virtual std::size_t dimension() const noexcept = 0;

  // Adds or replaces chunks (each with a non-null embedding of `dimension()` floats).
  [[nodiscard]] virtual Status Upsert(const IndexKey& key, std::span<const IndexedChunk> chunks) = 0;
  [[nodiscard]] virtual Status Remove(const IndexKey& key, std::span<const std::int64_t> chunk_ids) = 0;
  // Drops the whole index (collection deleted, or a generation replaced by a reindex).
  [[nodiscard]] virtual Status Drop(const IndexKey& key) = 0;
  // Number of live (not removed) vectors in the index; 0 when it does not exist.
  [[nodiscard]] virtual Result<std::size_t> Count(const IndexKey& key) const = 0;

  // The k best chunks for `query` (`dimension()` floats, L2-normalised) within `filter`.
  [[nodiscard]] virtual Result<std::vector<Hit>> Search(const IndexKey& key, std::span<const float> query,
                                                        std::size_t k, const SearchFilter& filter) const = 0;
};

}  // namespace modulo::index
