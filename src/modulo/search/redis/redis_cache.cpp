#include "modulo/search/redis/redis_cache.h"

#include "modulo/core/log.h"

namespace modulo::search {

RedisCache::RedisCache(redis::RedisClient& client, metrics::Registry* registry, RedisCacheOptions options)
    : client_(client), options_(options), prefix_(client.Key("cache:")) {
  if (registry != nullptr) {
    auto& errors = registry->AddCounter("modulo_redis_cache_errors_total",
                                        "Redis cache operations that failed (the request went on without the cache)",
                                        {"op"});
    get_errors_ = &errors.With({"get"});
    set_errors_ = &errors.With({"set"});
    erase_errors_ = &errors.With({"erase"});
  }
}

std::string RedisCache::KeyFor(std::string_view key) const {
  std::string k = prefix_;
  k.append(key);
  return k;
}

void RedisCache::Failed(std::string_view op, const Error& e) {
  metrics::Counter* c = op == "get" ? get_errors_ : op == "set" ? set_errors_ : erase_errors_;
  if (c != nullptr) c->Inc();
  std::int64_t suppressed = 0;
  if (log_.Allow(suppressed)) {
    log::Warn("redis cache unavailable, continuing without it",
              {{"op", op}, {"error", e.ToString()}, {"suppressed", suppressed}});
  }
}

std::optional<std::string> RedisCache::Get(std::string_view key) {
  auto r = client_.Command({"GET", KeyFor(key)});
  if (!r) {
    Failed("get", r.error());
    return std::nullopt;
  }
  if (r->type != redis::RedisReply::Type::kString) return std::nullopt;  // nil: a miss
  return std::move(r->str);
}

void RedisCache::Set(std::string_view key, std::string value, std::chrono::seconds ttl) {
  if (ttl.count() <= 0 || value.size() > options_.max_value_bytes) return;  // never cacheable
  auto r = client_.Command({"SET", KeyFor(key), value, "EX", std::to_string(ttl.count())});
  if (!r) Failed("set", r.error());
}

void RedisCache::Erase(std::string_view key) {
  auto r = client_.Command({"DEL", KeyFor(key)});
  if (!r) Failed("erase", r.error());
}

}  // namespace modulo::search
