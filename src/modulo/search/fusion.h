// Fusion of the vector and keyword result lists into one ranking.
//
// - Reciprocal rank fusion (RRF, Cormack et al. 2009): score = Σ w_i / (k + rank_i), ranks from
//   1, k = 60 by default; weights 2·w and 2·(1 − w) for vector weight w, so w = 0.5 is plain RRF.
//   Robust to the two lists' incomparable score scales.
// - Weighted scores: each list's scores min-max normalised to [0, 1] (a list whose scores are all
//   equal maps them to 1), then w·vector + (1 − w)·keyword; a chunk absent from a list gets 0.
// Results are best first, ties by chunk id. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "modulo/index/types.h"

namespace modulo::search {

enum class Retriever { kVector, kKeyword, kHybrid };
enum class FusionMethod { kRrf, kWeighted };

[[nodiscard]] std::string_view ToString(Retriever r) noexcept;
[[nodiscard]] std::string_view ToString(FusionMethod f) noexcept;
[[nodiscard]] std::optional<Retriever> ParseRetriever(std::string_view s) noexcept;
[[nodiscard]] std::optional<FusionMethod> ParseFusion(std::string_view s) noexcept;

struct FusedHit {
  std::int64_t chunk_id = 0;
  double score = 0;
  std::optional<std::size_t> vector_rank;   // 1-based
  std::optional<std::size_t> keyword_rank;  // 1-based
  std::optional<float> vector_score;
  std::optional<float> keyword_score;
};

[[nodiscard]] std::vector<FusedHit> FuseRrf(std::span<const index::Hit> vector, std::span<const index::Hit> keyword,
                                            double k = 60.0, double vector_weight = 0.5);
[[nodiscard]] std::vector<FusedHit> FuseWeighted(std::span<const index::Hit> vector,
                                                 std::span<const index::Hit> keyword, double vector_weight = 0.5);
// One list as a ranking (retriever `vector` or `keyword`): scores kept as they are.
[[nodiscard]] std::vector<FusedHit> Single(std::span<const index::Hit> hits, bool is_vector);

}  // namespace modulo::search
