#include "modulo/api/openapi.h"

#include <gtest/gtest.h>

#include <set>

#include "modulo/api/system_routes.h"

namespace modulo::api {
namespace {

// Every route the application registers must be described, and nothing else.
TEST(OpenApiTest, DescribesExactlyTheRegisteredRoutes) {
  Settings settings;
  metrics::Registry registry;
  InProcessEventBus events;
  HealthRegistry health;
  ThreadPool cpu("cpu", 1), blocking("blocking", 1);
  AppContext app{settings, registry, events, health, cpu, blocking, [] { return false; }};
  http::Router router;
  AddSystemRoutes(router, app);
  AddOpenApiRoute(router, "test");

  const auto spec = BuildOpenApi(router, "test");
  std::set<std::pair<std::string, std::string>> described, registered;
  for (const auto& [path, ops] : spec["paths"].items()) {
    for (const auto& [method, op] : ops.items()) {
      described.emplace(method, path);
      EXPECT_FALSE(op["summary"].get<std::string>().empty()) << method << " " << path;
      EXPECT_TRUE(op["responses"].size() >= 2) << method << " " << path << " documents a success response";
    }
  }
  for (const auto& r : router.routes()) {
    std::string m(http::beast_http::to_string(r.method));
    for (auto& c : m) c = static_cast<char>(std::tolower(c));
    registered.emplace(m, r.path);
  }
  EXPECT_EQ(described, registered);
  EXPECT_TRUE(registered.contains({"get", "/openapi.json"}));
}

TEST(OpenApiTest, PathParametersAreDeclared) {
  http::Router router;
  http::Route r;
  r.path = "/api/collections/{collection_id}/files/{file_id}";
  r.doc.summary = "x";
  router.Add(r);
  const auto spec = BuildOpenApi(router, "t");
  const auto& params = spec["paths"][r.path]["get"]["parameters"];
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0]["name"], "collection_id");
  EXPECT_EQ(params[1]["in"], "path");
}

}  // namespace
}  // namespace modulo::api
