// RetrievalSettings: how a collection is searched. Stored per collection (the "retrieval" object
// of its settings) and overridable per request (`config_metadata`).
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <nlohmann/json.hpp>

#include "modulo/core/error.h"
#include "modulo/search/fusion.h"

namespace modulo::search {

struct RetrievalSettings {
  Retriever retriever = Retriever::kHybrid;
  FusionMethod fusion = FusionMethod::kRrf;
  double rrf_k = 60.0;          // RRF's k
  double vector_weight = 0.5;   // share of the vector list in fusion, 0..1
  std::size_t top_k = 10;       // results returned
  std::size_t candidates = 50;  // results taken from each retriever before fusion (at least top_k)
  bool expand_parents = true;   // hierarchical chunking: attach each hit's parent chunk
  bool dedupe = true;           // drop hits that mostly repeat a better hit of the same document
  // Vector index parameters of this collection (0: the server's HNSW_* settings). Only at
  // collection level: m and ef_construction shape the graph when it is built.
  std::size_t hnsw_m = 0;
  std::size_t hnsw_ef_construction = 0;
  std::size_t hnsw_ef_search = 0;

  // Applies the keys of `j` (an object; null means none) on top of `*this`. Unknown keys and bad
  // values are InvalidArgument naming the key; `allow` lists extra keys the caller handles.
  [[nodiscard]] Status Apply(const nlohmann::json& j, std::size_t max_top_k, std::string_view where,
                             std::span<const std::string_view> allow = {});
  [[nodiscard]] nlohmann::json ToJson() const;
};

}  // namespace modulo::search
