#include "modulo/core/health.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>

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

}  // namespace
}  // namespace modulo
