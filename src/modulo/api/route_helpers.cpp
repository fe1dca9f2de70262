#include "modulo/api/route_helpers.h"

namespace modulo::api {

void AddRoute(http::Router& router, RouteSpec spec, http::Handler handler) {
  http::Route r;
  r.method = spec.method;
  r.path = std::move(spec.path);
  r.policy = std::move(spec.policy);
  r.doc.summary = std::move(spec.summary);
  r.doc.tag = std::move(spec.tag);
  if (!spec.body_schema.is_null()) {
    r.doc.request_body = {{"required", true},
                          {"content", {{"application/json", {{"schema", std::move(spec.body_schema)}}}}}};
  }
  r.doc.responses = {{"200", {{"description", "OK"}}},
                     {"401", {{"description", "Not authenticated"}}},
                     {"403", {{"description", "Not allowed"}}}};
  for (auto& [status, description] : spec.responses) r.doc.responses[status] = {{"description", description}};
  r.handler = std::move(handler);
  router.Add(std::move(r));
}

}  // namespace modulo::api
