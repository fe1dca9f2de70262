#include "modulo/search/search_service.h"

#include "modulo/core/json.h"
#include "modulo/embed/model.h"
#include "modulo/search/extractive_answer.h"

#include <algorithm>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/use_awaitable.hpp>

namespace modulo::search {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// config_metadata keys the answers pipeline reads (RAG Modulo's names); accepted here.
constexpr std::string_view kPipelineKeys[] = {
    "filters",        "use_cache",   "retrieval_only",  "top_k_rerank",           "disable_rerank",
    "cot_enabled",    "cot_disabled", "show_cot_steps", "structured_output_enabled", "max_citations",
    "min_confidence", "pipeline_id"};

constexpr const char* kFilterFields = "document_id, source, file_type, page_number";


// A string or an array of strings, as a list.
Result<std::vector<std::string>> StringList(const json& v, const std::string& field) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
    return out;
  }
  if (!v.is_array() || v.empty() || v.size() > 10000) {
    return Fail(Error::InvalidArgument("filters." + field + " must be a string or a non-empty array of strings"));
  }
  for (const auto& e : v) {
    if (!e.is_string()) return Fail(Error::InvalidArgument("filters." + field + " must contain only strings"));
    out.push_back(e.get<std::string>());
  }
  return out;
}

// Validates the shape of config_metadata.filters.
Status CheckFilters(const json& f) {
  if (f.is_null()) return {};
  if (!f.is_object()) return Fail(Error::InvalidArgument("config_metadata.filters must be an object"));
  for (const auto& [key, v] : f.items()) {
    if (key == "document_id" || key == "source" || key == "file_type") {
      if (auto l = StringList(v, key); !l) return Fail(l.error());
    } else if (key == "page_number") {
      if (v.is_number_integer()) continue;
      if (!v.is_object() || v.empty()) {
        return Fail(Error::InvalidArgument("filters.page_number must be an integer or an object of gte/lte/gt/lt"));
      }
      for (const auto& [op, n] : v.items()) {
        if (op != "gte" && op != "lte" && op != "gt" && op != "lt") {
          return Fail(Error::InvalidArgument("unknown operator '" + op + "' in filters.page_number (use gte, lte, gt, lt)"));
        }
        if (!n.is_number_integer()) return Fail(Error::InvalidArgument("filters.page_number." + op + " must be an integer"));
      }
    } else {
      return Fail(Error::InvalidArgument("unknown filter field '" + key + "' (filterable: " + kFilterFields + ")"));
    }
  }
  return {};
}

// Fraction of the shorter of two character ranges that they share.
double Overlap(const store::Chunk& a, const store::Chunk& b) {
  const auto lo = std::max(a.char_start, b.char_start), hi = std::min(a.char_end, b.char_end);
  const auto shorter = std::min(a.char_end - a.char_start, b.char_end - b.char_start);
  if (hi <= lo || shorter <= 0) return 0;
  return static_cast<double>(hi - lo) / static_cast<double>(shorter);
}

}  // namespace

std::string NormalizeQuestion(std::string_view text, std::size_t max_bytes, bool* truncated) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  bool space = false;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      space = !out.empty();
      continue;
    }
    if (c < 0x20 || c == 0x7f) continue;
    if (space) out += ' ';
    space = false;
    out += ch;
  }
  if (truncated != nullptr) *truncated = false;
  if (out.size() > max_bytes) {
    std::size_t cut = max_bytes;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
    out.resize(cut);
    while (!out.empty() && out.back() == ' ') out.pop_back();
    if (truncated != nullptr) *truncated = true;
  }
  return out;
}

struct SearchService::Plan {
  SearchQuery q;
  store::MetadataStore* store = nullptr;  // the request's scoped store, or the service's
  Clock::time_point started;
  store::Collection state;
  RetrievalSettings settings;
  index::IndexKey key;
  index::SearchFilter filter;
  bool matches_nothing = false;  // a filter no document satisfies
  bool use_vectors = false;
  bool use_keywords = false;
  std::string cache_key;
  std::optional<std::string> cached;  // a cached response, serialised with placeholders
  bool index_current = true;          // false: another thread or process was catching the indexes up
  std::vector<index::Hit> keyword_hits;
  json stages = json::array();

  void Stage(const char* name, double ms) { stages.push_back({{"stage", name}, {"duration_ms", ms}}); }
};

void SearchService::ObserveStages(const json& stages) {
  if (stage_latency_ == nullptr) return;
  for (const auto& s : stages) {
    stage_latency_->With({s["stage"].get<std::string>()}).Observe(s["duration_ms"].get<double>() / 1000.0);
  }
}

SearchService::SearchService(SearchDeps deps, SearchOptions options)
    : deps_(std::move(deps)), options_(std::move(options)) {
  if (deps_.registry != nullptr) {
    stage_latency_ = &deps_.registry->AddHistogram("rag_search_latency_seconds",
                                                   "Search latency by pipeline stage (stage=\"total\": the whole search)",
                                                   {"stage"});
    vector_latency_ = &deps_.registry->AddHistogram("vector_search_duration_seconds",
                                                    "Vector index search time by backend", {"backend"});
    cache_requests_ = &deps_.registry->AddCounter("rag_search_cache_requests_total",
                                                  "Search result cache lookups by result (hit, miss)", {"result"});
  }
}

Result<SearchQuery> SearchService::Parse(const json& body) const { return ParseSearchRequest(body, options_); }

Result<SearchQuery> ParseSearchRequest(const json& body, const SearchOptions& options_) {
  if (!body.is_object()) return Fail(Error::InvalidArgument("the request body must be a JSON object"));
  SearchQuery q;
  for (const auto& [key, v] : body.items()) {
    if (key == "question") {
      if (!v.is_string()) return Fail(Error::InvalidArgument("'question' must be a string"));
    } else if (key == "collection_id") {
      if (!v.is_string()) return Fail(Error::InvalidArgument("'collection_id' must be a string"));
      q.collection_id = v.get<std::string>();
    } else if (key == "config_metadata") {
      if (!v.is_null() && !v.is_object()) return Fail(Error::InvalidArgument("'config_metadata' must be an object"));
      q.config = v;
    } else if (key != "user_id" && key != "pipeline_id" && key != "conversation_id") {
      return Fail(Error::InvalidArgument("unknown field '" + key + "'"));
    }
  }
  if (!body.contains("question")) return Fail(Error::InvalidArgument("'question' is required"));
  if (q.collection_id.empty()) return Fail(Error::InvalidArgument("'collection_id' is required"));
  q.question = NormalizeQuestion(body["question"].get_ref<const std::string&>(), options_.max_question_bytes,
                                 &q.question_truncated);
  if (q.question.empty()) return Fail(Error::InvalidArgument("'question' must not be empty or only whitespace"));
  RetrievalSettings probe = options_.defaults;
  if (auto st = probe.Apply(q.config, options_.max_top_k, "config_metadata", kPipelineKeys); !st) {
    return Fail(st.error());
  }
  if (q.config.is_object()) {
    if (q.config.contains("filters")) {
      q.filters = q.config["filters"];
      if (auto st = CheckFilters(q.filters); !st) return Fail(st.error());
    }
    for (const char* flag : {"use_cache", "retrieval_only"}) {
      if (q.config.contains(flag) && !q.config[flag].is_boolean()) {
        return Fail(Error::InvalidArgument(std::string("config_metadata.") + flag + " must be a boolean"));
      }
    }
    q.use_cache = q.config.value("use_cache", true);
    q.retrieval_only = q.config.value("retrieval_only", false);
  }
  return q;
}

Result<SearchService::Plan> SearchService::Prepare(const SearchQuery& q) {
  Plan p;
  p.q = q;
  p.started = Clock::now();
  auto t = Clock::now();
  p.store = q.store != nullptr ? q.store : &deps_.store;
  auto state = p.store->GetCollectionState(q.collection_id);
  if (!state) return Fail(state.error());
  p.state = std::move(*state);
  // The collection's settings, then the request's.
  p.settings = options_.defaults;
  json stored = modulo::ParseJsonOrDiscarded(p.state.settings_json);
  if (stored.is_object() && stored.contains("retrieval")) {
    if (auto st = p.settings.Apply(stored["retrieval"], options_.max_top_k, "retrieval"); !st) {
      p.settings = options_.defaults;  // settings written by an older version: fall back, never fail searches
    }
  }
  if (auto st = p.settings.Apply(q.config, options_.max_top_k, "config_metadata", kPipelineKeys); !st) {
    return Fail(st.error());
  }
  p.settings.candidates = std::max(p.settings.candidates, p.settings.top_k);
  p.use_keywords = deps_.keywords != nullptr && p.settings.retriever != Retriever::kVector;
  p.use_vectors = p.settings.retriever != Retriever::kKeyword;
  if (p.use_vectors && (deps_.vectors == nullptr || !deps_.batcher)) {
    if (p.settings.retriever == Retriever::kVector) {
      return Fail(Error::Unavailable("vector retrieval needs an embedder; this server runs without one"));
    }
    p.use_vectors = false;  // hybrid degrades to keyword
  }
  if (p.use_vectors && !p.state.embedding_model.empty() && !deps_.model_name.empty() &&
      p.state.embedding_model != deps_.model_name) {
    return Fail(Error::Conflict("collection " + p.state.id + " was embedded with " + p.state.embedding_model +
                                " but this server embeds with " + deps_.model_name +
                                "; use retriever 'keyword' or reindex the collection"));
  }
  p.key = IndexSync::KeyOf(p.state, p.state.generation);

  // Filters: document-level fields resolve to file ids.
  if (q.filters.is_object()) {
    std::optional<std::set<std::string>> files;
    auto narrow = [&](std::set<std::string> allowed) {
      if (!files) {
        files = std::move(allowed);
        return;
      }
      std::set<std::string> both;
      std::set_intersection(files->begin(), files->end(), allowed.begin(), allowed.end(),
                            std::inserter(both, both.begin()));
      files = std::move(both);
    };
    if (q.filters.contains("document_id")) {
      auto ids = StringList(q.filters["document_id"], "document_id");
      narrow({ids->begin(), ids->end()});
    }
    if (q.filters.contains("source") || q.filters.contains("file_type")) {
      auto all = p.store->ListFiles(p.state.id);
      if (!all) return Fail(all.error());
      for (const char* field : {"source", "file_type"}) {
        if (!q.filters.contains(field)) continue;
        auto wanted = StringList(q.filters[field], field);
        std::set<std::string> w(wanted->begin(), wanted->end()), allowed;
        for (const auto& f : *all) {
          if (w.contains(std::string_view(field) == "source" ? f.filename : f.format)) allowed.insert(f.id);
        }
        narrow(std::move(allowed));
      }
    }
    if (files) {
      p.matches_nothing = files->empty();
      p.filter.file_ids = std::vector<std::string>(files->begin(), files->end());
    }
    if (q.filters.contains("page_number")) {
      const json& v = q.filters["page_number"];
      auto clamp = [](std::int64_t n) {
        return static_cast<std::int32_t>(std::clamp<std::int64_t>(n, INT32_MIN / 2, INT32_MAX / 2));
      };
      if (v.is_number_integer()) {
        p.filter.page_min = p.filter.page_max = clamp(v.get<std::int64_t>());
      } else {
        for (const auto& [op, n] : v.items()) {
          const auto x = clamp(n.get<std::int64_t>());
          if (op == "gte") p.filter.page_min = std::max(p.filter.page_min.value_or(INT32_MIN), x);
          if (op == "gt") p.filter.page_min = std::max(p.filter.page_min.value_or(INT32_MIN), x + 1);
          if (op == "lte") p.filter.page_max = std::min(p.filter.page_max.value_or(INT32_MAX), x);
          if (op == "lt") p.filter.page_max = std::min(p.filter.page_max.value_or(INT32_MAX), x - 1);
        }
      }
      if (p.filter.page_min && p.filter.page_max && *p.filter.page_min > *p.filter.page_max) p.matches_nothing = true;
    }
  }
  p.Stage("prepare", MsSince(t));

  // The result cache: keyed by everything the answer depends on.
  if (deps_.cache != nullptr && options_.cache_ttl.count() > 0 && q.use_cache) {
    t = Clock::now();
    const std::string key_text = json{{"q", q.question}, {"s", p.settings.ToJson()}, {"f", q.filters},
                                      {"m", deps_.model_name}, {"r", q.retrieval_only}}.dump();
    p.cache_key = "search:" + p.state.id + ":" + std::to_string(p.state.generation) + ":" +
                  std::to_string(p.state.version) + ":" + embed::Sha256Hex(std::as_bytes(std::span<const char>(key_text)));
    if (auto hit = deps_.cache->Get(p.cache_key)) {
      // Only a value this service wrote (with both placeholders) is served.
      if (hit->find(kTimePlaceholder) != std::string::npos && hit->find(kStagesPlaceholder) != std::string::npos) {
        p.cached = std::move(*hit);
      }
    }
    if (cache_requests_ != nullptr) cache_requests_->With({p.cached ? "hit" : "miss"}).Inc();
    p.Stage("cache", MsSince(t));
    if (p.cached) return p;
  }

  t = Clock::now();
  if (auto st = deps_.sync.EnsureCurrent(p.state, &p.index_current); !st) return Fail(st.error());
  p.Stage("sync", MsSince(t));

  if (p.use_keywords && !p.matches_nothing) {
    t = Clock::now();
    auto hits = deps_.keywords->Search(p.key, q.question, p.settings.candidates, p.filter);
    if (!hits) return Fail(hits.error());
    p.keyword_hits = std::move(*hits);
    p.Stage("keyword", MsSince(t));
  }
  return p;
}

Result<json> SearchService::Finish(Plan& p, const std::vector<float>* query_vector) {
  std::vector<index::Hit> vector_hits;
  if (query_vector != nullptr && !p.matches_nothing) {
    auto t = Clock::now();
    auto hits = deps_.vectors->Search(p.key, *query_vector, p.settings.candidates, p.filter);
    if (!hits) return Fail(hits.error());
    vector_hits = std::move(*hits);
    const double ms = MsSince(t);
    if (vector_latency_ != nullptr) vector_latency_->With({deps_.vectors->backend()}).Observe(ms / 1000.0);
    p.Stage("vector", ms);
  }

  auto t = Clock::now();
  std::vector<FusedHit> fused;
  if (p.use_vectors && p.use_keywords) {
    fused = p.settings.fusion == FusionMethod::kRrf ? FuseRrf(vector_hits, p.keyword_hits, p.settings.rrf_k,
                                                              p.settings.vector_weight)
                                                    : FuseWeighted(vector_hits, p.keyword_hits, p.settings.vector_weight);
  } else if (p.use_vectors) {
    fused = Single(vector_hits, true);
  } else {
    fused = Single(p.keyword_hits, false);
  }
  p.Stage("fusion", MsSince(t));

  // Hydrate the best hits, dropping near-repeats, until top_k are kept or the list ends.
  t = Clock::now();
  struct Kept {
    const FusedHit* hit;
    store::Chunk chunk;
  };
  std::vector<Kept> kept;
  std::unordered_set<std::string> seen_text;
  std::size_t next = 0;
  while (kept.size() < p.settings.top_k && next < fused.size()) {
    const std::size_t want = (p.settings.top_k - kept.size()) + (p.settings.dedupe ? 4 : 0);
    std::vector<std::int64_t> ids;
    for (; next < fused.size() && ids.size() < want; ++next) ids.push_back(fused[next].chunk_id);
    auto chunks = p.store->GetChunks(ids);
    if (!chunks) return Fail(chunks.error());
    std::unordered_map<std::int64_t, store::Chunk*> by_id;
    for (auto& c : *chunks) by_id[c.id] = &c;
    for (std::size_t i = next - ids.size(); i < next && kept.size() < p.settings.top_k; ++i) {
      auto it = by_id.find(fused[i].chunk_id);
      if (it == by_id.end()) continue;  // removed since the index saw it
      store::Chunk& c = *it->second;
      if (p.settings.dedupe) {
        if (!seen_text.insert(c.text).second) continue;
        bool repeat = false;
        for (const auto& k : kept) {
          if (k.chunk.file_id == c.file_id && Overlap(k.chunk, c) >= 0.5) {
            repeat = true;
            break;
          }
        }
        if (repeat) continue;
      }
      kept.push_back({&fused[i], std::move(c)});
    }
  }
  p.Stage("hydrate", MsSince(t));

  // Hierarchical collections: each hit's parent chunk, one query per document.
  std::map<std::pair<std::string, std::int32_t>, store::Chunk> parents;
  if (p.settings.expand_parents) {
    std::map<std::string, std::vector<std::int32_t>> wanted;
    for (const auto& k : kept) {
      if (k.chunk.parent_number) wanted[k.chunk.file_id].push_back(*k.chunk.parent_number);
    }
    if (!wanted.empty()) {
      t = Clock::now();
      for (auto& [file, numbers] : wanted) {
        auto got = p.store->GetChunksByNumber(file, p.state.generation, numbers);
        if (!got) return Fail(got.error());
        for (auto& c : *got) parents.emplace(std::pair{file, c.chunk_number}, std::move(c));
      }
      p.Stage("parents", MsSince(t));
    }
  }

  json results = json::array();
  json documents = json::array();
  std::unordered_set<std::string> docs_seen;
  for (const auto& k : kept) {
    const store::Chunk& c = k.chunk;
    json meta = {{"source", c.source},
                 {"document_name", c.source},
                 {"page_number", c.page_number},
                 {"chunk_number", c.chunk_number},
                 {"section_path", c.section_path},
                 {"char_start", c.char_start},
                 {"char_end", c.char_end},
                 {"token_count", c.token_count}};
    json chunk = {{"chunk_id", std::to_string(c.id)},
                  {"text", c.text},
                  {"document_id", c.file_id},
                  {"metadata", std::move(meta)}};
    if (c.parent_number) {
      if (auto it = parents.find({c.file_id, *c.parent_number}); it != parents.end()) {
        chunk["parent"] = {{"chunk_id", std::to_string(it->second.id)},
                           {"chunk_number", it->second.chunk_number},
                           {"text", it->second.text}};
      }
    }
    json scores = json::object();
    if (k.hit->vector_rank) scores["vector"] = {{"rank", *k.hit->vector_rank}, {"score", *k.hit->vector_score}};
    if (k.hit->keyword_rank) scores["keyword"] = {{"rank", *k.hit->keyword_rank}, {"score", *k.hit->keyword_score}};
    chunk["score"] = k.hit->score;
    results.push_back({{"chunk", std::move(chunk)}, {"score", k.hit->score}, {"scores", std::move(scores)}});
    if (docs_seen.insert(c.file_id).second) {
      documents.push_back({{"document_id", c.file_id}, {"document_name", c.source}});
    }
  }

  // The answer: extractive (no LLM), from the passages in the order returned.
  json answer = nullptr;
  json citations = json::array();
  if (!p.q.retrieval_only && !kept.empty()) {
    const auto t_answer = Clock::now();
    std::vector<std::string_view> passages;
    for (const auto& k : kept) passages.push_back(k.chunk.text);
    auto composed = ComposeExtractiveAnswer(analyzer_, p.q.question, passages);
    answer = composed.text;
    for (auto n : composed.cited) {
      const auto& c = kept[n - 1].chunk;
      citations.push_back({{"n", n}, {"chunk_id", std::to_string(c.id)}, {"document_id", c.file_id},
                           {"source", c.source}, {"page_number", c.page_number}});
    }
    p.Stage("answer", MsSince(t_answer));
  }

  json out = {{"answer", std::move(answer)},
              {"documents", std::move(documents)},
              {"query_results", std::move(results)},
              {"rewritten_query", p.q.question},
              {"status", store::ToString(p.state.status)},
              {"metadata",
               {{"mode", p.q.retrieval_only ? "retrieval" : "extractive"},
                {"answer_type", p.q.retrieval_only ? json(nullptr) : json("extractive")},
                {"citations", std::move(citations)},
                {"collection_id", p.state.id},
                {"generation", p.state.generation},
                {"collection_version", p.state.version},
                {"retrieval", p.settings.ToJson()},
                {"candidates", {{"vector", vector_hits.size()}, {"keyword", p.keyword_hits.size()}}},
                {"question_truncated", p.q.question_truncated},
                {"cache_hit", false}}}};
  if (!p.use_vectors && p.settings.retriever == Retriever::kHybrid) {
    out["metadata"]["note"] = "no embedder is configured: hybrid retrieval ran keyword search only";
  }
  if (!p.index_current) out["metadata"]["index_catching_up"] = true;
  if (!p.cache_key.empty() && p.state.status != store::CollectionStatus::kProcessing && p.index_current) {
    // Results of a collection still being processed change with every file: not worth keeping.
    // Nor are results read from indexes someone else was still catching up: they are older than
    // the version they would be kept under.
    // Kept serialised, with placeholders for what differs per request (the time taken and the
    // stages), so a hit is answered by splicing two values into the text, not by parsing it.
    json cached = out;
    cached["execution_time"] = kTimeValue;
    cached["metadata"]["stages"] = kStagesValue;
    cached["metadata"]["cache_hit"] = true;
    deps_.cache->Set(p.cache_key, cached.dump(), options_.cache_ttl);
  }
  return out;
}

SearchService::Output::Output(std::string cached) : cached_(std::move(cached)) {}
SearchService::Output::Output(json body) : body_(std::move(body)) {}

json SearchService::Output::ToJson() && {
  if (!cached_.empty()) {
    json j = modulo::ParseJsonOrDiscarded(Splice());
    return j.is_discarded() ? json::object() : j;
  }
  return std::move(body_);
}

std::string SearchService::Output::Serialize() const {
  if (!cached_.empty()) return Splice();
  return body_.dump();
}

std::string SearchService::Output::Splice() const {
  std::string out = cached_;
  auto replace = [&out](std::string_view placeholder, const std::string& value) {
    if (const auto at = out.find(placeholder); at != std::string::npos) out.replace(at, placeholder.size(), value);
  };
  replace(kTimePlaceholder, "\"execution_time\":" + json(total_ms_ / 1000.0).dump());
  replace(kStagesPlaceholder, "\"stages\":" + stages_.dump());
  return out;
}

boost::asio::awaitable<Result<json>> SearchService::Search(SearchQuery q) {
  auto out = co_await Run(std::move(q));
  if (!out) {
    Result<json> failed = Fail(out.error());
    co_return failed;
  }
  Result<json> body = std::move(*out).ToJson();
  co_return body;
}

boost::asio::awaitable<Result<SearchService::Output>> SearchService::Run(SearchQuery q) {
  const auto started = Clock::now();
  auto plan = co_await RunOn(deps_.blocking_pool, [this, &q] { return Prepare(q); });
  if (!plan) {
    Result<Output> failed = Fail(plan.error());
    co_return failed;
  }
  Plan& p = *plan;
  Result<json> out = json();
  if (p.cached) {
    Output hit(std::move(*p.cached));
    hit.total_ms_ = MsSince(started);
    hit.stages_ = std::move(p.stages);
    hit.stages_.push_back({{"stage", "total"}, {"duration_ms", hit.total_ms_}});
    ObserveStages(hit.stages_);
    Result<Output> done = std::move(hit);
    co_return done;
  } else {
    std::optional<std::vector<float>> vec;
    if (p.use_vectors && !p.matches_nothing) {
      const auto t = Clock::now();
      auto v = co_await deps_.batcher->AsyncEmbed(p.q.question, embed::InputKind::kQuery, boost::asio::use_awaitable);
      if (!v) {
        Result<Output> failed = Fail(v.error());
        co_return failed;
      }
      vec = std::move(*v);
      p.Stage("embed", MsSince(t));
    }
    out = co_await RunOn(deps_.blocking_pool, [this, &p, &vec] { return Finish(p, vec ? &*vec : nullptr); });
    if (!out) {
      Result<Output> failed = Fail(out.error());
      co_return failed;
    }
  }
  const double total_ms = MsSince(started);
  (*out)["execution_time"] = total_ms / 1000.0;
  (*out)["metadata"]["stages"] = std::move(p.stages);
  (*out)["metadata"]["stages"].push_back({{"stage", "total"}, {"duration_ms", total_ms}});
  ObserveStages((*out)["metadata"]["stages"]);
  Result<Output> done = Output(std::move(*out));
  co_return done;
}

}  // namespace modulo::search
