// AppContext: the services that route handlers use, created and owned by main.
//
// Handlers capture a reference to it; every member outlives the HTTP server.
#pragma once

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
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

// Counts each user's open long-lived streams against a cap.
// Thread-safety: Acquire() from any thread; a slot is released when its last copy goes.
class StreamSlots {
 public:
  explicit StreamSlots(int per_user) : per_user_(per_user) {}
  // A held slot, or nullptr when `user` already holds per_user of them.
  [[nodiscard]] std::shared_ptr<void> Acquire(const std::string& user) {
    std::lock_guard lock(state_->mu);
    int& held = state_->held[user];
    if (held >= per_user_) return nullptr;
    ++held;
    // Points at the state (never null, so a held slot tests true); the deleter only counts.
    return std::shared_ptr<void>(state_.get(), [state = state_, user](void*) {
      std::lock_guard lock(state->mu);
      if (--state->held[user] <= 0) state->held.erase(user);
    });
  }
  [[nodiscard]] int per_user() const noexcept { return per_user_; }

 private:
  struct State {
    std::mutex mu;
    std::map<std::string, int> held;
  };
  int per_user_;
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

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
  // Takes one unit of the principal's rate budget ("search"): chat messages over /ws count like
  // searches. Unset: no budgets.
  std::function<Status(const http::Request&, std::string_view budget)> take_budget;
  // Long-lived streams (/ws connections, /api/events streams) per user; unset: unlimited.
  std::shared_ptr<StreamSlots> streams;
};

}  // namespace modulo::api
