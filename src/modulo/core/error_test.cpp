#include "modulo/core/error.h"

#include <gtest/gtest.h>

#include <set>

namespace modulo {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return Fail(Error::InvalidArgument("odd: " + std::to_string(x)));
  return x / 2;
}

TEST(ErrorTest, ResultCarriesValueOrError) {
  EXPECT_EQ(*Half(4), 2);
  auto r = Half(3);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message(), "odd: 3");
}

TEST(ErrorTest, WrapAddsContext) {
  Error e = Error::NotFound("no such file").Wrap("loading model");
  EXPECT_EQ(e.message(), "loading model: no such file");
  EXPECT_EQ(e.ToString(), "not_found: loading model: no such file");
}

TEST(ErrorTest, EveryCodeHasADistinctName) {
  std::set<std::string_view> names;
  for (int c = 0; c <= static_cast<int>(ErrorCode::kInternal); ++c) {
    auto n = ErrorCodeName(static_cast<ErrorCode>(c));
    EXPECT_FALSE(n.empty());
    EXPECT_TRUE(names.insert(n).second) << n;
  }
}

}  // namespace
}  // namespace modulo
