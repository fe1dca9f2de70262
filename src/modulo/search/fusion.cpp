#include "modulo/search/fusion.h"

#include <algorithm>
#include <unordered_map>

namespace modulo::search {

std::string_view ToString(Retriever r) noexcept {
  switch (r) {
    case Retriever::kVector: return "vector";
    case Retriever::kKeyword: return "keyword";
    case Retriever::kHybrid: return "hybrid";
  }
  return "hybrid";
}

std::string_view ToString(FusionMethod f) noexcept { return f == FusionMethod::kRrf ? "rrf" : "weighted"; }

std::optional<Retriever> ParseRetriever(std::string_view s) noexcept {
  if (s == "vector" || s == "dense" || s == "semantic") return Retriever::kVector;
  if (s == "keyword" || s == "bm25" || s == "lexical") return Retriever::kKeyword;
  if (s == "hybrid") return Retriever::kHybrid;
  return std::nullopt;
}

std::optional<FusionMethod> ParseFusion(std::string_view s) noexcept {
  if (s == "rrf") return FusionMethod::kRrf;
  if (s == "weighted") return FusionMethod::kWeighted;
  return std::nullopt;
}

namespace {

void SortBest(std::vector<FusedHit>& out) {
  std::sort(out.begin(), out.end(), [](const FusedHit& a, const FusedHit& b) {
    return a.score != b.score ? a.score > b.score : a.chunk_id < b.chunk_id;
  });
}

// Merges the two lists by chunk id, recording each one's rank and score.
std::vector<FusedHit> Merge(std::span<const index::Hit> vector, std::span<const index::Hit> keyword) {
  std::vector<FusedHit> out;
  out.reserve(vector.size() + keyword.size());
  std::unordered_map<std::int64_t, std::size_t> at;
  at.reserve(vector.size() + keyword.size());
  for (std::size_t i = 0; i < vector.size(); ++i) {
    auto [it, fresh] = at.try_emplace(vector[i].chunk_id, out.size());
    if (!fresh) continue;  // a list never holds a chunk twice; be safe if one does
    FusedHit h;
    h.chunk_id = vector[i].chunk_id;
    h.vector_rank = i + 1;
    h.vector_score = vector[i].score;
    out.push_back(h);
  }
  for (std::size_t i = 0; i < keyword.size(); ++i) {
    auto [it, fresh] = at.try_emplace(keyword[i].chunk_id, out.size());
    if (fresh) {
      FusedHit h;
      h.chunk_id = keyword[i].chunk_id;
      out.push_back(h);
    }
    FusedHit& h = out[it->second];
    if (h.keyword_rank) continue;
    h.keyword_rank = i + 1;
    h.keyword_score = keyword[i].score;
  }
  return out;
}

}  // namespace

std::vector<FusedHit> FuseRrf(std::span<const index::Hit> vector, std::span<const index::Hit> keyword, double k,
                              double vector_weight) {
  auto out = Merge(vector, keyword);
  const double wv = 2.0 * vector_weight, wk = 2.0 * (1.0 - vector_weight);
  for (auto& h : out) {
    h.score = 0;
    if (h.vector_rank) h.score += wv / (k + static_cast<double>(*h.vector_rank));
    if (h.keyword_rank) h.score += wk / (k + static_cast<double>(*h.keyword_rank));
  }
  SortBest(out);
  return out;
}

std::vector<FusedHit> FuseWeighted(std::span<const index::Hit> vector, std::span<const index::Hit> keyword,
                                   double vector_weight) {
  auto out = Merge(vector, keyword);
  auto range = [](std::span<const index::Hit> hits) {
    float lo = 0, hi = 0;
    if (!hits.empty()) {
      auto [mn, mx] = std::minmax_element(hits.begin(), hits.end(),
                                          [](const index::Hit& a, const index::Hit& b) { return a.score < b.score; });
      lo = mn->score;
      hi = mx->score;
    }
    return std::pair{lo, hi};
  };
  const auto [vlo, vhi] = range(vector);
  const auto [klo, khi] = range(keyword);
  auto norm = [](float s, float lo, float hi) { return hi > lo ? (s - lo) / (hi - lo) : 1.0; };
  for (auto& h : out) {
    h.score = 0;
    if (h.vector_score) h.score += vector_weight * norm(*h.vector_score, vlo, vhi);
    if (h.keyword_score) h.score += (1.0 - vector_weight) * norm(*h.keyword_score, klo, khi);
  }
  SortBest(out);
  return out;
}

std::vector<FusedHit> Single(std::span<const index::Hit> hits, bool is_vector) {
  std::vector<FusedHit> out;
  out.reserve(hits.size());
  for (std::size_t i = 0; i < hits.size(); ++i) {
    FusedHit h;
    h.chunk_id = hits[i].chunk_id;
    h.score = hits[i].score;
    if (is_vector) {
      h.vector_rank = i + 1;
      h.vector_score = hits[i].score;
    } else {
      h.keyword_rank = i + 1;
      h.keyword_score = hits[i].score;
    }
    out.push_back(h);
  }
  return out;
}

}  // namespace modulo::search
