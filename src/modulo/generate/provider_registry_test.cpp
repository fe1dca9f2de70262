#include "modulo/generate/provider_registry.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace modulo::generate {
namespace {

ProviderConfig OpenAi(const std::string& model = "m1", const std::string& key = "k1") {
  ProviderConfig c;
  c.type = "openai";
  c.base_url = "http://127.0.0.1:9/v1";
  c.model = model;
  c.api_key = key;
  return c;
}

TEST(ProviderRegistryTest, SameConfigSameInstance) {
  ProviderRegistry r;
  auto a = r.Get(OpenAi());
  auto b = r.Get(OpenAi());
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->get(), b->get());
  auto trailing = OpenAi();
  trailing.base_url += "/";
  EXPECT_EQ(r.Get(trailing)->get(), a->get());
  EXPECT_NE(r.Get(OpenAi("m2"))->get(), a->get());
  EXPECT_NE(r.Get(OpenAi("m1", "k2"))->get(), a->get());
  EXPECT_EQ(r.size(), 3u);
  EXPECT_EQ((*a)->name(), "openai");
  EXPECT_EQ((*a)->model(), "m1");
}

TEST(ProviderRegistryTest, KeyHidesTheApiKey) {
  EXPECT_EQ(ProviderRegistry::Key(OpenAi()).find("k1"), std::string::npos);
  EXPECT_NE(ProviderRegistry::Key(OpenAi("m", "secret-a")), ProviderRegistry::Key(OpenAi("m", "secret-b")));
}

TEST(ProviderRegistryTest, InvalidateGivesANewInstanceAndOldOnesStayUsable) {
  ProviderRegistry r;
  auto a = r.Get(OpenAi());
  ASSERT_TRUE(a);
  r.Invalidate(OpenAi());
  auto b = r.Get(OpenAi());
  ASSERT_TRUE(b);
  EXPECT_NE(a->get(), b->get());
  EXPECT_EQ((*a)->model(), "m1");
  r.Clear();
  EXPECT_EQ(r.size(), 0u);
}

TEST(ProviderRegistryTest, ConcurrentFirstCallsCreateExactlyOne) {
  std::atomic<int> created{0};
  ProviderRegistry r([&](const ProviderConfig& c) {
    ++created;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a slow construction widens the race
    return MakeProvider(c);
  });
  std::vector<std::thread> threads;
  std::vector<LlmProvider*> seen(8, nullptr);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto p = r.Get(OpenAi());
      if (p) seen[i] = p->get();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created, 1);
  for (auto* p : seen) EXPECT_EQ(p, seen[0]);
  EXPECT_NE(seen[0], nullptr);
}

TEST(ProviderRegistryTest, FailuresAreReportedAndNotCached) {
  ProviderRegistry r;
  auto c = OpenAi();
  c.type = "bard";
  auto bad = r.Get(c);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  c.type = "anthropic";
  c.api_key.clear();
  EXPECT_FALSE(r.Get(c));
  c.api_key = "k";
  EXPECT_TRUE(r.Get(c));
  EXPECT_EQ(r.size(), 1u);
}

}  // namespace
}  // namespace modulo::generate
