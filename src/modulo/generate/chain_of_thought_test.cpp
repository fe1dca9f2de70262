// ChainOfThought: detection, decomposition (model and rules), per-step retrieval and answers with
// global [n] numbering, dependencies and concurrency, synthesis, fallbacks, cancellation and the
// cot_output shape.
#include "modulo/generate/chain_of_thought.h"

#include <gtest/gtest.h>

#include <mutex>

#include "modulo/generate/answer_service.h"
#include "modulo/generate/query_rewriter.h"
#include "modulo/generate/scripted_provider_test_util.h"

namespace modulo::generate {
namespace {

using json = nlohmann::json;
using testing::PeakOverlap;
using testing::ScriptedProvider;
using testing::Text;

json Hit(const std::string& id, const std::string& doc, const std::string& text, double score, int page = 1) {
  return {{"chunk",
           {{"chunk_id", id},
            {"text", text},
            {"document_id", doc},
            {"metadata", {{"source", doc + ".pdf"}, {"page_number", page}}}}},
          {"score", score}};
}

// A search over a tiny corpus: the hits of the first keyword the question contains.
class FakeSearch {
 public:
  FakeSearch() {
    by_keyword_ = {
        {"hnsw",
         {Hit("c1", "d1", "HNSW is a graph index for approximate nearest neighbour search.", 0.9),
          Hit("c2", "d1", "HNSW builds layers of proximity graphs.", 0.5, 2)}},
        {"bm25",
         {Hit("c3", "d2", "BM25 is a ranking function based on term frequency.", 0.8),
          Hit("c1", "d1", "HNSW is a graph index for approximate nearest neighbour search.", 0.3)}},
        {"latency", {Hit("c4", "d3", "Latency depends on the index type and its parameters.", 0.7)}},
        {"recall", {Hit("c5", "d3", "Recall measures the share of true neighbours found.", 0.6)}},
    };
  }

  RetrieveFn fn() {
    return [this](const std::string& question) -> Result<json> {
      {
        std::lock_guard lock(mu_);
        asked_.push_back(question);
      }
      const std::string lower = LowerAscii(question);
      if (fail_on_ && lower.find(*fail_on_) != std::string::npos) return Fail(Error::Unavailable("index offline"));
      for (const auto& [keyword, hits] : by_keyword_) {
        if (lower.find(keyword) != std::string::npos) return json{{"query_results", hits}};
      }
      return json{{"query_results", json::array()}};
    };
  }

  void FailOn(std::string keyword) { fail_on_ = std::move(keyword); }
  std::vector<std::string> asked() {
    std::lock_guard lock(mu_);
    return asked_;
  }

 private:
  std::vector<std::pair<std::string, std::vector<json>>> by_keyword_;
  std::optional<std::string> fail_on_;
  std::mutex mu_;
  std::vector<std::string> asked_;
};

bool IsDecomposition(const std::vector<ChatMessage>& m) {
  return m.front().content.find("break a complex question") != std::string::npos;
}
bool IsStep(const std::vector<ChatMessage>& m) {
  return m.front().content.find("one step of a larger question") != std::string::npos;
}
bool IsSynthesis(const std::vector<ChatMessage>& m) {
  return m.front().content.find("final answer to a question") != std::string::npos;
}

// The sub-question of a step prompt.
std::string StepQuestion(const std::string& user) { return user.substr(user.rfind("\nQuestion: ") + 11); }

// A step answer citing the first passage of its prompt, plus a number that was not in it.
Result<Generation> StepAnswer(const std::vector<ChatMessage>& m) {
  const std::string& user = m.back().content;
  const auto cited = CitedNumbers(std::string_view(user).substr(user.find("Passages:")));
  return Text("Answer to " + StepQuestion(user) + " [" + std::to_string(cited.at(0)) + "] [99]");
}

constexpr std::string_view kDecomposition = R"(```json
[{"question": "What is HNSW?", "depends_on": []},
 {"question": "What is BM25?", "depends_on": []},
 {"question": "Which has lower latency?", "depends_on": [1, 2]}]
```)";

// A model that decomposes with `decomposition`, answers steps with StepAnswer and synthesises.
void Script(ScriptedProvider& llm, std::string decomposition = std::string(kDecomposition)) {
  llm.OnCall([decomposition](const std::vector<ChatMessage>& m) -> Result<Generation> {
    if (IsDecomposition(m)) return Text(decomposition);
    if (IsStep(m)) return StepAnswer(m);
    if (IsSynthesis(m)) return Text("Final answer [1] [2] [42].");
    return Fail(Error::Internal("unexpected prompt"));
  });
}

std::vector<ScriptedProvider::Call> StepCalls(const ScriptedProvider& llm) {
  std::vector<ScriptedProvider::Call> out;
  for (auto& c : llm.calls()) {
    if (IsStep(c.messages)) out.push_back(std::move(c));
  }
  return out;
}

const ScriptedProvider::Call& StepCallFor(const std::vector<ScriptedProvider::Call>& calls, const std::string& q) {
  for (const auto& c : calls) {
    if (StepQuestion(c.user()) == q) return c;
  }
  throw std::runtime_error("no step call for " + q);
}

std::vector<std::size_t> AttributedNumbers(const json& step) {
  std::vector<std::size_t> out;
  for (const auto& a : step["source_attributions"]) out.push_back(a["n"].get<std::size_t>());
  return out;
}

// ---- Detection -----------------------------------------------------------------------------------

TEST(ShouldUseCotTest, ExplicitFlagWins) {
  EXPECT_TRUE(ShouldUseCot("Hi", true));
  EXPECT_FALSE(ShouldUseCot("Compare HNSW and BM25? And why?", false));
}

TEST(ShouldUseCotTest, Heuristics) {
  EXPECT_FALSE(ShouldUseCot("What is BM25?"));
  EXPECT_FALSE(ShouldUseCot("What is vsphere?"));
  EXPECT_TRUE(ShouldUseCot("What is BM25? What is HNSW?"));
  EXPECT_TRUE(ShouldUseCot("Compare HNSW and BM25"));
  EXPECT_TRUE(ShouldUseCot("What is the difference between Milvus and PostgreSQL"));
  EXPECT_TRUE(ShouldUseCot("HNSW vs. brute force"));
  EXPECT_TRUE(ShouldUseCot("Milvus versus Qdrant"));
  // A single "why" or "how does X change" is one question: no decomposition.
  EXPECT_FALSE(ShouldUseCot("Why is recall lower with small ef?"));
  EXPECT_FALSE(ShouldUseCot("How does a spacecraft change orbits?"));
  EXPECT_TRUE(ShouldUseCot("How does chunk size affect recall?"));
  EXPECT_TRUE(ShouldUseCot("What is a reranker and how is it trained"));
  EXPECT_TRUE(ShouldUseCot("pros and cons of Milvus"));
  EXPECT_TRUE(ShouldUseCot("Explain step by step how ingestion works"));
  EXPECT_TRUE(ShouldUseCot("What is the relationship between chunk size and recall"));
  std::string words;
  for (int i = 0; i < 25; ++i) words += "word ";
  EXPECT_FALSE(ShouldUseCot(words));
  EXPECT_TRUE(ShouldUseCot(words + "more"));
  EXPECT_FALSE(ShouldUseCot(words + "more", std::nullopt, 30));
}

// ---- Decomposition -------------------------------------------------------------------------------

TEST(ParseSubQuestionsTest, JsonObjectsWithDependencies) {
  const auto subs = ParseSubQuestions(
      R"(Sure: [{"question": "What is A?", "depends_on": []}, {"question": "What is B?", "depends_on": [1]},
          {"question": "How do A and B differ?", "depends_on": [1, 2, 3, 0, "2", 9]}])",
      5);
  ASSERT_EQ(subs.size(), 3u);
  EXPECT_EQ(subs[0].question, "What is A?");
  EXPECT_TRUE(subs[0].depends_on.empty());
  EXPECT_EQ(subs[1].depends_on, (std::vector<std::size_t>{1}));
  EXPECT_EQ(subs[2].question, "How do A and B differ?");
  EXPECT_EQ(subs[2].depends_on, (std::vector<std::size_t>{1, 2}));  // itself, 0 and later ones dropped
}

TEST(ParseSubQuestionsTest, StringsWrappersAndLines) {
  EXPECT_EQ(ParseSubQuestions(R"(["What is A?", "What is B?"])", 5).size(), 2u);
  const auto wrapped = ParseSubQuestions(R"({"sub_questions": ["What is A?", {"sub_question": "Why B?"}]})", 5);
  ASSERT_EQ(wrapped.size(), 2u);
  EXPECT_EQ(wrapped[1].question, "Why B?");
  const auto lines =
      ParseSubQuestions("Here are the sub-questions:\n1. What is A?\n2) **What is B?**\nStep 3: Why does A beat B?\n"
                        "These cover the question.",
                        5);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1].question, "What is B?");
  EXPECT_EQ(lines[2].question, "Why does A beat B?");
  const auto statements = ParseSubQuestions("- Define the term A\n- Describe how B works", 5);
  ASSERT_EQ(statements.size(), 2u);
  EXPECT_EQ(statements[0].question, "Define the term A");
  EXPECT_TRUE(ParseSubQuestions("Sure.", 5).empty());
  EXPECT_TRUE(ParseSubQuestions("", 5).empty());
}

TEST(ParseSubQuestionsTest, DuplicatesAndTheCap) {
  const auto subs = ParseSubQuestions(
      R"(["What is A?", "what is a?", {"question": "Why B?", "depends_on": [2]}])", 5);
  ASSERT_EQ(subs.size(), 2u);
  EXPECT_EQ(subs[1].question, "Why B?");
  EXPECT_EQ(subs[1].depends_on, (std::vector<std::size_t>{1}));  // on the copy that was kept
  EXPECT_EQ(ParseSubQuestions(R"(["Q one?", "Q two?", "Q three?", "Q four?", "Q five?", "Q six?"])", 4).size(), 4u);
}

TEST(SplitQuestionTest, Comparisons) {
  auto questions = [](std::string_view q) {
    std::vector<std::string> out;
    for (const auto& s : SplitQuestion(q, 5)) {
      EXPECT_TRUE(s.depends_on.empty());
      out.push_back(s.question);
    }
    return out;
  };
  EXPECT_EQ(questions("Compare HNSW and BM25"),
            (std::vector<std::string>{"What is HNSW?", "What is BM25?", "Compare HNSW and BM25"}));
  EXPECT_EQ(questions("What is the difference between Milvus and PostgreSQL in terms of cost?"),
            (std::vector<std::string>{"What is Milvus?", "What is PostgreSQL?",
                                      "What is the difference between Milvus and PostgreSQL in terms of cost?"}));
  EXPECT_EQ(questions("HNSW vs brute force for small collections?"),
            (std::vector<std::string>{"What is HNSW?", "What is brute force?",
                                      "HNSW vs brute force for small collections?"}));
  EXPECT_EQ(questions("What is BM25? How does HNSW work?"),
            (std::vector<std::string>{"What is BM25?", "How does HNSW work?"}));
  EXPECT_EQ(questions("What is HNSW and how does it affect latency?"),
            (std::vector<std::string>{"What is HNSW?", "How does it affect latency?"}));
  EXPECT_EQ(questions("Define BM25; list its parameters"),
            (std::vector<std::string>{"Define BM25", "List its parameters"}));
  EXPECT_EQ(questions("What are the pros and cons of HNSW?"),
            (std::vector<std::string>{"What are the pros and cons of HNSW?"}));
  EXPECT_EQ(SplitQuestion("A? B c? D e? F g? H i? J k?", 3).size(), 3u);
}

// ---- The run -------------------------------------------------------------------------------------

TEST(ChainOfThoughtTest, ModelRunHasRagModulosShapeAndGlobalNumbering) {
  ScriptedProvider llm;
  Script(llm);
  FakeSearch search;
  ChainOfThought cot(&llm);
  auto res = cot.Run("Compare HNSW and BM25 for latency", search.fn());
  ASSERT_TRUE(res) << res.error().ToString();

  // Merged results: one per chunk, best score first (c1 keeps 0.9, not 0.3).
  std::vector<std::string> ids;
  for (const auto& r : res->query_results) ids.push_back(r["chunk"]["chunk_id"]);
  EXPECT_EQ(ids, (std::vector<std::string>{"c1", "c3", "c4", "c2"}));
  EXPECT_EQ(res->query_results[0]["score"], 0.9);

  const json& out = res->cot_output;
  for (const char* key : {"original_question", "final_answer", "reasoning_steps", "source_summary", "total_confidence",
                          "token_usage", "total_execution_time", "reasoning_strategy"}) {
    EXPECT_TRUE(out.contains(key)) << key;
  }
  EXPECT_EQ(out["original_question"], "Compare HNSW and BM25 for latency");
  EXPECT_EQ(out["reasoning_strategy"], "decomposition");
  EXPECT_EQ(out["decomposition_method"], "llm");
  EXPECT_EQ(out["synthesis_method"], "llm");
  EXPECT_EQ(out["final_answer"], "Final answer [1] [2].");  // [42] was in no prompt
  EXPECT_EQ(res->final_answer, out["final_answer"]);
  EXPECT_TRUE(res->errors.empty()) << res->errors.dump();

  const json& steps = out["reasoning_steps"];
  ASSERT_EQ(steps.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(steps[i]["step_number"], i + 1);
    for (const char* key : {"question", "intermediate_answer", "confidence_score", "source_attributions", "token_usage",
                            "execution_time"}) {
      EXPECT_TRUE(steps[i].contains(key)) << key;
    }
    EXPECT_EQ(steps[i]["token_usage"], 5);  // one call of the fake's {3, 2}
    EXPECT_DOUBLE_EQ(steps[i]["confidence_score"].get<double>(), 0.8);
    EXPECT_GE(steps[i]["execution_time"].get<double>(), 0.0);
  }
  EXPECT_EQ(steps[0]["question"], "What is HNSW?");
  EXPECT_EQ(steps[2]["depends_on"], json::array({1, 2}));
  // Numbers are positions in the merged query_results, in the prompts as in the answers; [99] was dropped.
  EXPECT_EQ(steps[0]["intermediate_answer"], "Answer to What is HNSW? [1]");
  EXPECT_EQ(steps[2]["intermediate_answer"], "Answer to Which has lower latency? [3]");
  EXPECT_EQ(AttributedNumbers(steps[0]), (std::vector<std::size_t>{1, 4}));
  EXPECT_EQ(AttributedNumbers(steps[1]), (std::vector<std::size_t>{2, 1}));
  const json& a = steps[1]["source_attributions"][1];
  EXPECT_EQ(a["chunk_id"], "c1");
  EXPECT_EQ(a["document_id"], "d1");
  EXPECT_EQ(a["source"], "d1.pdf");
  EXPECT_EQ(a["page_number"], 1);
  EXPECT_EQ(a["score"], 0.3);  // the step's own score of that chunk

  const auto calls = StepCalls(llm);
  ASSERT_EQ(calls.size(), 3u);
  const auto& hnsw = StepCallFor(calls, "What is HNSW?");
  EXPECT_NE(hnsw.user().find("[1] d1.pdf, page 1\nHNSW is a graph index"), std::string::npos);
  EXPECT_NE(hnsw.user().find("[4] d1.pdf, page 2\nHNSW builds layers"), std::string::npos);
  EXPECT_NE(hnsw.user().find("Overall question: Compare HNSW and BM25 for latency"), std::string::npos);

  const json& summary = out["source_summary"];
  EXPECT_EQ(summary["all_sources"].size(), 4u);
  ASSERT_EQ(summary["primary_sources"].size(), 2u);
  EXPECT_EQ(summary["primary_sources"][0]["chunk_id"], "c1");
  EXPECT_EQ(summary["primary_sources"][1]["chunk_id"], "c3");
  EXPECT_EQ(summary["source_usage_by_step"]["3"], json::array({"c4"}));

  // Tokens: decomposition, three steps, synthesis.
  EXPECT_EQ(res->usage.prompt_tokens, 15);
  EXPECT_EQ(res->usage.completion_tokens, 10);
  EXPECT_EQ(out["token_usage"], 25);
  EXPECT_DOUBLE_EQ(out["total_confidence"].get<double>(), 0.8);
  EXPECT_GE(out["total_execution_time"].get<double>(), 0.0);

  // The synthesis saw every step's answer.
  const auto all = llm.calls();
  const auto synth = std::find_if(all.begin(), all.end(), [](const auto& c) { return IsSynthesis(c.messages); });
  ASSERT_NE(synth, all.end());
  EXPECT_NE(synth->user().find("Step 1: What is HNSW?\nAnswer to What is HNSW? [1]"), std::string::npos);
  EXPECT_NE(synth->user().find("Step 3: Which has lower latency?\nAnswer to Which has lower latency? [3]"),
            std::string::npos);
  EXPECT_TRUE(synth->user().ends_with("Question: Compare HNSW and BM25 for latency"));
}

TEST(ChainOfThoughtTest, IndependentStepsOverlapAndDependentStepsSeeEarlierAnswers) {
  ScriptedProvider llm;
  Script(llm);
  llm.SetDelay(std::chrono::milliseconds(150));
  FakeSearch search;
  ChainOfThought cot(&llm);
  auto res = cot.Run("Compare HNSW and BM25 for latency", search.fn());
  ASSERT_TRUE(res) << res.error().ToString();

  const auto calls = StepCalls(llm);
  ASSERT_EQ(calls.size(), 3u);
  const auto& one = StepCallFor(calls, "What is HNSW?");
  const auto& two = StepCallFor(calls, "What is BM25?");
  const auto& three = StepCallFor(calls, "Which has lower latency?");
  EXPECT_LT(one.started, two.ended);  // 1 and 2 ran at the same time
  EXPECT_LT(two.started, one.ended);
  EXPECT_GE(three.started, one.ended);  // 3 waited for both
  EXPECT_GE(three.started, two.ended);
  EXPECT_NE(three.user().find("Findings of earlier steps:\nStep 1: What is HNSW?\nAnswer to What is HNSW? [1]\n\n"
                              "Step 2: What is BM25?\nAnswer to What is BM25? [1]"),
            std::string::npos);
  EXPECT_EQ(one.user().find("Findings of earlier steps"), std::string::npos);
}

TEST(ChainOfThoughtTest, StepConcurrencyIsLimited) {
  ScriptedProvider llm;
  Script(llm, R"(["What is HNSW?", "What is BM25?", "What drives latency?", "What is recall?"])");
  llm.SetDelay(std::chrono::milliseconds(60));
  FakeSearch search;
  CotOptions o;
  o.max_concurrency = 2;
  auto res = ChainOfThought(&llm, o).Run("Explain HNSW, BM25, latency and recall step by step", search.fn());
  ASSERT_TRUE(res);
  const auto calls = StepCalls(llm);
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(PeakOverlap(calls), 2u);
  EXPECT_EQ(search.asked().size(), 4u);
}

TEST(ChainOfThoughtTest, WithoutAModelTheRulesAndExtractiveAnswersAreLabelled) {
  FakeSearch search;
  ChainOfThought cot(nullptr);
  auto res = cot.Run("Compare HNSW and BM25", search.fn());
  ASSERT_TRUE(res);
  const json& out = res->cot_output;
  EXPECT_EQ(out["reasoning_strategy"], "rules");
  EXPECT_EQ(out["decomposition_method"], "rules");
  EXPECT_EQ(out["synthesis_method"], "concatenation");
  EXPECT_EQ(out["token_usage"], 0);
  EXPECT_EQ(TotalTokens(res->usage), 0);
  const json& steps = out["reasoning_steps"];
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0]["question"], "What is HNSW?");
  EXPECT_EQ(steps[1]["question"], "What is BM25?");
  for (const auto& step : steps) {
    const std::string answer = step["intermediate_answer"];
    const auto cited = CitedNumbers(answer);
    EXPECT_FALSE(cited.empty()) << answer;
    const auto allowed = AttributedNumbers(step);
    for (auto n : cited) EXPECT_NE(std::find(allowed.begin(), allowed.end(), n), allowed.end()) << answer;
    EXPECT_DOUBLE_EQ(step["confidence_score"].get<double>(), 0.4);
  }
  EXPECT_NE(steps[1]["intermediate_answer"].get<std::string>().find("BM25 is a ranking function"), std::string::npos);
  const std::string final_answer = res->final_answer;
  EXPECT_TRUE(final_answer.starts_with("What is HNSW?\n"));
  EXPECT_NE(final_answer.find("\n\nWhat is BM25?\n"), std::string::npos);
  EXPECT_TRUE(res->errors.empty());
}

TEST(ChainOfThoughtTest, FailedDecompositionFallsBackToTheRules) {
  for (auto code : {ErrorCode::kUnavailable, ErrorCode::kRateLimited}) {
    ScriptedProvider llm;
    llm.Fail(Error(code, "provider trouble"));  // the decomposition
    Script(llm);
    FakeSearch search;
    auto res = ChainOfThought(&llm).Run("What is HNSW and how does BM25 rank documents?", search.fn());
    ASSERT_TRUE(res);
    EXPECT_EQ(res->cot_output["decomposition_method"], "rules");
    EXPECT_EQ(res->cot_output["reasoning_strategy"], "decomposition");  // the model still synthesised
    const json& steps = res->cot_output["reasoning_steps"];
    ASSERT_EQ(steps.size(), 2u);
    EXPECT_EQ(steps[1]["question"], "How does BM25 rank documents?");
    ASSERT_EQ(res->errors.size(), 1u);
    EXPECT_EQ(res->errors[0]["stage"], "decompose");
    EXPECT_EQ(res->errors[0]["code"], std::string(ErrorCodeName(code)));
  }
}

TEST(ChainOfThoughtTest, UnusableDecompositionFallsBackToTheRules) {
  ScriptedProvider llm;
  Script(llm, R"(["Only one question?"])");
  FakeSearch search;
  auto res = ChainOfThought(&llm).Run("What is BM25? How does HNSW work?", search.fn());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->cot_output["decomposition_method"], "rules");
  EXPECT_EQ(res->cot_output["reasoning_steps"].size(), 2u);
  ASSERT_EQ(res->errors.size(), 1u);
  EXPECT_NE(res->errors[0]["message"].get<std::string>().find("unusable"), std::string::npos);
}

TEST(ChainOfThoughtTest, FailedStepAnswersAreExtractive) {
  ScriptedProvider llm;
  llm.OnCall([](const std::vector<ChatMessage>& m) -> Result<Generation> {
    if (IsDecomposition(m)) return Text(std::string(kDecomposition));
    if (IsStep(m)) return Fail(Error::RateLimited("slow down"));
    return Text("Final [1].");
  });
  FakeSearch search;
  auto res = ChainOfThought(&llm).Run("Compare HNSW and BM25 for latency", search.fn());
  ASSERT_TRUE(res);
  const json& steps = res->cot_output["reasoning_steps"];
  EXPECT_NE(steps[0]["intermediate_answer"].get<std::string>().find("HNSW is a graph index"), std::string::npos);
  ASSERT_EQ(res->errors.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(res->errors[i]["stage"], "answer");
    EXPECT_EQ(res->errors[i]["step"], i + 1);
    EXPECT_EQ(res->errors[i]["code"], "rate_limited");
  }
  EXPECT_EQ(res->cot_output["reasoning_strategy"], "decomposition");
  EXPECT_EQ(res->final_answer, "Final [1].");
}

TEST(ChainOfThoughtTest, FailedSynthesisIsTheLabelledConcatenation) {
  ScriptedProvider llm;
  llm.OnCall([](const std::vector<ChatMessage>& m) -> Result<Generation> {
    if (IsDecomposition(m)) return Text(std::string(kDecomposition));
    if (IsStep(m)) return StepAnswer(m);
    return Fail(Error::Unavailable("down"));
  });
  FakeSearch search;
  auto res = ChainOfThought(&llm).Run("Compare HNSW and BM25 for latency", search.fn());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->cot_output["reasoning_strategy"], "rules");
  EXPECT_EQ(res->cot_output["synthesis_method"], "concatenation");
  EXPECT_EQ(res->final_answer,
            "What is HNSW?\nAnswer to What is HNSW? [1]\n\nWhat is BM25?\nAnswer to What is BM25? [1]\n\n"
            "Which has lower latency?\nAnswer to Which has lower latency? [3]");
  ASSERT_EQ(res->errors.size(), 1u);
  EXPECT_EQ(res->errors[0]["stage"], "synthesize");
  EXPECT_EQ(res->errors[0]["code"], "unavailable");
  EXPECT_EQ(res->usage.prompt_tokens, 12);  // decomposition and three steps; the failed call reported nothing
}

TEST(ChainOfThoughtTest, FailedRetrievalGivesAStepWithoutPassages) {
  ScriptedProvider llm;
  Script(llm);
  FakeSearch search;
  search.FailOn("bm25");
  auto res = ChainOfThought(&llm).Run("Compare HNSW and BM25 for latency", search.fn());
  ASSERT_TRUE(res);
  const json& step = res->cot_output["reasoning_steps"][1];
  EXPECT_EQ(step["intermediate_answer"], "No passage was found for this question.");
  EXPECT_EQ(step["confidence_score"], 0.0);
  EXPECT_TRUE(step["source_attributions"].empty());
  EXPECT_EQ(step["token_usage"], 0);
  EXPECT_EQ(StepCalls(llm).size(), 2u);  // no model call for it
  ASSERT_EQ(res->errors.size(), 1u);
  EXPECT_EQ(res->errors[0]["stage"], "retrieve");
  EXPECT_EQ(res->errors[0]["step"], 2);
}

TEST(ChainOfThoughtTest, CancellationStopsTheRunAndReportsTheUsage) {
  ScriptedProvider llm;
  CancelToken cancel;
  llm.OnCall([&](const std::vector<ChatMessage>& m) -> Result<Generation> {
    if (IsDecomposition(m)) return Text(std::string(kDecomposition));
    cancel.Cancel();  // the client goes away during the first step answer
    return StepAnswer(m);
  });
  CotOptions o;
  o.max_concurrency = 1;
  FakeSearch search;
  auto res = ChainOfThought(&llm, o).Run("Compare HNSW and BM25 for latency", search.fn(), &cancel);
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code(), ErrorCode::kCancelled);
  const json details = json::parse(res.error().details());
  EXPECT_EQ(details["usage"]["prompt_tokens"], 6);  // the decomposition and one step
  EXPECT_EQ(details["usage"]["completion_tokens"], 4);
  EXPECT_EQ(llm.call_count(), 2u);

  ScriptedProvider idle;
  auto before = ChainOfThought(&idle).Run("Compare HNSW and BM25", search.fn(), &cancel);
  ASSERT_FALSE(before);
  EXPECT_EQ(before.error().code(), ErrorCode::kCancelled);
  EXPECT_EQ(idle.call_count(), 0u);
}

TEST(ChainOfThoughtTest, NothingFoundAnywhereSkipsTheSynthesis) {
  ScriptedProvider llm;
  Script(llm, R"(["What is Foo?", "What is Bar?"])");
  FakeSearch search;
  auto res = ChainOfThought(&llm).Run("Compare Foo and Bar", search.fn());
  ASSERT_TRUE(res);
  EXPECT_EQ(llm.call_count(), 1u);  // the decomposition only
  EXPECT_TRUE(res->query_results.empty());
  EXPECT_EQ(res->cot_output["reasoning_strategy"], "rules");
  EXPECT_EQ(res->cot_output["total_confidence"], 0.0);
}

}  // namespace
}  // namespace modulo::generate
