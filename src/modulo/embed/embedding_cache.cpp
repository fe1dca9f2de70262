#include "modulo/embed/embedding_cache.h"

#include <cstring>

namespace modulo::embed {
namespace {

std::uint64_t Fnv1a(std::uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::uint64_t Mix(std::uint64_t x) {  // splitmix64 finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

EmbeddingCache::Key EmbeddingCache::MakeKey(std::string_view model, InputKind kind, std::string_view text) {
  const char k = kind == InputKind::kQuery ? 'q' : 'p';
  std::uint64_t a = Fnv1a(0xcbf29ce484222325ull, model);
  a = Fnv1a(a, std::string_view(&k, 1));
  a = Fnv1a(a, text);
  std::uint64_t b = std::hash<std::string_view>{}(text);
  b = Mix(b ^ Mix(std::hash<std::string_view>{}(model)) ^ (static_cast<std::uint64_t>(k) << 56) ^ text.size());
  return {a, b};
}

std::optional<std::pair<std::vector<float>, std::uint32_t>> EmbeddingCache::Get(const Key& key) {
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) {
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second);
  return std::make_pair(it->second->vector, it->second->tokens);
}

void EmbeddingCache::Put(const Key& key, std::span<const float> vector, std::uint32_t tokens) {
  if (capacity_ == 0) return;
  std::lock_guard lock(mu_);
  if (auto it = index_.find(key); it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  if (lru_.size() >= capacity_) {  // reuse the least recently used node
    auto last = std::prev(lru_.end());
    index_.erase(last->key);
    lru_.splice(lru_.begin(), lru_, last);
  } else {
    lru_.emplace_front();
  }
  Entry& e = lru_.front();
  e.key = key;
  e.vector.assign(vector.begin(), vector.end());
  e.tokens = tokens;
  index_[key] = lru_.begin();
}

EmbeddingCache::Stats EmbeddingCache::stats() const {
  std::lock_guard lock(mu_);
  return {hits_, misses_, lru_.size(), capacity_};
}

Result<Embeddings> CachingEmbedder::Embed(std::span<const std::string> texts, InputKind kind) {
  const ModelInfo& mi = inner_->info();
  Embeddings out;
  out.dimension = mi.dimension;
  out.values.resize(texts.size() * mi.dimension);
  out.token_counts.resize(texts.size());
  std::vector<std::string> missing;
  std::vector<std::size_t> where;
  std::vector<EmbeddingCache::Key> keys(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    keys[i] = EmbeddingCache::MakeKey(mi.name, kind, texts[i]);
    if (auto hit = cache_->Get(keys[i]); hit && hit->first.size() == mi.dimension) {
      std::memcpy(out.values.data() + i * mi.dimension, hit->first.data(), mi.dimension * sizeof(float));
      out.token_counts[i] = hit->second;
    } else {
      missing.push_back(texts[i]);
      where.push_back(i);
    }
  }
  if (missing.empty()) return out;
  auto fresh = inner_->Embed(missing, kind);
  if (!fresh) return Fail(std::move(fresh.error()));
  for (std::size_t j = 0; j < where.size(); ++j) {
    const std::size_t i = where[j];
    const auto row = fresh->Row(j);
    std::memcpy(out.values.data() + i * mi.dimension, row.data(), mi.dimension * sizeof(float));
    out.token_counts[i] = fresh->token_counts.empty() ? 0 : fresh->token_counts[j];
    cache_->Put(keys[i], row, out.token_counts[i]);
  }
  return out;
}

}  // namespace modulo::embed
