#include "modulo/embed/tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "modulo/embed/test_util.h"

namespace modulo::embed {
namespace {

class TokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::ModelPresent()) << testing::MissingModelMessage();
    auto model_tok = WordPieceTokenizer::FromVocabFile(testing::ModelDir() + "/vocab.txt", TokenizerConfig{});
    ASSERT_TRUE(model_tok.has_value()) << model_tok.error().ToString();
    tok_ = std::make_unique<WordPieceTokenizer>(std::move(*model_tok));
  }
  std::unique_ptr<WordPieceTokenizer> tok_;
};

TEST_F(TokenizerTest, MatchesReferenceIdsOnGoldenTexts) {
  const auto golden = testing::LoadGolden();
  ASSERT_GE(golden.size(), 60u) << "tests/data/embed/golden_minilm.json missing or short";
  int mismatches = 0;
  for (const auto& item : golden) {
    const auto ids = tok_->Encode(item.text, 256);
    const std::vector<int> got(ids.begin(), ids.end());
    EXPECT_EQ(got, item.ids) << "text: " << item.text;
    mismatches += got != item.ids;
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_F(TokenizerTest, SmallVocabularyWordPiece) {
  auto t = WordPieceTokenizer::FromVocab({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "runn", "##ing",
                                          ",", "hello"},
                                         TokenizerConfig{});
  ASSERT_TRUE(t.has_value());
  auto ids = t->Encode("UNAFFABLE running, Hello xyz", 64);
  EXPECT_EQ(ids, (std::vector<std::int32_t>{2, 4, 5, 6, 7, 8, 9, 10, 1, 3}));
}

TEST_F(TokenizerTest, MissingSpecialTokenIsAnError) {
  auto t = WordPieceTokenizer::FromVocab({"[PAD]", "a"}, TokenizerConfig{});
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(TokenizerTest, OffsetsPointIntoTheOriginalText) {
  const std::string text = "Café au lait, s'il vous plaît! 東京";
  const auto toks = tok_->Tokenize(text);
  ASSERT_FALSE(toks.empty());
  std::string rebuilt;
  for (const auto& t : toks) {
    ASSERT_LE(t.begin, t.end);
    ASSERT_LE(t.end, text.size());
    rebuilt += text.substr(t.begin, t.end - t.begin);
  }
  // Every non-space byte is covered, in order.
  std::string squeezed;
  for (char c : text) {
    if (c != ' ') squeezed += c;
  }
  EXPECT_EQ(rebuilt, squeezed);
  EXPECT_EQ(text.substr(toks[0].begin, toks[0].end - toks[0].begin), "Café");
  EXPECT_EQ(text.substr(toks.back().begin, toks.back().end - toks.back().begin), "京");
}

TEST_F(TokenizerTest, InvalidUtf8IsDroppedNotFatal) {
  const std::string bad = "ab\xff\xfe" "cd \xc3 e\xe2\x82 f \xf0\x9f\x98";
  const auto ids = tok_->Encode(bad, 256);
  EXPECT_EQ(ids.front(), tok_->cls_id());
  EXPECT_EQ(ids.back(), tok_->sep_id());
  // Invalid bytes become U+FFFD, which cleaning drops, so "ab\xff\xfecd" reads as "abcd".
  EXPECT_EQ(ids, tok_->Encode("abcd e f ", 256));
  for (int len = 0; len < 64; ++len) {  // every truncation of a multi-byte sequence
    const std::string s = std::string("x\xe6\x9d\xb1\xf0\x9f\x98\x80y").substr(0, static_cast<std::size_t>(len) % 10);
    (void)tok_->Encode(s, 256);
  }
}

TEST_F(TokenizerTest, MegabyteTextTruncatesFast) {
  std::string text;
  while (text.size() < (1u << 20)) text += "The quick brown fox jumps over the lazy dog, again and again. ";
  const auto start = std::chrono::steady_clock::now();
  const auto ids = tok_->Encode(text, 256);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(ids.size(), 256u);
  const double ms = std::chrono::duration<double, std::milli>(elapsed).count();
  EXPECT_LT(ms, 50.0);
  // Counting all tokens of the megabyte works too.
  const auto count = tok_->CountTokens(text);
  EXPECT_GT(count, 200000u);
  EXPECT_EQ(tok_->CountTokens(text, 1000), 1000u);
}

TEST_F(TokenizerTest, LongWordBecomesUnknown) {
  const auto ids = tok_->Encode(std::string(101, 'a'), 256);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], tok_->unk_id());
}

TEST_F(TokenizerTest, EmptyTextIsClsSep) {
  EXPECT_EQ(tok_->Encode("", 256), (std::vector<std::int32_t>{tok_->cls_id(), tok_->sep_id()}));
  EXPECT_EQ(tok_->CountTokens(""), 0u);
}

}  // namespace
}  // namespace modulo::embed
