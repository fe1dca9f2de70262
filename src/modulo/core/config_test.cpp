#include "modulo/core/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace modulo {
namespace {

std::string TempFile(const std::string& content) {
  auto dir = std::filesystem::temp_directory_path() / ("modulo_config_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = dir / (std::to_string(std::rand()) + ".conf");
  std::ofstream(path) << content;
  return path.string();
}

TEST(ConfigTest, DefaultsMatchTheSeed) {
  auto s = LoadSettings({});
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->max_top_k, 100);
  EXPECT_EQ(s->vector_batch_size, 1000);
  EXPECT_GE(s->EffectiveWebConcurrency(), 1);
}

TEST(ConfigTest, PrecedenceIsFileThenEnvThenFlags) {
  ConfigSources src;
  src.file = TempFile("# comment\nMODULO_PORT=7000\nMAX_TOP_K = 50\nMODULO_HOST=\"0.0.0.0\"\n");
  auto s = LoadSettings(src);
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->port, 7000);
  EXPECT_EQ(s->max_top_k, 50);
  EXPECT_EQ(s->host, "0.0.0.0");
  src.env["MODULO_PORT"] = "7001";
  EXPECT_EQ(LoadSettings(src)->port, 7001);
  src.flags["port"] = "7002";
  EXPECT_EQ(LoadSettings(src)->port, 7002);
}

TEST(ConfigTest, InvalidValueNamesTheSetting) {
  ConfigSources src;
  src.env["WEB_CONCURRENCY"] = "many";
  auto s = LoadSettings(src);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("WEB_CONCURRENCY"), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find("many"), std::string::npos);

  ConfigSources flags;
  flags.flags["port"] = "70000";
  auto p = LoadSettings(flags);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message().find("--port"), std::string::npos) << p.error().message();
}

TEST(ConfigTest, UnknownNamesAreRejected) {
  ConfigSources src;
  src.file = TempFile("NOT_A_SETTING=1\n");
  auto s = LoadSettings(src);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("NOT_A_SETTING"), std::string::npos);
  EXPECT_NE(s.error().message().find(":1"), std::string::npos) << "names the line";

  ConfigSources f;
  f.flags["nope"] = "1";
  EXPECT_FALSE(LoadSettings(f));
}

TEST(ConfigTest, SizesAcceptSuffixes) {
  ConfigSources src;
  src.env["MODULO_MAX_BODY_BYTES"] = "2M";
  EXPECT_EQ(LoadSettings(src)->max_body_bytes, 2u * 1024 * 1024);
  src.env["MODULO_MAX_BODY_BYTES"] = "12X";
  EXPECT_FALSE(LoadSettings(src));
}

TEST(ConfigTest, EnumsAreChecked) {
  ConfigSources src;
  src.env["MODULO_LOG_FORMAT"] = "xml";
  auto s = LoadSettings(src);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("text, json"), std::string::npos);
}

TEST(ConfigTest, RenderListsEverySetting) {
  auto text = RenderSettings(Settings{});
  auto md = RenderSettingsMarkdown();
  for (const auto& spec : SettingSpecs()) {
    EXPECT_NE(text.find(spec.name + "="), std::string::npos) << spec.name;
    EXPECT_NE(md.find(spec.name), std::string::npos) << spec.name;
    EXPECT_FALSE(spec.description.empty()) << spec.name;
  }
}

}  // namespace
}  // namespace modulo
