#include "modulo/redis/event_bus.h"

#include <algorithm>
#include <exception>
#include <vector>

#include "modulo/core/log.h"

namespace modulo::redis {
namespace {

// Escapes the glob characters of a literal for a PSUBSCRIBE pattern.
std::string GlobEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace

RedisEventBus::RedisEventBus(RedisClient& client, metrics::Registry* registry, RedisEventBusOptions options)
    : client_(client), options_(options), channel_prefix_(client.Key("events:")) {
  if (options_.reconnect_backoff_initial.count() <= 0) options_.reconnect_backoff_initial = std::chrono::milliseconds(1);
  options_.reconnect_backoff_max = std::max(options_.reconnect_backoff_max, options_.reconnect_backoff_initial);
  pattern_ = GlobEscape(channel_prefix_) + "*";
  if (registry != nullptr) {
    received_ = &registry->AddCounter("modulo_redis_events_received_total",
                                      "Events received from Redis pub/sub by this process")
                     .With({});
    auto& errors = registry->AddCounter("modulo_redis_event_bus_errors_total",
                                        "Event bus failures: events not published, subscriber connection losses",
                                        {"op"});
    publish_errors_ = &errors.With({"publish"});
    subscribe_errors_ = &errors.With({"subscribe"});
  }
  thread_ = std::thread([this] { Run(); });
}

RedisEventBus::~RedisEventBus() {
  {
    std::lock_guard lock(state_mu_);
    stop_ = true;
  }
  state_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string RedisEventBus::Channel(const std::string& topic) const { return channel_prefix_ + topic; }

void RedisEventBus::Publish(const std::string& topic, const std::string& json) {
  auto r = client_.Command({"PUBLISH", Channel(topic), json});
  if (r) return;
  if (publish_errors_ != nullptr) publish_errors_->Inc();
  std::int64_t suppressed = 0;
  if (publish_log_.Allow(suppressed)) {
    log::Warn("event not published to redis",
              {{"topic", topic}, {"error", r.error().ToString()}, {"suppressed", suppressed}});
  }
}

Subscription RedisEventBus::Subscribe(const std::string& topic, Handler handler) {
  // A throwing handler is logged and does not keep the others from their event.
  return local_.Subscribe(topic, [h = std::move(handler)](const std::string& t, const std::string& json) {
    try {
      h(t, json);
    } catch (const std::exception& ex) {
      log::Error("event handler threw", {{"topic", t}, {"error", ex.what()}});
    } catch (...) {
      log::Error("event handler threw", {{"topic", t}});
    }
  });
}

// Subscriptions are the local bus's: it is the one they unsubscribe from.
void RedisEventBus::Unsubscribe(std::uint64_t) {}

std::size_t RedisEventBus::SubscriberCount() const { return local_.SubscriberCount(); }

bool RedisEventBus::WaitSubscribed(std::chrono::milliseconds timeout) {
  std::unique_lock lock(state_mu_);
  state_cv_.wait_for(lock, timeout, [this] { return stop_ || subscribed_.load(); });
  return subscribed_.load();
}

bool RedisEventBus::SleepUnlessStopping(std::chrono::milliseconds d) {
  std::unique_lock lock(state_mu_);
  state_cv_.wait_for(lock, d, [this] { return stop_; });
  return !stop_;
}

void RedisEventBus::Deliver(const std::string& topic, const std::string& json) { local_.Publish(topic, json); }

void RedisEventBus::Run() {
  auto backoff = options_.reconnect_backoff_initial;
  bool ever_subscribed = false;
  auto failed = [&](const Error& e, std::string_view what) {
    if (subscribe_errors_ != nullptr) subscribe_errors_->Inc();
    std::int64_t suppressed = 0;
    if (subscribe_log_.Allow(suppressed)) {
      log::Warn(what, {{"error", e.ToString()}, {"retry_ms", static_cast<std::int64_t>(backoff.count())},
                       {"suppressed", suppressed}});
    }
  };
  while (true) {
    {
      std::lock_guard lock(state_mu_);
      if (stop_) return;
    }
    auto conn = client_.OpenDedicated();
    if (!conn) {
      failed(conn.error(), "event subscriber cannot connect to redis");
      if (!SleepUnlessStopping(backoff)) return;
      backoff = std::min(backoff * 2, options_.reconnect_backoff_max);
      continue;
    }
    if (auto r = (*conn)->Command({"PSUBSCRIBE", pattern_}); !r) {
      failed(r.error(), "event subscriber cannot subscribe");
      if (!SleepUnlessStopping(backoff)) return;
      backoff = std::min(backoff * 2, options_.reconnect_backoff_max);
      continue;
    }
    {
      std::lock_guard lock(state_mu_);
      subscribed_ = true;
    }
    state_cv_.notify_all();
    if (ever_subscribed) log::Info("event subscriber reconnected to redis", {{"pattern", pattern_}});
    ever_subscribed = true;
    backoff = options_.reconnect_backoff_initial;

    while (true) {
      {
        std::lock_guard lock(state_mu_);
        if (stop_) break;
      }
      auto m = (*conn)->Read(std::chrono::milliseconds(100));
      if (!m) {
        failed(m.error(), "event subscriber lost its redis connection");
        break;
      }
      if (!*m) continue;
      const RedisReply& msg = **m;
      // ["pmessage", pattern, channel, payload]; subscription confirmations are skipped.
      if (msg.type != RedisReply::Type::kArray || msg.elements.size() != 4 || msg.elements[0].str != "pmessage") {
        continue;
      }
      const std::string& channel = msg.elements[2].str;
      if (!channel.starts_with(channel_prefix_)) continue;
      if (received_ != nullptr) received_->Inc();
      Deliver(channel.substr(channel_prefix_.size()), msg.elements[3].str);
    }
    subscribed_ = false;
    {
      std::lock_guard lock(state_mu_);
      if (stop_) return;
    }
    if (!SleepUnlessStopping(backoff)) return;
  }
}

}  // namespace modulo::redis
