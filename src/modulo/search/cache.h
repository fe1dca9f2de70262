// Cache: a shared key → value cache with per-entry TTL, for search results (and, scaled out,
// embeddings). Implementations: LruCache (in-process, this folder) and a Redis one for
// scale-out; both pass cache_contract.h.
//
// Keys embed everything a value depends on (for search results: the collection's id, generation
// and version, the normalised query and every parameter), so a write that bumps a collection's
// version makes its old entries unreachable at once; they age out by TTL or LRU. Nothing is ever
// served stale.
//
// A cache is an optimisation: Get returns nullopt on any failure (an unreachable Redis) and Set
// drops the value; neither fails the caller.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace modulo::search {

class Cache {
 public:
  virtual ~Cache() = default;
  [[nodiscard]] virtual std::optional<std::string> Get(std::string_view key) = 0;
  virtual void Set(std::string_view key, std::string value, std::chrono::seconds ttl) = 0;
  virtual void Erase(std::string_view key) = 0;
  // "memory", "redis": a label for metrics.
  [[nodiscard]] virtual std::string_view backend() const noexcept = 0;
};

}  // namespace modulo::search
