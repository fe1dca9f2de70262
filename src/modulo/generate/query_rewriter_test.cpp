// QueryRewriter (model rewrite, reply cleaning, rules, fallbacks, usage) and the helpers the
// answer-pipeline components share (reply reading, content words, RunTasks).
#include "modulo/generate/query_rewriter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>

#include "modulo/generate/answer_service.h"
#include "modulo/generate/scripted_provider_test_util.h"

namespace modulo::generate {
namespace {

using testing::ScriptedProvider;
using json = nlohmann::json;

const std::vector<ChatMessage> kHistory = {
    {"user", "Tell me about the Milvus vector database"},
    {"assistant", "Milvus is an open-source vector database built for similarity search."},
};

TEST(QueryRewriterTest, WithoutHistoryTheQuestionIsKeptAndTheModelIsNotCalled) {
  ScriptedProvider llm;
  llm.Reply("should not be used");
  QueryRewriter rewriter(&llm);
  auto r = rewriter.Rewrite("  How does it scale?  ", {});
  EXPECT_EQ(r.query, "How does it scale?");
  EXPECT_FALSE(r.rewritten);
  EXPECT_EQ(r.method, "none");
  EXPECT_FALSE(r.error);
  EXPECT_EQ(llm.call_count(), 0u);
  EXPECT_EQ(TotalTokens(r.usage), 0);
  // A history holding only the question itself is no history.
  r = rewriter.Rewrite("How does it scale?", {{"user", "How does it scale?"}});
  EXPECT_EQ(r.method, "none");
  EXPECT_EQ(llm.call_count(), 0u);
}

TEST(QueryRewriterTest, ModelRewriteResolvesFromTheHistoryAndIsCleaned) {
  ScriptedProvider llm;
  llm.Reply("Standalone query: \"How does the Milvus vector database scale?\"\nThis resolves 'it'.", {120, 11});
  QueryRewriter rewriter(&llm);
  auto r = rewriter.Rewrite("How does it scale?", kHistory, "The user compares vector databases.");
  EXPECT_EQ(r.query, "How does the Milvus vector database scale?");
  EXPECT_TRUE(r.rewritten);
  EXPECT_EQ(r.method, "llm");
  EXPECT_FALSE(r.error);
  EXPECT_EQ(r.usage.prompt_tokens, 120);
  EXPECT_EQ(r.usage.completion_tokens, 11);

  ASSERT_EQ(llm.call_count(), 1u);
  const auto call = llm.calls()[0];
  EXPECT_NE(call.system().find("ONE standalone search query"), std::string::npos);
  EXPECT_NE(call.system().find("Reply with the query only"), std::string::npos);
  EXPECT_NE(call.user().find("Summary of the earlier conversation:\nThe user compares vector databases."),
            std::string::npos);
  EXPECT_NE(call.user().find("User: Tell me about the Milvus vector database\nAssistant: Milvus is"),
            std::string::npos);
  EXPECT_TRUE(call.user().ends_with("Follow-up question: How does it scale?\n\nStandalone search query:"));
  EXPECT_EQ(call.params.temperature, 0.0);
}

TEST(QueryRewriterTest, PromptShowsOnlyTheLatestTurnsCut) {
  ScriptedProvider llm;
  RewriteOptions o;
  o.history_turns = 2;
  o.max_turn_chars = 30;
  QueryRewriter rewriter(&llm, o);
  std::vector<ChatMessage> history = {{"user", "first question about alpha"},
                                      {"assistant", "first answer"},
                                      {"user", "second question about beta"},
                                      {"assistant", std::string(200, 'x')}};
  const auto prompt = rewriter.Prompt("and gamma?", history, "");
  EXPECT_EQ(prompt[1].content.find("alpha"), std::string::npos);
  EXPECT_NE(prompt[1].content.find("User: second question about beta"), std::string::npos);
  EXPECT_NE(prompt[1].content.find("\u2026"), std::string::npos);
  EXPECT_EQ(prompt[1].content.find(std::string(40, 'x')), std::string::npos);
  EXPECT_EQ(prompt[1].content.find("Summary"), std::string::npos);
}

TEST(QueryRewriterTest, CleanReplyReadsMessyReplies) {
  auto clean = [](std::string_view reply) { return QueryRewriter::CleanReply(reply, 100); };
  EXPECT_EQ(clean("```\nHow does Milvus scale?\n```"), "How does Milvus scale?");
  EXPECT_EQ(clean("Here is the standalone query:\n\n1. How does Milvus scale?"), "How does Milvus scale?");
  EXPECT_EQ(clean("  'How does Milvus scale?'  "), "How does Milvus scale?");
  EXPECT_EQ(clean("**Rewritten question:** \u201cHow does Milvus scale?\u201d"), "How does Milvus scale?");
  EXPECT_EQ(clean("Query: Milvus scaling\nExplanation: it refers to Milvus"), "Milvus scaling");
  EXPECT_EQ(clean("How does Milvus scale: shards or replicas?"), "How does Milvus scale: shards or replicas?");
  EXPECT_EQ(clean(""), std::nullopt);
  EXPECT_EQ(clean(" \n```\n```\n"), std::nullopt);
  EXPECT_EQ(clean("Query:"), std::nullopt);
  EXPECT_EQ(clean("I'm sorry, but I cannot rewrite this."), std::nullopt);
  EXPECT_EQ(clean(std::string(101, 'a')), std::nullopt);
}

TEST(QueryRewriterTest, UnusableReplyFallsBackToTheRulesWithTheReason) {
  ScriptedProvider llm;
  llm.Reply("   \n");
  QueryRewriter rewriter(&llm);
  auto r = rewriter.Rewrite("How does it scale?", kHistory);
  EXPECT_EQ(r.method, "rules");
  EXPECT_EQ(r.query, "How does it scale? milvus vector database");
  EXPECT_TRUE(r.rewritten);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error->message().find("unusable"), std::string::npos);
  EXPECT_GT(TotalTokens(r.usage), 0);  // the call was paid for
}

TEST(QueryRewriterTest, ModelFailuresFallBackToTheRules) {
  for (auto code : {ErrorCode::kUnavailable, ErrorCode::kRateLimited, ErrorCode::kDeadlineExceeded}) {
    ScriptedProvider llm;
    llm.Fail(Error(code, "provider trouble"));
    QueryRewriter rewriter(&llm);
    auto r = rewriter.Rewrite("What about its license?", kHistory);
    EXPECT_EQ(r.method, "rules");
    EXPECT_EQ(r.query, "What about its license? milvus vector database");
    ASSERT_TRUE(r.error);
    EXPECT_EQ(r.error->code(), code);
    EXPECT_EQ(TotalTokens(r.usage), 0);
  }
}

TEST(QueryRewriterTest, UsageIsEstimatedWhenTheProviderReportsNone) {
  ScriptedProvider llm;
  llm.Reply("How does the Milvus vector database scale?", {0, 0});
  QueryRewriter rewriter(&llm);
  auto r = rewriter.Rewrite("How does it scale?", kHistory);
  ASSERT_EQ(r.method, "llm");
  std::size_t prompt = 8;
  for (const auto& m : rewriter.Prompt("How does it scale?", kHistory, "")) prompt += EstimateTokens(m.content) + 4;
  EXPECT_EQ(r.usage.prompt_tokens, static_cast<int>(prompt));
  EXPECT_EQ(r.usage.completion_tokens, static_cast<int>(EstimateTokens("How does the Milvus vector database scale?")));
}

TEST(QueryRewriterTest, RulesAppendThePreviousQuestionsContentWordsToFollowUps) {
  QueryRewriter rewriter(nullptr);
  // Pronouns, short questions and "and …"/"what about …" look like follow-ups.
  EXPECT_EQ(rewriter.Rewrite("How does it scale?", kHistory).query, "How does it scale? milvus vector database");
  EXPECT_EQ(rewriter.Rewrite("And the license?", kHistory).query, "And the license? milvus vector database");
  EXPECT_EQ(rewriter.Rewrite("What about replication in clusters of many nodes?", kHistory).query,
            "What about replication in clusters of many nodes? milvus vector database");
  EXPECT_EQ(rewriter.Rewrite("Why?", kHistory).query, "Why? milvus vector database");
  // Words the question already has are not repeated.
  EXPECT_EQ(rewriter.Rewrite("Is that database fast?", kHistory).query, "Is that database fast? milvus vector");
  // A self-contained question stays as it is.
  auto r = rewriter.Rewrite("Which embedding models does Modulo support for English text?", kHistory);
  EXPECT_EQ(r.query, "Which embedding models does Modulo support for English text?");
  EXPECT_FALSE(r.rewritten);
  EXPECT_EQ(r.method, "rules");
  EXPECT_FALSE(r.error);
  // The trailing copy of the question in the history is skipped: the previous user question counts.
  auto with_current = kHistory;
  with_current.push_back({"user", "How does it scale?"});
  EXPECT_EQ(rewriter.Rewrite("How does it scale?", with_current).query, "How does it scale? milvus vector database");
  // Only assistant turns: nothing to borrow.
  EXPECT_EQ(rewriter.Rewrite("How does it scale?", {{"assistant", "Hello!"}}).query, "How does it scale?");
}

TEST(QueryRewriterTest, AddedTermsAreCapped) {
  RewriteOptions o;
  o.max_added_terms = 2;
  QueryRewriter rewriter(nullptr, o);
  EXPECT_EQ(rewriter.Rewrite("And it?", kHistory).query, "And it? milvus vector");
}

TEST(QueryRewriterTest, CancelledTokenKeepsTheQuestionWithoutCallingTheModel) {
  ScriptedProvider llm;
  llm.Reply("How does Milvus scale?");
  QueryRewriter rewriter(&llm);
  CancelToken cancel;
  cancel.Cancel();
  auto r = rewriter.Rewrite("How does it scale?", kHistory, "", &cancel);
  EXPECT_EQ(r.query, "How does it scale?");
  EXPECT_FALSE(r.rewritten);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code(), ErrorCode::kCancelled);
  EXPECT_EQ(llm.call_count(), 0u);
}

TEST(QueryRewriterTest, CancelledDuringTheCallCountsTheReportedUsage) {
  ScriptedProvider llm;
  llm.SetDelay(std::chrono::milliseconds(2000));
  llm.Reply("How does Milvus scale?");
  QueryRewriter rewriter(&llm);
  CancelToken cancel;
  std::jthread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cancel.Cancel();
  });
  auto r = rewriter.Rewrite("How does it scale?", kHistory, "", &cancel);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code(), ErrorCode::kCancelled);
  EXPECT_EQ(r.query, "How does it scale?");
  EXPECT_EQ(r.usage.prompt_tokens, 5);  // from the error's details
  EXPECT_EQ(r.usage.completion_tokens, 1);
}

TEST(QueryRewriterTest, ASummaryAloneIsHistoryForTheModel) {
  ScriptedProvider llm;
  llm.Reply("Milvus index types");
  QueryRewriter rewriter(&llm);
  auto r = rewriter.Rewrite("Which index types does it have?", {}, "We discussed Milvus.");
  EXPECT_EQ(r.method, "llm");
  EXPECT_EQ(r.query, "Milvus index types");
  EXPECT_EQ(llm.calls()[0].user().find("Conversation:"), std::string::npos);
  EXPECT_NE(llm.calls()[0].user().find("We discussed Milvus."), std::string::npos);
}

// ---- Shared helpers ----------------------------------------------------------------------------

TEST(ReplyHelpersTest, ReplyLinesDropMarkersFencesAndQuotes) {
  EXPECT_EQ(ReplyLines("```text\n1. \"First?\"\n2) Second\n- third\n* fourth\n\u2022 fifth\nQ6: sixth\n"
                       "Step 7: seventh\n(8) eighth\n\n```"),
            (std::vector<std::string>{"First?", "Second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"}));
  EXPECT_EQ(CleanReplyLine("3.14 is pi"), "3.14 is pi");
  EXPECT_EQ(CleanReplyLine("  **`bold code`**  "), "bold code");
  EXPECT_EQ(CleanReplyLine("1:30 pm"), "1:30 pm");
}

TEST(ReplyHelpersTest, JsonInReplyFindsTheFirstValue) {
  EXPECT_EQ(JsonInReply("```json\n[1, 2]\n```"), json::parse("[1, 2]"));
  EXPECT_EQ(JsonInReply("Sure! {\"a\": \"x]}\"} trailing"), json::parse(R"({"a": "x]}"})"));
  EXPECT_EQ(JsonInReply("see [note] then [3]"), json::parse("[3]"));
  EXPECT_TRUE(JsonInReply("no json [here").is_discarded());
  EXPECT_TRUE(JsonInReply("").is_discarded());
}

TEST(ReplyHelpersTest, CutTextKeepsUtf8AndWords) {
  EXPECT_EQ(CutText("short", 10), "short");
  const std::string cut = CutText("alpha beta gamma delta", 16);
  EXPECT_LE(cut.size(), 16u);
  EXPECT_EQ(cut, "alpha beta \u2026");
  const std::string accents = CutText("\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9", 9);  // 2 bytes each
  EXPECT_LE(accents.size(), 9u);
  EXPECT_EQ(accents, "\u00e9\u00e9 \u2026");
}

TEST(ReplyHelpersTest, WordsAndContentWords) {
  const auto words = TextWords("Don't stop: state-of-the-art café, 3.5 -x");
  EXPECT_EQ(words, (std::vector<std::string_view>{"Don't", "stop", "state-of-the-art", "café", "3", "5", "x"}));
  EXPECT_EQ(ContentWords("What is the HNSW index and how does it compare to the index of 2024?"),
            (std::vector<std::string>{"hnsw", "index"}));
  EXPECT_TRUE(IsFunctionWord("their"));
  EXPECT_TRUE(IsFunctionWord("the"));
  EXPECT_FALSE(IsFunctionWord("milvus"));
}

TEST(ReplyHelpersTest, AddUsageIgnoresNegatives) {
  TokenUsage total{1, 2};
  AddUsage(total, {10, -5});
  EXPECT_EQ(total.prompt_tokens, 11);
  EXPECT_EQ(total.completion_tokens, 2);
  EXPECT_EQ(TotalTokens(total), 13);
}

TEST(RunTasksTest, RunsEveryTaskWithinTheLimit) {
  std::atomic<int> running{0}, peak{0}, done{0};
  RunTasks(8, 3, [&](std::size_t) {
    const int now = ++running;
    int p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    --running;
    ++done;
  });
  EXPECT_EQ(done, 8);
  EXPECT_EQ(peak, 3);
}

TEST(RunTasksTest, DependenciesRunFirst) {
  std::mutex mu;
  std::vector<std::size_t> order;
  // 2 after 0 and 1; 3 after 2; 1 is slow, so without the dependency 2 would start before it ends.
  RunTasks(4, 4, [&](std::size_t i) {
    if (i == 1) std::this_thread::sleep_for(std::chrono::milliseconds(60));
    std::lock_guard lock(mu);
    order.push_back(i);
  }, {{}, {}, {0, 1}, {2, 7}});
  ASSERT_EQ(order.size(), 4u);
  EXPECT_EQ(order[2], 2u);
  EXPECT_EQ(order[3], 3u);
}

TEST(RunTasksTest, CancellationSkipsTasksNotStarted) {
  CancelToken cancel;
  std::atomic<int> ran{0};
  const auto skipped = RunTasks(10, 1, [&](std::size_t i) {
    ++ran;
    if (i == 2) cancel.Cancel();
  }, {}, &cancel);
  EXPECT_EQ(ran, 3);
  EXPECT_EQ(skipped, 7u);
}

TEST(RunTasksTest, AnExceptionIsRethrownAfterTheOthersEnded) {
  std::atomic<int> ran{0};
  EXPECT_THROW(RunTasks(5, 2, [&](std::size_t i) {
                 ++ran;
                 if (i == 1) throw std::runtime_error("boom");
               }),
               std::runtime_error);
  EXPECT_EQ(ran, 5);
  EXPECT_EQ(RunTasks(0, 2, [](std::size_t) {}), 0u);
}

}  // namespace
}  // namespace modulo::generate
