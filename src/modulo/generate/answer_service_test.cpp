// AnswerService: context assembly, citations, fallbacks, streaming, cancellation, token accounting
// and the quota — against the local provider fakes (tests/e2e/fakes/llm_providers.py, a real HTTP
// server speaking the providers' protocols) and a real SQLite identity store.
#include "modulo/generate/answer_service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "modulo/core/request_id.h"
#include "modulo/generate/fake_server_test_util.h"
#include "modulo/generate/provider_registry.h"
#include "modulo/index/bm25/bm25_index.h"
#include "modulo/search/index_sync.h"
#include "modulo/store/sqlite/database.h"
#include "modulo/store/sqlite/sqlite_identity_store.h"
#include "modulo/store/sqlite/sqlite_metadata_store.h"

namespace modulo::generate {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::Fake;

std::string Unique(const std::string& id) {
  static std::atomic<int> n{0};
  return id + "-" + std::to_string(++n);
}

ProviderConfig OpenAi() {
  ProviderConfig c;
  c.type = "openai";
  c.model = "answer-test-model";
  c.base_url = Fake().url() + "/v1";
  c.api_key = "sk-test";
  c.timeout = std::chrono::seconds(1);
  c.max_retries = 1;
  c.retry_base_delay = std::chrono::milliseconds(10);
  return c;
}

// One query_results entry in SearchService's shape.
json Hit(const std::string& chunk_id, const std::string& doc, const std::string& source, const std::string& text,
         int page = 1) {
  return {{"chunk",
           {{"chunk_id", chunk_id},
            {"text", text},
            {"document_id", doc},
            {"metadata", {{"source", source}, {"page_number", page}, {"chunk_number", 0}}}}},
          {"score", 1.0}};
}

json Retrieval(std::vector<json> hits) {
  return {{"answer", nullptr},
          {"documents", json::array()},
          {"query_results", std::move(hits)},
          {"rewritten_query", "q"},
          {"status", "completed"},
          {"metadata",
           {{"mode", "retrieval"},
            {"answer_type", nullptr},
            {"citations", json::array()},
            {"stages", {{{"stage", "keyword"}, {"duration_ms", 0.5}}, {{"stage", "total"}, {"duration_ms", 1.0}}}}}}};
}

json ThreeDocs() {
  return Retrieval({Hit("11", "d-volcano", "volcano.md", "A volcano erupts when magma rises through the crust."),
                    Hit("12", "d-bread", "bread.md", "Sourdough is leavened by a starter of wild yeast."),
                    Hit("13", "d-orbit", "orbit.md", "A Hohmann transfer moves a spacecraft between two orbits.")});
}

// A real store stack for the SearchService the AnswerService sits on, and an identity store.
class AnswerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("modulo_answer_test_" + std::to_string(::getpid()) + "_" + NewRequestId());
    fs::create_directories(dir_);
    auto db = store::sqlite::Database::Open((dir_ / "modulo.db").string(), 2);
    ASSERT_TRUE(db) << db.error().ToString();
    db_ = std::move(*db);
    metadata_ = std::make_unique<store::sqlite::SqliteMetadataStore>(*db_);
    identity_ = std::make_unique<store::sqlite::SqliteIdentityStore>(*db_);
    auto bm25 = index::Bm25Index::Create();
    ASSERT_TRUE(bm25);
    keywords_ = std::move(*bm25);
    sync_ = std::make_unique<search::IndexSync>(*metadata_, nullptr, keywords_.get());
    search_ = std::make_unique<search::SearchService>(
        search::SearchDeps{*metadata_, *sync_, nullptr, keywords_.get(), nullptr, "", nullptr, pool_, &registry_},
        search::SearchOptions{});
    store::User u;
    u.name = Unique("alice");
    auto created = identity_->CreateUser(u);
    ASSERT_TRUE(created) << created.error().ToString();
    user_id_ = created->id;
  }
  void TearDown() override {
    search_.reset();
    sync_.reset();
    identity_.reset();
    metadata_.reset();
    db_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // `metrics`: register the service's metrics (once per registry).
  std::unique_ptr<AnswerService> Service(AnswerOptions options = {}, ProviderConfig config = OpenAi(),
                                         bool metrics = true) {
    std::shared_ptr<LlmProvider> provider;
    if (!config.type.empty()) {
      auto p = MakeProvider(config);
      EXPECT_TRUE(p) << p.error().ToString();
      provider = std::move(*p);
    }
    return std::make_unique<AnswerService>(AnswerDeps{*search_, provider, identity_.get(), pool_, metrics ? &registry_ : nullptr},
                                           std::move(options));
  }

  AnswerRequest Request(const std::string& question, AnswerMode mode = AnswerMode::kAuto) {
    AnswerRequest r;
    r.query.question = question;
    r.query.collection_id = "c1";
    r.mode = mode;
    r.user_id = user_id_;
    return r;
  }

  std::int64_t TokensToday() {
    auto u = identity_->GetUsage(user_id_, [] {
      const std::time_t t = std::time(nullptr);
      std::tm tm{};
      gmtime_r(&t, &tm);
      char buf[16];
      std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
      return std::string(buf);
    }());
    EXPECT_TRUE(u) << u.error().ToString();
    return u ? u->llm_tokens_today : -1;
  }

  fs::path dir_;
  ThreadPool pool_{"blocking", 2};
  metrics::Registry registry_;
  std::unique_ptr<store::sqlite::Database> db_;
  std::unique_ptr<store::sqlite::SqliteMetadataStore> metadata_;
  std::unique_ptr<store::sqlite::SqliteIdentityStore> identity_;
  std::unique_ptr<index::Bm25Index> keywords_;
  std::unique_ptr<search::IndexSync> sync_;
  std::unique_ptr<search::SearchService> search_;
  std::string user_id_;
};

TEST(CitationsTest, ReadsMarkersInOrderOfFirstMention) {
  EXPECT_EQ(CitedNumbers("A [2] b [1, 3] c [2][4]."), (std::vector<std::size_t>{2, 1, 3, 4}));
  EXPECT_TRUE(CitedNumbers("[[slow]] [a] [0] [] [ 12345 ] [1").empty());
  EXPECT_EQ(CitedNumbers("x[10]"), (std::vector<std::size_t>{10}));
}

TEST(CitationsTest, StripsNumbersThatWereNotInThePrompt) {
  EXPECT_EQ(StripCitations("Lava flows [1]. Bread rises [9].", {1}), "Lava flows [1]. Bread rises.");
  EXPECT_EQ(StripCitations("Both [1, 9] and [3][9].", {1, 3}), "Both [1] and [3].");
  EXPECT_EQ(StripCitations("Untouched [1] [[tag]].", {1}), "Untouched [1] [[tag]].");
}

TEST(AssembleContextTest, DedupesCapsPerDocumentAndLabelsWithResultPositions) {
  AnswerOptions o;
  o.max_chunks_per_document = 1;
  const json r = Retrieval({Hit("1", "a", "a.md", "Alpha text."), Hit("2", "a", "a.md", "More alpha."),
                            Hit("3", "b", "b.md", "  alpha   TEXT. "), Hit("4", "c", "c.md", "Gamma text.", 7)})["query_results"];
  auto ctx = AssembleContext(r, 1000, o);
  ASSERT_EQ(ctx.passages.size(), 2u);
  EXPECT_EQ(ctx.passages[0].n, 1u);
  EXPECT_EQ(ctx.passages[1].n, 4u);
  EXPECT_EQ(ctx.skipped_per_document, 1u);
  EXPECT_EQ(ctx.skipped_duplicates, 1u);
  EXPECT_NE(ctx.text.find("[4] c.md, page 7\nGamma text."), std::string::npos) << ctx.text;
}

TEST(AssembleContextTest, StaysWithinTheBudget) {
  AnswerOptions o;
  std::vector<json> hits;
  for (int i = 0; i < 30; ++i) {
    std::string text;
    for (int w = 0; w < 200; ++w) text += "word" + std::to_string(i) + "x" + std::to_string(w) + " ";
    hits.push_back(Hit(std::to_string(i), "d" + std::to_string(i), "f.md", text));
  }
  const json r = Retrieval(std::move(hits))["query_results"];
  for (std::size_t budget : {100u, 777u, 3000u}) {
    auto ctx = AssembleContext(r, budget, o);
    EXPECT_LE(ctx.tokens, budget);
    EXPECT_LE(EstimateTokens(ctx.text), budget);
    EXPECT_FALSE(ctx.passages.empty());
    EXPECT_GT(ctx.left_out, 0u);
    EXPECT_TRUE(ctx.cut);
  }
}

TEST_F(AnswerTest, GeneratedAnswerWithCitationsMappedToQueryResults) {
  auto svc = Service();
  // The fake answers "Echo: <the last 8 words of the prompt>": the question's markers come back.
  auto out = svc->Compose(ThreeDocs(), Request("what erupts? see [1] and [3] and [7]"), nullptr, nullptr);
  ASSERT_TRUE(out) << out.error().ToString();
  const json& m = (*out)["metadata"];
  EXPECT_EQ(m["answer_type"], "generated");
  EXPECT_EQ(m["mode"], "generated");
  const std::string answer = (*out)["answer"];
  EXPECT_NE(answer.find("Echo:"), std::string::npos) << answer;
  EXPECT_NE(answer.find("[1]"), std::string::npos);
  EXPECT_EQ(answer.find("[7]"), std::string::npos) << "a marker of no passage is removed: " << answer;
  ASSERT_EQ(m["citations"].size(), 2u) << m.dump();
  EXPECT_EQ(m["citations"][0], (json{{"n", 1}, {"chunk_id", "11"}, {"document_id", "d-volcano"},
                                     {"source", "volcano.md"}, {"page_number", 1}}));
  EXPECT_EQ(m["citations"][1]["chunk_id"], "13");
  EXPECT_EQ(m["invalid_citations"], json::array({7}));
  EXPECT_GT(m["usage"]["prompt_tokens"].get<int>(), 20);
  EXPECT_GT(m["usage"]["completion_tokens"].get<int>(), 0);
  EXPECT_FALSE(m["usage"].contains("estimated"));
  EXPECT_EQ(m["llm"]["provider"], "openai");
  std::vector<std::string> stages;
  for (const auto& s : m["stages"]) stages.push_back(s["stage"]);
  EXPECT_EQ(stages, (std::vector<std::string>{"keyword", "retrieval", "context", "generate", "total"}));
  EXPECT_GE(m["stages"].back()["duration_ms"].get<double>(), 1.0);
}

TEST_F(AnswerTest, CitationsOfPassagesLeftOutOfThePromptAreDropped) {
  AnswerOptions o;
  o.max_chunks_per_document = 1;
  auto svc = Service(o);
  // Result 2 is a second chunk of document a: not in the prompt, so [2] is not a citation.
  const json r = Retrieval({Hit("1", "a", "a.md", "Alpha is first."), Hit("2", "a", "a.md", "Alpha again."),
                            Hit("3", "b", "b.md", "Beta second.")});
  auto out = svc->Compose(r, Request("cite [2] and [3]"), nullptr, nullptr);
  ASSERT_TRUE(out) << out.error().ToString();
  const json& m = (*out)["metadata"];
  ASSERT_EQ(m["citations"].size(), 1u) << m.dump();
  EXPECT_EQ(m["citations"][0]["n"], 3);
  EXPECT_EQ(m["invalid_citations"], json::array({2}));
  EXPECT_EQ(m["context"]["skipped_per_document"], 1);
}

TEST_F(AnswerTest, ContextIsTrimmedToTheWindowSoTheProviderAccepts) {
  // The fake refuses prompts over 2000 words; 40 passages of 200 words would be 8000.
  std::vector<json> hits;
  for (int i = 0; i < 40; ++i) {
    std::string text;
    for (int w = 0; w < 200; ++w) text += "lava" + std::to_string(i) + "x" + std::to_string(w) + " ";
    hits.push_back(Hit(std::to_string(i), "d" + std::to_string(i), "f.md", text));
  }
  AnswerOptions o;
  o.context_tokens = 2048;
  o.params.max_new_tokens = 64;
  auto svc = Service(o);
  auto out = svc->Compose(Retrieval(hits), Request("what about lava [1]?", AnswerMode::kGenerated), nullptr, nullptr);
  ASSERT_TRUE(out) << out.error().ToString();
  const json& m = (*out)["metadata"];
  EXPECT_EQ(m["answer_type"], "generated");
  EXPECT_LE(m["context"]["tokens"].get<std::size_t>(), m["context"]["budget"].get<std::size_t>());
  EXPECT_GT(m["context"]["left_out"].get<int>(), 0);
  EXPECT_LE(m["usage"]["prompt_tokens"].get<int>(), 2000);

  // A window the model does not really have: its "context length exceeded" 400 is retried with
  // half the context, then becomes a fallback (auto) or a 503 (generated) — never a 400 or 500.
  AnswerOptions big;
  big.context_tokens = 200000;
  big.max_passage_tokens = 0;
  auto svc2 = Service(big, OpenAi(), false);
  auto fallback = svc2->Compose(Retrieval(hits), Request("what about lava?"), nullptr, nullptr);
  ASSERT_TRUE(fallback) << fallback.error().ToString();
  EXPECT_EQ((*fallback)["metadata"]["answer_type"], "extractive");
  EXPECT_EQ((*fallback)["metadata"]["generation_error"]["code"], "invalid_argument");
  EXPECT_EQ((*fallback)["metadata"]["context_retried"], true);
  auto refused = svc2->Compose(Retrieval(hits), Request("what about lava?", AnswerMode::kGenerated), nullptr, nullptr);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(refused.error().message().find("context length"), std::string::npos) << refused.error().message();
}

TEST_F(AnswerTest, RateLimitFallsBackToTheExtractiveAnswerOrIs429WhenGeneratedWasAsked) {
  auto svc = Service();
  const std::string id = Unique("rl");
  auto out = svc->Compose(ThreeDocs(), Request("when does a volcano erupt? [[ratelimit_always:" + id + "]]"), nullptr,
                          nullptr);
  ASSERT_TRUE(out) << out.error().ToString();
  const json& m = (*out)["metadata"];
  EXPECT_EQ(m["answer_type"], "extractive");
  EXPECT_EQ(m["generation_error"]["code"], "rate_limited");
  const std::string answer = (*out)["answer"];
  EXPECT_NE(answer.find("magma rises"), std::string::npos) << answer;
  EXPECT_EQ(m["citations"][0]["chunk_id"], "11");
  EXPECT_EQ(Fake().Requests(id), 2) << "1 attempt + 1 retry";
  EXPECT_EQ(TokensToday(), 0) << "a refused call costs nothing";

  // Streaming: the extractive answer arrives as one token.
  std::vector<std::string> tokens;
  AnswerObserver obs;
  obs.on_token = [&](std::string_view t) {
    tokens.emplace_back(t);
    return true;
  };
  auto streamed = svc->Compose(ThreeDocs(), Request("when does a volcano erupt? [[ratelimit_always:" + Unique("rl") +
                                                    "]]"), &obs, nullptr);
  ASSERT_TRUE(streamed) << streamed.error().ToString();
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_EQ(tokens[0], (*streamed)["answer"].get<std::string>());
  EXPECT_EQ((*streamed)["metadata"]["generation_error"]["code"], "rate_limited");

  auto strict = svc->Compose(ThreeDocs(), Request("volcano [[ratelimit_always:" + Unique("rl") + "]]",
                                                  AnswerMode::kGenerated), nullptr, nullptr);
  ASSERT_FALSE(strict);
  EXPECT_EQ(strict.error().code(), ErrorCode::kRateLimited);
  EXPECT_NE(strict.error().message().find("rate limited"), std::string::npos);
}

TEST_F(AnswerTest, TimeoutAndProviderDownFallBack) {
  auto svc = Service();
  auto slow = svc->Compose(ThreeDocs(), Request("volcano erupts [[slow:" + Unique("slow") + "]]"), nullptr, nullptr);
  ASSERT_TRUE(slow) << slow.error().ToString();
  EXPECT_EQ((*slow)["metadata"]["generation_error"]["code"], "deadline_exceeded");
  EXPECT_EQ((*slow)["metadata"]["answer_type"], "extractive");

  ProviderConfig down = OpenAi();
  down.base_url = "http://127.0.0.1:9/v1";
  auto svc2 = Service({}, down, false);
  auto out = svc2->Compose(ThreeDocs(), Request("volcano erupts"), nullptr, nullptr);
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ((*out)["metadata"]["generation_error"]["code"], "unavailable");
  auto strict = svc2->Compose(ThreeDocs(), Request("volcano erupts", AnswerMode::kGenerated), nullptr, nullptr);
  ASSERT_FALSE(strict);
  EXPECT_EQ(strict.error().code(), ErrorCode::kUnavailable);
}

TEST_F(AnswerTest, StreamsTokensAndStages) {
  auto svc = Service();
  std::string streamed;
  std::vector<std::string> stages;
  AnswerObserver obs;
  obs.on_stage = [&](std::string_view s, double) { stages.emplace_back(s); };
  obs.on_token = [&](std::string_view t) {
    streamed.append(t);
    return true;
  };
  auto out = svc->Compose(ThreeDocs(), Request("stream about orbits [3]"), &obs, nullptr);
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ(streamed, (*out)["answer"].get<std::string>());
  EXPECT_EQ(stages, (std::vector<std::string>{"context", "generate"}));
  EXPECT_EQ((*out)["metadata"]["citations"][0]["chunk_id"], "13");
}

TEST_F(AnswerTest, AStreamThatBreaksAfterTextIsAnErrorAndItsTokensAreCounted) {
  auto svc = Service();
  std::string streamed;
  AnswerObserver obs;
  obs.on_token = [&](std::string_view t) {
    streamed.append(t);
    return true;
  };
  auto out = svc->Compose(ThreeDocs(), Request("volcano [[truncate:" + Unique("tr") + "]]"), &obs, nullptr);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code(), ErrorCode::kUnavailable);
  EXPECT_FALSE(streamed.empty());
  EXPECT_GT(TokensToday(), 0);

  // A failure before any text is retried by the client, so the answer is still generated.
  streamed.clear();
  auto early = svc->Compose(ThreeDocs(), Request("when does a volcano erupt [[error500_once:" + Unique("e5") + "]]"),
                            &obs, nullptr);
  ASSERT_TRUE(early) << early.error().ToString();
  EXPECT_EQ((*early)["metadata"]["answer_type"], "generated") << "retried before any text";
}

TEST_F(AnswerTest, AClientThatGoesAwayCancelsTheUpstreamAndTokensAreCounted) {
  auto svc = Service();
  const std::string id = Unique("drip");
  int pieces = 0;
  AnswerObserver obs;
  obs.on_token = [&](std::string_view) { return ++pieces < 3; };
  const auto t = std::chrono::steady_clock::now();
  auto out = svc->Compose(ThreeDocs(), Request("volcano [[drip:" + id + "]]"), &obs, nullptr);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code(), ErrorCode::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - t, std::chrono::seconds(3)) << "the 10 s drip was not read to its end";
  EXPECT_EQ(pieces, 3);
  EXPECT_GT(TokensToday(), 0);
  EXPECT_NE(registry_.Expose().find("llm_requests_total{provider=\"openai\",outcome=\"cancelled\"}"), std::string::npos);

  // Cancelled through the token (the route's path when the connection closes).
  CancelToken cancel;
  AnswerObserver quiet;
  quiet.on_token = [&](std::string_view) {
    cancel.Cancel();
    return true;
  };
  auto out2 = svc->Compose(ThreeDocs(), Request("volcano [[drip:" + Unique("drip") + "]]"), &quiet, &cancel);
  ASSERT_FALSE(out2);
  EXPECT_EQ(out2.error().code(), ErrorCode::kCancelled);
}

TEST_F(AnswerTest, TokensAreAccountedAndTheQuotaRefusesBeforeTheProviderIsCalled) {
  auto svc = Service();
  auto out = svc->Compose(ThreeDocs(), Request("volcano erupts [1]"), nullptr, nullptr);
  ASSERT_TRUE(out) << out.error().ToString();
  const json& usage = (*out)["metadata"]["usage"];
  const std::int64_t total = usage["prompt_tokens"].get<int>() + usage["completion_tokens"].get<int>();
  EXPECT_EQ(TokensToday(), total);
  const std::string metric = "llm_tokens_used_total{provider=\"openai\",model=\"answer-test-model\",user_id=\"" +
                             user_id_ + "\"} " + std::to_string(total);
  EXPECT_NE(registry_.Expose().find(metric), std::string::npos) << registry_.Expose();

  store::QuotaOverrides q;
  q.llm_tokens_per_day = total + 5;  // less than another prompt
  ASSERT_TRUE(identity_->SetQuotaOverrides(user_id_, q));
  const std::string id = Unique("quota");
  auto refused = svc->Compose(ThreeDocs(), Request("volcano erupts [[slow_ok:" + id + "]]"), nullptr, nullptr);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kQuotaExceeded);
  EXPECT_NE(refused.error().details().find("llm_tokens_per_day"), std::string::npos);
  EXPECT_EQ(Fake().Requests(id), 0) << "the provider was not called";
  EXPECT_EQ(TokensToday(), total);

  // System admins are not limited.
  AnswerRequest admin = Request("volcano erupts");
  admin.unlimited = true;
  EXPECT_TRUE(svc->Compose(ThreeDocs(), admin, nullptr, nullptr));
}

TEST_F(AnswerTest, ParseLiftsStreamAndAnswerModeAndRefusesBadValues) {
  auto svc = Service();
  auto a = svc->Parse(json{{"question", "q"}, {"collection_id", "c"}, {"stream", true},
                           {"config_metadata", {{"answer_mode", "generated"}, {"top_k", 3}}}});
  ASSERT_TRUE(a) << a.error().ToString();
  EXPECT_TRUE(a->stream);
  EXPECT_EQ(a->mode, AnswerMode::kGenerated);
  EXPECT_TRUE(svc->WillGenerate(*a));
  auto b = svc->Parse(json{{"question", "q"}, {"collection_id", "c"}, {"answer_mode", "extractive"}});
  ASSERT_TRUE(b);
  EXPECT_FALSE(svc->WillGenerate(*b));
  auto bad = svc->Parse(json{{"question", "q"}, {"collection_id", "c"}, {"stream", "yes"}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("stream"), std::string::npos);
  bad = svc->Parse(json{{"question", "q"}, {"collection_id", "c"}, {"answer_mode", "creative"}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("answer_mode"), std::string::npos);

  auto none = Service({}, ProviderConfig{}, false);
  auto refused = none->Parse(json{{"question", "q"}, {"collection_id", "c"}, {"answer_mode", "generated"}});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnimplemented);
  auto plain = none->Parse(json{{"question", "q"}, {"collection_id", "c"}, {"stream", true}});
  ASSERT_TRUE(plain);
  EXPECT_FALSE(none->WillGenerate(*plain));
}

}  // namespace
}  // namespace modulo::generate
