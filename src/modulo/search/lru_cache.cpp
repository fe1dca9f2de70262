#include "modulo/search/lru_cache.h"

#include <algorithm>

namespace modulo::search {

LruCache::LruCache(LruCacheOptions options, std::function<std::chrono::steady_clock::time_point()> now)
    : options_(options), now_(std::move(now)) {
  if (!now_) now_ = [] { return std::chrono::steady_clock::now(); };
  options_.shards = std::max<std::size_t>(1, options_.shards);
  entries_per_shard_ = std::max<std::size_t>(1, (options_.max_entries + options_.shards - 1) / options_.shards);
  bytes_per_shard_ = std::max<std::size_t>(1, options_.max_bytes / options_.shards);
  for (std::size_t i = 0; i < options_.shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

LruCache::Shard& LruCache::ShardFor(std::string_view key) {
  return *shards_[std::hash<std::string_view>{}(key) % shards_.size()];
}

void LruCache::EvictLocked(Shard& s, std::list<Entry>::iterator it) {
  s.bytes -= it->key.size() + it->value.size();
  s.index.erase(std::string_view(it->key));
  s.lru.erase(it);
}

std::optional<std::string> LruCache::Get(std::string_view key) {
  Shard& s = ShardFor(key);
  std::lock_guard lock(s.mu);
  auto found = s.index.find(key);
  if (found == s.index.end()) return std::nullopt;
  auto it = found->second;
  if (it->expires <= now_()) {
    EvictLocked(s, it);
    return std::nullopt;
  }
  s.lru.splice(s.lru.begin(), s.lru, it);
  return it->value;
}

void LruCache::Set(std::string_view key, std::string value, std::chrono::seconds ttl) {
  const std::size_t size = key.size() + value.size();
  if (ttl.count() <= 0 || size > bytes_per_shard_) return;  // never cacheable
  Shard& s = ShardFor(key);
  std::lock_guard lock(s.mu);
  if (auto found = s.index.find(key); found != s.index.end()) EvictLocked(s, found->second);
  s.lru.push_front(Entry{std::string(key), std::move(value), now_() + ttl});
  s.index.emplace(std::string_view(s.lru.front().key), s.lru.begin());
  s.bytes += size;
  while (s.lru.size() > entries_per_shard_ || s.bytes > bytes_per_shard_) EvictLocked(s, std::prev(s.lru.end()));
}

void LruCache::Erase(std::string_view key) {
  Shard& s = ShardFor(key);
  std::lock_guard lock(s.mu);
  if (auto found = s.index.find(key); found != s.index.end()) EvictLocked(s, found->second);
}

std::size_t LruCache::size() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s->mu);
    n += s->lru.size();
  }
  return n;
}

std::size_t LruCache::bytes() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s->mu);
    n += s->bytes;
  }
  return n;
}

}  // namespace modulo::search
