// The OpenAPI 3.1 document, built from the routes' own RouteDoc so it cannot drift from the
// router: every route appears, with its path parameters, request body and responses.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "modulo/http/router.h"

namespace modulo::api {

[[nodiscard]] nlohmann::json BuildOpenApi(const http::Router& router, const std::string& version);
// Adds GET /openapi.json serving the document of `router` (itself included). Call last.
void AddOpenApiRoute(http::Router& router, const std::string& version);

}  // namespace modulo::api
