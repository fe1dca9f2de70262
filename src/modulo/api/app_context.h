// AppContext: the services that route handlers use, created and owned by main.
//
// Handlers capture a reference to it; every member outlives the HTTP server.
#pragma once

#include <functional>

#include "modulo/core/config.h"
#include "modulo/core/event_bus.h"
#include "modulo/core/health.h"
#include "modulo/core/thread_pool.h"
#include "modulo/metrics/registry.h"

namespace modulo::api {

struct AppContext {
  const Settings& settings;
  metrics::Registry& metrics;
  EventBus& events;
  HealthRegistry& health;
  ThreadPool& cpu_pool;
  ThreadPool& blocking_pool;
  std::function<bool()> draining;  // true once shutdown has begun
};

}  // namespace modulo::api
