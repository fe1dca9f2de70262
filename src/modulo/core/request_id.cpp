#include "modulo/core/request_id.h"

#include <cstdint>
#include <random>

namespace modulo {

bool IsValidRequestId(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  std::uint64_t a = rng(), b = rng();
  for (int i = 0; i < 16; ++i) {
    out[i] = kHex[(a >> (i * 4)) & 0xf];
    out[16 + i] = kHex[(b >> (i * 4)) & 0xf];
  }
  return out;
}

}  // namespace modulo
