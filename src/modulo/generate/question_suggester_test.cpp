// QuestionSuggester: the model's questions cleaned, topped up and replaced by the rule-based ones.
#include "modulo/generate/question_suggester.h"

#include <gtest/gtest.h>

#include "modulo/generate/scripted_provider_test_util.h"

namespace modulo::generate {
namespace {

using testing::ScriptedProvider;
using Strings = std::vector<std::string>;

const std::vector<std::string_view> kPassages = {
    "The Vector Store keeps embeddings in memory. Milvus is used when the Vector Store must be shared by many "
    "servers. Embeddings are normalised before indexing.",
    "Milvus stores embeddings in collections. The Bank of England is not related. Embeddings of queries are cached.",
    "Ingestion splits documents into chunks and computes embeddings for every chunk.",
};

TEST(QuestionSuggesterTest, ModelQuestionsAreCleaned) {
  ScriptedProvider llm;
  llm.Reply(
      "Here are 5 questions:\n"
      "1. What is the Vector Store?\n"
      "2) \"Where does Milvus keep embeddings?\"\n"
      "- what is the vector store?\n"  // a repeat
      "* Embeddings are normalised.\n"  // not a question
      "3. Why?\n"                       // too short
      "Question 4: How are queries cached?\n"
      "5. " + std::string(400, 'x') + "?\n"  // too long
      "6. How does ingestion split documents?\n"
      "7. What is computed for every chunk?",
      {300, 60});
  QuestionSuggester suggester(&llm);
  const auto r = suggester.Suggest(kPassages, 4);
  EXPECT_EQ(r.questions, (Strings{"What is the Vector Store?", "Where does Milvus keep embeddings?",
                                  "How are queries cached?", "How does ingestion split documents?"}));
  EXPECT_EQ(r.method, "llm");
  EXPECT_FALSE(r.error);
  EXPECT_EQ(r.usage.prompt_tokens, 300);
  EXPECT_EQ(r.usage.completion_tokens, 60);

  const auto call = llm.calls().at(0);
  EXPECT_NE(call.system().find("Write exactly 4 different questions"), std::string::npos);
  EXPECT_NE(call.user().find("[1] The Vector Store keeps"), std::string::npos);
  EXPECT_NE(call.user().find("\n\n[3] Ingestion splits"), std::string::npos);
  EXPECT_TRUE(call.user().ends_with("Questions:"));
}

TEST(QuestionSuggesterTest, PromptTakesAtMostTheSampleAndCutsPassages) {
  SuggestOptions o;
  o.max_passages = 2;
  o.max_passage_chars = 20;
  QuestionSuggester suggester(nullptr, o);
  const auto prompt = suggester.Prompt({"", "first passage with many words in it", "second", "third"}, 3);
  EXPECT_NE(prompt[1].content.find("[1] first passage \u2026"), std::string::npos);
  EXPECT_NE(prompt[1].content.find("[2] second"), std::string::npos);
  EXPECT_EQ(prompt[1].content.find("third"), std::string::npos);
}

TEST(QuestionSuggesterTest, TooFewModelQuestionsAreToppedUpByTheRules) {
  ScriptedProvider llm;
  llm.Reply("1. Where does Milvus keep embeddings?");
  const auto r = QuestionSuggester(&llm).Suggest(kPassages, 3);
  ASSERT_EQ(r.questions.size(), 3u);
  EXPECT_EQ(r.questions[0], "Where does Milvus keep embeddings?");
  EXPECT_EQ(r.questions[1], "What does the collection say about embeddings?");
  EXPECT_EQ(r.questions[2], "What is Vector Store?");
  EXPECT_EQ(r.method, "llm+rules");
  EXPECT_FALSE(r.error);
}

TEST(QuestionSuggesterTest, ModelFailuresGiveTheRuleBasedQuestions) {
  for (auto code : {ErrorCode::kUnavailable, ErrorCode::kRateLimited}) {
    ScriptedProvider llm;
    llm.Fail(Error(code, "provider trouble"));
    const auto r = QuestionSuggester(&llm).Suggest(kPassages, 5);
    EXPECT_EQ(r.method, "rules");
    EXPECT_EQ(r.questions, QuestionSuggester::QuestionsByRules(kPassages, 5));
    ASSERT_TRUE(r.error);
    EXPECT_EQ(r.error->code(), code);
  }
  ScriptedProvider chatty;
  chatty.Reply("I can suggest some topics: storage, ingestion.");
  const auto r = QuestionSuggester(&chatty).Suggest(kPassages, 5);
  EXPECT_EQ(r.method, "rules");
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code(), ErrorCode::kUnavailable);
}

TEST(QuestionSuggesterTest, RulesUseSalientTerms) {
  const auto terms = QuestionSuggester::SalientTerms(kPassages, 6);
  // "embeddings" is everywhere (5 times); "Vector Store" twice counts double; "Milvus" always capitalised.
  ASSERT_GE(terms.size(), 4u);
  EXPECT_EQ(terms[0], "embeddings");
  EXPECT_EQ(terms[1], "Vector Store");
  EXPECT_EQ(terms[2], "Milvus");
  EXPECT_NE(std::find(terms.begin(), terms.end(), "Bank of England"), terms.end());
  for (const auto& t : terms) {
    EXPECT_NE(t, "vector");  // inside a multiword term already taken
    EXPECT_NE(t, "The Vector Store");
    EXPECT_NE(t, "when");
  }
  const auto questions = QuestionSuggester(nullptr).Suggest(kPassages, 3);
  EXPECT_EQ(questions.method, "rules");
  EXPECT_FALSE(questions.error);
  EXPECT_EQ(questions.questions, (Strings{"What does the collection say about embeddings?", "What is Vector Store?",
                                          "What does the collection say about Milvus?"}));
}

TEST(QuestionSuggesterTest, AtMostNDistinctQuestions) {
  ScriptedProvider llm;
  llm.Reply("What is Milvus used for?\nWHAT IS MILVUS USED FOR?\nWhat is the Vector Store?");
  const auto r = QuestionSuggester(&llm).Suggest(kPassages, 2);
  EXPECT_EQ(r.questions, (Strings{"What is Milvus used for?", "What is the Vector Store?"}));
  EXPECT_EQ(QuestionSuggester(nullptr).Suggest(kPassages, 50).questions.size(),
            QuestionSuggester::QuestionsByRules(kPassages, 50).size());
}

TEST(QuestionSuggesterTest, NothingToAskAbout) {
  ScriptedProvider llm;
  QuestionSuggester suggester(&llm);
  EXPECT_EQ(suggester.Suggest({}, 5).method, "none");
  EXPECT_TRUE(suggester.Suggest({"   ", ""}, 5).questions.empty());
  EXPECT_TRUE(suggester.Suggest(kPassages, 0).questions.empty());
  EXPECT_EQ(llm.call_count(), 0u);
  EXPECT_TRUE(QuestionSuggester::QuestionsByRules({"a an the of"}, 5).empty());
}

}  // namespace
}  // namespace modulo::generate
