#include "modulo/core/json.h"

#include <string>

namespace modulo {

std::size_t JsonDepth(std::string_view text, std::size_t stop_above) noexcept {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;  // the escaped character cannot end the string
      else if (c == '"') in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > deepest) {
          deepest = depth;
          if (deepest > stop_above) return deepest;
        }
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default: break;
    }
  }
  return deepest;
}

Result<nlohmann::json> ParseJson(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return Fail(Error::PayloadTooLarge("JSON text of " + std::to_string(text.size()) + " bytes is over the " +
                                       std::to_string(limits.max_bytes) + "-byte limit"));
  }
  if (JsonDepth(text, limits.max_depth) > limits.max_depth) {
    return Fail(Error::InvalidArgument("JSON nested deeper than " + std::to_string(limits.max_depth) + " levels"));
  }
  try {
    return nlohmann::json::parse(text.begin(), text.end(), nullptr, true, false);
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann's message already says where; keep only its human part.
    std::string what = e.what();
    const auto pos = what.find("] ");
    if (pos != std::string::npos) what = what.substr(pos + 2);
    return Fail(Error::InvalidArgument("invalid JSON at byte " + std::to_string(e.byte) + ": " + what));
  }
}

nlohmann::json ParseJsonOrDiscarded(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes || JsonDepth(text, limits.max_depth) > limits.max_depth) {
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }
  return nlohmann::json::parse(text.begin(), text.end(), nullptr, false, false);
}

}  // namespace modulo
