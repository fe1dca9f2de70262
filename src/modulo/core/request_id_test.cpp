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

namespace modulo {
namespace {
TEST(UuidTest, VersionFourAndValidated) {
  const auto u = NewUuid();
  EXPECT_TRUE(IsUuid(u)) << u;
  EXPECT_EQ(u[14], '4');
  EXPECT_TRUE(u[19] == '8' || u[19] == '9' || u[19] == 'a' || u[19] == 'b');
  EXPECT_NE(NewUuid(), u);
  EXPECT_FALSE(IsUuid("not-a-uuid"));
  EXPECT_FALSE(IsUuid("3f2b8c1e-0000-4000-8000-00000000000g"));
}
}  // namespace
}  // namespace modulo
