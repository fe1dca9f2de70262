// SearchService: the retrieval pipeline behind POST /api/search.
//
//   rewrite (normalise the question) → collection state (one row) → result cache → index
//   catch-up (IndexSync) → keyword search ∥ query embedding (micro-batched) → vector search →
//   fusion (RRF or weighted) → hydrate the best chunks (one store query) → de-duplicate →
//   parents (hierarchical collections) → response, cached under the collection's version.
//
// The response has RAG Modulo's SearchOutput shape: answer, documents, query_results,
// rewritten_query, execution_time, plus `status` (the collection's) and metadata.stages with
// per-stage timings. The answer is extractive (the passages' most relevant sentences with [n]
// citations, metadata.answer_type "extractive") unless config_metadata.retrieval_only is set
// (then null).
//
// Thread-safety: Search may be called concurrently from any I/O thread; blocking store work and
// index searches run on the blocking pool, embedding on the CPU pool (through the batcher).
#pragma once

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "modulo/core/error.h"
#include "modulo/core/thread_pool.h"
#include "modulo/embed/embedder.h"
#include "modulo/embed/query_batcher.h"
#include "modulo/index/keyword_index.h"
#include "modulo/index/vector_store.h"
#include "modulo/metrics/registry.h"
#include "modulo/index/bm25/analyzer.h"
#include "modulo/search/cache.h"
#include "modulo/search/index_sync.h"
#include "modulo/search/retrieval_settings.h"
#include "modulo/store/metadata_store.h"

namespace modulo::search {

struct SearchOptions {
  std::size_t max_top_k = 100;               // MAX_TOP_K
  std::size_t max_question_bytes = 8192;     // longer questions are cut (the model reads 256 tokens)
  std::chrono::seconds cache_ttl{3600};      // the seed's search cache TTL; 0 disables the cache
  RetrievalSettings defaults;                // for collections without their own
};

struct SearchDeps {
  store::MetadataStore& store;
  IndexSync& sync;
  index::VectorStore* vectors = nullptr;      // null: keyword retrieval only
  index::KeywordIndex* keywords = nullptr;
  std::shared_ptr<embed::QueryBatcher> batcher;  // null with no embedder
  std::string model_name;                     // the embedder's model (collections record theirs)
  Cache* cache = nullptr;                     // null: no result cache
  ThreadPool& blocking_pool;
  metrics::Registry* registry = nullptr;
};

// What the client asked, validated.
struct SearchQuery {
  std::string question;        // normalised, possibly cut to max_question_bytes
  bool question_truncated = false;
  std::string collection_id;
  nlohmann::json config;       // config_metadata as sent (validated against the defaults)
  nlohmann::json filters;      // config_metadata.filters (validated shape), null when none
  bool use_cache = true;
  bool retrieval_only = false;  // no answer: ranked passages only
  // The store as the caller may see it (a ScopedMetadataStore): every collection, file and chunk
  // the search touches is read through it. Null: the service's own store (trusted callers).
  store::MetadataStore* store = nullptr;
};

class SearchService {
 public:
  SearchService(SearchDeps deps, SearchOptions options);

  [[nodiscard]] Result<SearchQuery> Parse(const nlohmann::json& body) const;

  // A search response, either built now or taken from the result cache. A cached one stays
  // serialised: Serialize() splices this request's time and stages into the cached text without
  // parsing it.
  class Output {
   public:
    [[nodiscard]] nlohmann::json ToJson() &&;
    [[nodiscard]] std::string Serialize() const;

   private:
    friend class SearchService;
    explicit Output(std::string cached);
    explicit Output(nlohmann::json body);
    [[nodiscard]] std::string Splice() const;
    std::string cached_;
    nlohmann::json body_;
    double total_ms_ = 0;
    nlohmann::json stages_;
  };

  // Runs the pipeline: NotFound for an unknown collection, InvalidArgument for a bad filter.
  [[nodiscard]] boost::asio::awaitable<Result<Output>> Run(SearchQuery query);
  // Run(), as JSON.
  [[nodiscard]] boost::asio::awaitable<Result<nlohmann::json>> Search(SearchQuery query);

  [[nodiscard]] const SearchOptions& options() const noexcept { return options_; }

 private:
  struct Plan;
  [[nodiscard]] Result<Plan> Prepare(const SearchQuery& q);
  [[nodiscard]] Result<nlohmann::json> Finish(Plan& plan, const std::vector<float>* query_vector);
  void ObserveStages(const nlohmann::json& stages);

  // Placeholders in cached responses: a string value cannot contain an unescaped quote, so these
  // key/value texts only occur where the service put them.
  static constexpr std::string_view kTimeValue = "\x01modulo:execution_time\x01";
  static constexpr std::string_view kStagesValue = "\x01modulo:stages\x01";
  static constexpr std::string_view kTimePlaceholder = "\"execution_time\":\"\\u0001modulo:execution_time\\u0001\"";
  static constexpr std::string_view kStagesPlaceholder = "\"stages\":\"\\u0001modulo:stages\\u0001\"";

  SearchDeps deps_;
  SearchOptions options_;
  index::Analyzer analyzer_;  // for extractive answers
  metrics::HistogramFamily* stage_latency_ = nullptr;
  metrics::HistogramFamily* vector_latency_ = nullptr;
  metrics::CounterFamily* cache_requests_ = nullptr;
};

// Validates a request body ({question, collection_id, user_id?, config_metadata?}) without
// touching the store. InvalidArgument names the offending field.
[[nodiscard]] Result<SearchQuery> ParseSearchRequest(const nlohmann::json& body, const SearchOptions& options);

// Collapses whitespace runs to one space, drops control characters, trims; cuts at
// `max_bytes` on a UTF-8 boundary (sets *truncated).
[[nodiscard]] std::string NormalizeQuestion(std::string_view text, std::size_t max_bytes, bool* truncated);

}  // namespace modulo::search
