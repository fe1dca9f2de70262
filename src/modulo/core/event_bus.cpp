#include "modulo/core/event_bus.h"

#include <vector>

namespace modulo {

Subscription& Subscription::operator=(Subscription&& o) noexcept {
  if (this != &o) {
    Reset();
    bus_ = o.bus_;
    id_ = o.id_;
    o.bus_ = nullptr;
  }
  return *this;
}

void Subscription::Reset() {
  if (bus_ != nullptr) bus_->Unsubscribe(id_);
  bus_ = nullptr;
}

void InProcessEventBus::Publish(const std::string& topic, const std::string& json) {
  std::lock_guard delivery(delivery_mu_);
  std::vector<std::shared_ptr<Handler>> targets;
  {
    std::lock_guard lock(mu_);
    auto [b, e] = by_topic_.equal_range(topic);
    for (auto it = b; it != e; ++it) targets.push_back(entries_.at(it->second).handler);
  }
  for (const auto& h : targets) (*h)(topic, json);
}

Subscription InProcessEventBus::Subscribe(const std::string& topic, Handler handler) {
  std::lock_guard lock(mu_);
  const std::uint64_t id = next_id_++;
  entries_.emplace(id, Entry{topic, std::make_shared<Handler>(std::move(handler))});
  by_topic_.emplace(topic, id);
  return Subscription(this, id);
}

void InProcessEventBus::Unsubscribe(std::uint64_t id) {
  std::lock_guard delivery(delivery_mu_);
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  auto [b, e] = by_topic_.equal_range(it->second.topic);
  for (auto t = b; t != e; ++t) {
    if (t->second == id) {
      by_topic_.erase(t);
      break;
    }
  }
  entries_.erase(it);
}

std::size_t InProcessEventBus::SubscriberCount() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace modulo
