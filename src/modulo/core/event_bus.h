// EventBus: topic-based publish/subscribe for progress and notification events.
//
// Publishers (the job queue, ingestion) publish a JSON text on a topic such as "task:<id>" or
// "collection:<id>"; subscribers (WebSocket and Server-Sent Events connections) receive it.
// InProcessEventBus delivers within one process; a Redis pub/sub implementation delivers across
// instances. Handlers run on the publisher's thread and must not block: they queue the event
// and return.
//
// Thread-safety: all members are thread-safe; a Subscription may be destroyed on any thread, and
// once its destructor returns the handler is never called again.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace modulo {

class EventBus;

// Unsubscribes when destroyed.
class Subscription {
 public:
  Subscription() = default;
  Subscription(EventBus* bus, std::uint64_t id) : bus_(bus), id_(id) {}
  Subscription(Subscription&& o) noexcept : bus_(o.bus_), id_(o.id_) { o.bus_ = nullptr; }
  Subscription& operator=(Subscription&& o) noexcept;
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  ~Subscription() { Reset(); }
  void Reset();

 private:
  EventBus* bus_ = nullptr;
  std::uint64_t id_ = 0;
};

class EventBus {
 public:
  using Handler = std::function<void(const std::string& topic, const std::string& json)>;
  virtual ~EventBus() = default;
  virtual void Publish(const std::string& topic, const std::string& json) = 0;
  [[nodiscard]] virtual Subscription Subscribe(const std::string& topic, Handler handler) = 0;

 protected:
  friend class Subscription;
  virtual void Unsubscribe(std::uint64_t id) = 0;
};

class InProcessEventBus final : public EventBus {
 public:
  void Publish(const std::string& topic, const std::string& json) override;
  [[nodiscard]] Subscription Subscribe(const std::string& topic, Handler handler) override;
  [[nodiscard]] std::size_t SubscriberCount() const;

 private:
  void Unsubscribe(std::uint64_t id) override;

  struct Entry {
    std::string topic;
    std::shared_ptr<Handler> handler;
  };
  mutable std::mutex mu_;
  std::uint64_t next_id_ = 1;                // guarded by mu_
  std::map<std::uint64_t, Entry> entries_;   // guarded by mu_
  std::multimap<std::string, std::uint64_t> by_topic_;  // guarded by mu_
  // Held while handlers run so that Unsubscribe() waits for a running handler to finish.
  std::recursive_mutex delivery_mu_;
};

}  // namespace modulo
