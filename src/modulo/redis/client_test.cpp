// Unit tests of the Redis client that need no server: URL parsing, script names, error mapping,
// and failing fast when nothing listens.
#include "modulo/redis/client.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace modulo::redis {
namespace {

using namespace std::chrono_literals;

TEST(RedisUrlTest, ParsesHostPortPasswordAndDb) {
  auto o = ParseRedisUrl("redis://:s%40cret@cache.internal:6380/2");
  ASSERT_TRUE(o) << o.error().ToString();
  EXPECT_EQ(o->host, "cache.internal");
  EXPECT_EQ(o->port, 6380);
  EXPECT_EQ(o->username, "");
  EXPECT_EQ(o->password, "s@cret");
  EXPECT_EQ(o->db, 2);

  auto plain = ParseRedisUrl("redis://localhost");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->host, "localhost");
  EXPECT_EQ(plain->port, 6379);
  EXPECT_EQ(plain->db, 0);
  EXPECT_TRUE(plain->password.empty());

  auto acl = ParseRedisUrl("REDIS://app:pw@10.0.0.5:7000/");
  ASSERT_TRUE(acl);
  EXPECT_EQ(acl->username, "app");
  EXPECT_EQ(acl->password, "pw");
  EXPECT_EQ(acl->port, 7000);

  auto v6 = ParseRedisUrl("redis://[::1]:6390/1");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 6390);
  EXPECT_EQ(v6->db, 1);
}

TEST(RedisUrlTest, KeepsOtherOptions) {
  RedisOptions base;
  base.key_prefix = "tenant-a:";
  base.pool_size = 3;
  auto o = ParseRedisUrl("redis://h:1", base);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->key_prefix, "tenant-a:");
  EXPECT_EQ(o->pool_size, 3u);
}

TEST(RedisUrlTest, RefusesMalformedUrls) {
  for (const char* bad : {"", "http://h:6379", "redis://", "redis://:pw@", "redis://h:0", "redis://h:65536",
                          "redis://h:x", "redis://h:", "redis://h/x", "redis://h/-1", "redis://[::1",
                          "redis://h?timeout=1", "redis://:%4@h", "redis://:%zz@h"}) {
    auto o = ParseRedisUrl(bad);
    ASSERT_FALSE(o) << bad;
    EXPECT_EQ(o.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
  auto tls = ParseRedisUrl("rediss://h:6380");
  ASSERT_FALSE(tls);
  EXPECT_NE(tls.error().message().find("TLS"), std::string::npos);
}

TEST(RedisScriptTest, NameIsTheSha1OfTheSource) {
  // Redis reports the same name: SCRIPT LOAD "return 1" → e0e1f9fa...
  EXPECT_EQ(Script("return 1").sha1(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
  EXPECT_EQ(Script("").sha1(), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

TEST(RedisReplyTest, TransientErrorsAreUnavailable) {
  EXPECT_EQ(ReplyError("LOADING Redis is loading the dataset in memory").code(), ErrorCode::kUnavailable);
  EXPECT_EQ(ReplyError("BUSY Redis is busy running a script").code(), ErrorCode::kUnavailable);
  EXPECT_EQ(ReplyError("READONLY You can't write against a read only replica.").code(), ErrorCode::kUnavailable);
  EXPECT_EQ(ReplyError("OOM command not allowed").code(), ErrorCode::kUnavailable);
  EXPECT_EQ(ReplyError("BUSYGROUP Consumer Group name already exists").code(), ErrorCode::kInternal);
  auto e = ReplyError("WRONGTYPE Operation against a key holding the wrong kind of value");
  EXPECT_EQ(e.code(), ErrorCode::kInternal);
  EXPECT_NE(e.message().find("WRONGTYPE"), std::string::npos);
}

TEST(RedisReplyTest, Conversions) {
  RedisReply i{.type = RedisReply::Type::kInteger, .integer = 42};
  EXPECT_EQ(i.AsString(), "42");
  EXPECT_EQ(i.AsInteger(), 42);
  RedisReply s{.type = RedisReply::Type::kString, .str = "-7"};
  EXPECT_EQ(s.AsInteger(), -7);
  RedisReply junk{.type = RedisReply::Type::kString, .str = "7x"};
  EXPECT_FALSE(junk.AsInteger());
  RedisReply nil;
  EXPECT_TRUE(nil.is_nil());
  EXPECT_FALSE(nil.AsString());
}

// A loopback port with nothing listening: bound, never listened on, so connects are refused.
class ClosedPort {
 public:
  ClosedPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
  }
  ~ClosedPort() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(RedisClientTest, FailsFastAndBacksOffWhenNothingListens) {
  ClosedPort closed;
  RedisOptions o;
  o.port = closed.port();
  o.reconnect_backoff_initial = 200ms;
  o.reconnect_backoff_max = 400ms;
  metrics::Registry registry;
  RedisClient client(o, &registry);
  auto start = std::chrono::steady_clock::now();
  auto r = client.Command({"PING"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find(client.Address()), std::string::npos) << r.error().message();
  // Inside the backoff window: no connection attempt, a fast failure that says when the next one is.
  auto again = client.Command({"PING"});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(again.error().message().find("next connection attempt"), std::string::npos) << again.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 150ms);
  const std::string text = registry.Expose();
  EXPECT_NE(text.find("modulo_redis_command_errors_total{kind=\"connect\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("modulo_redis_command_errors_total{kind=\"backoff\"} 1"), std::string::npos) << text;
  // After the window a new attempt is made (and fails again, widening the window).
  std::this_thread::sleep_for(250ms);
  auto third = client.Command({"PING"});
  ASSERT_FALSE(third);
  EXPECT_NE(third.error().message().find("next attempt in 400 ms"), std::string::npos) << third.error().message();
}

TEST(RedisClientTest, KeysCarryThePrefix) {
  RedisOptions o;
  o.key_prefix = "blue:";
  RedisClient client(o);
  EXPECT_EQ(client.Key("jobs:stream"), "blue:jobs:stream");
  EXPECT_EQ(client.Address(), "127.0.0.1:6379");
}

TEST(LogThrottleTest, OneLinePerIntervalAndCountsTheRest) {
  LogThrottle t(100ms);
  std::int64_t suppressed = -1;
  EXPECT_TRUE(t.Allow(suppressed));
  EXPECT_EQ(suppressed, 0);
  EXPECT_FALSE(t.Allow(suppressed));
  EXPECT_FALSE(t.Allow(suppressed));
  std::this_thread::sleep_for(120ms);
  EXPECT_TRUE(t.Allow(suppressed));
  EXPECT_EQ(suppressed, 2);
}

}  // namespace
}  // namespace modulo::redis
