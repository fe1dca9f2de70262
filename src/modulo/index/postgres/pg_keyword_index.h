// PostgresKeywordIndex: the scale-out KeywordIndex over PostgreSQL full-text search, so every
// server of a deployment searches one shared index instead of each holding its own.
//
// Storage: its own table, keyword_chunks (schema step 3 in store/postgres/database.cpp), one row
// per (collection, generation, chunk) with the text IndexSync gives it, a generated tsvector
// column and a GIN index. It does not read the metadata store's chunks table directly, because
// (a) the indexed text is not the chunk's text alone (IndexSync prefixes the headings a chunk
// sits under), (b) the index stays derived data that IndexSync fills from the change feed and
// can rebuild, exactly like the embedded Bm25Index, and (c) the contract treats an index as
// independent of any store. The cost is a second copy of chunk text in the database.
//
// Analysis: the text search configuration modulo_english = PostgreSQL's `english` (Snowball
// stemming, English stop words) with `unaccent` in front of the stemmer, so case and accents
// fold as the embedded analyzer folds them. Text that is not valid UTF-8 is repaired (U+FFFD)
// before it is stored or searched; NUL bytes become spaces.
//
// Queries: the query text goes through to_tsvector with the same configuration, its distinct
// lexemes are quoted (never parsed as tsquery syntax) and OR-ed into one tsquery, so any input
// is inert and a chunk needs only one query term to match (plainto_tsquery would AND them).
//
// Ranking: Okapi BM25 (k1 = 1.2, b = 0.75, Lucene's idf = ln(1 + (N - df + 0.5) / (df + 0.5)))
// computed in SQL from the matching rows' tsvectors: N and the average length over the
// (collection, generation), df per query lexeme through the GIN index. ts_rank_cd has no idf, so
// a rare term would not outweigh a common one. Scores are float4, ties by chunk id. Each search
// counts the index's rows and the matches of each query term: fine for collections of up to
// some hundred thousand chunks, the size one tenant's collection has.
//
// Thread-safety: all methods are thread-safe (pooled connections); searches run concurrently
// with writes (MVCC: a search sees every write committed before it started).
#pragma once

#include "modulo/index/keyword_index.h"
#include "modulo/store/postgres/database.h"

namespace modulo::index {

class PostgresKeywordIndex final : public KeywordIndex {
 public:
  // `db` must outlive the index; its schema includes keyword_chunks (Database::Open migrates).
  explicit PostgresKeywordIndex(store::postgres::Database& db) : db_(db) {}

  [[nodiscard]] std::string_view backend() const noexcept override { return "postgres-fts"; }

  [[nodiscard]] Status Upsert(const IndexKey& key, std::span<const IndexedChunk> chunks) override;
  [[nodiscard]] Status Remove(const IndexKey& key, std::span<const std::int64_t> chunk_ids) override;
  [[nodiscard]] Status Drop(const IndexKey& key) override;
  [[nodiscard]] Result<std::size_t> Count(const IndexKey& key) const override;
  [[nodiscard]] Result<std::vector<Hit>> Search(const IndexKey& key, std::string_view query, std::size_t k,
                                                const SearchFilter& filter) const override;

 private:
  store::postgres::Database& db_;
};

}  // namespace modulo::index
