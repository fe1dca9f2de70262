#include "modulo/generate/answer_service.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>
#include <set>

#include "modulo/core/log.h"
#include "modulo/generate/chain_of_thought.h"
#include "modulo/generate/llm_reranker.h"
#include "modulo/generate/query_rewriter.h"
#include "modulo/search/extractive_answer.h"

namespace modulo::generate {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::string Today() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

// A citation marker in answer text: [n] or [n, m, ...].
struct Marker {
  std::size_t begin = 0, end = 0;  // byte range, brackets included
  std::vector<std::size_t> numbers;
};

std::vector<Marker> FindMarkers(std::string_view s) {
  std::vector<Marker> out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '[' || (i > 0 && s[i - 1] == '[')) continue;
    Marker m;
    m.begin = i;
    std::size_t j = i + 1;
    bool ok = true;
    while (true) {
      while (j < s.size() && s[j] == ' ') ++j;
      std::size_t start = j, value = 0;
      while (j < s.size() && s[j] >= '0' && s[j] <= '9' && j - start < 5) value = value * 10 + (s[j++] - '0');
      if (j == start || value == 0 || value > 9999 || (j < s.size() && s[j] >= '0' && s[j] <= '9')) {
        ok = false;
        break;
      }
      m.numbers.push_back(value);
      while (j < s.size() && s[j] == ' ') ++j;
      if (j < s.size() && s[j] == ',') {
        ++j;
        continue;
      }
      break;
    }
    if (!ok || j >= s.size() || s[j] != ']' || (j + 1 < s.size() && s[j + 1] == ']')) continue;
    m.end = j + 1;
    i = j;
    out.push_back(std::move(m));
  }
  return out;
}

// Lower-cased ASCII with whitespace runs collapsed: the key for repeated passages.
std::string DedupeKey(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += static_cast<char>(c < 0x80 ? std::tolower(c) : c);
  }
  return out;
}

// `text` cut (on a UTF-8 boundary, preferably after a space) so that count(text) <= room.
std::string CutToTokens(std::string_view text, std::size_t room, const TokenCounter& count) {
  std::size_t keep = std::min(text.size(), room * 4);
  while (keep > 0) {
    while (keep > 0 && keep < text.size() && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) --keep;
    std::size_t at = keep;
    const auto space = text.rfind(' ', keep);
    if (space != std::string_view::npos && space > keep * 3 / 4) at = space;
    std::string cut(text.substr(0, at));
    cut += " …";
    if (count(cut) <= room) return cut;
    keep = keep * 9 / 10;
  }
  return {};
}

json StringOr(const json& obj, const char* key, json fallback) {
  if (obj.is_object()) {
    if (auto it = obj.find(key); it != obj.end() && !it->is_null()) return *it;
  }
  return fallback;
}

// The text of each query_results entry (empty when it has none), as views into `results`.
std::vector<std::string_view> PassageTexts(const json& results) {
  std::vector<std::string_view> out;
  if (!results.is_array()) return out;
  for (const auto& r : results) {
    std::string_view text;
    if (auto c = r.find("chunk"); c != r.end() && c->is_object()) {
      if (auto t = c->find("text"); t != c->end() && t->is_string()) text = t->get_ref<const std::string&>();
    }
    out.push_back(text);
  }
  return out;
}

// The metadata.citations entries of [n] numbers (1-based positions in query_results).
json CitationsOf(const json& results, const std::vector<std::size_t>& numbers) {
  json citations = json::array();
  for (auto n : numbers) {
    if (n == 0 || n > results.size()) continue;
    const json& chunk = StringOr(results[n - 1], "chunk", json::object());
    const json cm = StringOr(chunk, "metadata", json::object());
    citations.push_back({{"n", n},
                         {"chunk_id", StringOr(chunk, "chunk_id", nullptr)},
                         {"document_id", StringOr(chunk, "document_id", nullptr)},
                         {"source", StringOr(cm, "source", nullptr)},
                         {"page_number", StringOr(cm, "page_number", nullptr)}});
  }
  return citations;
}

bool LooksLikeContextOverflow(const Error& e) {
  if (e.code() != ErrorCode::kInvalidArgument) return false;
  std::string m = e.message();
  std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* p : {"context length", "context_length", "context window", "too long", "maximum context",
                        "too many tokens", "reduce the length"}) {
    if (m.find(p) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

std::size_t EstimateTokens(std::string_view text) noexcept {
  return (text.size() + 3) / 4;
}

std::string_view AnswerModeName(AnswerMode mode) noexcept {
  switch (mode) {
    case AnswerMode::kAuto: return "auto";
    case AnswerMode::kGenerated: return "generated";
    case AnswerMode::kExtractive: return "extractive";
  }
  return "auto";
}

std::vector<std::size_t> CitedNumbers(std::string_view text) {
  std::vector<std::size_t> out;
  for (const auto& m : FindMarkers(text)) {
    for (auto n : m.numbers) {
      if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
    }
  }
  return out;
}

std::string StripCitations(std::string_view text, const std::vector<std::size_t>& allowed) {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  for (const auto& m : FindMarkers(text)) {
    std::vector<std::size_t> keep;
    for (auto n : m.numbers) {
      if (std::find(allowed.begin(), allowed.end(), n) != allowed.end()) keep.push_back(n);
    }
    if (keep.size() == m.numbers.size()) continue;  // untouched
    out.append(text.substr(pos, m.begin - pos));
    if (keep.empty()) {
      while (!out.empty() && out.back() == ' ') out.pop_back();  // "word [9]." → "word."
    } else {
      out += '[';
      for (std::size_t i = 0; i < keep.size(); ++i) out += (i ? ", " : "") + std::to_string(keep[i]);
      out += ']';
    }
    pos = m.end;
  }
  out.append(text.substr(pos));
  return out;
}

AssembledContext AssembleContext(const json& query_results, std::size_t budget, const AnswerOptions& options) {
  const TokenCounter count = options.count_tokens ? options.count_tokens : TokenCounter(EstimateTokens);
  AssembledContext ctx;
  if (!query_results.is_array()) return ctx;
  std::unordered_set<std::string> seen;
  std::unordered_map<std::string, std::size_t> per_document;
  for (std::size_t i = 0; i < query_results.size(); ++i) {
    const json& chunk = StringOr(query_results[i], "chunk", json::object());
    const json text_json = StringOr(chunk, "text", "");
    if (!text_json.is_string() || text_json.get_ref<const std::string&>().empty()) continue;
    const std::string& text = text_json.get_ref<const std::string&>();
    if (ctx.left_out > 0 || ctx.cut) {
      ++ctx.left_out;
      continue;
    }
    if (!seen.insert(DedupeKey(text)).second) {
      ++ctx.skipped_duplicates;
      continue;
    }
    const json doc = StringOr(chunk, "document_id", "");
    const std::string doc_id = doc.is_string() ? doc.get<std::string>() : doc.dump();
    if (options.max_chunks_per_document > 0 && ++per_document[doc_id] > options.max_chunks_per_document) {
      ++ctx.skipped_per_document;
      continue;
    }
    const json meta = StringOr(chunk, "metadata", json::object());
    std::string label = "[" + std::to_string(i + 1) + "]";
    if (const json source = StringOr(meta, "source", "");
        source.is_string() && !source.get_ref<const std::string&>().empty()) {
      label += " " + source.get<std::string>();
      if (const json page = StringOr(meta, "page_number", nullptr); page.is_number_integer()) {
        label += ", page " + std::to_string(page.get<std::int64_t>());
      }
    }
    label += "\n";
    const std::size_t label_tokens = count(label) + 1;  // + the blank line between passages
    std::string body = text;
    std::size_t body_tokens = count(body);
    if (options.max_passage_tokens > 0 && body_tokens > options.max_passage_tokens) {
      body = CutToTokens(text, options.max_passage_tokens, count);
      body_tokens = count(body);
    }
    const std::size_t room = budget > ctx.tokens ? budget - ctx.tokens : 0;
    if (label_tokens + body_tokens > room) {
      if (room < label_tokens + 32) {
        ++ctx.left_out;
        continue;
      }
      body = CutToTokens(body, room - label_tokens, count);
      if (body.empty()) {
        ++ctx.left_out;
        continue;
      }
      body_tokens = count(body);
      ctx.cut = true;
    }
    if (!ctx.text.empty()) ctx.text += "\n\n";
    ctx.text += label;
    ctx.text += body;
    ctx.tokens += label_tokens + body_tokens;
    ctx.passages.push_back({i + 1, std::move(body), label_tokens + body_tokens});
  }
  return ctx;
}

AnswerService::AnswerService(AnswerDeps deps, AnswerOptions options)
    : deps_(std::move(deps)), options_(std::move(options)) {
  if (!options_.count_tokens) options_.count_tokens = EstimateTokens;
  auto server = std::make_shared<AnswerProfile>();
  server->provider = deps_.provider;
  server->params = options_.params;
  server->context_tokens = options_.context_tokens;
  server->system_prompt = options_.system_prompt;
  server->user_template = options_.user_template;
  server_ = std::move(server);
  if (deps_.registry != nullptr) {
    tokens_used_ = &deps_.registry->AddCounter(
        "llm_tokens_used_total", "LLM tokens (prompt + completion) used for answers, by provider, model and user",
        {"provider", "model", "user_id"});
    llm_requests_ = &deps_.registry->AddCounter("llm_requests_total",
                                                "Calls to the language model for answers, by provider and outcome",
                                                {"provider", "outcome"});
  }
}

std::size_t AnswerService::Count(std::string_view text) const {
  return options_.count_tokens(text);
}

Result<AnswerRequest> AnswerService::Parse(json body) const {
  return ParseAnswerRequest(std::move(body), deps_.search, deps_.provider != nullptr);
}

Result<AnswerRequest> ParseAnswerRequest(json body, const search::SearchService& search, bool has_provider) {
  if (!body.is_object()) return Fail(Error::InvalidArgument("the request body must be a JSON object"));
  AnswerRequest a;
  auto lift = [&a](json& obj, const std::string& where) -> Status {
    if (auto it = obj.find("stream"); it != obj.end()) {
      if (!it->is_boolean()) return Fail(Error::InvalidArgument("'" + where + "stream' must be a boolean"));
      a.stream = it->get<bool>();
      obj.erase(it);
    }
    if (auto it = obj.find("answer_mode"); it != obj.end()) {
      const std::string v = it->is_string() ? it->get<std::string>() : std::string();
      if (v == "auto") {
        a.mode = AnswerMode::kAuto;
      } else if (v == "generated") {
        a.mode = AnswerMode::kGenerated;
      } else if (v == "extractive") {
        a.mode = AnswerMode::kExtractive;
      } else {
        return Fail(Error::InvalidArgument("'" + where + "answer_mode' must be one of auto, generated, extractive"));
      }
      obj.erase(it);
    }
    return {};
  };
  if (auto it = body.find("config_metadata"); it != body.end() && it->is_object()) {
    if (auto st = lift(*it, "config_metadata."); !st) return Fail(st.error());
  }
  if (auto st = lift(body, ""); !st) return Fail(st.error());  // the top level wins
  auto q = search.Parse(body);
  if (!q) return Fail(q.error());
  a.query = std::move(*q);
  if (a.mode == AnswerMode::kGenerated && !has_provider) {
    return Fail(Error::Unimplemented(
        "answer_mode 'generated' needs a language model and this server has none (set MODULO_LLM_PROVIDER)"));
  }
  if (a.mode == AnswerMode::kGenerated && a.query.retrieval_only) {
    return Fail(
        Error::InvalidArgument("answer_mode 'generated' and config_metadata.retrieval_only exclude each other"));
  }
  return a;
}

bool AnswerService::WillGenerate(const AnswerRequest& r) const noexcept {
  return ProfileOf(r).provider != nullptr && r.mode != AnswerMode::kExtractive && !r.query.retrieval_only;
}

std::vector<ChatMessage> AnswerService::Messages(const AnswerProfile& profile, const AnswerRequest& request,
                                                 const std::string& context) const {
  const std::string& question = request.query.question;
  std::string user = profile.user_template;
  if (auto at = user.find("{context}"); at != std::string::npos) user.replace(at, 9, context);
  // The question is substituted last, so braces in the passages are never read as placeholders.
  if (auto at = user.rfind("{question}"); at != std::string::npos) user.replace(at, 10, question);
  std::vector<ChatMessage> out;
  out.reserve(request.history.size() + 2);
  out.push_back({"system", profile.system_prompt});
  for (const auto& m : request.history) out.push_back(m);
  out.push_back({"user", std::move(user)});
  return out;
}

Result<std::int64_t> AnswerService::LimitFor(const AnswerRequest& r) const {
  if (r.unlimited || deps_.identity == nullptr || r.user_id.empty()) return std::int64_t{0};
  auto o = deps_.identity->GetQuotaOverrides(r.user_id);
  if (!o) {
    if (o.error().code() == ErrorCode::kNotFound) return options_.llm_tokens_per_day;
    return Fail(o.error());
  }
  return o->llm_tokens_per_day.value_or(options_.llm_tokens_per_day);
}

Status AnswerService::CheckQuota(const AnswerRequest& request, std::int64_t estimate) const {
  auto limit = LimitFor(request);
  if (!limit) return Fail(limit.error());
  if (*limit <= 0) return {};
  auto usage = deps_.identity->GetUsage(request.user_id, Today());
  if (!usage && usage.error().code() != ErrorCode::kNotFound) return Fail(usage.error());
  const std::int64_t used = usage ? usage->llm_tokens_today : 0;
  if (used + estimate <= *limit) return {};
  return Fail(Error::QuotaExceeded("Quota exceeded for llm_tokens_per_day: " + std::to_string(used) + " used of " +
                                   std::to_string(*limit) + " today, about " + std::to_string(estimate) +
                                   " more needed for this answer")
                  .WithDetails(json{{"resource", "llm_tokens_per_day"}, {"usage", used}, {"limit", *limit}}.dump()));
}

void AnswerService::Record(const AnswerRequest& r, const LlmProvider& provider, const TokenUsage& usage) {
  const std::int64_t total = std::int64_t{std::max(usage.prompt_tokens, 0)} + std::max(usage.completion_tokens, 0);
  if (total <= 0) return;
  if (tokens_used_ != nullptr) {
    tokens_used_->With({provider.name(), provider.model(), r.user_id.empty() ? "anonymous" : r.user_id})
        .Inc(static_cast<double>(total));
  }
  if (deps_.identity == nullptr || r.user_id.empty()) return;
  // Tokens already spent are always recorded (limit 0): the quota is enforced before the call.
  if (auto st = deps_.identity->AddLlmTokens(r.user_id, Today(), total, 0); !st) {
    if (st.error().code() != ErrorCode::kNotFound) {  // e.g. the local admin of MODULO_AUTH=none has no row
      log::Warn("LLM token accounting failed", {{"user_id", r.user_id}, {"error", st.error().message()}});
    }
  }
}

json AnswerService::Extractive(const json& retrieval, const std::string& question) const {
  json out = {{"answer", nullptr}, {"citations", json::array()}};
  static const json kNone = json::array();
  auto it = retrieval.find("query_results");
  const json& results = it != retrieval.end() && it->is_array() ? *it : kNone;
  const std::vector<std::string_view> passages = PassageTexts(results);
  if (passages.empty()) return out;
  auto composed = search::ComposeExtractiveAnswer(analyzer_, question, passages);
  out["answer"] = composed.text;
  out["citations"] = CitationsOf(results, composed.cited);
  return out;
}

namespace {

// config_metadata flags of the answer pipeline (RAG Modulo's names).
std::optional<bool> CotFlag(const json& config) {
  if (!config.is_object()) return std::nullopt;
  if (auto it = config.find("cot_disabled"); it != config.end() && it->is_boolean() && it->get<bool>()) return false;
  if (auto it = config.find("cot_enabled"); it != config.end() && it->is_boolean()) return it->get<bool>();
  return std::nullopt;
}

// Reranking: "rerank": true, or "top_k_rerank" without "disable_rerank": true.
std::optional<std::size_t> RerankTopK(const json& config, std::size_t fallback) {
  if (!config.is_object()) return std::nullopt;
  if (config.value("disable_rerank", false) == true) return std::nullopt;
  const bool asked = config.value("rerank", false) == true || config.contains("top_k_rerank");
  if (!asked) return std::nullopt;
  if (auto it = config.find("top_k_rerank");
      it != config.end() && it->is_number_integer() && it->get<std::int64_t>() > 0) {
    return static_cast<std::size_t>(it->get<std::int64_t>());
  }
  return fallback;
}

}  // namespace

boost::asio::awaitable<Result<json>> AnswerService::Answer(AnswerRequest request,
                                                           std::shared_ptr<const AnswerObserver> observer,
                                                           std::shared_ptr<const CancelToken> cancel) {
  const auto started = Clock::now();
  const AnswerProfile& profile = ProfileOf(request);
  LlmProvider* model = WillGenerate(request) ? profile.provider.get() : nullptr;
  const std::string question = request.query.question;
  json pre_stages = json::array();
  auto stage = [&](const char* name, double ms) {
    pre_stages.push_back({{"stage", name}, {"duration_ms", ms}});
    if (observer && observer->on_stage) observer->on_stage(name, ms);
  };

  // A follow-up in a conversation becomes a standalone question for retrieval (the prompt keeps
  // the question as asked, after the history).
  json rewrite_meta;
  search::SearchQuery q = request.query;
  if (!request.history.empty() && !request.query.retrieval_only) {
    auto t = Clock::now();
    RewriteResult rw = co_await RunOn(deps_.blocking_pool, [&] {
      QueryRewriter rewriter(model);
      RewriteResult r = rewriter.Rewrite(question, request.history, "", cancel.get());
      if (model != nullptr) Record(request, *model, r.usage);
      return r;
    });
    if (rw.rewritten) q.question = rw.query;
    rewrite_meta = {{"method", rw.method}, {"rewritten", rw.rewritten}};
    if (rw.error) rewrite_meta["error"] = {{"code", ErrorCodeName(rw.error->code())}, {"message", rw.error->message()}};
    stage("rewrite", MsSince(t));
  }

  // Chain of thought: explicit, or detected when a model can decompose the question.
  const std::optional<bool> cot_flag = CotFlag(request.query.config);
  const bool cot = !request.query.retrieval_only && request.mode != AnswerMode::kExtractive &&
                   (cot_flag == true || (model != nullptr && cot_flag != false && ShouldUseCot(q.question)));
  // A chain of thought holds a blocking-pool thread while its steps' searches need others: at
  // most half the pool runs one at a time, so searches always find a thread (no deadlock); past
  // that, the question is answered in one pass and metadata.cot_skipped says why.
  bool cot_slot = false;
  if (cot) {
    const int limit = static_cast<int>(deps_.blocking_pool.size() / 2);
    int running = steps_running_.load();
    while (running < limit && !steps_running_.compare_exchange_weak(running, running + 1)) {
    }
    cot_slot = running < limit;
  }
  if (cot && cot_slot) {
    auto result = co_await AnswerInSteps(std::move(request), q, model, observer, cancel);
    steps_running_.fetch_sub(1);
    if (result && (*result)["metadata"].is_object()) {
      json& stages = (*result)["metadata"]["stages"];
      for (auto& s : pre_stages) stages.insert(stages.begin(), s);
      if (!rewrite_meta.is_null()) (*result)["metadata"]["rewrite"] = rewrite_meta;
      (*result)["execution_time"] = std::chrono::duration<double>(Clock::now() - started).count();
    }
    co_return result;
  }

  if (WillGenerate(request)) q.retrieval_only = true;  // the answer is composed here
  auto retrieval = co_await deps_.search.Search(std::move(q));
  if (!retrieval) {
    Result<json> failed = Fail(retrieval.error());
    co_return failed;
  }
  if (cot) (*retrieval)["metadata"]["cot_skipped"] = "busy: too many chains of thought in progress";
  if (!rewrite_meta.is_null()) {
    (*retrieval)["metadata"]["rewrite"] = rewrite_meta;
    json& stages = (*retrieval)["metadata"]["stages"];
    for (auto it = pre_stages.rbegin(); it != pre_stages.rend(); ++it) stages.insert(stages.begin(), *it);
  }
  if (!WillGenerate(request)) co_return retrieval;
  if (observer && observer->on_stage) {
    double ms = 0;
    for (const auto& s : (*retrieval)["metadata"].value("stages", json::array())) {
      if (s.value("stage", "") == "total") ms = s.value("duration_ms", 0.0);
    }
    observer->on_stage("retrieval", ms);
  }
  co_return co_await RunOn(deps_.blocking_pool, [this, &retrieval, &request, &observer, &cancel] {
    return Compose(std::move(*retrieval), request, observer.get(), cancel.get());
  });
}

boost::asio::awaitable<Result<json>> AnswerService::AnswerInSteps(AnswerRequest request, search::SearchQuery query,
                                                                  LlmProvider* model,
                                                                  std::shared_ptr<const AnswerObserver> observer,
                                                                  std::shared_ptr<const CancelToken> cancel) {
  const auto started = Clock::now();
  if (model != nullptr) {
    // A chain of thought is several calls: about three prompts' worth is asked of the quota.
    if (auto st = CheckQuota(request, 3 * static_cast<std::int64_t>(ProfileOf(request).params.max_new_tokens + 1024));
        !st) {
      co_return Fail(st.error());
    }
  }
  auto executor = co_await boost::asio::this_coro::executor;
  // Each step's retrieval is a retrieval-only search through the caller's scoped store, run on the
  // I/O executor and waited for on the step's own thread.
  RetrieveFn retrieve = [this, executor, &query](const std::string& sub) -> Result<json> {
    search::SearchQuery sq = query;
    sq.question = sub;
    sq.retrieval_only = true;
    auto fut = boost::asio::co_spawn(executor, deps_.search.Search(std::move(sq)), boost::asio::use_future);
    return fut.get();
  };
  auto t = Clock::now();
  auto cot = co_await RunOn(deps_.blocking_pool, [&]() -> Result<CotResult> {
    ChainOfThought chain(model);
    auto r = chain.Run(query.question, retrieve, cancel.get());
    if (model != nullptr) {
      if (r) {
        Record(request, *model, r->usage);
      } else if (auto u = UsageOf(r.error())) {
        Record(request, *model, *u);
      }
    }
    return r;
  });
  if (!cot) co_return Fail(cot.error());
  const double cot_ms = MsSince(t);
  if (observer && observer->on_stage) observer->on_stage("chain_of_thought", cot_ms);
  if (observer && observer->on_token && !cot->final_answer.empty()) (void)observer->on_token(cot->final_answer);

  json out = json::object();
  out["answer"] = cot->final_answer;
  out["query_results"] = cot->query_results;
  json documents = json::array();
  std::set<std::string> seen;
  for (const auto& r : cot->query_results) {
    const json chunk = StringOr(r, "chunk", json::object());
    const json doc = StringOr(chunk, "document_id", nullptr);
    const std::string key = doc.is_string() ? doc.get<std::string>() : doc.dump();
    if (!seen.insert(key).second) continue;
    documents.push_back({{"document_id", doc},
                         {"document_name", StringOr(StringOr(chunk, "metadata", json::object()), "source", nullptr)}});
  }
  out["documents"] = std::move(documents);
  out["rewritten_query"] = query.question;
  out["cot_output"] = cot->cot_output;
  const bool show_steps = !request.query.config.is_object() || request.query.config.value("show_cot_steps", true);
  if (!show_steps) out["cot_output"].erase("reasoning_steps");
  out["status"] = "completed";
  const std::string strategy = cot->cot_output.value("reasoning_strategy", "rules");
  json meta = {
      {"answer_type", strategy == "decomposition" ? "generated" : "extractive"},
      {"mode", "chain_of_thought"},
      {"answer_mode", AnswerModeName(request.mode)},
      {"profile", ProfileOf(request).source},
      {"citations", CitationsOf(cot->query_results, CitedNumbers(cot->final_answer))},
      {"usage", {{"prompt_tokens", cot->usage.prompt_tokens}, {"completion_tokens", cot->usage.completion_tokens}}},
      {"stages", json::array({{{"stage", "chain_of_thought"}, {"duration_ms", cot_ms}},
                              {{"stage", "total"}, {"duration_ms", MsSince(started)}}})}};
  if (!cot->errors.empty()) meta["cot_errors"] = cot->errors;
  if (model != nullptr)
    meta["llm"] = {{"provider", model->name()}, {"model", model->model()}, {"finish_reason", "stop"}};
  out["metadata"] = std::move(meta);
  out["execution_time"] = std::chrono::duration<double>(Clock::now() - started).count();
  co_return out;
}

Result<json> AnswerService::Compose(json out, const AnswerRequest& request, const AnswerObserver* observer,
                                    const CancelToken* cancel) {
  const auto started = Clock::now();
  if (!out.is_object()) return Fail(Error::Internal("the retrieval response is not an object"));
  json& meta = out["metadata"];
  if (!meta.is_object()) meta = json::object();
  // Stages: retrieval's own, its total renamed "retrieval"; then context, generate and the total.
  json stages = json::array();
  double retrieval_ms = 0;
  for (auto& s : meta.value("stages", json::array())) {
    if (s.value("stage", "") == "total") {
      retrieval_ms = s.value("duration_ms", 0.0);
      s["stage"] = "retrieval";
    }
    stages.push_back(std::move(s));
  }
  auto stage = [&](const char* name, double ms) {
    stages.push_back({{"stage", name}, {"duration_ms", ms}});
    if (observer != nullptr && observer->on_stage) observer->on_stage(name, ms);
  };
  auto finish = [&]() -> Result<json> {
    const double total_ms = retrieval_ms + MsSince(started);
    stages.push_back({{"stage", "total"}, {"duration_ms", total_ms}});
    meta["stages"] = std::move(stages);
    out["execution_time"] = total_ms / 1000.0;
    return std::move(out);
  };
  const std::string& question = request.query.question;
  const AnswerProfile& profile = ProfileOf(request);
  if (!profile.provider) return Fail(Error::Internal("Compose needs a language model"));
  LlmProvider& provider = *profile.provider;
  meta["profile"] = profile.source;
  if (!out.contains("query_results") || !out["query_results"].is_array()) out["query_results"] = json::array();
  const json& results = out["query_results"];
  meta["answer_mode"] = AnswerModeName(request.mode);

  // Falls back to the extractive answer, naming the problem.
  auto fallback = [&](const Error& e) -> Result<json> {
    json ex = Extractive(out, question);
    out["answer"] = std::move(ex["answer"]);
    meta["mode"] = "extractive";
    meta["answer_type"] = "extractive";
    meta["citations"] = std::move(ex["citations"]);
    meta["generation_error"] = {{"code", ErrorCodeName(e.code())}, {"message", e.message()}};
    if (observer != nullptr && observer->on_token && out["answer"].is_string() &&
        !out["answer"].get_ref<const std::string&>().empty()) {
      (void)observer->on_token(out["answer"].get_ref<const std::string&>());
    }
    return finish();
  };
  auto failure = [&](Error e) -> Result<json> {
    if (request.mode == AnswerMode::kGenerated) {
      const std::string what = "the language model (" + provider.name() + " " + provider.model() + ")";
      switch (e.code()) {
        case ErrorCode::kRateLimited: return Fail(std::move(e).Wrap(what + " is rate limited"));
        case ErrorCode::kDeadlineExceeded: return Fail(std::move(e).Wrap(what + " timed out"));
        default: return Fail(Error::Unavailable(what + " failed: " + e.message()));
      }
    }
    return fallback(e);
  };

  if (results.empty()) {
    // Nothing to ground an answer on: the model is not asked.
    out["answer"] = nullptr;
    meta["mode"] = "generated";
    meta["answer_type"] = "generated";
    meta["citations"] = json::array();
    meta["usage"] = {{"prompt_tokens", 0}, {"completion_tokens", 0}};
    meta["note"] = "no passage matched the question: the language model was not asked";
    return finish();
  }

  // Optional reranking by the model: passages scored for relevance in batches, reordered, and
  // cut to top_k_rerank. A failed batch keeps its passages' places.
  if (auto top = RerankTopK(request.query.config, results.size()); top && results.size() > 1) {
    auto rt = Clock::now();
    LlmReranker reranker(&provider);
    RerankResult rr = reranker.Rerank(question, PassageTexts(results), cancel);
    Record(request, provider, rr.usage);
    json reordered = json::array();
    for (auto i : rr.order) {
      if (reordered.size() >= *top) break;
      json r = results[i];
      r["rerank_score"] = rr.scored[i] ? json(rr.scores[i]) : json(nullptr);
      reordered.push_back(std::move(r));
    }
    out["query_results"] = std::move(reordered);
    meta["rerank"] = {{"reranked", rr.reranked}, {"top_k", *top}, {"errors", rr.errors.size()}};
    if (!rr.errors.empty()) meta["rerank"]["error"] = rr.errors.front().message();
    stage("rerank", MsSince(rt));
  }

  // The budget and the context.
  auto t = Clock::now();
  const auto empty_prompt = Messages(profile, request, "");
  std::size_t overhead = 8;  // chat-format tokens per message and the reply's priming
  for (const auto& m : empty_prompt) overhead += Count(m.content) + 4;
  const auto window = static_cast<std::int64_t>(profile.context_tokens);
  const std::int64_t raw_budget =
      window - profile.params.max_new_tokens - static_cast<std::int64_t>(overhead) - window / 20;
  if (raw_budget < 32) {
    return failure(Error::InvalidArgument(
        "the question and the prompt leave no room for passages within the model's context window (" +
        std::to_string(profile.context_tokens) + " tokens, " + std::to_string(profile.params.max_new_tokens) +
        " kept for the answer)"));
  }
  std::size_t budget = static_cast<std::size_t>(raw_budget);
  AssembledContext ctx = AssembleContext(results, budget, options_);
  stage("context", MsSince(t));
  if (ctx.passages.empty()) return failure(Error::InvalidArgument("no passage fits the model's context window"));

  // The quota, before the provider is called.
  const std::int64_t prompt_estimate = static_cast<std::int64_t>(overhead + ctx.tokens);
  if (auto st = CheckQuota(request, prompt_estimate); !st) return Fail(st.error());

  // Generation: streamed to the observer, or whole. One retry with half the context when the
  // provider refuses the prompt as too long (our count is an estimate).
  t = Clock::now();
  const bool streaming = observer != nullptr && static_cast<bool>(observer->on_token);
  std::string delivered;
  Result<Generation> gen = Fail(Error::Internal("not called"));
  for (int attempt = 0; attempt < 2; ++attempt) {
    const auto messages = Messages(profile, request, ctx.text);
    if (streaming) {
      gen = provider.Stream(
          messages, profile.params,
          [&](std::string_view delta) {
            if (cancel != nullptr && cancel->cancelled()) return false;
            delivered.append(delta);
            return observer->on_token(delta);
          },
          cancel);
    } else {
      gen = provider.Generate(messages, profile.params, cancel);
    }
    if (gen || attempt > 0 || !delivered.empty() || !LooksLikeContextOverflow(gen.error())) break;
    budget /= 2;
    ctx = AssembleContext(results, budget, options_);
    if (ctx.passages.empty()) break;
    meta["context_retried"] = true;
  }
  const double generate_ms = MsSince(t);

  // Accounting: the provider's figures, else estimates (for a call that produced text).
  TokenUsage usage;
  bool estimated = false;
  if (gen) {
    usage = gen->usage;
  } else if (auto u = UsageOf(gen.error())) {
    usage = *u;
  }
  if (usage.prompt_tokens <= 0 && (gen || !delivered.empty())) {
    usage.prompt_tokens = static_cast<int>(overhead + ctx.tokens);
    estimated = true;
  }
  if (usage.completion_tokens <= 0 && (gen || !delivered.empty())) {
    usage.completion_tokens = static_cast<int>(Count(gen ? gen->text : delivered));
    estimated = estimated || usage.completion_tokens > 0;
  }
  Record(request, provider, usage);
  if (llm_requests_ != nullptr) {
    llm_requests_->With({provider.name(), gen ? "ok" : std::string(ErrorCodeName(gen.error().code()))}).Inc();
  }
  meta["usage"] = {{"prompt_tokens", usage.prompt_tokens}, {"completion_tokens", usage.completion_tokens}};
  if (estimated) meta["usage"]["estimated"] = true;
  meta["context"] = {{"passages", ctx.passages.size()},
                     {"tokens", ctx.tokens},
                     {"budget", budget},
                     {"cut", ctx.cut},
                     {"left_out", ctx.left_out},
                     {"skipped_duplicates", ctx.skipped_duplicates},
                     {"skipped_per_document", ctx.skipped_per_document}};
  stage("generate", generate_ms);

  if (!gen) {
    Error e = gen.error();
    if (e.code() == ErrorCode::kCancelled) {  // the client went away: expected, not a fault
      log::Info("answer generation cancelled",
                {{"provider", provider.name()}, {"streamed_bytes", static_cast<std::int64_t>(delivered.size())}});
      return Fail(std::move(e));
    }
    log::Warn("answer generation failed", {{"provider", provider.name()},
                                           {"model", provider.model()},
                                           {"error", e.ToString()},
                                           {"streamed_bytes", static_cast<std::int64_t>(delivered.size())}});
    // Text already streamed cannot be replaced by another answer: the stream ends with the error.
    if (!delivered.empty()) {
      return Fail(Error::Unavailable("the answer stopped: " + e.message()));
    }
    return failure(std::move(e));
  }

  // Citations: only numbers that were in the prompt.
  std::vector<std::size_t> in_prompt;
  for (const auto& p : ctx.passages) in_prompt.push_back(p.n);
  json invalid = json::array();
  std::vector<std::size_t> valid;
  for (auto n : CitedNumbers(gen->text)) {
    if (std::find(in_prompt.begin(), in_prompt.end(), n) == in_prompt.end()) {
      invalid.push_back(n);
    } else {
      valid.push_back(n);
    }
  }
  out["answer"] = invalid.empty() ? gen->text : StripCitations(gen->text, valid);
  meta["mode"] = "generated";
  meta["answer_type"] = "generated";
  meta["citations"] = CitationsOf(results, valid);
  if (!invalid.empty()) meta["invalid_citations"] = std::move(invalid);
  meta["llm"] = {{"provider", provider.name()},
                 {"model", gen->model.empty() ? provider.model() : gen->model},
                 {"finish_reason", gen->finish_reason}};
  return finish();
}

}  // namespace modulo::generate
