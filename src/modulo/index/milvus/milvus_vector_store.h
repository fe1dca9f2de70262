// MilvusVectorStore: the scale-out VectorStore, over Milvus's RESTful API v1 (/v1/vector/...) as
// served by Milvus 2.3 on its proxy port (the REST API shares the gRPC port, 19530 by default).
//
// Collections: one Milvus collection per (collection, generation), named
// VectorCollectionName(owner_type, owner_id, collection_id, generation), e.g.
// user_<owner>_collection_<id>[_g<n>]. An index is created on the first Upsert.
//
// Schema, as the v1 API makes it (POST /v1/vector/collections/create chooses everything but the
// names, the dimension and the metric):
//   pk         INT64 primary key, auto id (v1 always creates auto-id primary keys, so the chunk
//              id cannot be the primary key)
//   embedding  FLOAT_VECTOR(dimension), metric IP; the create call itself builds an AUTOINDEX
//              index (HNSW in Milvus 2.3) and loads the collection; the v1 API offers no other
//              index type and no index parameters
//   chunk_id, file_id, page_number: dynamic fields (kept in the collection's $meta JSON column);
//              filters and deletes are expressions over them. Chunk ids must be below 2^53,
//              because the v1 API reads row values as JSON doubles.
//
// Writes:
// - Upsert replaces: per batch of `batch_size` chunks (VECTOR_BATCH_SIZE), one delete
//   `chunk_id in [...]` then one insert. Milvus applies a delete to rows written before it, so
//   the new rows survive it and every chunk id has at most one row. Within one call the last
//   occurrence of an id wins. Inserts are not retried by the HTTP client (a lost answer could
//   mean an applied insert): a failed Upsert returns Unavailable/DeadlineExceeded and calling
//   Upsert again repairs any half-written batch, since its delete runs first.
// - Remove deletes `chunk_id in [...]` in batches; ids not present are not an error.
// - Drop drops the Milvus collection (absent: not an error).
//
// Consistency. The v1 API does not let a client choose a consistency level: it reads with
// Milvus's "Bounded" level, whose staleness is the server's common.gracefulTime (5 s by
// default). MilvusConsistency therefore decides what a write waits for before it returns:
// - kEventually (the production default, MILVUS_CONSISTENCY_LEVEL=Eventually): a write returns
//   when Milvus acknowledged it; searches see it a moment later (typically well under a second
//   on a healthy cluster, at most gracefulTime), which the index catch-up tolerates.
// - kStrong (MILVUS_CONSISTENCY_LEVEL=Strong): a write returns only once queries show it, polled
//   with count(*) for up to visibility_timeout (else DeadlineExceeded): an Upsert until the new
//   rows' primary keys (returned by the insert) are all counted and each chunk id has exactly one
//   row, a Remove until none of the ids has a row. Every later search and Count then sees it
//   (read-your-writes; the contract suite runs in this mode). It costs a few queries and the
//   Milvus time tick (about 0.2 s) per write.
//
// Searches: POST /v1/vector/search with the filter as a Milvus boolean expression
// (`file_id in ["a", "b"] and page_number >= 3 and page_number <= 9`), evaluated inside the
// search, so a selective filter still returns up to k hits. String literals are escaped
// (backslash, double quote, control characters) so that no file id can change the expression.
// Scores are the inner products Milvus returns as "distance" (for IP, larger is better), best
// first, ties by chunk id ascending: the store asks for k + tie_margin hits and orders them
// itself. k is capped at Milvus's top-k limit (16384). Results are approximate once Milvus
// indexes a segment: sealed segments by AUTOINDEX, growing ones (from 1024 rows) by an interim
// IVF index (queryNode.segcore.interimIndex, nprobe 16 of nlist 128), which loses recall on
// selective filters (bench/vector/milvus_bench.sh: recall@10 0.99 unfiltered, 0.71 with a 2 %
// filter at 100k vectors); raise nprobe or disable the interim index on the server where that
// matters. A search of a collection that does not
// exist returns no hits. The collection must be loaded (the v1 create loads it; v1 has no load
// call): a collection Milvus has released gives Unavailable with Milvus's message.
//
// Errors: Milvus answers HTTP 200 with {"code": N, "message": ...} for most failures; the code is
// mapped to a meaning (collection not found, invalid parameters → InvalidArgument, rate limit →
// RateLimited, service not ready → Unavailable, anything else → Internal with Milvus's message).
// An unreachable Milvus gives Unavailable after the HTTP retries, a slow one DeadlineExceeded
// after `timeout` per attempt; neither blocks longer than attempts × timeout.
//
// Metrics: every search observes milvus_search_duration_seconds (the round trip to Milvus,
// including failures) when a registry is given. vector_search_duration_seconds{backend} is
// recorded by the search pipeline around any VectorStore, as for the embedded store.
//
// Thread-safety: every method is thread-safe. The store keeps only a set of collections known to
// exist (guarded by a mutex; creation is serialised by another); all other state lives in
// Milvus. Concurrent Upserts of the same chunk id from different processes may leave two rows
// for it until the next Upsert or Remove of that id; searches return each chunk id once.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "modulo/index/vector_store.h"
#include "modulo/net/http_client.h"

namespace modulo::metrics {
class Histogram;
class Registry;
}  // namespace modulo::metrics

namespace modulo::index {

enum class MilvusConsistency {
  kEventually,  // writes return when acknowledged
  kStrong,      // writes return when searches see them
};

// "Strong" or "Eventually" (MILVUS_CONSISTENCY_LEVEL); InvalidArgument otherwise.
[[nodiscard]] Result<MilvusConsistency> ParseMilvusConsistency(std::string_view name);

struct MilvusOptions {
  std::string url = "http://127.0.0.1:19530";  // Milvus proxy (REST v1 under {url}/v1/vector/...)
  std::string token;                            // "user:password" or an API key; empty: no auth
  std::string db_name = "default";              // Milvus database
  std::size_t batch_size = 100;                 // rows per insert, ids per delete (VECTOR_BATCH_SIZE)
  MilvusConsistency consistency = MilvusConsistency::kEventually;
  std::chrono::milliseconds timeout{15000};              // one HTTP attempt
  std::chrono::milliseconds connect_timeout{3000};       // TCP connect of one attempt
  std::chrono::milliseconds visibility_timeout{30000};   // kStrong: longest wait for a write to show
  net::RetryPolicy retry{3, std::chrono::milliseconds(200), std::chrono::milliseconds(2000)};  // reads, deletes
  std::size_t tie_margin = 16;  // extra hits asked for, so that ties at the k-th place go by chunk id
};

class MilvusVectorStore final : public VectorStore {
 public:
  // Milvus's largest top-k (limit + offset) for one search.
  static constexpr std::size_t kMaxTopK = 16384;
  // Chunk ids must be below this (exact as JSON doubles).
  static constexpr std::int64_t kMaxChunkId = std::int64_t(1) << 53;

  // Does not contact Milvus (an unreachable Milvus shows in the first call). `registry` may be
  // null (no metrics); it must outlive the store, and holds one MilvusVectorStore at most
  // (AlreadyExists otherwise). InvalidArgument for a dimension of 0, an empty url, a batch size
  // of 0 or above 16384.
  [[nodiscard]] static Result<std::unique_ptr<MilvusVectorStore>> Create(std::size_t dimension, MilvusOptions options,
                                                                        metrics::Registry* registry = nullptr);
  MilvusVectorStore(const MilvusVectorStore&) = delete;
  MilvusVectorStore& operator=(const MilvusVectorStore&) = delete;

  [[nodiscard]] std::string_view backend() const noexcept override { return "milvus"; }
  [[nodiscard]] std::size_t dimension() const noexcept override { return dimension_; }

  [[nodiscard]] Status Upsert(const IndexKey& key, std::span<const IndexedChunk> chunks) override;
  [[nodiscard]] Status Remove(const IndexKey& key, std::span<const std::int64_t> chunk_ids) override;
  [[nodiscard]] Status Drop(const IndexKey& key) override;
  [[nodiscard]] Result<std::size_t> Count(const IndexKey& key) const override;
  [[nodiscard]] Result<std::vector<Hit>> Search(const IndexKey& key, std::span<const float> query, std::size_t k,
                                                const SearchFilter& filter) const override;

  // Answers when Milvus's REST API answers (a list of collections); Unavailable otherwise. For
  // health checks.
  [[nodiscard]] Status Ping() const;

  // The Milvus collection of an index.
  [[nodiscard]] static std::string CollectionName(const IndexKey& key);
  // The Milvus boolean expression for a filter ("" for none). An engaged but empty file id list
  // cannot be expressed and must be handled by the caller (it matches nothing).
  [[nodiscard]] static std::string FilterExpression(const SearchFilter& filter);
  // A Milvus string literal for `s` (double-quoted, escaped).
  [[nodiscard]] static std::string QuoteString(std::string_view s);

 private:
  MilvusVectorStore(std::size_t dimension, MilvusOptions options, metrics::Registry* registry);

  // POSTs `body` to {url}/v1/vector/{path}; the envelope's "data" on code 200, else the mapped
  // error. `retry` false: a single attempt.
  [[nodiscard]] Result<nlohmann::json> Call(std::string_view path, const nlohmann::json& body, bool retry = true) const;
  // Creates the collection if it does not exist (checking an existing one's dimension).
  [[nodiscard]] Status EnsureCollection(const std::string& name);
  // Rows of `name` whose `field` is in `ids` (count(*)); NotFound when there is no collection.
  [[nodiscard]] Result<std::size_t> CountIds(const std::string& name, std::span<const std::int64_t> ids,
                                             std::string_view field = "chunk_id") const;
  // kStrong: waits until every row of `new_pks` shows and `expected` rows have these chunk ids.
  [[nodiscard]] Status WaitVisible(const std::string& name, std::span<const std::int64_t> ids, std::size_t expected,
                                   std::span<const std::int64_t> new_pks = {}) const;
  [[nodiscard]] Status DeleteIds(const std::string& name, std::span<const std::int64_t> ids) const;
  void Forget(const std::string& name);
  [[nodiscard]] bool Known(const std::string& name) const;

  const std::size_t dimension_;
  const MilvusOptions options_;
  std::vector<std::string> headers_;
  net::HttpClient http_;          // reads and deletes: retried
  net::HttpClient insert_http_;   // inserts: one attempt
  metrics::Histogram* search_latency_ = nullptr;  // milvus_search_duration_seconds

  mutable std::mutex known_mu_;
  std::unordered_set<std::string> known_;  // collections known to exist; guarded by known_mu_
  std::mutex create_mu_;                   // serialises collection creation
};

}  // namespace modulo::index
