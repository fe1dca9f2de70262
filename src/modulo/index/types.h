// Types shared by the vector store and the keyword index: what is indexed, how a search is
// restricted, and what it returns. Both indexes are derived data: the metadata store is the
// source of truth and an index can always be rebuilt from it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace modulo::index {

// One index per (collection, generation): a reindex builds generation g+1 beside g.
struct IndexKey {
  std::string collection_id;
  std::int64_t generation = 1;
  // Owner, used by engines that name their collections after it (user_{owner}_collection_{id}).
  std::string owner_id;
  // "user" or "team": the prefix of that name (see VectorCollectionName).
  std::string owner_type = "user";

  friend bool operator==(const IndexKey&, const IndexKey&) = default;
};

// What an index needs to know about a chunk to index it and to apply a filter to it.
struct IndexedChunk {
  std::int64_t chunk_id = 0;  // the metadata store's id: unique across collections, never reused
  std::string file_id;        // the document it belongs to
  std::int32_t page_number = 0;
  const float* embedding = nullptr;  // vector stores: `dimension` floats, L2-normalised
  std::string_view text;             // keyword indexes: the chunk's text
};

// Restricts a search. Empty members do not restrict. The search layer resolves document-level
// metadata (source file name, format) to file ids before it reaches an index.
struct SearchFilter {
  std::optional<std::vector<std::string>> file_ids;  // only chunks of these documents
  std::optional<std::int32_t> page_min;              // page_number >= page_min
  std::optional<std::int32_t> page_max;              // page_number <= page_max

  [[nodiscard]] bool empty() const noexcept { return !file_ids && !page_min && !page_max; }
};

// The engine-side name of a collection's vector index, after the seed's convention
// `user_{user_id}_collection_{collection_id}` (`team_…` for team-owned collections), with `_g{n}`
// for generations after the first; sanitised for engines such as Milvus: only [A-Za-z0-9_],
// starting with a letter, at most 255 characters.
[[nodiscard]] inline std::string VectorCollectionName(std::string_view owner_type, std::string_view owner_id,
                                                      std::string_view collection_id, std::int64_t generation = 1) {
  auto clean = [](std::string_view s) {
    std::string out;
    for (char c : s) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
      if (ok) out += c;
      else if (c != '-') out += '_';
    }
    return out;
  };
  std::string name = std::string(owner_type == "team" ? "team_" : "user_") +
                     (owner_id.empty() ? std::string("none") : clean(owner_id)) + "_collection_" + clean(collection_id);
  if (generation > 1) name += "_g" + std::to_string(generation);
  if (name.size() > 255) name.resize(255);
  return name;
}

struct Hit {
  std::int64_t chunk_id = 0;
  float score = 0;  // higher is better: inner product for vectors, BM25 for keywords
};

}  // namespace modulo::index
