// AppContext: the services that route handlers use, created and owned by main.
//
// Handlers capture a reference to it; every member outlives the HTTP server.
#pragma once

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "modulo/core/error.h"

#include "modulo/core/config.h"
#include "modulo/core/event_bus.h"
#include "modulo/core/health.h"
#include "modulo/core/thread_pool.h"
#include "modulo/generate/llm_provider.h"
#include "modulo/metrics/registry.h"

namespace modulo::http {
struct Request;
class WebSocket;
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
  // Answers one /ws "chat_message" (api/conversation_routes.h), sending its events on the socket;
  // completes when the answer is done, failed or cancelled. Unset: chat messages are refused.
  std::function<boost::asio::awaitable<void>(http::WebSocket&, const http::Request&, nlohmann::json message,
                                             std::shared_ptr<generate::CancelToken> cancel)>
      ws_chat;
};

}  // namespace modulo::api
