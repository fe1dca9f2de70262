// Principal: who is making a request, once authentication has succeeded. A plain value type the
// server builds from an API key or a JWT (or "none" when authentication is disabled) and hands to
// route handlers for authorization decisions.
//
// Thread-safety: value type; distinct objects may be used from distinct threads freely.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace modulo::auth {

struct Principal {
  enum class Role { kAdmin, kUser };
  enum class Kind { kUser, kServiceAccount };

  std::string user_id;
  std::string name;
  Role role = Role::kUser;
  Kind kind = Kind::kUser;
  std::vector<std::string> team_ids;
  std::vector<std::string> admin_team_ids;  // of team_ids, those where the user is a team admin
  std::string auth_method;  // "api_key", "jwt" or "none"
  std::string key_id;       // the API key id or the JWT `kid`, when there is one

  [[nodiscard]] bool is_admin() const noexcept { return role == Role::kAdmin; }
};

// Stable names, for logs and JSON: "admin"/"user", "user"/"service_account".
[[nodiscard]] constexpr std::string_view RoleName(Principal::Role r) noexcept {
  return r == Principal::Role::kAdmin ? "admin" : "user";
}
[[nodiscard]] constexpr std::string_view KindName(Principal::Kind k) noexcept {
  return k == Principal::Kind::kServiceAccount ? "service_account" : "user";
}

}  // namespace modulo::auth
