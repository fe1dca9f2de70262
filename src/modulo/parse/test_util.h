// Test helpers for the parse module: a temporary directory per test, file writers, a zip builder
// (libzip) and a minimal PDF writer.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace modulo::parse::testing {

// A fresh directory under the system temp dir, removed with the fixture.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Writes `content` to dir/name and returns the path.
  std::filesystem::path Write(std::string_view name, std::string_view content) const;
  std::filesystem::path dir_;
};

// One zip entry: a name and its content, or (when zeros > 0) `zeros` zero bytes generated on the fly.
struct ZipEntry {
  std::string name;
  std::string content;
  std::uint64_t zeros = 0;
};
// Writes a zip archive (deflate) with the entries; fails the test on a libzip error.
void WriteZip(const std::filesystem::path& path, const std::vector<ZipEntry>& entries);

// A minimal, valid PDF with Helvetica text: one inner vector of lines per page; a page with no
// lines gets only a drawn rectangle (no text layer). Lines starting with "# " or "## " are set in
// 20 or 16 point instead of 12 (without the marker), like headings. A page whose first line is
// "<two-columns>" sets the following lines alternately in a left and a right column.
std::string MakePdf(const std::vector<std::vector<std::string>>& pages, std::string_view title = "",
                    std::string_view author = "");

// The directory with committed fixtures (tests/data/parse).
std::filesystem::path DataDir();

// OOXML skeletons.
std::vector<ZipEntry> MinimalDocx(std::string_view body_xml, std::string_view styles_xml = "");
std::vector<ZipEntry> MinimalPptx(const std::vector<std::string>& slide_xmls);
std::vector<ZipEntry> MinimalXlsx(const std::vector<std::pair<std::string, std::string>>& sheets,
                                  std::string_view shared_strings_xml);

}  // namespace modulo::parse::testing
