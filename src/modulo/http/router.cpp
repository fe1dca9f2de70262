#include "modulo/http/router.h"

#include <algorithm>
#include <stdexcept>

#include "modulo/http/url.h"

namespace modulo::http {
namespace {
bool IsParam(std::string_view s) { return s.size() > 2 && s.front() == '{' && s.back() == '}'; }
}  // namespace

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty() || path == "/") return out;
  if (path.front() == '/') path.remove_prefix(1);
  while (true) {
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

void Router::Add(Route route) {
  if (route.path.empty() || route.path.front() != '/') {
    throw std::invalid_argument("route template must start with '/': " + route.path);
  }
  Compiled c;
  for (auto seg : SplitPath(route.path)) {
    if (seg.empty()) throw std::invalid_argument("empty segment in route template: " + route.path);
    if (!IsParam(seg) && (seg.find('{') != std::string_view::npos || seg.find('}') != std::string_view::npos)) {
      throw std::invalid_argument("malformed parameter in route template: " + route.path);
    }
    if (!IsParam(seg)) ++c.literal_count;
    c.segments.emplace_back(seg);
  }
  for (const auto& r : routes_) {
    if (r.method == route.method && r.path == route.path) {
      throw std::invalid_argument("duplicate route: " + route.path);
    }
  }
  routes_.push_back(std::move(route));
  compiled_.push_back(std::move(c));
}

RouteMatch Router::Match(beast_http::verb method, std::string_view path) const {
  RouteMatch best;
  const auto segs = SplitPath(path);
  std::size_t best_literals = 0;
  bool path_matched = false;
  std::vector<beast_http::verb> allowed;
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    const Compiled& c = compiled_[i];
    if (c.segments.size() != segs.size()) continue;
    bool ok = true;
    for (std::size_t s = 0; s < segs.size() && ok; ++s) {
      ok = IsParam(c.segments[s]) ? !segs[s].empty() : c.segments[s] == segs[s];
    }
    if (!ok) continue;
    path_matched = true;
    if (routes_[i].method != method) {
      if (std::find(allowed.begin(), allowed.end(), routes_[i].method) == allowed.end()) {
        allowed.push_back(routes_[i].method);
      }
      continue;
    }
    if (best.route == nullptr || c.literal_count > best_literals) {
      std::map<std::string, std::string, std::less<>> params;
      bool decoded = true;
      for (std::size_t s = 0; s < segs.size(); ++s) {
        if (!IsParam(c.segments[s])) continue;
        auto v = PercentDecode(segs[s]);
        if (!v) {
          decoded = false;
          break;
        }
        params[c.segments[s].substr(1, c.segments[s].size() - 2)] = std::move(*v);
      }
      if (!decoded) continue;
      best.route = &routes_[i];
      best.params = std::move(params);
      best_literals = c.literal_count;
    }
  }
  if (best.route == nullptr && path_matched) best.allowed = std::move(allowed);
  return best;
}

}  // namespace modulo::http
