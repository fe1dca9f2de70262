#include "modulo/core/health.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <vector>

namespace modulo {
namespace {

TEST(HealthTest, ReportsEveryComponentAndSurvivesThrowingChecks) {
  HealthRegistry h;
  h.Add("ok", [] { return ComponentHealth{true, "fine"}; });
  h.Add("bad", [] { return ComponentHealth{false, "down"}; }, false);
  h.Add("throws", []() -> ComponentHealth { throw std::runtime_error("x"); });
  auto r = h.CheckAll();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_TRUE(r[0].health.healthy);
  EXPECT_FALSE(r[1].health.healthy);
  EXPECT_FALSE(r[1].required);
  EXPECT_FALSE(r[2].health.healthy);
  EXPECT_NE(r[2].health.message.find("threw"), std::string::npos);
}

TEST(HealthTest, DirectoryWritableCheck) {
  auto dir = std::filesystem::temp_directory_path() / ("modulo_health_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  EXPECT_TRUE(DirectoryWritableCheck(dir.string())().healthy);
  std::filesystem::remove_all(dir);
  auto missing = DirectoryWritableCheck(dir.string())();
  EXPECT_FALSE(missing.healthy);
  EXPECT_NE(missing.message.find(dir.string()), std::string::npos);
}

TEST(HealthTest, CachedChecksRunOncePerWindowForAllCallers) {
  HealthRegistry h;
  std::atomic<int> runs{0};
  h.Add("slow", [&] {
    ++runs;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return ComponentHealth{true, "ok"};
  });
  std::vector<std::thread> callers;
  for (int i = 0; i < 8; ++i) {
    callers.emplace_back([&] {
      for (int k = 0; k < 10; ++k) EXPECT_TRUE(h.CachedCheckAll(std::chrono::seconds(60))[0].health.healthy);
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(runs.load(), 1);  // 80 callers, one check
  EXPECT_EQ(h.CachedCheckAll(std::chrono::milliseconds(0)).size(), 1u);
  EXPECT_EQ(runs.load(), 2);  // an expired window checks again
  (void)h.CheckAll();
  EXPECT_EQ(runs.load(), 3);  // the uncached call always checks
}

}  // namespace
}  // namespace modulo
