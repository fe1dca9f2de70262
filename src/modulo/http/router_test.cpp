#include "modulo/http/router.h"

#include <gtest/gtest.h>

namespace modulo::http {
namespace {

Route R(beast_http::verb m, std::string path) {
  Route r;
  r.method = m;
  r.path = std::move(path);
  return r;
}

TEST(RouterTest, MatchesLiteralsAndParameters) {
  Router router;
  router.Add(R(beast_http::verb::get, "/api/collections"));
  router.Add(R(beast_http::verb::get, "/api/collections/{id}"));
  router.Add(R(beast_http::verb::get, "/api/collections/{id}/files"));
  auto m = router.Match(beast_http::verb::get, "/api/collections/c%2F1/files");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->path, "/api/collections/{id}/files");
  EXPECT_EQ(m.params.at("id"), "c/1");  // decoded after splitting, so %2F stays inside the segment
  EXPECT_EQ(router.Match(beast_http::verb::get, "/api/collections").route->path, "/api/collections");
}

TEST(RouterTest, LiteralBeatsParameter) {
  Router router;
  router.Add(R(beast_http::verb::get, "/api/users/{id}"));
  router.Add(R(beast_http::verb::get, "/api/users/me"));
  EXPECT_EQ(router.Match(beast_http::verb::get, "/api/users/me").route->path, "/api/users/me");
  EXPECT_EQ(router.Match(beast_http::verb::get, "/api/users/42").route->path, "/api/users/{id}");
}

TEST(RouterTest, WrongMethodReportsAllowed) {
  Router router;
  router.Add(R(beast_http::verb::get, "/x/{id}"));
  router.Add(R(beast_http::verb::delete_, "/x/{id}"));
  auto m = router.Match(beast_http::verb::post, "/x/1");
  EXPECT_EQ(m.route, nullptr);
  ASSERT_EQ(m.allowed.size(), 2u);
  auto none = router.Match(beast_http::verb::get, "/y");
  EXPECT_EQ(none.route, nullptr);
  EXPECT_TRUE(none.allowed.empty());
}

TEST(RouterTest, EmptySegmentsAndTrailingSlashDoNotMatchParameters) {
  Router router;
  router.Add(R(beast_http::verb::get, "/x/{id}"));
  EXPECT_EQ(router.Match(beast_http::verb::get, "/x/").route, nullptr);
  EXPECT_EQ(router.Match(beast_http::verb::get, "/x//").route, nullptr);
  EXPECT_EQ(router.Match(beast_http::verb::get, "/x/%zz").route, nullptr) << "malformed escape";
}

TEST(RouterTest, RejectsBadTemplatesAndDuplicates) {
  Router router;
  EXPECT_THROW(router.Add(R(beast_http::verb::get, "x")), std::invalid_argument);
  EXPECT_THROW(router.Add(R(beast_http::verb::get, "/a//b")), std::invalid_argument);
  EXPECT_THROW(router.Add(R(beast_http::verb::get, "/a/{b")), std::invalid_argument);
  router.Add(R(beast_http::verb::get, "/a"));
  EXPECT_THROW(router.Add(R(beast_http::verb::get, "/a")), std::invalid_argument);
}

}  // namespace
}  // namespace modulo::http
