// AppContext: the services that route handlers use, created and owned by main.
//
// Handlers capture a reference to it; every member outlives the HTTP server.
#pragma once

#include <functional>
#include <string>

#include "modulo/core/error.h"

#include "modulo/core/config.h"
#include "modulo/core/event_bus.h"
#include "modulo/core/health.h"
#include "modulo/core/thread_pool.h"
#include "modulo/metrics/registry.h"

namespace modulo::http {
struct Request;
}

namespace modulo::api {

struct AppContext {
  const Settings& settings;
  metrics::Registry& metrics;
  EventBus& events;
  HealthRegistry& health;
  ThreadPool& cpu_pool;
  ThreadPool& blocking_pool;
  std::function<bool()> draining;  // true once shutdown has begun
  // May the request's principal follow this event topic (task:<id>, collection:<id>)? Blocking:
  // call it on the blocking pool. Unset: every topic is allowed.
  std::function<Status(const http::Request&, const std::string& topic)> topic_access;
};

}  // namespace modulo::api
