#include "modulo/core/log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace modulo::log {
namespace {

TEST(LogTest, JsonLinesAreValidJsonWithFields) {
  const std::string line = FormatLine(Format::kJson, Level::kWarn, "he said \"hi\"\n",
                                      {{"request_id", "abc"}, {"status", 200}}, {{"ok", true}, {"ms", 1.5}});
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["level"], "warn");
  EXPECT_EQ(j["msg"], "he said \"hi\"\n");
  EXPECT_EQ(j["request_id"], "abc");
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["ok"], true);
  EXPECT_DOUBLE_EQ(j["ms"].get<double>(), 1.5);
  EXPECT_TRUE(j.contains("ts"));
}

TEST(LogTest, TextLinesStayOnOneLineAndQuoteValues) {
  const std::string line =
      FormatLine(Format::kText, Level::kInfo, "two\nlines", {{"path", "/a b\n"}, {"id", "x1"}}, {});
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_NE(line.find(" INFO two lines"), std::string::npos) << line;
  EXPECT_NE(line.find("path=\"/a b\\n\""), std::string::npos) << line;
  EXPECT_NE(line.find("id=x1"), std::string::npos) << line;
}

TEST(LogTest, InvalidUtf8IsReplacedInJson) {
  const std::string line = FormatLine(Format::kJson, Level::kInfo, "bad \xff byte", {}, {});
  EXPECT_NO_THROW((void)nlohmann::json::parse(line));
}

}  // namespace
}  // namespace modulo::log
