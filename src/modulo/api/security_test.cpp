#include "modulo/api/security.h"

#include <gtest/gtest.h>

namespace modulo::api {
namespace {

http::Router With(std::string path, std::string policy) {
  http::Router r;
  http::Route route;
  route.path = std::move(path);
  route.policy = std::move(policy);
  route.handler = [](http::Request&) -> boost::asio::awaitable<http::Response> { co_return http::Response{}; };
  r.Add(std::move(route));
  return r;
}

TEST(RoutePoliciesTest, KnownPoliciesPass) {
  for (auto [path, policy] : std::vector<std::pair<std::string, std::string>>{
           {"/health", "public"},
           {"/api/collections", "user"},
           {"/api/search", "user|search"},
           {"/api/users", "admin"},
           {"/api/users/{user_id}/quotas", "self:user_id"},
           {"/api/collections/{collection_id}/documents", "collection:write:collection_id|upload"},
           {"/api/collections/{collection_id}", "collection:read:collection_id"}}) {
    EXPECT_TRUE(CheckRoutePolicies(With(path, policy))) << path << " " << policy;
  }
}

TEST(RoutePoliciesTest, ATypoStopsStartUpInsteadOfOpeningTheRoute) {
  for (auto [path, policy] : std::vector<std::pair<std::string, std::string>>{
           {"/api/users", "admn"},
           {"/api/users", ""},
           {"/api/search", "user|serch"},
           {"/api/users/{id}", "self:user_id"},
           {"/api/collections/{collection_id}", "collection:owner:collection_id"},
           {"/api/collections/{collection_id}", "collection:read:id"},
           {"/api/collections/{collection_id}", "collection:read"}}) {
    auto st = CheckRoutePolicies(With(path, policy));
    ASSERT_FALSE(st) << path << " " << policy;
    EXPECT_NE(st.error().message().find(path), std::string::npos) << st.error().message();
  }
}

TEST(LocalModeTest, OnlyLoopbackHostsAndLocalPages) {
  http::Request req;
  req.method = http::beast_http::verb::get;
  req.headers.set("Host", "127.0.0.1:8000");
  EXPECT_FALSE(LocalModeRefusal(req));
  for (const char* host : {"localhost", "LOCALHOST:1", "[::1]:8000"}) {
    req.headers.set("Host", host);
    EXPECT_FALSE(LocalModeRefusal(req)) << host;
  }
  for (const char* host : {"evil.example", "127.0.0.1.evil.example", "", "localhost.evil.example:8000"}) {
    req.headers.set("Host", host);
    EXPECT_TRUE(LocalModeRefusal(req)) << host;
  }
  req.headers.set("Host", "localhost:8000");
  req.method = http::beast_http::verb::post;
  req.headers.set("Origin", "https://evil.example");
  EXPECT_TRUE(LocalModeRefusal(req));
  req.headers.set("Origin", "http://localhost:8000");
  EXPECT_FALSE(LocalModeRefusal(req));
  req.method = http::beast_http::verb::get;
  req.headers.set("Origin", "null");
  req.headers.set("Upgrade", "websocket");
  EXPECT_TRUE(LocalModeRefusal(req));
}

TEST(TrustedProxiesTest, AddressesAndCidrs) {
  EXPECT_TRUE(CheckTrustedProxies({"10.0.0.0/8", "127.0.0.1", "::ffff:192.168.1.1", "fd00::/8"}));
  EXPECT_FALSE(CheckTrustedProxies({"10.0.0.0/33"}));
  EXPECT_FALSE(CheckTrustedProxies({"proxy.internal"}));
}

}  // namespace
}  // namespace modulo::api
