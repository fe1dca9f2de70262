// LruCache: the in-process Cache. Bounded by entries and by bytes (keys + values), least recently
// used first out; entries past their TTL are never returned. Sharded by key hash so concurrent
// requests rarely contend on a lock.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "modulo/search/cache.h"

namespace modulo::search {

struct LruCacheOptions {
  std::size_t max_entries = 10000;
  std::size_t max_bytes = 256u << 20;
  std::size_t shards = 16;
};

class LruCache final : public Cache {
 public:
  // `now` is injectable for tests; it defaults to the steady clock.
  explicit LruCache(LruCacheOptions options = {},
                    std::function<std::chrono::steady_clock::time_point()> now = nullptr);

  std::optional<std::string> Get(std::string_view key) override;
  void Set(std::string_view key, std::string value, std::chrono::seconds ttl) override;
  void Erase(std::string_view key) override;
  std::string_view backend() const noexcept override { return "memory"; }

  [[nodiscard]] std::size_t size() const;
  [[nodiscard]] std::size_t bytes() const;

 private:
  struct Entry {
    std::string key;
    std::string value;
    std::chrono::steady_clock::time_point expires;
  };
  struct Shard {
    mutable std::mutex mu;
    std::list<Entry> lru;  // most recent first; guarded by mu
    std::unordered_map<std::string_view, std::list<Entry>::iterator> index;  // views into lru keys
    std::size_t bytes = 0;
  };

  Shard& ShardFor(std::string_view key);
  void EvictLocked(Shard& s, std::list<Entry>::iterator it);

  LruCacheOptions options_;
  std::size_t entries_per_shard_;
  std::size_t bytes_per_shard_;
  std::function<std::chrono::steady_clock::time_point()> now_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace modulo::search
