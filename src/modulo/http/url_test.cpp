#include "modulo/http/url.h"

#include <gtest/gtest.h>

namespace modulo::http {
namespace {

TEST(UrlTest, PercentDecode) {
  EXPECT_EQ(*PercentDecode("a%20b%2Fc"), "a b/c");
  EXPECT_EQ(*PercentDecode("a+b"), "a+b");
  EXPECT_EQ(*PercentDecode("a+b", true), "a b");
  EXPECT_FALSE(PercentDecode("%"));
  EXPECT_FALSE(PercentDecode("%4"));
  EXPECT_FALSE(PercentDecode("%zz"));
  EXPECT_EQ(PercentDecode("%00")->size(), 1u);
}

TEST(UrlTest, ParseQuery) {
  auto q = ParseQuery("a=1&b=x%20y&&c&d=%zz");
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q[0], std::make_pair(std::string("a"), std::string("1")));
  EXPECT_EQ(q[1].second, "x y");
  EXPECT_EQ(q[2], std::make_pair(std::string("c"), std::string("")));
  EXPECT_EQ(q[3].second, "%zz");
}

}  // namespace
}  // namespace modulo::http
