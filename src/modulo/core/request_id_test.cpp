#include "modulo/core/request_id.h"

#include <gtest/gtest.h>

#include <set>

namespace modulo {
namespace {

TEST(RequestIdTest, ValidatesSafeIds) {
  EXPECT_TRUE(IsValidRequestId("abc-123_X.y:z"));
  EXPECT_FALSE(IsValidRequestId(""));
  EXPECT_FALSE(IsValidRequestId(std::string(129, 'a')));
  EXPECT_FALSE(IsValidRequestId("a b"));
  EXPECT_FALSE(IsValidRequestId("a\nb"));
  EXPECT_FALSE(IsValidRequestId("é"));
}

TEST(RequestIdTest, GeneratedIdsAreValidAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = NewRequestId();
    EXPECT_EQ(id.size(), 32u);
    EXPECT_TRUE(IsValidRequestId(id));
    EXPECT_TRUE(seen.insert(id).second);
  }
}

}  // namespace
}  // namespace modulo
