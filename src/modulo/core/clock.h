// Wall-clock time in milliseconds since the Unix epoch, the unit every store records.
#pragma once

#include <chrono>
#include <cstdint>

namespace modulo {

[[nodiscard]] inline std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace modulo
