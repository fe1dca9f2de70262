// Percent-decoding and query-string parsing for request targets.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace modulo::http {

// Decodes %XX escapes ('+' stays '+' unless plus_is_space). nullopt on a malformed escape.
[[nodiscard]] std::optional<std::string> PercentDecode(std::string_view in, bool plus_is_space = false);
// Splits "a=1&b=x%20y" into decoded pairs; malformed pairs are kept raw rather than dropped.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query);

}  // namespace modulo::http
