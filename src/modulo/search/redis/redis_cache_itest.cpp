// The Cache contract and Redis-specific behaviour of RedisCache, against a real redis-server.
#include "modulo/search/redis/redis_cache.h"

#include <gtest/gtest.h>

#include <thread>

#include "modulo/redis/test_server.h"
#include "modulo/search/cache_contract.h"

namespace modulo::search {
namespace {

using namespace std::chrono_literals;
using std::chrono::seconds;

// A RedisCache that owns its client (the contract's factory hands out only the cache).
class OwningRedisCache final : public Cache {
 public:
  explicit OwningRedisCache(redis::RedisOptions o)
      : client_(std::make_unique<redis::RedisClient>(std::move(o))), cache_(*client_) {}
  std::optional<std::string> Get(std::string_view key) override { return cache_.Get(key); }
  void Set(std::string_view key, std::string value, seconds ttl) override { cache_.Set(key, std::move(value), ttl); }
  void Erase(std::string_view key) override { cache_.Erase(key); }
  std::string_view backend() const noexcept override { return cache_.backend(); }

 private:
  std::unique_ptr<redis::RedisClient> client_;
  RedisCache cache_;
};

redis::RedisOptions OptionsOrFail() {
  auto server = redis::SharedTestServer();
  if (!server) {
    ADD_FAILURE() << server.error().message();
    redis::RedisOptions unreachable;
    unreachable.port = 1;  // nothing listens: every operation misses, so the contract fails too
    return unreachable;
  }
  return (*server)->Options(redis::UniqueTestPrefix());
}

std::unique_ptr<Cache> MakeRedisCache() { return std::make_unique<OwningRedisCache>(OptionsOrFail()); }
INSTANTIATE_TEST_SUITE_P(Redis, CacheContract, testing::Values(&MakeRedisCache));

TEST(RedisCacheTest, EntriesExpireByTtl) {
  redis::RedisClient client(OptionsOrFail());
  RedisCache cache(client);
  EXPECT_EQ(cache.backend(), "redis");
  cache.Set("short", "v", seconds(1));
  cache.Set("long", "v", seconds(60));
  EXPECT_EQ(cache.Get("short"), "v");
  auto ttl = client.Command({"PTTL", client.Key("cache:long")});
  ASSERT_TRUE(ttl);
  EXPECT_GT(ttl->AsInteger().value_or(0), 59000);
  std::this_thread::sleep_for(1100ms);
  EXPECT_FALSE(cache.Get("short")) << "Redis expired it";
  EXPECT_EQ(cache.Get("long"), "v");
}

TEST(RedisCacheTest, SharedBetweenInstancesAndSeparatedByPrefix) {
  auto o = OptionsOrFail();
  redis::RedisClient a_client(o), b_client(o);
  RedisCache a(a_client), b(b_client);
  a.Set("q", "result", seconds(60));
  EXPECT_EQ(b.Get("q"), "result") << "another server instance sees the entry";
  b.Erase("q");
  EXPECT_FALSE(a.Get("q"));

  auto other = o;
  other.key_prefix = redis::UniqueTestPrefix();
  redis::RedisClient c_client(other);
  RedisCache c(c_client);
  a.Set("q", "mine", seconds(60));
  EXPECT_FALSE(c.Get("q")) << "another deployment's prefix";
}

TEST(RedisCacheTest, OversizedValuesAreNotStored) {
  redis::RedisClient client(OptionsOrFail());
  RedisCache cache(client, nullptr, {.max_value_bytes = 16});
  cache.Set("big", std::string(17, 'x'), seconds(60));
  EXPECT_FALSE(cache.Get("big"));
  cache.Set("fits", std::string(16, 'x'), seconds(60));
  EXPECT_TRUE(cache.Get("fits"));
}

TEST(RedisCacheTest, AnOutageNeverFailsTheCaller) {
  auto server = redis::RedisTestServer::Start();
  ASSERT_TRUE(server) << server.error().message();
  redis::RedisClient client((*server)->Options("outage:"));
  metrics::Registry registry;
  RedisCache cache(client, &registry);
  cache.Set("k", "v", seconds(60));
  ASSERT_EQ(cache.Get("k"), "v");
  ASSERT_TRUE((*server)->Kill());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(cache.Get("k"));
  cache.Set("k2", "v", seconds(60));
  cache.Erase("k");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << "fails fast";
  const std::string text = registry.Expose();
  EXPECT_NE(text.find("modulo_redis_cache_errors_total{op=\"get\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("modulo_redis_cache_errors_total{op=\"set\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("modulo_redis_cache_errors_total{op=\"erase\"} 1"), std::string::npos) << text;
  ASSERT_TRUE((*server)->Restart());
  std::this_thread::sleep_for(client.options().reconnect_backoff_max + 50ms);
  cache.Set("k3", "back", seconds(60));
  EXPECT_EQ(cache.Get("k3"), "back");
}

}  // namespace
}  // namespace modulo::search
