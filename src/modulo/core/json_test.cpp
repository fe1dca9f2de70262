#include "modulo/core/json.h"

#include <gtest/gtest.h>

#include <string>

namespace modulo {
namespace {

std::string Nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(JsonTest, ParsesWithinTheLimits) {
  auto v = ParseJson(R"({"a": [1, {"b": "x"}], "c": null})");
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ((*v)["a"][1]["b"], "x");
  EXPECT_TRUE(ParseJson(Nested(64)));
}

TEST(JsonTest, RefusesDeepNestingBeforeParsing) {
  auto v = ParseJson(Nested(65));
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(v.error().message(), "JSON nested deeper than 64 levels");
  // 100,000 levels would overflow the stack at the first copy of the value.
  std::string body = R"({"config_metadata": {"filters": )" + Nested(100000) + "}}";
  EXPECT_FALSE(ParseJson(body));
  EXPECT_TRUE(ParseJson(Nested(100), JsonLimits{.max_depth = 100}));
}

TEST(JsonTest, BracketsInsideStringsDoNotCount) {
  const std::string deep_text = "\"" + std::string(1000, '[') + "\\\"" + std::string(1000, '{') + "\"";
  auto v = ParseJson("[" + deep_text + "]");
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(JsonDepth("[\"\\\\\", [[]]]", 10), 3u);  // an escaped backslash ends before the quote
}

TEST(JsonTest, RefusesOversizedText) {
  auto v = ParseJson("[1, 2, 3]", JsonLimits{.max_bytes = 4});
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code(), ErrorCode::kPayloadTooLarge);
}

TEST(JsonTest, SyntaxErrorsNameTheByte) {
  auto v = ParseJson(R"({"a": })");
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message().find("invalid JSON at byte"), std::string::npos);
  EXPECT_FALSE(ParseJson("{} // comment"));
}

}  // namespace
}  // namespace modulo
