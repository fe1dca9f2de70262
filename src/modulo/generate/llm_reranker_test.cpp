// LlmReranker: score parsing, ordering, batching and its concurrency, fallbacks and usage.
#include "modulo/generate/llm_reranker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <regex>

#include "modulo/generate/query_rewriter.h"
#include "modulo/generate/scripted_provider_test_util.h"

namespace modulo::generate {
namespace {

using testing::PeakOverlap;
using testing::ScriptedProvider;
using Scores = std::vector<std::optional<double>>;

Scores Parse(std::string_view reply, std::size_t count) { return LlmReranker::ParseScores(reply, count); }

TEST(RerankParseTest, ReadsTheCommonLineForms) {
  EXPECT_EQ(Parse("1: 7\n2: 3\n3: 9", 3), (Scores{7, 3, 9}));
  EXPECT_EQ(Parse("1. 7\n2. 3.5", 2), (Scores{7, 3.5}));
  EXPECT_EQ(Parse("[1] 8\n[2] 2", 2), (Scores{8, 2}));
  EXPECT_EQ(Parse("Here are the scores:\nPassage 1: 8/10\n**Passage 2**: Score: 4\n", 2), (Scores{8, 4}));
  EXPECT_EQ(Parse("1 - 6 (mentions the topic)\n2) 1", 2), (Scores{6, 1}));
  EXPECT_EQ(Parse("1. The passage defines BM25 (score: 9)\n2. Unrelated, score 0", 2), (Scores{9, 0}));
}

TEST(RerankParseTest, ReadsJson) {
  EXPECT_EQ(Parse("[7, 3, 5]", 3), (Scores{7, 3, 5}));
  EXPECT_EQ(Parse("```json\n[{\"id\": 2, \"score\": 9}, {\"id\": 1, \"score\": 1}]\n```", 2), (Scores{1, 9}));
  EXPECT_EQ(Parse(R"({"1": 4, "2": "6"})", 2), (Scores{4, 6}));
  EXPECT_EQ(Parse(R"(Result: {"scores": [2, 8]})", 2), (Scores{2, 8}));
  EXPECT_EQ(Parse(R"([{"passage": "2", "relevance": 7}])", 2), (Scores{std::nullopt, 7}));
  EXPECT_EQ(Parse(R"({"1": {"score": 3}})", 1), (Scores{3}));
}

TEST(RerankParseTest, BareNumbersAreInPassageOrder) {
  EXPECT_EQ(Parse("7\n3/10\n", 2), (Scores{7, 3}));
}

TEST(RerankParseTest, MissingOutOfRangeAndRepeatedScores) {
  EXPECT_EQ(Parse("1: 7\n3: 2", 3), (Scores{7, std::nullopt, 2}));
  EXPECT_EQ(Parse("1: 15\n2: 12.5", 2), (Scores{10, 10}));
  EXPECT_EQ(Parse("1: 4\n5: 9\n0: 3", 2), (Scores{4, std::nullopt}));  // no passage 5 or 0 in the batch
  EXPECT_EQ(Parse("1: 7\n1: 2", 1), (Scores{7}));                      // the first wins
  EXPECT_EQ(Parse("I cannot rate these passages.", 2), (Scores{std::nullopt, std::nullopt}));
  EXPECT_EQ(Parse("", 2), (Scores{std::nullopt, std::nullopt}));
  EXPECT_TRUE(Parse("1: 7", 0).empty());
}

TEST(LlmRerankerTest, OrdersByScoreWithTiesInInputOrder) {
  ScriptedProvider llm;
  llm.Reply("1: 2\n2: 9\n3: 5\n4: 9", {40, 12});
  LlmReranker reranker(&llm);
  auto r = reranker.Rerank("what is bm25?", {"alpha", "bravo", "charlie", "delta"});
  EXPECT_EQ(r.order, (std::vector<std::size_t>{1, 3, 2, 0}));
  EXPECT_EQ(r.scores, (std::vector<double>{2, 9, 5, 9}));
  EXPECT_EQ(r.scored, (std::vector<bool>{true, true, true, true}));
  EXPECT_TRUE(r.reranked);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.usage.prompt_tokens, 40);
  EXPECT_EQ(r.usage.completion_tokens, 12);

  const auto call = llm.calls().at(0);
  EXPECT_NE(call.system().find("\"<passage number>: <score>\""), std::string::npos);
  EXPECT_NE(call.user().find("Question: what is bm25?"), std::string::npos);
  EXPECT_NE(call.user().find("[1] alpha\n\n[2] bravo\n\n[3] charlie\n\n[4] delta"), std::string::npos);
  EXPECT_NE(call.user().find("Scores for passages 1 to 4"), std::string::npos);
}

TEST(LlmRerankerTest, UnscoredPassagesKeepANeutralScoreAndTheirRelativeOrder) {
  ScriptedProvider llm;
  llm.Reply("2: 9\n4: 1");
  LlmReranker reranker(&llm);
  auto r = reranker.Rerank("q", {"a", "b", "c", "d", "e"});
  EXPECT_EQ(r.order, (std::vector<std::size_t>{1, 0, 2, 4, 3}));
  EXPECT_EQ(r.scores, (std::vector<double>{5, 9, 5, 1, 5}));
  EXPECT_EQ(r.scored, (std::vector<bool>{false, true, false, true, false}));
  EXPECT_TRUE(r.errors.empty());
}

TEST(LlmRerankerTest, PassagesAreCutInThePrompt) {
  ScriptedProvider llm;
  llm.Reply("1: 5");
  RerankOptions o;
  o.max_passage_chars = 100;
  LlmReranker reranker(&llm, o);
  const std::string long_passage(5000, 'x');
  (void)reranker.Rerank("q", {long_passage});
  const std::string user = llm.calls().at(0).user();
  EXPECT_LT(user.size(), 300u);
  EXPECT_NE(user.find("\u2026"), std::string::npos);
}

TEST(LlmRerankerTest, BatchesRunConcurrentlyWithinTheLimit) {
  ScriptedProvider llm;
  llm.SetDelay(std::chrono::milliseconds(80));
  // Each passage "p<k>" gets score k % 11, whatever batch it lands in.
  llm.OnCall([](const std::vector<ChatMessage>& m) {
    std::string reply;
    const std::regex line(R"(\[(\d+)\] p(\d+))");
    const std::string& user = m.back().content;
    for (std::sregex_iterator it(user.begin(), user.end(), line), end; it != end; ++it) {
      reply += (*it)[1].str() + ": " + std::to_string(std::stoi((*it)[2].str()) % 11) + "\n";
    }
    return testing::Text(reply);
  });
  std::vector<std::string> texts;
  for (int k = 0; k < 20; ++k) texts.push_back("p" + std::to_string(k));
  std::vector<std::string_view> passages(texts.begin(), texts.end());
  LlmReranker reranker(&llm);  // batches of 8, 2 at once
  const auto t = std::chrono::steady_clock::now();
  auto r = reranker.Rerank("q", passages);
  const auto elapsed = std::chrono::steady_clock::now() - t;

  const auto calls = llm.calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(PeakOverlap(calls), 2u);
  EXPECT_GE(elapsed, std::chrono::milliseconds(160));  // 3 batches, 2 at a time
  for (const auto& c : calls) EXPECT_EQ(c.user().find("[9]"), std::string::npos);
  for (std::size_t i = 0; i < 20; ++i) {
    EXPECT_TRUE(r.scored[i]);
    EXPECT_EQ(r.scores[i], static_cast<double>(i % 11));
  }
  // p10 scores 10, p9 9, then p8 and p19 8 each (ties in input order).
  EXPECT_EQ(r.order[0], 10u);
  EXPECT_EQ(r.order[1], 9u);
  EXPECT_EQ(r.order[2], 8u);
  EXPECT_EQ(r.order[3], 19u);
  EXPECT_EQ(r.usage.prompt_tokens, 9);  // 3 calls × the fake's {3, 2}
  EXPECT_EQ(r.usage.completion_tokens, 6);
}

TEST(LlmRerankerTest, AFailedBatchKeepsItsPassagesNeutralAndIsReported) {
  ScriptedProvider llm;
  llm.Fail(Error::RateLimited("slow down"));
  llm.Reply("1: 1\n2: 2");
  RerankOptions o;
  o.batch_size = 2;
  o.max_concurrency = 1;  // the script is taken in batch order
  LlmReranker reranker(&llm, o);
  auto r = reranker.Rerank("q", {"a", "b", "c", "d"});
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].code(), ErrorCode::kRateLimited);
  EXPECT_NE(r.errors[0].message().find("reranking batch 1 of 2"), std::string::npos);
  EXPECT_EQ(r.scores, (std::vector<double>{5, 5, 1, 2}));
  EXPECT_EQ(r.order, (std::vector<std::size_t>{0, 1, 3, 2}));
  EXPECT_TRUE(r.reranked);
}

TEST(LlmRerankerTest, AllBatchesFailingKeepsTheInputOrder) {
  for (auto code : {ErrorCode::kUnavailable, ErrorCode::kRateLimited}) {
    ScriptedProvider llm;
    llm.Fail(Error(code, "down"));
    LlmReranker reranker(&llm);
    auto r = reranker.Rerank("q", {"a", "b", "c"});
    EXPECT_EQ(r.order, (std::vector<std::size_t>{0, 1, 2}));
    EXPECT_FALSE(r.reranked);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].code(), code);
  }
}

TEST(LlmRerankerTest, AReplyWithoutScoresIsAnError) {
  ScriptedProvider llm;
  llm.Reply("These passages are all somewhat relevant.");
  LlmReranker reranker(&llm);
  auto r = reranker.Rerank("q", {"a", "b"});
  EXPECT_EQ(r.order, (std::vector<std::size_t>{0, 1}));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.errors[0].message().find("somewhat relevant"), std::string::npos);
  EXPECT_GT(TotalTokens(r.usage), 0);
}

TEST(LlmRerankerTest, WithoutAModelTheOrderIsKept) {
  LlmReranker reranker(nullptr);
  auto r = reranker.Rerank("q", {"a", "b", "c"});
  EXPECT_EQ(r.order, (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ(r.scores, (std::vector<double>{5, 5, 5}));
  EXPECT_FALSE(r.reranked);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_TRUE(LlmReranker(nullptr).Rerank("q", {}).order.empty());
}

TEST(LlmRerankerTest, CancellationStopsFurtherBatches) {
  ScriptedProvider llm;
  CancelToken cancel;
  llm.OnCall([&](const std::vector<ChatMessage>&) {
    cancel.Cancel();  // the first batch cancels the rest
    return testing::Text("1: 9\n2: 1");
  });
  RerankOptions o;
  o.batch_size = 2;
  o.max_concurrency = 1;
  LlmReranker reranker(&llm, o);
  auto r = reranker.Rerank("q", {"a", "b", "c", "d", "e", "f"}, &cancel);
  EXPECT_EQ(llm.call_count(), 1u);
  EXPECT_EQ(r.order, (std::vector<std::size_t>{0, 2, 3, 4, 5, 1}));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].code(), ErrorCode::kCancelled);

  ScriptedProvider idle;
  auto none = LlmReranker(&idle).Rerank("q", {"a"}, &cancel);  // already cancelled: no call
  EXPECT_EQ(idle.call_count(), 0u);
  ASSERT_FALSE(none.errors.empty());
  EXPECT_EQ(none.errors.back().code(), ErrorCode::kCancelled);
}

}  // namespace
}  // namespace modulo::generate
