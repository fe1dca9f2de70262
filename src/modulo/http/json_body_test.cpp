#include "modulo/http/json_body.h"

#include <gtest/gtest.h>

namespace modulo::http {
namespace {

Request WithBody(std::string type, std::string body) {
  Request r;
  if (!type.empty()) r.headers.set(beast_http::field::content_type, type);
  r.body = std::move(body);
  return r;
}

TEST(JsonBodyTest, AcceptsJsonObjects) {
  auto j = ParseJsonBody(WithBody("application/json; charset=utf-8", R"({"a": 1})"));
  ASSERT_TRUE(j);
  EXPECT_EQ((*j)["a"], 1);
  EXPECT_TRUE(ParseJsonBody(WithBody("application/merge-patch+json", "{}")));
}

TEST(JsonBodyTest, WrongContentTypeIs415) {
  auto j = ParseJsonBody(WithBody("text/plain", "{}"));
  ASSERT_FALSE(j);
  EXPECT_EQ(j.error().code(), ErrorCode::kUnsupportedMediaType);
  EXPECT_NE(j.error().message().find("text/plain"), std::string::npos);
  EXPECT_EQ(ParseJsonBody(WithBody("", "{}")).error().code(), ErrorCode::kUnsupportedMediaType);
}

TEST(JsonBodyTest, InvalidJsonNamesThePosition) {
  auto j = ParseJsonBody(WithBody("application/json", R"({"a": tru})"));
  ASSERT_FALSE(j);
  EXPECT_EQ(j.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(j.error().message().find("at byte 10"), std::string::npos) << j.error().message();
}

TEST(JsonBodyTest, NonObjectAndEmptyAreRejected) {
  EXPECT_EQ(ParseJsonBody(WithBody("application/json", "[1]")).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ParseJsonBody(WithBody("application/json", "")).error().code(), ErrorCode::kInvalidArgument);
}

TEST(JsonBodyTest, DeepNestingDoesNotCrash) {
  std::string deep(200000, '[');
  EXPECT_FALSE(ParseJsonBody(WithBody("application/json", deep)));
  // Valid but 100,000 deep: parsing and destroying would survive, the first copy, comparison or
  // dump() of the value would not (they recurse). Refused before parsing.
  std::string closed = std::string(100000, '[') + std::string(100000, ']');
  auto j = ParseJsonText(closed);
  ASSERT_FALSE(j);
  EXPECT_EQ(j.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(j.error().message(), "JSON nested deeper than 64 levels");
}

TEST(JsonBodyTest, InvalidUtf8IsAnError) {
  auto j = ParseJsonBody(WithBody("application/json", "{\"a\": \"\xff\"}"));
  ASSERT_FALSE(j);
  EXPECT_EQ(j.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace modulo::http
