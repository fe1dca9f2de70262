// RedisCache: the Cache shared by every server instance, in Redis. Each entry is one string key
// (<key_prefix>cache:<key>, binary-safe) written with SET ... EX ttl, so Redis expires it;
// Erase is DEL. Memory is bounded by Redis itself (maxmemory with an LRU/LFU policy is the
// intended deployment); values above `max_value_bytes` are not stored.
//
// A cache is an optimisation: Get returns nullopt on any failure and Set/Erase drop the request;
// neither fails the caller. Failures are counted in
// modulo_redis_cache_errors_total{op="get|set|erase"} and logged at most once per 10 s.
//
// Thread-safety: all methods are thread-safe (the client's pool serves concurrent callers).
// The RedisClient must outlive the cache.
#pragma once

#include <cstddef>

#include "modulo/metrics/registry.h"
#include "modulo/redis/client.h"
#include "modulo/search/cache.h"

namespace modulo::search {

struct RedisCacheOptions {
  std::size_t max_value_bytes = 8u << 20;
};

class RedisCache final : public Cache {
 public:
  explicit RedisCache(redis::RedisClient& client, metrics::Registry* registry = nullptr,
                      RedisCacheOptions options = {});

  std::optional<std::string> Get(std::string_view key) override;
  void Set(std::string_view key, std::string value, std::chrono::seconds ttl) override;
  void Erase(std::string_view key) override;
  std::string_view backend() const noexcept override { return "redis"; }

 private:
  [[nodiscard]] std::string KeyFor(std::string_view key) const;
  void Failed(std::string_view op, const Error& e);

  redis::RedisClient& client_;
  RedisCacheOptions options_;
  std::string prefix_;
  redis::LogThrottle log_;
  metrics::Counter* get_errors_ = nullptr;
  metrics::Counter* set_errors_ = nullptr;
  metrics::Counter* erase_errors_ = nullptr;
};

}  // namespace modulo::search
