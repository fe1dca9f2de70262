#include "modulo/core/event_bus.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace modulo {
namespace {

TEST(EventBusTest, DeliversOnlyToTheTopic) {
  InProcessEventBus bus;
  std::vector<std::string> a, b;
  auto sa = bus.Subscribe("task:1", [&](const std::string&, const std::string& j) { a.push_back(j); });
  auto sb = bus.Subscribe("task:2", [&](const std::string&, const std::string& j) { b.push_back(j); });
  bus.Publish("task:1", "{\"p\":1}");
  bus.Publish("task:3", "{}");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0], "{\"p\":1}");
  EXPECT_TRUE(b.empty());
}

TEST(EventBusTest, DestroyedSubscriptionStopsDelivery) {
  InProcessEventBus bus;
  int n = 0;
  {
    auto s = bus.Subscribe("t", [&](const std::string&, const std::string&) { ++n; });
    bus.Publish("t", "{}");
    EXPECT_EQ(bus.SubscriberCount(), 1u);
  }
  bus.Publish("t", "{}");
  EXPECT_EQ(n, 1);
  EXPECT_EQ(bus.SubscriberCount(), 0u);
}

TEST(EventBusTest, ConcurrentPublishAndUnsubscribeIsSafe) {
  InProcessEventBus bus;
  std::atomic<int> got{0};
  std::atomic<bool> stop{false};
  std::thread pub([&] {
    while (!stop) bus.Publish("t", "{}");
  });
  for (int i = 0; i < 2000; ++i) {
    auto s = bus.Subscribe("t", [&](const std::string&, const std::string&) { ++got; });
  }
  stop = true;
  pub.join();
  EXPECT_EQ(bus.SubscriberCount(), 0u);
}

}  // namespace
}  // namespace modulo
