// Integration tests of the Redis client against a real redis-server (started by the test).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "modulo/redis/client.h"
#include "modulo/redis/test_server.h"

namespace modulo::redis {
namespace {

using namespace std::chrono_literals;

class RedisClientITest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = SharedTestServer();
    ASSERT_TRUE(s) << s.error().message();
    server_ = *s;
    client_ = std::make_unique<RedisClient>(server_->Options(UniqueTestPrefix()), &registry_);
  }
  RedisTestServer* server_ = nullptr;
  metrics::Registry registry_;
  std::unique_ptr<RedisClient> client_;
};

TEST_F(RedisClientITest, CommandsAreBinarySafe) {
  const std::string key = client_->Key(std::string("k\0ey \r\n", 7));
  const std::string value("\0\x01\xff\r\n%s%d", 10);
  ASSERT_TRUE(client_->Command({"SET", key, value}));
  auto got = client_->Command({"GET", key});
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(got->type, RedisReply::Type::kString);
  EXPECT_EQ(got->str, value);
  auto missing = client_->Command({"GET", client_->Key("missing")});
  ASSERT_TRUE(missing);
  EXPECT_TRUE(missing->is_nil());
  auto n = client_->Command(std::vector<std::string>{"DEL", key, client_->Key("missing")});
  ASSERT_TRUE(n);
  EXPECT_EQ(n->AsInteger(), 1);
}

TEST_F(RedisClientITest, ErrorRepliesBecomeErrors) {
  const std::string key = client_->Key("list");
  ASSERT_TRUE(client_->Command({"RPUSH", key, "a"}));
  auto wrong = client_->Command({"GET", key});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kInternal);
  EXPECT_NE(wrong.error().message().find("WRONGTYPE"), std::string::npos);
  // The connection stays usable after an error reply.
  EXPECT_TRUE(client_->Ping());
}

TEST_F(RedisClientITest, EvalLoadsTheScriptWhenRedisDoesNotKnowIt) {
  ASSERT_TRUE(client_->Command({"SCRIPT", "FLUSH"}));
  Script incr("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  auto a = client_->Eval(incr, {client_->Key("n")}, {"5"});
  ASSERT_TRUE(a) << a.error().ToString();
  EXPECT_EQ(a->AsInteger(), 5);
  auto known = client_->Command({"SCRIPT", "EXISTS", incr.sha1()});
  ASSERT_TRUE(known);
  ASSERT_EQ(known->elements.size(), 1u);
  EXPECT_EQ(known->elements[0].AsInteger(), 1) << "EVAL cached it under the locally computed name";
  auto b = client_->Eval(incr, {client_->Key("n")}, {"2"});
  ASSERT_TRUE(b);
  EXPECT_EQ(b->AsInteger(), 7);
  Script raises("return redis.error_reply('NOPE not today')");
  auto e = client_->Eval(raises, {}, {});
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message().find("NOPE not today"), std::string::npos);
}

TEST_F(RedisClientITest, PipelineKeepsOrderAndPerCommandErrors) {
  const std::string k = client_->Key("p");
  auto r = client_->Pipeline({{"SET", k, "1"}, {"INCR", k}, {"HGET", k, "x"}, {"GET", k}});
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].str, "OK");
  EXPECT_EQ((*r)[1].AsInteger(), 2);
  EXPECT_TRUE((*r)[2].is_error());
  EXPECT_EQ((*r)[3].str, "2");
}

TEST_F(RedisClientITest, PoolServesMoreCallersThanConnections) {
  RedisOptions o = server_->Options(UniqueTestPrefix());
  o.pool_size = 2;
  metrics::Registry registry;
  RedisClient small(o, &registry);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      // BLPOP with a timeout holds the connection for 50 ms.
      auto r = small.Command({"BLPOP", small.Key("empty-" + std::to_string(t)), "0.05"});
      if (r && r->is_nil()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 6);
  const std::string text = registry.Expose();
  EXPECT_EQ(text.find("modulo_redis_pool_waits_total 0\n"), std::string::npos) << "some callers waited: " << text;
  EXPECT_NE(text.find("modulo_redis_connections_open 2\n"), std::string::npos) << text;
}

TEST_F(RedisClientITest, CommandTimeoutFailsAndTheNextCommandWorks) {
  RedisOptions o = server_->Options(UniqueTestPrefix());
  o.command_timeout = 200ms;
  metrics::Registry registry;
  RedisClient c(o, &registry);
  const auto start = std::chrono::steady_clock::now();
  auto r = c.Command({"BLPOP", c.Key("never"), "2"});
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("no reply within 200 ms"), std::string::npos) << r.error().message();
  EXPECT_LT(took, 1500ms);
  EXPECT_TRUE(c.Ping()) << "a new connection replaces the timed-out one";
  EXPECT_NE(registry.Expose().find("modulo_redis_command_errors_total{kind=\"timeout\"} 1"), std::string::npos);
}

TEST(RedisClientRestartTest, ReconnectsAfterRedisIsKilledAndRestarted) {
  auto server = RedisTestServer::Start({.fsync_always = true});
  ASSERT_TRUE(server) << server.error().message();
  RedisClient c((*server)->Options("restart:"));
  Script get("return redis.call('GET', KEYS[1])");
  ASSERT_TRUE(c.Command({"SET", c.Key("k"), "survives"}));
  ASSERT_TRUE(c.Eval(get, {c.Key("k")}, {}));

  ASSERT_TRUE((*server)->Kill());
  for (int i = 0; i < 3; ++i) {  // during the outage: fast kUnavailable, whatever the connection state
    const auto start = std::chrono::steady_clock::now();
    auto r = c.Command({"GET", c.Key("k")});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable) << r.error().ToString();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
  }
  ASSERT_TRUE((*server)->Restart());
  std::this_thread::sleep_for(c.options().reconnect_backoff_max + 50ms);  // past any backoff window
  auto after = c.Command({"GET", c.Key("k")});
  ASSERT_TRUE(after) << "the first command after Redis is back succeeds: " << after.error().ToString();
  EXPECT_EQ(after->str, "survives") << "AOF replayed";
  auto scripted = c.Eval(get, {c.Key("k")}, {});  // the restarted server's script cache is empty
  ASSERT_TRUE(scripted) << scripted.error().ToString();
  EXPECT_EQ(scripted->str, "survives");
  // Every pooled connection heals: run more commands than the pool has connections, concurrently.
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 16; ++t) {
    ts.emplace_back([&] {
      if (c.Ping()) ++ok;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 16);
}

TEST(RedisClientAuthTest, PasswordAndDatabaseFromTheUrl) {
  auto server = RedisTestServer::Start();
  ASSERT_TRUE(server) << server.error().message();
  {
    RedisClient admin((*server)->Options(""));
    ASSERT_TRUE(admin.Command({"CONFIG", "SET", "requirepass", "p@ss word"}));
  }
  auto url = ParseRedisUrl("redis://:p%40ss%20word@127.0.0.1:" + std::to_string((*server)->port()) + "/3",
                           (*server)->Options("db3:"));
  ASSERT_TRUE(url);
  RedisClient in3(*url);
  ASSERT_TRUE(in3.Command({"SET", in3.Key("k"), "three"})) << "authenticated";
  auto url0 = ParseRedisUrl("redis://:p%40ss%20word@127.0.0.1:" + std::to_string((*server)->port()),
                            (*server)->Options("db3:"));
  RedisClient in0(*url0);
  auto other = in0.Command({"GET", in0.Key("k")});
  ASSERT_TRUE(other);
  EXPECT_TRUE(other->is_nil()) << "database 3 is not database 0";

  auto bad = ParseRedisUrl("redis://:wrong@127.0.0.1:" + std::to_string((*server)->port()),
                           (*server)->Options("x:"));
  RedisClient refused(*bad);
  auto r = refused.Ping();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("AUTH refused"), std::string::npos) << r.error().message();
}

}  // namespace
}  // namespace modulo::redis
