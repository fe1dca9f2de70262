// Wall-clock time in milliseconds since the Unix epoch, the unit every store records.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace modulo {

[[nodiscard]] inline std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "2026-11-27T01:48:37.123Z" (UTC, milliseconds) for a time in NowMs() units.
[[nodiscard]] std::string FormatTimestamp(std::int64_t ms);

}  // namespace modulo
