#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "modulo/embed/encoder.h"
#include "modulo/embed/model.h"
#include "modulo/embed/test_util.h"
#include "modulo/embed/tokenizer.h"

namespace modulo::embed {
namespace {

struct Golden {
  std::vector<testing::GoldenItem> items;
  std::vector<std::vector<std::int32_t>> ids;
};

Golden LoadGoldenIds() {
  Golden g;
  g.items = testing::LoadGolden();
  for (const auto& it : g.items) g.ids.emplace_back(it.ids.begin(), it.ids.end());
  return g;
}

std::unique_ptr<BertEncoder> MakeEncoder(Precision p, std::size_t max_batch_tokens = 1024) {
  auto model = LoadBertModel(testing::ModelDir(), ModelLoadOptions{});
  if (!model) {
    ADD_FAILURE() << model.error().ToString();
    return nullptr;
  }
  EncoderOptions opt;
  opt.precision = p;
  opt.threads = 2;
  opt.max_batch_tokens = max_batch_tokens;
  auto enc = BertEncoder::Create(std::move(*model), opt);
  if (!enc) {
    ADD_FAILURE() << enc.error().ToString();
    return nullptr;
  }
  return std::move(*enc);
}

TEST(GoldenTest, Fp32MatchesReferenceEmbeddings) {
  ASSERT_TRUE(testing::ModelPresent()) << testing::MissingModelMessage();
  const Golden g = LoadGoldenIds();
  ASSERT_GE(g.items.size(), 60u);
  auto enc = MakeEncoder(Precision::kFp32);
  ASSERT_NE(enc, nullptr);
  const int dim = enc->dimension();
  std::vector<float> out(g.ids.size() * static_cast<std::size_t>(dim));
  ASSERT_TRUE(enc->Encode(g.ids, out).has_value());
  double worst = 1.0;
  for (std::size_t i = 0; i < g.items.size(); ++i) {
    const double cos = testing::Cosine(out.data() + i * dim, g.items[i].embedding.data(), dim);
    EXPECT_GE(cos, 0.9999) << "text #" << i << ": " << g.items[i].text;
    worst = std::min(worst, cos);
  }
  RecordProperty("worst_cosine", std::to_string(worst));
  // One at a time (batch of one, unpadded) agrees with the batched result.
  for (std::size_t i = 0; i < g.items.size(); i += 7) {
    std::vector<float> one(dim);
    ASSERT_TRUE(enc->Encode(std::span(&g.ids[i], 1), one).has_value());
    EXPECT_GE(testing::Cosine(one.data(), out.data() + i * dim, dim), 0.99999) << i;
  }
}

class ReducedPrecisionTest : public ::testing::TestWithParam<Precision> {};

TEST_P(ReducedPrecisionTest, IsCloseToReference) {
  ASSERT_TRUE(testing::ModelPresent()) << testing::MissingModelMessage();
  const Golden g = LoadGoldenIds();
  auto enc = MakeEncoder(GetParam());
  ASSERT_NE(enc, nullptr);
  const int dim = enc->dimension();
  std::vector<float> out(g.ids.size() * static_cast<std::size_t>(dim));
  ASSERT_TRUE(enc->Encode(g.ids, out).has_value());
  double sum = 0, worst = 1;
  for (std::size_t i = 0; i < g.items.size(); ++i) {
    const double cos = testing::Cosine(out.data() + i * dim, g.items[i].embedding.data(), dim);
    sum += cos;
    worst = std::min(worst, cos);
  }
  const double mean = sum / static_cast<double>(g.items.size());
  std::printf("precision %s: mean cosine %.6f, worst %.6f\n", std::string(PrecisionName(enc->effective_precision())).c_str(),
              mean, worst);
  EXPECT_GE(mean, 0.995);
  EXPECT_GE(worst, 0.98);
}

// Sequences are packed without padding, rows rounded up to a bucket, attention run per
// sequence and head, and int8 rows tiled: none of it may change a text's
// vector. A mixed batch (the golden texts plus eleven copies of one text, several sub-batches
// under a small token budget) must give what each text gives alone, and so must a lone text in
// split mode.
class PackedBatchTest : public ::testing::TestWithParam<Precision> {};

TEST_P(PackedBatchTest, MixedBatchEqualsOneAtATime) {
  ASSERT_TRUE(testing::ModelPresent()) << testing::MissingModelMessage();
  Golden g = LoadGoldenIds();
  for (int i = 0; i < 11; ++i) g.ids.push_back(g.ids[3]);
  auto enc = MakeEncoder(GetParam(), 300);
  ASSERT_NE(enc, nullptr);
  const int dim = enc->dimension();
  std::vector<float> out(g.ids.size() * static_cast<std::size_t>(dim));
  ASSERT_TRUE(enc->Encode(g.ids, out).has_value());
  for (std::size_t i = 0; i < g.ids.size(); ++i) {
    // A pause first: an idle encoder runs a lone int8 text in split mode (two threads, half of
    // each layer each), which must give the same vector too.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::vector<float> one(dim);
    ASSERT_TRUE(enc->Encode(std::span(&g.ids[i], 1), one).has_value());
    EXPECT_GE(testing::Cosine(one.data(), out.data() + i * dim, dim), 0.99999)
        << "text #" << i << " (" << g.ids[i].size() << " tokens)";
  }
  if (GetParam() == Precision::kInt8) {
    EXPECT_EQ(enc->split_calls(), g.ids.size());
  } else {
    EXPECT_EQ(enc->split_calls(), 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Precisions, PackedBatchTest, ::testing::Values(Precision::kFp32, Precision::kInt8),
                         [](const auto& info) { return std::string(PrecisionName(info.param)); });

INSTANTIATE_TEST_SUITE_P(Precisions, ReducedPrecisionTest,
                         ::testing::Values(Precision::kBf16, Precision::kInt8, Precision::kAuto),
                         [](const auto& info) { return std::string(PrecisionName(info.param)); });

}  // namespace
}  // namespace modulo::embed
