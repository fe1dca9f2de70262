#include "modulo/api/openapi.h"

#include <cctype>
#include <memory>
#include <mutex>

#include "modulo/http/message.h"

namespace modulo::api {

namespace {

std::string MethodKey(http::beast_http::verb v) {
  std::string s(http::beast_http::to_string(v));
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

nlohmann::json ErrorSchemaRef() { return {{"$ref", "#/components/schemas/Error"}}; }

}  // namespace

nlohmann::json BuildOpenApi(const http::Router& router, const std::string& version) {
  nlohmann::json paths = nlohmann::json::object();
  for (const auto& route : router.routes()) {
    nlohmann::json op;
    op["summary"] = route.doc.summary;
    if (!route.doc.tag.empty()) op["tags"] = {route.doc.tag};
    std::string op_id = MethodKey(route.method);
    for (char c : route.path) op_id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    op["operationId"] = op_id;
    nlohmann::json params = nlohmann::json::array();
    for (auto seg : http::SplitPath(route.path)) {
      if (seg.size() > 2 && seg.front() == '{') {
        params.push_back({{"name", std::string(seg.substr(1, seg.size() - 2))},
                          {"in", "path"},
                          {"required", true},
                          {"schema", {{"type", "string"}}}});
      }
    }
    for (const auto& p : route.doc.parameters) params.push_back(p);
    if (!params.empty()) op["parameters"] = params;
    if (!route.doc.request_body.is_null()) op["requestBody"] = route.doc.request_body;
    nlohmann::json responses = route.doc.responses.is_object() ? route.doc.responses : nlohmann::json::object();
    if (!responses.contains("default")) {
      responses["default"] = {{"description", "Error"},
                              {"content", {{"application/json", {{"schema", ErrorSchemaRef()}}}}}};
    }
    op["responses"] = responses;
    paths[route.path][MethodKey(route.method)] = op;
  }
  return {
      {"openapi", "3.1.0"},
      {"info",
       {{"title", "Modulo"},
        {"version", version},
        {"description", "Retrieval-augmented generation server: collections, documents, search and answers."}}},
      {"paths", paths},
      {"components",
       {{"schemas",
         {{"Error",
           {{"type", "object"},
            {"required", {"detail", "code"}},
            {"properties",
             {{"detail", {{"type", "string"}, {"description", "What went wrong, for people"}}},
              {"code", {{"type", "string"}, {"description", "Stable machine-readable error code"}}}}}}}}}}}};
}

void AddOpenApiRoute(http::Router& router, const std::string& version) {
  // The document is built once, on first request, after every route (this one included) exists.
  auto cached = std::make_shared<std::string>();
  auto once = std::make_shared<std::once_flag>();
  http::Route r;
  r.path = "/openapi.json";
  r.policy = "public";
  r.doc = {.summary = "This OpenAPI document",
           .tag = "system",
           .request_body = nullptr,
           .responses = {{"200", {{"description", "OpenAPI 3.1 document"}}}}};
  r.handler = [&router, version, cached, once](http::Request&) -> boost::asio::awaitable<http::Response> {
    std::call_once(*once, [&] { *cached = BuildOpenApi(router, version).dump(); });
    co_return http::Response::Text(*cached, "application/json");
  };
  router.Add(std::move(r));
}

}  // namespace modulo::api
