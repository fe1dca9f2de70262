#include "modulo/store/identity_store.h"

#include <algorithm>
#include <cctype>

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

bool IsOneOf(std::string_view v, std::initializer_list<std::string_view> allowed) {
  return std::find(allowed.begin(), allowed.end(), v) != allowed.end();
}

Status ValidateUser(const User& u) {
  if (u.name.empty()) return Fail(Error::InvalidArgument("user name must not be empty"));
  if (!IsOneOf(u.role, {"admin", "user"})) {
    return Fail(Error::InvalidArgument("user role must be 'admin' or 'user', not '" + u.role + "'"));
  }
  if (!IsOneOf(u.kind, {"user", "service"})) {
    return Fail(Error::InvalidArgument("user kind must be 'user' or 'service', not '" + u.kind + "'"));
  }
  return {};
}

Status ValidateDay(const std::string& day) {
  const bool ok = day.size() == 10 && day[4] == '-' && day[7] == '-' &&
                  std::all_of(day.begin(), day.end(), [](char ch) {
                    return ch == '-' || std::isdigit(static_cast<unsigned char>(ch)) != 0;
                  });
  if (!ok) return Fail(Error::InvalidArgument("day must be YYYY-MM-DD, not '" + day + "'"));
  return {};
}

}  // namespace modulo::store
