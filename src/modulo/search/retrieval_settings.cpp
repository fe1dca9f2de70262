#include "modulo/search/retrieval_settings.h"

#include <algorithm>
#include <string>

namespace modulo::search {

namespace {

Error Bad(std::string_view where, std::string_view key, std::string_view what) {
  return Error::InvalidArgument(std::string(where) + "." + std::string(key) + " " + std::string(what));
}

}  // namespace

Status RetrievalSettings::Apply(const nlohmann::json& j, std::size_t max_top_k, std::string_view where,
                                std::span<const std::string_view> allow) {
  if (j.is_null()) return {};
  if (!j.is_object()) return Fail(Error::InvalidArgument(std::string(where) + " must be an object"));
  for (const auto& [key, v] : j.items()) {
    if (key == "top_k") {
      if (!v.is_number_integer()) return Fail(Bad(where, key, "must be an integer"));
      const auto n = v.get<std::int64_t>();
      if (n < 1 || static_cast<std::uint64_t>(n) > max_top_k) {
        return Fail(Bad(where, key, "must be between 1 and " + std::to_string(max_top_k) + " (MAX_TOP_K), got " +
                                        std::to_string(n)));
      }
      top_k = static_cast<std::size_t>(n);
    } else if (key == "candidates") {
      if (!v.is_number_integer()) return Fail(Bad(where, key, "must be an integer"));
      const auto n = v.get<std::int64_t>();
      if (n < 1 || n > 1000) return Fail(Bad(where, key, "must be between 1 and 1000"));
      candidates = static_cast<std::size_t>(n);
    } else if (key == "retriever") {
      auto r = v.is_string() ? ParseRetriever(v.get<std::string>()) : std::nullopt;
      if (!r) return Fail(Bad(where, key, "must be one of vector, keyword, hybrid"));
      retriever = *r;
    } else if (key == "fusion") {
      auto f = v.is_string() ? ParseFusion(v.get<std::string>()) : std::nullopt;
      if (!f) return Fail(Bad(where, key, "must be rrf or weighted"));
      fusion = *f;
    } else if (key == "rrf_k") {
      if (!v.is_number() || v.get<double>() <= 0 || v.get<double>() > 10000) {
        return Fail(Bad(where, key, "must be a number in (0, 10000]"));
      }
      rrf_k = v.get<double>();
    } else if (key == "vector_weight") {
      if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1) {
        return Fail(Bad(where, key, "must be a number between 0 and 1"));
      }
      vector_weight = v.get<double>();
    } else if (key == "expand_parents" || key == "dedupe") {
      if (!v.is_boolean()) return Fail(Bad(where, key, "must be a boolean"));
      (key == "dedupe" ? dedupe : expand_parents) = v.get<bool>();
    } else if (key == "hnsw" && where == "retrieval") {
      if (!v.is_object()) return Fail(Bad(where, key, "must be an object of m, ef_construction, ef_search"));
      for (const auto& [name, n] : v.items()) {
        const bool known = name == "m" || name == "ef_construction" || name == "ef_search";
        if (!known) return Fail(Error::InvalidArgument("unknown field '" + name + "' in retrieval.hnsw"));
        const std::int64_t lo = name == "m" ? 4 : 8, hi = name == "m" ? 128 : 4096;
        if (!n.is_number_integer() || n.get<std::int64_t>() < lo || n.get<std::int64_t>() > hi) {
          return Fail(Error::InvalidArgument("retrieval.hnsw." + name + " must be an integer between " +
                                             std::to_string(lo) + " and " + std::to_string(hi)));
        }
        const auto value = static_cast<std::size_t>(n.get<std::int64_t>());
        (name == "m" ? hnsw_m : name == "ef_construction" ? hnsw_ef_construction : hnsw_ef_search) = value;
      }
    } else if (std::find(allow.begin(), allow.end(), key) == allow.end()) {
      return Fail(Error::InvalidArgument("unknown field '" + key + "' in " + std::string(where)));
    }
  }
  return {};
}

nlohmann::json RetrievalSettings::ToJson() const {
  nlohmann::json j = {{"retriever", ToString(retriever)}, {"fusion", ToString(fusion)},   {"rrf_k", rrf_k},
                      {"vector_weight", vector_weight},   {"top_k", top_k},               {"candidates", candidates},
                      {"expand_parents", expand_parents}, {"dedupe", dedupe}};
  nlohmann::json hnsw = nlohmann::json::object();
  if (hnsw_m > 0) hnsw["m"] = hnsw_m;
  if (hnsw_ef_construction > 0) hnsw["ef_construction"] = hnsw_ef_construction;
  if (hnsw_ef_search > 0) hnsw["ef_search"] = hnsw_ef_search;
  if (!hnsw.empty()) j["hnsw"] = std::move(hnsw);
  return j;
}

}  // namespace modulo::search
