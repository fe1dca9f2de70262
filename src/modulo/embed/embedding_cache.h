// EmbeddingCache: a bounded LRU map from (model, input kind, text) to its embedding, and
// CachingEmbedder, an Embedder that consults the cache before its inner embedder.
//
// Keys are two independent 64-bit hashes of model name, kind and text (a false hit would need
// both to collide), so the cache never holds the texts themselves. Default capacity: 10,000
// vectors (about 15 MB for 384-d vectors).
//
// Thread-safety: all members are thread-safe (one mutex; lookups are O(1)).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "modulo/embed/embedder.h"

namespace modulo::embed {

class EmbeddingCache {
 public:
  struct Key {
    std::uint64_t a = 0, b = 0;
    bool operator==(const Key&) const = default;
  };
  struct Stats {
    std::uint64_t hits = 0, misses = 0;
    std::size_t size = 0, capacity = 0;
  };

  explicit EmbeddingCache(std::size_t capacity = 10000) : capacity_(capacity) {}

  [[nodiscard]] static Key MakeKey(std::string_view model, InputKind kind, std::string_view text);
  // The cached vector and its token count, if present (and marks it most recently used).
  [[nodiscard]] std::optional<std::pair<std::vector<float>, std::uint32_t>> Get(const Key& key);
  void Put(const Key& key, std::span<const float> vector, std::uint32_t tokens);
  [[nodiscard]] Stats stats() const;

 private:
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept { return static_cast<std::size_t>(k.a ^ (k.b * 0x9e3779b97f4a7c15ull)); }
  };
  struct Entry {
    Key key;
    std::vector<float> vector;
    std::uint32_t tokens = 0;
  };
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // front: most recently used
  std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> index_;
  std::uint64_t hits_ = 0, misses_ = 0;
};

// An Embedder that serves repeated texts from an EmbeddingCache and forwards the rest, in one
// batch, to `inner`.
class CachingEmbedder final : public Embedder {
 public:
  CachingEmbedder(std::shared_ptr<Embedder> inner, std::shared_ptr<EmbeddingCache> cache)
      : inner_(std::move(inner)), cache_(std::move(cache)) {}

  [[nodiscard]] const ModelInfo& info() const noexcept override { return inner_->info(); }
  [[nodiscard]] Result<Embeddings> Embed(std::span<const std::string> texts, InputKind kind) override;
  [[nodiscard]] Result<std::size_t> CountTokens(std::string_view text) const override {
    return inner_->CountTokens(text);
  }
  [[nodiscard]] const std::shared_ptr<EmbeddingCache>& cache() const noexcept { return cache_; }

 private:
  std::shared_ptr<Embedder> inner_;
  std::shared_ptr<EmbeddingCache> cache_;
};

}  // namespace modulo::embed
