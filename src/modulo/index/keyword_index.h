// KeywordIndex: lexical (BM25) search over chunk text, one index per (collection, generation).
// Implementations: Bm25Index (embedded, in-process inverted index, index/bm25/) and PostgreSQL
// full-text search for scale-out; both pass keyword_index_contract.h.
//
// Promises:
// - Queries are free text: tokenised, case-folded, accent-folded and stemmed the same way as the
//   indexed text; stop words do not match on their own; any query string is safe (no query
//   syntax errors, no injection).
// - Scores are higher-is-better, best first, ties by chunk id; a chunk with no query term is
//   never returned.
// - Upsert of an id already present replaces its text; Remove of an absent id is not an error;
//   Search on an index that does not exist returns no hits.
// - Search honours the filter exactly.
//
// Thread-safety: every method is thread-safe; Search is const and runs concurrently with other
// searches and with writes.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/index/types.h"

namespace modulo::index {

class KeywordIndex {
 public:
  virtual ~KeywordIndex() = default;

  // "embedded-bm25", "postgres-fts".
  [[nodiscard]] virtual std::string_view backend() const noexcept = 0;

  [[nodiscard]] virtual Status Upsert(const IndexKey& key, std::span<const IndexedChunk> chunks) = 0;
  [[nodiscard]] virtual Status Remove(const IndexKey& key, std::span<const std::int64_t> chunk_ids) = 0;
  [[nodiscard]] virtual Status Drop(const IndexKey& key) = 0;
  [[nodiscard]] virtual Result<std::size_t> Count(const IndexKey& key) const = 0;

  [[nodiscard]] virtual Result<std::vector<Hit>> Search(const IndexKey& key, std::string_view query,
                                                        std::size_t k, const SearchFilter& filter) const = 0;
};

}  // namespace modulo::index
