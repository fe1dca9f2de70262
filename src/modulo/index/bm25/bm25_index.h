// Bm25Index: the embedded KeywordIndex, an in-process BM25 inverted index per IndexKey
// (collection id, generation; the owner id does not take part in the identity).
//
// Scoring is Lucene's BM25 (as Anserini uses it, without Lucene's lossy one-byte length norms):
//   score(q, d) = sum over query terms t (repeated query terms count repeatedly) of
//                 idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))
//   idf(t)      = ln(1 + (N - df + 0.5) / (df + 0.5))
// where N, df and avgdl count live chunks that have at least one term (removed chunks never
// count, even before compaction) and dl is a chunk's number of terms after analysis.
//
// Layout per index: terms interned to ids (hash map); per term a posting list of (chunk
// ordinal, tf) uint32 pairs in ordinal order; per chunk ordinal its id, length, file ordinal,
// page and its sorted term ids (delta + varint encoded, used to keep df exact on removal).
// Removal and replacement mark the old ordinal dead; dead postings are skipped and reclaimed by
// a compaction once they exceed `compact_dead_ratio` of the live chunks.
//
// A search analyses the query once, accumulates scores in a per-thread dense array, applies the
// filter (file ids interned to ordinals, page range) the first time it reaches a chunk, and
// keeps the top k in a small heap: the filter never underfills k.
//
// Thread-safety: every method is thread-safe. Each index has a std::shared_mutex: searches and
// Count share it; Upsert (one exclusive section per batch, text analysed before locking), Remove
// and Drop take it exclusively and briefly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "modulo/index/bm25/analyzer.h"
#include "modulo/index/keyword_index.h"

namespace modulo::index {

struct Bm25Options {
  float k1 = 0.9f;  // Anserini's BEIR settings
  float b = 0.4f;
  AnalyzerOptions analyzer;
  // Compact an index once its dead (removed or replaced) chunks exceed this fraction of its
  // live chunks (and number at least 64).
  double compact_dead_ratio = 0.25;
};

// Memory held by one index, from the capacities of its containers.
struct Bm25IndexStats {
  std::size_t live_chunks = 0;
  std::size_t dead_chunks = 0;
  std::size_t terms = 0;
  std::size_t postings = 0;
  std::size_t memory_bytes = 0;
};

class Bm25Index final : public KeywordIndex {
 public:
  // Checks: k1 >= 0, 0 <= b <= 1, a known stemmer, compact_dead_ratio > 0.
  [[nodiscard]] static Status Validate(const Bm25Options& options);
  [[nodiscard]] static Result<std::unique_ptr<Bm25Index>> Create(Bm25Options options = {});

  // Expects valid options (see Validate); prefer Create when they come from configuration.
  explicit Bm25Index(Bm25Options options = {});
  ~Bm25Index() override;

  Bm25Index(const Bm25Index&) = delete;
  Bm25Index& operator=(const Bm25Index&) = delete;

  [[nodiscard]] std::string_view backend() const noexcept override { return "embedded-bm25"; }

  // InvalidArgument for an empty collection id. A chunk id repeated within the batch: the last
  // one wins.
  [[nodiscard]] Status Upsert(const IndexKey& key, std::span<const IndexedChunk> chunks) override;
  [[nodiscard]] Status Remove(const IndexKey& key, std::span<const std::int64_t> chunk_ids) override;
  // Dropping an index that does not exist is not an error.
  [[nodiscard]] Status Drop(const IndexKey& key) override;
  [[nodiscard]] Result<std::size_t> Count(const IndexKey& key) const override;
  // InvalidArgument for k == 0. A filter with an empty file id list matches nothing.
  [[nodiscard]] Result<std::vector<Hit>> Search(const IndexKey& key, std::string_view query, std::size_t k,
                                                const SearchFilter& filter) const override;

  // Zeroes when the index does not exist.
  [[nodiscard]] Bm25IndexStats Stats(const IndexKey& key) const;

  [[nodiscard]] const Bm25Options& options() const noexcept { return options_; }
  [[nodiscard]] const Analyzer& analyzer() const noexcept { return analyzer_; }

  struct Shard;  // one index (implementation detail)

 private:
  [[nodiscard]] std::shared_ptr<Shard> Find(const IndexKey& key) const;
  [[nodiscard]] std::shared_ptr<Shard> FindOrCreate(const IndexKey& key);

  Bm25Options options_;
  Analyzer analyzer_;
  mutable std::shared_mutex mu_;  // guards shards_ (the map, not the shards)
  std::unordered_map<std::string, std::shared_ptr<Shard>> shards_;
};

}  // namespace modulo::index
