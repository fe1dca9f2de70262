// Tests of DetectFormat and ParseFile: content and extension together.
#include <gtest/gtest.h>

#include <thread>

#include "modulo/parse/parser.h"
#include "modulo/parse/test_util.h"

namespace modulo::parse {
namespace {

class DetectTest : public testing::TempDirTest {};

TEST_F(DetectTest, ByContentAndExtension) {
  const auto pdf = Write("x.bin", testing::MakePdf({{"hello"}}));
  EXPECT_EQ(DetectFormat(pdf, "report.pdf"), "pdf");
  EXPECT_EQ(DetectFormat(pdf, "report.txt"), "pdf");  // content wins for binary formats
  EXPECT_EQ(DetectFormat(pdf, ""), "pdf");

  testing::WriteZip(dir_ / "d", testing::MinimalDocx("<w:p><w:r><w:t>x</w:t></w:r></w:p>"));
  EXPECT_EQ(DetectFormat(dir_ / "d", "upload"), "docx");
  EXPECT_EQ(DetectFormat(dir_ / "d", "upload.xlsx"), "docx");
  testing::WriteZip(dir_ / "p", testing::MinimalPptx({""}));
  EXPECT_EQ(DetectFormat(dir_ / "p", "slides.pptx"), "pptx");
  testing::WriteZip(dir_ / "s", testing::MinimalXlsx({{"a", ""}}, ""));
  EXPECT_EQ(DetectFormat(dir_ / "s", "book"), "xlsx");
  testing::WriteZip(dir_ / "z", {{"a.txt", "plain zip"}});
  EXPECT_EQ(DetectFormat(dir_ / "z", "archive.zip"), "unknown");

  const auto html = Write("h", "<!DOCTYPE html><html><body><p>hi</p></body></html>");
  EXPECT_EQ(DetectFormat(html, "page.html"), "html");
  EXPECT_EQ(DetectFormat(html, "page"), "html");
  EXPECT_EQ(DetectFormat(html, "notes.md"), "markdown");  // among text formats the extension decides

  const auto md = Write("m", "# Title\n\nSome *markdown* text.\n");
  EXPECT_EQ(DetectFormat(md, "README.md"), "markdown");
  EXPECT_EQ(DetectFormat(md, "README"), "text");
  EXPECT_EQ(DetectFormat(Write("c", "a,b\n1,2\n"), "data.csv"), "csv");
  EXPECT_EQ(DetectFormat(Write("j", "{\"a\": 1}"), "data.json"), "json");
  EXPECT_EQ(DetectFormat(Write("j2", "{\"a\": [1, 2, {\"b\": null}]}"), "upload"), "json");
  EXPECT_EQ(DetectFormat(Write("t", "just some words\n"), "notes.txt"), "text");
  EXPECT_EQ(DetectFormat(Write("t2", "# PDF notes\n\nA PDF starts with %PDF-1.7 and ends with %%EOF.\n"), "pdf.md"),
            "markdown");

  const std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0\x90\x91h6", 33);
  EXPECT_EQ(DetectFormat(Write("i", png), "image.png"), "unknown");
  EXPECT_EQ(DetectFormat(Write("i2", png), "fake.pdf"), "unknown");
  EXPECT_EQ(DetectFormat(Write("e", ""), "empty.docx"), "docx");
  EXPECT_EQ(DetectFormat(dir_ / "missing", "x.txt"), "unknown");
}

TEST_F(DetectTest, ParseFileOutcomes) {
  auto ok = ParseFile(Write("a", "# Head\n\nbody\n"), "a.md");
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(ok->format, "markdown");
  EXPECT_GT(ok->bytes, 0u);

  for (const char* name : {"e.pdf", "e.docx", "e.pptx", "e.xlsx", "e.html", "e.md", "e.txt", "e.csv", "e.json", "e"}) {
    auto empty = ParseFile(Write(name, ""), name);
    ASSERT_FALSE(empty) << name;
    EXPECT_EQ(empty.error().code(), ErrorCode::kInvalidArgument) << name;
    EXPECT_EQ(empty.error().message(), "file is empty") << name;
  }

  const std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0\x90\x91h6", 33);
  auto image = ParseFile(Write("i", png), "i.png");
  ASSERT_FALSE(image);
  EXPECT_EQ(image.error().code(), ErrorCode::kUnsupportedMediaType);

  auto missing = ParseFile(dir_ / "nope", "nope.txt");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(DetectTest, ConcurrentParseFile) {
  const auto html = Write("h.html", "<html><head><title>T</title></head><body><h1>A</h1><p>text</p></body></html>");
  const auto md = Write("m.md", "# A\n\ntext\n");
  const auto pdf = Write("p.pdf", testing::MakePdf({{"text"}}));
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        for (const auto& [path, name] : {std::pair{html, "h.html"}, std::pair{md, "m.md"}, std::pair{pdf, "p.pdf"}}) {
          auto doc = ParseFile(path, name);
          if (doc && !doc->blocks.empty()) ++ok;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 300);
}

}  // namespace
}  // namespace modulo::parse
