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
    } else if (std::find(allow.begin(), allow.end(), key) == allow.end()) {
      return Fail(Error::InvalidArgument("unknown field '" + key + "' in " + std::string(where)));
    }
  }
  return {};
}

nlohmann::json RetrievalSettings::ToJson() const {
  return {{"retriever", ToString(retriever)}, {"fusion", ToString(fusion)},   {"rrf_k", rrf_k},
          {"vector_weight", vector_weight},   {"top_k", top_k},               {"candidates", candidates},
          {"expand_parents", expand_parents}, {"dedupe", dedupe}};
}

}  // namespace modulo::search
