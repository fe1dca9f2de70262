// System routes: liveness, readiness, component health, Prometheus metrics, the WebSocket at
// /ws and the Server-Sent Events stream at /api/events.
#pragma once

#include "modulo/api/app_context.h"
#include "modulo/http/router.h"

namespace modulo::api {

void AddSystemRoutes(http::Router& router, AppContext& app);

}  // namespace modulo::api
