#include "modulo/net/egress.h"

#include <gtest/gtest.h>

namespace modulo::net {
namespace {

bool Internal(const char* ip) { return IsInternalAddress(*ParseIp(ip)); }

TEST(EgressTest, InternalRangesOfBothFamilies) {
  for (const char* ip : {"127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                         "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.251", "255.255.255.255",
                         "198.18.0.1", "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
                         "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1", "64:ff9b::a00:1",
                         "2001:db8::1", "2002:7f00:1::"}) {
    EXPECT_TRUE(Internal(ip)) << ip;
  }
  for (const char* ip : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"}) {
    EXPECT_FALSE(Internal(ip)) << ip;
  }
}

TEST(EgressTest, RefusesLoopbackInEveryForm) {
  auto policy = EgressPolicy::Make("", false);
  ASSERT_TRUE(policy);
  for (const char* url : {"http://127.0.0.1:6379/", "http://localhost:5432/v1", "http://[::1]:19530/",
                          "http://2130706433/", "http://0x7f000001/", "http://127.1/", "http://[::ffff:127.0.0.1]/",
                          "https://169.254.169.254/latest/meta-data/", "http://0/"}) {
    auto t = policy->Check(url);
    ASSERT_FALSE(t) << url << " was allowed to " << t->address;
    EXPECT_EQ(t.error().code(), ErrorCode::kPermissionDenied) << url << ": " << t.error().message();
  }
}

TEST(EgressTest, AllowListOpensRangesAndHosts) {
  auto policy = EgressPolicy::Make("10.0.0.0/8, 127.0.0.1 localhost", false);
  ASSERT_TRUE(policy) << policy.error().message();
  EXPECT_TRUE(policy->Allows(*ParseIp("10.9.8.7")));
  EXPECT_FALSE(policy->Allows(*ParseIp("192.168.0.1")));
  auto t = policy->Check("http://127.0.0.1:8080/v1");
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->address, "127.0.0.1");
  EXPECT_EQ(t->port, 8080);
  EXPECT_EQ(t->CurlResolve(), "127.0.0.1:8080:127.0.0.1");
  EXPECT_TRUE(policy->Check("http://LOCALHOST:1/"));  // named hosts match without case

  auto loopback = EgressPolicy::Make("", true);
  ASSERT_TRUE(loopback);
  auto v6 = loopback->Check("http://[::1]:11434/");
  ASSERT_TRUE(v6) << v6.error().message();
  EXPECT_EQ(v6->CurlResolve(), "::1:11434:[::1]");
  EXPECT_FALSE(loopback->Check("http://10.0.0.1/"));
}

TEST(EgressTest, BadUrlsAndLists) {
  auto policy = EgressPolicy::Make("", false);
  EXPECT_EQ(policy->Check("file:///etc/passwd").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(policy->Check("gopher://example.com/").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(policy->Check("not a url").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(EgressPolicy::Make("10.0.0.0/33", false));
  EXPECT_FALSE(EgressPolicy::Make("bad/host!", false));
  EXPECT_TRUE(ParseIpRange("fd00::/8"));
}

}  // namespace
}  // namespace modulo::net
