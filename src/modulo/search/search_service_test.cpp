// Request validation and question normalisation; the pipeline itself is exercised end to end
// (tests/e2e/test_search.py) and on SciFact (bench/eval).
#include "modulo/search/search_service.h"

#include <gtest/gtest.h>

namespace modulo::search {
namespace {

using json = nlohmann::json;

TEST(NormalizeQuestionTest, CollapsesWhitespaceAndDropsControls) {
  bool cut = true;
  EXPECT_EQ(NormalizeQuestion("  what\tis \n\n  BM25?\x01 ", 100, &cut), "what is BM25?");
  EXPECT_FALSE(cut);
  EXPECT_EQ(NormalizeQuestion(" \t\r\n", 100, &cut), "");
}

TEST(NormalizeQuestionTest, CutsOnACharacterBoundary) {
  bool cut = false;
  const std::string q = "ab\xc3\xa9\xc3\xa9";  // "abéé": 6 bytes
  EXPECT_EQ(NormalizeQuestion(q, 3, &cut), "ab");
  EXPECT_TRUE(cut);
  EXPECT_EQ(NormalizeQuestion(q, 4, &cut), "ab\xc3\xa9");
  EXPECT_EQ(NormalizeQuestion(std::string(100000, 'x'), 8192, &cut).size(), 8192u);
}

// The error message of a request that must be refused.
std::string Refusal(const json& body) {
  auto q = ParseSearchRequest(body, SearchOptions{});
  if (q) return "accepted";
  EXPECT_EQ(q.error().code(), ErrorCode::kInvalidArgument);
  return q.error().message();
}

TEST(ParseSearchRequestTest, AcceptsRagModuloShape) {
  auto q = ParseSearchRequest(json::parse(R"({"question":"  What is HNSW? ","collection_id":"c1","user_id":"u",
      "config_metadata":{"top_k":5,"retriever":"keyword","cot_enabled":false,
                         "filters":{"document_id":["d1"],"page_number":{"gte":2,"lte":4}}}})"),
                              SearchOptions{});
  ASSERT_TRUE(q) << q.error().ToString();
  EXPECT_EQ(q->question, "What is HNSW?");
  EXPECT_EQ(q->collection_id, "c1");
  EXPECT_TRUE(q->filters.is_object());
  EXPECT_TRUE(q->use_cache);
}

TEST(ParseSearchRequestTest, RefusesBadInputNamingTheProblem) {
  EXPECT_NE(Refusal(json::array()).find("JSON object"), std::string::npos);
  EXPECT_NE(Refusal({{"collection_id", "c"}}).find("'question' is required"), std::string::npos);
  EXPECT_NE(Refusal({{"question", " \n\t "}, {"collection_id", "c"}}).find("empty"), std::string::npos);
  EXPECT_NE(Refusal({{"question", 3}, {"collection_id", "c"}}).find("'question'"), std::string::npos);
  EXPECT_NE(Refusal({{"question", "q"}}).find("collection_id"), std::string::npos);
  EXPECT_NE(Refusal({{"question", "q"}, {"collection_id", "c"}, {"colection", 1}}).find("'colection'"),
            std::string::npos);
  auto with = [](json config) { return json{{"question", "q"}, {"collection_id", "c"}, {"config_metadata", config}}; };
  EXPECT_NE(Refusal(with({{"top_k", 0}})).find("top_k"), std::string::npos);
  EXPECT_NE(Refusal(with({{"top_k", 10000}})).find("MAX_TOP_K"), std::string::npos);
  EXPECT_NE(Refusal(with({{"top_k", "5"}})).find("integer"), std::string::npos);
  EXPECT_NE(Refusal(with({{"retriever", "sparse"}})).find("retriever"), std::string::npos);
  EXPECT_NE(Refusal(with({{"vector_weight", 2}})).find("vector_weight"), std::string::npos);
  EXPECT_NE(Refusal(with({{"bogus", 1}})).find("'bogus'"), std::string::npos);
  EXPECT_NE(Refusal(with({{"filters", {{"author", "x"}}}})).find("'author'"), std::string::npos);
  EXPECT_NE(Refusal(with({{"filters", {{"document_id", 5}}}})).find("document_id"), std::string::npos);
  EXPECT_NE(Refusal(with({{"filters", {{"page_number", {{"near", 3}}}}}})).find("'near'"), std::string::npos);
  EXPECT_NE(Refusal(with({{"filters", "x"}})).find("filters"), std::string::npos);
  EXPECT_NE(Refusal(with({{"use_cache", "no"}})).find("use_cache"), std::string::npos);
}

TEST(ParseSearchRequestTest, LongQuestionsAreCutNotRefused) {
  auto q = ParseSearchRequest({{"question", std::string(100 * 1024, 'a')}, {"collection_id", "c"}}, SearchOptions{});
  ASSERT_TRUE(q);
  EXPECT_TRUE(q->question_truncated);
  EXPECT_EQ(q->question.size(), SearchOptions{}.max_question_bytes);
}

TEST(RetrievalSettingsTest, AppliesAndRoundTrips) {
  RetrievalSettings s;
  ASSERT_TRUE(s.Apply(json{{"retriever", "vector"}, {"fusion", "weighted"}, {"top_k", 7}, {"rrf_k", 10}}, 100, "x"));
  EXPECT_EQ(s.retriever, Retriever::kVector);
  EXPECT_EQ(s.top_k, 7u);
  RetrievalSettings t;
  ASSERT_TRUE(t.Apply(s.ToJson(), 100, "x"));
  EXPECT_EQ(t.ToJson(), s.ToJson());
  EXPECT_FALSE(t.Apply(json{{"top_k", 101}}, 100, "x"));
}

}  // namespace
}  // namespace modulo::search

namespace modulo::index {
namespace {

TEST(VectorCollectionNameTest, FollowsTheSeedConventionAndIsSafeForEngines) {
  EXPECT_EQ(VectorCollectionName("user", "7f3c-aa", "0b1e-22"), "user_7f3caa_collection_0b1e22");
  EXPECT_EQ(VectorCollectionName("team", "t1", "c1", 3), "team_t1_collection_c1_g3");
  EXPECT_EQ(VectorCollectionName("user", "", "c1"), "user_none_collection_c1");
  EXPECT_EQ(VectorCollectionName("user", "a b;drop", "c"), "user_a_b_drop_collection_c");
  EXPECT_EQ(VectorCollectionName("user", std::string(300, 'x'), "c").size(), 255u);
}

}  // namespace
}  // namespace modulo::index
