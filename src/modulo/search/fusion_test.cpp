#include "modulo/search/fusion.h"

#include <gtest/gtest.h>

namespace modulo::search {
namespace {

using index::Hit;

TEST(FusionTest, RrfRewardsAgreementAndUsesRanksNotScores) {
  const std::vector<Hit> vec = {{1, 0.9f}, {2, 0.8f}, {3, 0.7f}};
  const std::vector<Hit> kw = {{3, 25.0f}, {4, 20.0f}, {1, 3.0f}};
  auto out = FuseRrf(vec, kw, 60.0);
  ASSERT_EQ(out.size(), 4u);
  // 1: 1/61 + 1/63; 3: 1/63 + 1/61 (tie, lower id first); 2: 1/62; 4: 1/62.
  EXPECT_EQ(out[0].chunk_id, 1);
  EXPECT_EQ(out[1].chunk_id, 3);
  EXPECT_DOUBLE_EQ(out[0].score, 1.0 / 61 + 1.0 / 63);
  EXPECT_DOUBLE_EQ(out[0].score, out[1].score);
  EXPECT_EQ(out[2].chunk_id, 2);
  EXPECT_EQ(out[3].chunk_id, 4);
  EXPECT_EQ(out[0].vector_rank, 1u);
  EXPECT_EQ(out[0].keyword_rank, 3u);
  EXPECT_FLOAT_EQ(*out[1].keyword_score, 25.0f);
  EXPECT_FALSE(out[3].vector_rank);
}

TEST(FusionTest, RrfWeightsShiftTheBalance) {
  const std::vector<Hit> vec = {{1, 0.9f}, {2, 0.8f}};
  const std::vector<Hit> kw = {{2, 9.0f}, {1, 1.0f}};
  EXPECT_EQ(FuseRrf(vec, kw, 60.0, 0.9)[0].chunk_id, 1);
  EXPECT_EQ(FuseRrf(vec, kw, 60.0, 0.1)[0].chunk_id, 2);
  auto only_vec = FuseRrf(vec, kw, 60.0, 1.0);
  EXPECT_EQ(only_vec[0].chunk_id, 1);
  EXPECT_DOUBLE_EQ(only_vec[0].score, 2.0 / 61);
}

TEST(FusionTest, WeightedNormalisesEachList) {
  const std::vector<Hit> vec = {{1, 0.9f}, {2, 0.5f}};
  const std::vector<Hit> kw = {{2, 30.0f}, {3, 10.0f}};
  auto out = FuseWeighted(vec, kw, 0.5);
  ASSERT_EQ(out.size(), 3u);
  // 1: 0.5*1 + 0 = 0.5; 2: 0.5*0 + 0.5*1 = 0.5; 3: 0.
  EXPECT_EQ(out[0].chunk_id, 1);
  EXPECT_EQ(out[1].chunk_id, 2);
  EXPECT_DOUBLE_EQ(out[0].score, 0.5);
  EXPECT_DOUBLE_EQ(out[2].score, 0.0);
  // A list whose scores are all equal counts them as the best.
  auto flat = FuseWeighted(std::vector<Hit>{{7, 0.3f}}, {}, 0.5);
  EXPECT_DOUBLE_EQ(flat[0].score, 0.5);
}

TEST(FusionTest, EmptyListsAndSingleRetriever) {
  EXPECT_TRUE(FuseRrf({}, {}).empty());
  const std::vector<Hit> kw = {{5, 2.0f}, {6, 1.0f}};
  auto out = FuseRrf({}, kw);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].chunk_id, 5);
  auto single = Single(kw, false);
  EXPECT_FLOAT_EQ(static_cast<float>(single[1].score), 1.0f);
  EXPECT_EQ(single[1].keyword_rank, 2u);
}

TEST(FusionTest, NamesRoundTrip) {
  for (auto r : {Retriever::kVector, Retriever::kKeyword, Retriever::kHybrid}) EXPECT_EQ(ParseRetriever(ToString(r)), r);
  for (auto f : {FusionMethod::kRrf, FusionMethod::kWeighted}) EXPECT_EQ(ParseFusion(ToString(f)), f);
  EXPECT_FALSE(ParseRetriever("sparse"));
  EXPECT_FALSE(ParseFusion(""));
}

}  // namespace
}  // namespace modulo::search
