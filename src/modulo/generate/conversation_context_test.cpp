// ConversationContext: the history carried into a turn within its budget, what falls out of it,
// and the rolling summary (model and extractive).
#include "modulo/generate/conversation_context.h"

#include <gtest/gtest.h>

#include "modulo/generate/query_rewriter.h"
#include "modulo/generate/scripted_provider_test_util.h"

namespace modulo::generate {
namespace {

using testing::ScriptedProvider;

// One token a word and no per-message overhead: budgets in words.
ContextOptions Words() {
  ContextOptions o;
  o.count_tokens = [](std::string_view text) { return TextWords(text).size(); };
  o.per_message_overhead = 0;
  return o;
}

std::vector<HistoryMessage> Conversation() {
  return {{1, "user", "a b", 0},
          {2, "assistant", "c d e", 0},
          {3, "user", "f", 0},
          {4, "assistant", "g h", 0}};
}

std::vector<std::int64_t> Contents(const CarriedHistory& h, std::vector<std::string>* roles = nullptr) {
  std::vector<std::int64_t> sizes;
  for (const auto& m : h.messages) {
    sizes.push_back(static_cast<std::int64_t>(TextWords(m.content).size()));
    if (roles != nullptr) roles->push_back(m.role);
  }
  return sizes;
}

TEST(ConversationContextTest, EverythingThatFitsIsCarriedInOrder) {
  ConversationContext ctx(Words());
  const auto h = ctx.Build(Conversation(), std::nullopt, 100);
  ASSERT_EQ(h.messages.size(), 4u);
  EXPECT_EQ(h.messages[0].role, "user");
  EXPECT_EQ(h.messages[0].content, "a b");
  EXPECT_EQ(h.messages[3].content, "g h");
  EXPECT_EQ(h.tokens, 8u);
  EXPECT_EQ(h.turns, 2u);
  EXPECT_FALSE(h.summary_included);
  EXPECT_FALSE(h.needs_summary);
  EXPECT_EQ(h.fold_count, 0u);
}

TEST(ConversationContextTest, OnlyWholeRecentTurnsAndWhatFellOutIsNamed) {
  ConversationContext ctx(Words());
  const auto h = ctx.Build(Conversation(), std::nullopt, 5);  // the older turn (5 words) no longer fits in 2
  ASSERT_EQ(h.messages.size(), 2u);
  EXPECT_EQ(h.messages[0].content, "f");
  EXPECT_EQ(h.messages[1].content, "g h");
  EXPECT_EQ(h.tokens, 3u);
  EXPECT_EQ(h.turns, 1u);
  EXPECT_TRUE(h.needs_summary);
  EXPECT_EQ(h.fold_from_seq, 1);
  EXPECT_EQ(h.fold_to_seq, 2);
  EXPECT_EQ(h.fold_count, 2u);
}

TEST(ConversationContextTest, StoredTokenCountsAreUsedAndATooLargeLastTurnCarriesNothing) {
  auto msgs = Conversation();
  msgs[3].token_count = 10;  // "g h" costs 10 as stored
  ConversationContext ctx(Words());
  const auto h = ctx.Build(msgs, std::nullopt, 5);
  EXPECT_TRUE(h.messages.empty());
  EXPECT_EQ(h.tokens, 0u);
  EXPECT_TRUE(h.needs_summary);
  EXPECT_EQ(h.fold_from_seq, 1);
  EXPECT_EQ(h.fold_to_seq, 4);
}

TEST(ConversationContextTest, FewerDroppedMessagesThanTheMinimumNeedNoSummaryYet) {
  const std::vector<HistoryMessage> msgs = {{1, "assistant", "hello there", 0}, {2, "user", "x y", 0}, {3, "assistant", "z", 0}};
  ConversationContext ctx(Words());
  const auto h = ctx.Build(msgs, std::nullopt, 3);
  EXPECT_EQ(h.messages.size(), 2u);
  EXPECT_EQ(h.fold_count, 1u);
  EXPECT_FALSE(h.needs_summary);
  auto one = Words();
  one.min_fold_messages = 1;
  EXPECT_TRUE(ConversationContext(one).Build(msgs, std::nullopt, 3).needs_summary);
}

TEST(ConversationContextTest, TheSummaryPrefacesAndReplacesTheMessagesItCovers) {
  ConversationContext ctx(Words());
  const auto h = ctx.Build(Conversation(), HistorySummary{"Earlier: the user asked about X.", 2}, 100);
  std::vector<std::string> roles;
  EXPECT_EQ(Contents(h, &roles), (std::vector<std::int64_t>{11, 1, 2}));
  EXPECT_EQ(roles, (std::vector<std::string>{"system", "user", "assistant"}));
  EXPECT_EQ(h.messages[0].content, "Summary of the earlier conversation: Earlier: the user asked about X.");
  EXPECT_TRUE(h.summary_included);
  EXPECT_EQ(h.tokens, 14u);
  EXPECT_FALSE(h.needs_summary);
}

TEST(ConversationContextTest, FoldingStartsAfterTheSummary) {
  auto msgs = Conversation();
  msgs.push_back({5, "user", "i j k", 0});
  msgs.push_back({6, "assistant", "l", 0});
  ConversationContext ctx(Words());
  // Summary (6 words with the preface's 5) + the newest turn (4) fit in 12; the turn of seq 3-4 does not.
  const auto h = ctx.Build(msgs, HistorySummary{"older", 2}, 12);
  EXPECT_EQ(Contents(h), (std::vector<std::int64_t>{6, 3, 1}));
  EXPECT_TRUE(h.needs_summary);
  EXPECT_EQ(h.fold_from_seq, 3);
  EXPECT_EQ(h.fold_to_seq, 4);
}

TEST(ConversationContextTest, ALongSummaryIsCutToItsShare) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "word" + std::to_string(i) + " ";
  ConversationContext ctx(Words());
  const auto h = ctx.Build(Conversation(), HistorySummary{text, 0}, 40);
  ASSERT_TRUE(h.summary_included);
  EXPECT_LE(TextWords(h.messages[0].content).size(), 20u);
  EXPECT_NE(h.messages[0].content.find("\u2026"), std::string::npos);
  EXPECT_LE(h.tokens, 40u);
  EXPECT_EQ(h.messages.size(), 5u);  // and every turn still fits
}

TEST(ConversationContextTest, TokensNeverExceedTheBudget) {
  std::vector<HistoryMessage> msgs;
  for (int i = 1; i <= 12; ++i) {
    msgs.push_back({i, i % 2 ? "user" : "assistant", std::string(static_cast<std::size_t>(i * 7), 'x'), 0});
  }
  ConversationContext ctx;  // EstimateTokens and 4 tokens a message
  for (std::size_t budget = 0; budget < 120; budget += 3) {
    const auto h = ctx.Build(msgs, HistorySummary{std::string(300, 's'), 0}, budget);
    EXPECT_LE(h.tokens, budget);
    if (!h.messages.empty() && h.messages.size() > (h.summary_included ? 1u : 0u)) {
      EXPECT_EQ(h.messages[h.summary_included ? 1 : 0].role, "user");  // whole turns start with the question
    }
  }
  const auto one = ConversationContext().Build({{1, "user", "abcd", 0}}, std::nullopt, 5);
  EXPECT_EQ(one.tokens, 5u);  // 1 + 4
}

TEST(ConversationSummaryTest, ModelSummaryMergesThePreviousOne) {
  ScriptedProvider llm;
  llm.Reply("Summary: The user scales Milvus with sharding; costs depend on nodes.", {90, 14});
  ConversationContext ctx;
  const std::vector<HistoryMessage> fold = {{3, "user", "How do I scale it? Also, what about costs?", 0},
                                            {4, "assistant", "Use sharding. Costs depend on the number of nodes.", 0}};
  const auto s = ctx.Summarize(&llm, "The user asked about Milvus.", fold);
  EXPECT_EQ(s.method, "llm");
  EXPECT_EQ(s.text, "The user scales Milvus with sharding; costs depend on nodes.");
  EXPECT_FALSE(s.error);
  EXPECT_EQ(s.usage.prompt_tokens, 90);
  EXPECT_EQ(s.usage.completion_tokens, 14);
  const std::int64_t before = static_cast<std::int64_t>(EstimateTokens("The user asked about Milvus.")) +
                              static_cast<std::int64_t>(EstimateTokens(fold[0].content) + 4 +
                                                        EstimateTokens(fold[1].content) + 4);
  EXPECT_EQ(s.tokens_saved, before - static_cast<std::int64_t>(EstimateTokens(s.text)));

  const auto call = llm.calls().at(0);
  EXPECT_NE(call.system().find("at most 200 words"), std::string::npos);
  EXPECT_NE(call.system().find("names, numbers, dates, decisions and open questions"), std::string::npos);
  EXPECT_NE(call.user().find("Previous summary:\nThe user asked about Milvus.\n\nNew messages:\n"
                             "User: How do I scale it? Also, what about costs?\nAssistant: Use sharding."),
            std::string::npos);
  EXPECT_TRUE(call.user().ends_with("Updated summary:"));
  ASSERT_TRUE(ctx.Summarize(&llm, "", fold).error);  // the script is exhausted: an error, extractive
  EXPECT_NE(llm.calls().at(1).user().find("Previous summary:\n(none)"), std::string::npos);
}

TEST(ConversationSummaryTest, ModelFailuresGiveTheExtractiveSummary) {
  const std::vector<HistoryMessage> fold = {{3, "user", "How do I scale it? Also, what about costs?", 0},
                                            {4, "assistant", "Use sharding. Costs depend on the number of nodes.", 0}};
  const std::string expected = "The user asked about Milvus.\nUser: How do I scale it?\nAssistant: Use sharding.";
  for (auto code : {ErrorCode::kUnavailable, ErrorCode::kRateLimited}) {
    ScriptedProvider llm;
    llm.Fail(Error(code, "provider trouble"));
    const auto s = ConversationContext().Summarize(&llm, "The user asked about Milvus.", fold);
    EXPECT_EQ(s.method, "extractive");
    EXPECT_EQ(s.text, expected);
    ASSERT_TRUE(s.error);
    EXPECT_EQ(s.error->code(), code);
    EXPECT_GT(s.tokens_saved, 0);
  }
  ScriptedProvider empty;
  empty.Reply("Summary:   ");
  const auto e = ConversationContext().Summarize(&empty, "The user asked about Milvus.", fold);
  EXPECT_EQ(e.method, "extractive");
  ASSERT_TRUE(e.error);
  EXPECT_EQ(e.error->code(), ErrorCode::kUnavailable);
  EXPECT_GT(TotalTokens(e.usage), 0);

  const auto none = ConversationContext().Summarize(nullptr, "The user asked about Milvus.", fold);
  EXPECT_EQ(none.method, "extractive");
  EXPECT_EQ(none.text, expected);
  EXPECT_FALSE(none.error);

  CancelToken cancel;
  cancel.Cancel();
  ScriptedProvider idle;
  const auto cancelled = ConversationContext().Summarize(&idle, "", fold, &cancel);
  EXPECT_EQ(cancelled.method, "extractive");
  ASSERT_TRUE(cancelled.error);
  EXPECT_EQ(cancelled.error->code(), ErrorCode::kCancelled);
  EXPECT_EQ(idle.call_count(), 0u);
}

TEST(ConversationSummaryTest, SummariesAreCapped) {
  ContextOptions o;
  o.max_summary_chars = 100;
  std::vector<HistoryMessage> fold;
  for (int i = 0; i < 10; ++i) {
    fold.push_back({i + 1, i % 2 ? "assistant" : "user", "Message number " + std::to_string(i) + " is here. More.", 0});
  }
  const std::string extractive = ConversationContext(o).ExtractiveSummary(std::string(500, 'p'), fold);
  EXPECT_LE(extractive.size(), 100u);
  EXPECT_TRUE(extractive.ends_with("Assistant: Message number 9 is here."));  // the newest are kept
  EXPECT_EQ(extractive.find("number 0 "), std::string::npos);

  ScriptedProvider llm;
  llm.Reply(std::string(400, 'y'));
  const auto s = ConversationContext(o).Summarize(&llm, "", fold);
  EXPECT_EQ(s.method, "llm");
  EXPECT_LE(s.text.size(), 100u);

  const auto nothing = ConversationContext().Summarize(&llm, " previous ", {});
  EXPECT_EQ(nothing.method, "none");
  EXPECT_EQ(nothing.text, "previous");
  EXPECT_EQ(llm.call_count(), 1u);
}

}  // namespace
}  // namespace modulo::generate
