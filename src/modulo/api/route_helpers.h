// Registering a JSON route with its OpenAPI description in one call, for the route files.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "modulo/http/router.h"

namespace modulo::api {

struct RouteSpec {
  http::beast_http::verb method;
  std::string path;
  std::string policy;  // see api/security.h
  std::string summary;
  std::string tag;
  nlohmann::json body_schema = nullptr;  // a JSON Schema of the body; null: no body
  // Responses besides 200 (e.g. {"404", "No such conversation"}); 401 and 403 are always listed.
  std::vector<std::pair<std::string, std::string>> responses = {};
};

void AddRoute(http::Router& router, RouteSpec spec, http::Handler handler);

}  // namespace modulo::api
