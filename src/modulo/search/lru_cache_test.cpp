#include "modulo/search/lru_cache.h"

#include <gtest/gtest.h>

#include "modulo/search/cache_contract.h"

namespace modulo::search {
namespace {

using std::chrono::seconds;

std::unique_ptr<Cache> MakeMemoryCache() { return std::make_unique<LruCache>(); }
INSTANTIATE_TEST_SUITE_P(Memory, CacheContract, testing::Values(&MakeMemoryCache));

TEST(LruCacheTest, ExpiresByTtl) {
  auto now = std::chrono::steady_clock::time_point{};
  LruCache cache({}, [&] { return now; });
  cache.Set("k", "v", seconds(10));
  now += seconds(9);
  EXPECT_EQ(cache.Get("k"), "v");
  now += seconds(1);
  EXPECT_FALSE(cache.Get("k"));
  EXPECT_EQ(cache.size(), 0u) << "an expired entry is dropped when seen";
}

TEST(LruCacheTest, EvictsLeastRecentlyUsedByCount) {
  LruCache cache({.max_entries = 3, .max_bytes = 1 << 20, .shards = 1});
  cache.Set("a", "1", seconds(60));
  cache.Set("b", "2", seconds(60));
  cache.Set("c", "3", seconds(60));
  EXPECT_TRUE(cache.Get("a"));  // a is now the most recent
  cache.Set("d", "4", seconds(60));
  EXPECT_FALSE(cache.Get("b"));
  EXPECT_TRUE(cache.Get("a"));
  EXPECT_TRUE(cache.Get("c"));
  EXPECT_TRUE(cache.Get("d"));
  EXPECT_EQ(cache.size(), 3u);
}

TEST(LruCacheTest, BoundedByBytes) {
  LruCache cache({.max_entries = 1000, .max_bytes = 100, .shards = 1});
  for (int i = 0; i < 20; ++i) cache.Set("k" + std::to_string(i), std::string(20, 'x'), seconds(60));
  EXPECT_LE(cache.bytes(), 100u);
  EXPECT_TRUE(cache.Get("k19"));
  cache.Set("huge", std::string(1000, 'x'), seconds(60));
  EXPECT_FALSE(cache.Get("huge")) << "a value larger than the cache is not stored";
  EXPECT_TRUE(cache.Get("k19"));
}

}  // namespace
}  // namespace modulo::search
