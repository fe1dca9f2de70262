#include <gtest/gtest.h>

#include "modulo/embed/remote/remote_embedders.h"

namespace modulo::embed::remote {
namespace {

TEST(EstimateTokensTest, WordsPunctuationAndLongWords) {
  EXPECT_EQ(EstimateTokens(""), 0u);
  EXPECT_EQ(EstimateTokens("hello, world!"), 4u);
  EXPECT_EQ(EstimateTokens("internationalization"), 4u);  // 20 bytes → 4 pieces of up to 6
  const std::string cjk = "日本語のテキスト";             // 3-byte characters: pieces end on character boundaries
  for (auto [b, e] : EstimateTokenSpans(cjk)) {
    EXPECT_EQ(b % 3, 0u);
    EXPECT_EQ(e % 3, 0u);
  }
}

}  // namespace
}  // namespace modulo::embed::remote
