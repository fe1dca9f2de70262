// Integration tests of the Redis pub/sub EventBus against a real redis-server.
#include "modulo/redis/event_bus.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "modulo/redis/test_server.h"

namespace modulo::redis {
namespace {

using namespace std::chrono_literals;

// Collects events delivered on another thread.
struct Inbox {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<std::string, std::string>> got;  // (topic, json)

  EventBus::Handler Handler() {
    return [this](const std::string& topic, const std::string& json) {
      // Notified under the lock: once a waiter sees the event, this call no longer touches the inbox.
      std::lock_guard lock(mu);
      got.emplace_back(topic, json);
      cv.notify_all();
    };
  }
  bool WaitFor(std::size_t n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return got.size() >= n; });
  }
  std::size_t size() {
    std::lock_guard lock(mu);
    return got.size();
  }
};

class RedisEventBusITest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = SharedTestServer();
    ASSERT_TRUE(s) << s.error().message();
    server_ = *s;
    prefix_ = UniqueTestPrefix();
    // Two "processes": two clients, two buses.
    client_a_ = std::make_unique<RedisClient>(server_->Options(prefix_));
    client_b_ = std::make_unique<RedisClient>(server_->Options(prefix_));
    bus_a_ = std::make_unique<RedisEventBus>(*client_a_);
    bus_b_ = std::make_unique<RedisEventBus>(*client_b_);
    ASSERT_TRUE(bus_a_->WaitSubscribed(5s));
    ASSERT_TRUE(bus_b_->WaitSubscribed(5s));
  }
  RedisTestServer* server_ = nullptr;
  std::string prefix_;
  std::unique_ptr<RedisClient> client_a_, client_b_;
  std::unique_ptr<RedisEventBus> bus_a_, bus_b_;
};

TEST_F(RedisEventBusITest, DeliversAcrossBusesByTopic) {
  Inbox b_task1, a_task1, a_task2;
  auto s1 = bus_b_->Subscribe("task:1", b_task1.Handler());
  auto s2 = bus_a_->Subscribe("task:1", a_task1.Handler());
  auto s3 = bus_a_->Subscribe("task:2", a_task2.Handler());
  const std::string json = "{\"stage\":\"embed\",\"progress\":40,\"note\":\"caf\xc3\xa9 \\u0000\"}";
  bus_a_->Publish("task:1", json);
  ASSERT_TRUE(b_task1.WaitFor(1)) << "the other bus received it";
  ASSERT_TRUE(a_task1.WaitFor(1)) << "the publishing bus's own subscribers receive it too";
  EXPECT_EQ(b_task1.got[0].first, "task:1");
  EXPECT_EQ(b_task1.got[0].second, json);
  // Order is kept for one publisher.
  for (int i = 0; i < 20; ++i) bus_a_->Publish("task:1", std::to_string(i));
  ASSERT_TRUE(b_task1.WaitFor(21));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(b_task1.got[1 + i].second, std::to_string(i));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(a_task2.size(), 0u) << "another topic's subscriber saw nothing";
}

TEST_F(RedisEventBusITest, TopicsWithGlobCharactersAreLiteral) {
  Inbox star, plain;
  auto s1 = bus_b_->Subscribe("collection:*", star.Handler());
  auto s2 = bus_b_->Subscribe("collection:7", plain.Handler());
  bus_a_->Publish("collection:7", "{}");
  ASSERT_TRUE(plain.WaitFor(1));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(star.size(), 0u) << "a topic is a name, not a pattern";
  bus_a_->Publish("collection:*", "{\"x\":1}");
  ASSERT_TRUE(star.WaitFor(1));
}

TEST_F(RedisEventBusITest, DestroyedSubscriptionStopsDelivery) {
  Inbox in;
  {
    auto s = bus_b_->Subscribe("t", in.Handler());
    EXPECT_EQ(bus_b_->SubscriberCount(), 1u);
    bus_a_->Publish("t", "1");
    ASSERT_TRUE(in.WaitFor(1));
  }
  EXPECT_EQ(bus_b_->SubscriberCount(), 0u);
  bus_a_->Publish("t", "2");
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(in.size(), 1u);
}

TEST_F(RedisEventBusITest, PrefixesSeparateDeployments) {
  RedisClient other_client(server_->Options(UniqueTestPrefix()));
  RedisEventBus other(other_client);
  ASSERT_TRUE(other.WaitSubscribed(5s));
  Inbox mine, theirs;
  auto s1 = bus_b_->Subscribe("task:1", mine.Handler());
  auto s2 = other.Subscribe("task:1", theirs.Handler());
  bus_a_->Publish("task:1", "ours");
  ASSERT_TRUE(mine.WaitFor(1));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(theirs.size(), 0u);
  EXPECT_EQ(bus_a_->Channel("task:1"), prefix_ + "events:task:1");
}

TEST_F(RedisEventBusITest, HandlersMayUnsubscribeThemselves) {
  Inbox in;
  Subscription self;
  auto record = in.Handler();
  self = bus_b_->Subscribe("once", [&](const std::string& t, const std::string& j) {
    self.Reset();  // first, so the test's own Reset (at scope end) cannot overlap it
    record(t, j);
  });
  bus_a_->Publish("once", "1");
  ASSERT_TRUE(in.WaitFor(1));
  bus_a_->Publish("once", "2");
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(in.size(), 1u);
}

TEST(RedisEventBusRestartTest, ResubscribesAfterRedisRestarts) {
  auto server = RedisTestServer::Start();
  ASSERT_TRUE(server) << server.error().message();
  RedisClient publisher_client((*server)->Options("ev:"));
  RedisClient subscriber_client((*server)->Options("ev:"));
  metrics::Registry registry;
  RedisEventBus publisher(publisher_client);
  RedisEventBus subscriber(subscriber_client, &registry,
                           {.reconnect_backoff_initial = 20ms, .reconnect_backoff_max = 200ms});
  ASSERT_TRUE(subscriber.WaitSubscribed(5s));
  Inbox in;
  auto s = subscriber.Subscribe("task:9", in.Handler());
  publisher.Publish("task:9", "before");
  ASSERT_TRUE(in.WaitFor(1));

  ASSERT_TRUE((*server)->Kill());
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (subscriber.subscribed() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(subscriber.subscribed()) << "the loss is noticed";
  publisher.Publish("task:9", "lost");  // dropped, counted, not thrown

  ASSERT_TRUE((*server)->Restart());
  ASSERT_TRUE(subscriber.WaitSubscribed(5s)) << "the subscriber reconnected with backoff";
  std::this_thread::sleep_for(publisher_client.options().reconnect_backoff_max + 50ms);
  publisher.Publish("task:9", "after");
  ASSERT_TRUE(in.WaitFor(2));
  EXPECT_EQ(in.got[1].second, "after");
  EXPECT_NE(registry.Expose().find("modulo_redis_event_bus_errors_total{op=\"subscribe\"}"), std::string::npos);
}

}  // namespace
}  // namespace modulo::redis
