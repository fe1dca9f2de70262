// RedisEventBus: the EventBus across processes, over Redis pub/sub, so that a client connected to
// any server instance sees the progress events published by any worker process.
//
// Publish(topic, json) is PUBLISH <key_prefix>events:<topic> <json> on a pooled connection.
// One background thread holds a dedicated connection subscribed to <key_prefix>events:* and
// hands each message to the local subscribers of its topic — including those of the publishing
// process, which therefore also receive through Redis.
//
// Delivery is pub/sub's: at most once, to the subscribers connected at that moment. While Redis
// is unreachable, Publish drops the event (counted, logged at most every 10 s) and the
// subscriber thread reconnects with exponential backoff; events published meanwhile are lost.
// Progress events are advisory (a client can always read the task's state), so that is the
// trade for having no broker state to manage.
//
// Handlers run on the subscriber thread (not on the publisher's) and must not block: they queue
// the event and return. Once a Subscription's destructor returns, its handler is never called
// again (it waits for a running call to finish, unless called from inside that handler).
//
// Metrics (when a registry is given): modulo_redis_events_received_total,
// modulo_redis_event_bus_errors_total{op="publish|subscribe"}.
//
// Thread-safety: all members are thread-safe. The RedisClient must outlive the bus.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "modulo/core/event_bus.h"
#include "modulo/metrics/registry.h"
#include "modulo/redis/client.h"

namespace modulo::redis {

struct RedisEventBusOptions {
  std::chrono::milliseconds reconnect_backoff_initial{100};
  std::chrono::milliseconds reconnect_backoff_max{5000};
};

class RedisEventBus final : public EventBus {
 public:
  explicit RedisEventBus(RedisClient& client, metrics::Registry* registry = nullptr,
                         RedisEventBusOptions options = {});
  // Stops the subscriber thread. Subscriptions must not outlive the bus.
  ~RedisEventBus() override;
  RedisEventBus(const RedisEventBus&) = delete;
  RedisEventBus& operator=(const RedisEventBus&) = delete;

  void Publish(const std::string& topic, const std::string& json) override;
  [[nodiscard]] Subscription Subscribe(const std::string& topic, Handler handler) override;

  // True while the subscriber connection is subscribed (events published now will arrive).
  [[nodiscard]] bool subscribed() const noexcept { return subscribed_.load(); }
  // Waits until subscribed() or the timeout passes; returns subscribed().
  [[nodiscard]] bool WaitSubscribed(std::chrono::milliseconds timeout);
  [[nodiscard]] std::size_t SubscriberCount() const;
  // The Redis channel of a topic.
  [[nodiscard]] std::string Channel(const std::string& topic) const;

 private:
  void Unsubscribe(std::uint64_t id) override;
  void Run();
  void Deliver(const std::string& topic, const std::string& json);
  // Sleeps up to `d`, waking early on stop; false when stopping.
  bool SleepUnlessStopping(std::chrono::milliseconds d);

  RedisClient& client_;
  RedisEventBusOptions options_;
  std::string channel_prefix_;  // <key_prefix>events:
  std::string pattern_;         // the prefix, glob-escaped, then *

  // This process's subscribers: events received from Redis are published here.
  InProcessEventBus local_;

  std::mutex state_mu_;
  std::condition_variable state_cv_;  // signalled on subscribe state changes and on stop
  bool stop_ = false;                 // guarded by state_mu_
  std::atomic<bool> subscribed_{false};
  std::thread thread_;

  LogThrottle publish_log_;
  LogThrottle subscribe_log_;
  metrics::Counter* received_ = nullptr;
  metrics::Counter* publish_errors_ = nullptr;
  metrics::Counter* subscribe_errors_ = nullptr;
};

}  // namespace modulo::redis
