#include "modulo/store/identity_store.h"

namespace modulo::store {

std::string_view ToString(AccessLevel l) noexcept {
  switch (l) {
    case AccessLevel::kNone: return "none";
    case AccessLevel::kRead: return "read";
    case AccessLevel::kWrite: return "write";
    case AccessLevel::kAdmin: return "admin";
  }
  return "none";
}

std::optional<AccessLevel> ParseAccessLevel(std::string_view s) noexcept {
  for (auto v : {AccessLevel::kNone, AccessLevel::kRead, AccessLevel::kWrite, AccessLevel::kAdmin}) {
    if (ToString(v) == s) return v;
  }
  return std::nullopt;
}

}  // namespace modulo::store
