// The one way Modulo reads JSON it did not write itself: HTTP bodies, WebSocket messages, LLM
// provider, embedder and Milvus responses, cached values, files on disk.
//
// A document nested deeper than `max_depth` arrays and objects, or longer than `max_bytes`, is
// refused before it is parsed: nlohmann::json copies, compares and prints values recursively, so an
// unbounded depth is a stack overflow waiting for the first copy. The depth is counted by a
// linear scan of the text (strings and their escapes skipped), so refusing costs no allocation.
//
// Thread-safety: free functions without state.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string_view>

#include "modulo/core/error.h"

namespace modulo {

struct JsonLimits {
  std::size_t max_depth = 64;              // nested arrays and objects
  std::size_t max_bytes = 64u << 20;       // the text itself
};

// The parsed value, or InvalidArgument naming the problem ("invalid JSON at byte 17: ...",
// "JSON nested deeper than 64 levels", "JSON text of 70000000 bytes is over the 67108864-byte
// limit"). Comments are not accepted.
[[nodiscard]] Result<nlohmann::json> ParseJson(std::string_view text, const JsonLimits& limits = {});

// The parsed value, or a discarded value (`is_discarded()`) for any text ParseJson refuses: the
// shape of nlohmann's `json::parse(text, nullptr, false)`, with the limits.
[[nodiscard]] nlohmann::json ParseJsonOrDiscarded(std::string_view text, const JsonLimits& limits = {});

// The deepest nesting of arrays and objects in `text`, counting stops once `stop_above` is passed
// (the scan then returns stop_above + 1). Text that is not JSON gets some number; ParseJson then
// reports the syntax error.
[[nodiscard]] std::size_t JsonDepth(std::string_view text, std::size_t stop_above) noexcept;

}  // namespace modulo
