// Router: maps (method, path) to a Route. Templates have literal segments and {name}
// parameters ("/api/collections/{id}/files"); literal segments win over parameters.
// A path that matches no template is NotFound; a path whose template lacks the method is
// MethodNotAllowed and reports the methods that are allowed.
//
// Thread-safety: add all routes before serving; Match() is then const and thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "modulo/http/message.h"

namespace modulo::http {

struct RouteMatch {
  const Route* route = nullptr;
  std::map<std::string, std::string, std::less<>> params;
  std::vector<beast_http::verb> allowed;  // filled when the path matched but the method did not
};

class Router {
 public:
  // Throws std::invalid_argument on a malformed template or a duplicate (method, template).
  void Add(Route route);
  // `path` is the raw (still percent-encoded) path; parameters are decoded.
  [[nodiscard]] RouteMatch Match(beast_http::verb method, std::string_view path) const;
  [[nodiscard]] const std::vector<Route>& routes() const noexcept { return routes_; }
  // The one place that decides who may call which route (authentication, authorization, rate
  // limits), from each route's `policy`.
  void SetGuard(Guard guard) { guard_ = std::move(guard); }
  [[nodiscard]] const Guard& guard() const noexcept { return guard_; }

 private:
  Guard guard_;
  struct Compiled {
    std::vector<std::string> segments;  // "{x}" for parameters
    std::size_t literal_count = 0;
  };
  std::vector<Route> routes_;
  std::vector<Compiled> compiled_;
};

// Splits "/a/b/" into {"a", "b", ""}; "/" into {}.
[[nodiscard]] std::vector<std::string_view> SplitPath(std::string_view path);

}  // namespace modulo::http
