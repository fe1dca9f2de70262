#include "modulo/search/cache_contract.h"

#include <string>
#include <thread>
#include <vector>

namespace modulo::search {
namespace {

using std::chrono::seconds;

TEST_P(CacheContract, SetGetOverwriteErase) {
  EXPECT_FALSE(cache_->Get("k1"));
  cache_->Set("k1", "v1", seconds(60));
  EXPECT_EQ(cache_->Get("k1"), "v1");
  cache_->Set("k1", "v2", seconds(60));
  EXPECT_EQ(cache_->Get("k1"), "v2");
  cache_->Erase("k1");
  EXPECT_FALSE(cache_->Get("k1"));
  cache_->Erase("never-set");
}

TEST_P(CacheContract, BinarySafeKeysAndValues) {
  const std::string key("a\0b:\xff space", 10);
  const std::string value("\0\x01\x02{json}", 9);
  cache_->Set(key, value, seconds(60));
  EXPECT_EQ(cache_->Get(key), value);
  EXPECT_FALSE(cache_->Get(std::string("a\0c:\xff space", 10)));
  cache_->Set("empty", "", seconds(60));
  EXPECT_EQ(cache_->Get("empty"), "");
}

TEST_P(CacheContract, ZeroTtlIsNotStored) {
  cache_->Set("k", "v", seconds(0));
  EXPECT_FALSE(cache_->Get("k"));
}

TEST_P(CacheContract, ConcurrentUse) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 500; ++i) {
        const std::string key = "k" + std::to_string(i % 50);
        cache_->Set(key, "v" + std::to_string(t), seconds(60));
        auto v = cache_->Get(key);
        if (v) {
          EXPECT_EQ(v->front(), 'v');
        }
      }
    });
  }
  for (auto& t : threads) t.join();
}

}  // namespace
}  // namespace modulo::search
