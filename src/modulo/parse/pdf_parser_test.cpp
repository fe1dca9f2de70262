// Tests of PdfParser: text per page, metadata, corrupt/encrypted/image-only files, concurrency.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "modulo/parse/parsers.h"
#include "modulo/parse/test_util.h"

namespace modulo::parse {
namespace {

using testing::MakePdf;

std::string AllText(const ParsedDocument& doc) {
  std::string all;
  for (const auto& b : doc.blocks) all += b.text + "\n";
  return all;
}

class PdfTest : public testing::TempDirTest {};

TEST_F(PdfTest, TextPerPageWithMetadata) {
  const auto path = Write("a.pdf", MakePdf({{"Alpha line one", "Alpha line two"}, {"Beta page"}, {"Gamma page"}},
                                           "Fixture Title", "Ada Lovelace"));
  auto doc = PdfParser().Parse(path, {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  EXPECT_EQ(doc->format, "pdf");
  EXPECT_EQ(doc->page_count, 3);
  EXPECT_EQ(doc->title, "Fixture Title");
  EXPECT_EQ(doc->metadata["author"], "Ada Lovelace");
  ASSERT_EQ(doc->blocks.size(), 3u);
  EXPECT_EQ(doc->blocks[0].text, "Alpha line one\nAlpha line two");
  EXPECT_EQ(doc->blocks[0].page, 1);
  EXPECT_EQ(doc->blocks[1].text, "Beta page");
  EXPECT_EQ(doc->blocks[1].page, 2);
  EXPECT_EQ(doc->blocks[2].page, 3);
  EXPECT_TRUE(doc->warnings.empty());
}

TEST_F(PdfTest, RunningHeadersAndPageNumbersAreDropped) {
  std::vector<std::vector<std::string>> pages;
  for (int i = 1; i <= 4; ++i) {
    pages.push_back({"Quarterly Report 2026", "", "Body text of page " + std::to_string(i) + " differs.", "",
                     "Page " + std::to_string(i) + " of 4"});
  }
  auto doc = PdfParser().Parse(Write("h.pdf", MakePdf(pages)), {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  ASSERT_EQ(doc->blocks.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(doc->blocks[i].text, "Body text of page " + std::to_string(i + 1) + " differs.");
    EXPECT_EQ(doc->blocks[i].page, i + 1);
  }
}

TEST_F(PdfTest, HeadingsByFontSizeFormSectionPath) {
  const auto path = Write("h.pdf", MakePdf({{"# Chapter One", "Body text one.", "## Section A", "Body text two."},
                                            {"Body on page two.", "# Chapter Two", "Final words."}}));
  auto doc = PdfParser().Parse(path, {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  struct Want {
    BlockKind kind;
    std::string text;
    int level;
    int page;
    std::vector<std::string> path;
  };
  const std::vector<Want> want = {
      {BlockKind::kHeading, "Chapter One", 1, 1, {}},
      {BlockKind::kParagraph, "Body text one.", 0, 1, {"Chapter One"}},
      {BlockKind::kHeading, "Section A", 2, 1, {"Chapter One"}},
      {BlockKind::kParagraph, "Body text two.", 0, 1, {"Chapter One", "Section A"}},
      {BlockKind::kParagraph, "Body on page two.", 0, 2, {"Chapter One", "Section A"}},
      {BlockKind::kHeading, "Chapter Two", 1, 2, {}},
      {BlockKind::kParagraph, "Final words.", 0, 2, {"Chapter Two"}},
  };
  ASSERT_EQ(doc->blocks.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(doc->blocks[i].kind, want[i].kind) << i;
    EXPECT_EQ(doc->blocks[i].text, want[i].text) << i;
    EXPECT_EQ(doc->blocks[i].heading_level, want[i].level) << i;
    EXPECT_EQ(doc->blocks[i].page, want[i].page) << i;
    EXPECT_EQ(doc->blocks[i].section_path, want[i].path) << i;
  }
  EXPECT_EQ(doc->title, "Chapter One");  // no metadata title: the first line of page 1

  auto plain = PdfParser(PdfOptions{.detect_headings = false}).Parse(path, {});
  ASSERT_TRUE(plain);
  for (const auto& b : plain->blocks) EXPECT_NE(b.kind, BlockKind::kHeading);
}

TEST_F(PdfTest, TwoColumnsReadInColumnOrder) {
  std::vector<std::string> page = {"<two-columns>"};
  for (int i = 0; i < 12; ++i) {
    page.push_back("Left column line " + std::to_string(i) + " text");
    page.push_back("Right column line " + std::to_string(i) + " text");
  }
  auto doc = PdfParser().Parse(Write("cols.pdf", MakePdf({page})), {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  std::string all;
  for (const auto& b : doc->blocks) all += b.text + "\n";
  const std::size_t last_left = all.find("Left column line 11");
  const std::size_t first_right = all.find("Right column line 0");
  ASSERT_NE(last_left, std::string::npos) << all;
  ASSERT_NE(first_right, std::string::npos) << all;
  EXPECT_LT(last_left, first_right) << all;
}

TEST_F(PdfTest, RealTypesetDocument) {
  auto doc = PdfParser().Parse(testing::DataDir() / "groff.pdf", {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  EXPECT_EQ(doc->page_count, 3);
  const std::string all = AllText(*doc);
  EXPECT_NE(all.find("Parser Fixture Document"), std::string::npos);
  EXPECT_NE(all.find("Sentence 0 of the introduction"), std::string::npos);
  EXPECT_EQ(doc->blocks.back().page, 3);
  EXPECT_NE(doc->blocks.back().text.find("zebra"), std::string::npos);
  // groff -ms sets the title larger than the body (a heading) and section headings in bold at body
  // size (not headings by font size).
  EXPECT_EQ(doc->blocks.front().kind, BlockKind::kHeading);
  EXPECT_EQ(doc->blocks.back().section_path, std::vector<std::string>{"Parser Fixture Document"});
}

TEST_F(PdfTest, NoTextLayerWarnsAboutOcr) {
  auto doc = PdfParser().Parse(Write("scan.pdf", MakePdf({{}, {}})), {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  EXPECT_EQ(doc->page_count, 2);
  EXPECT_TRUE(doc->blocks.empty());
  ASSERT_EQ(doc->warnings.size(), 1u);
  EXPECT_EQ(doc->warnings[0], "PDF has no text layer; it needs OCR");
}

TEST_F(PdfTest, SomePagesWithoutTextWarn) {
  auto doc = PdfParser().Parse(Write("mixed.pdf", MakePdf({{"text"}, {}})), {});
  ASSERT_TRUE(doc);
  ASSERT_EQ(doc->warnings.size(), 1u);
  EXPECT_NE(doc->warnings[0].find("1 of 2 pages"), std::string::npos);
}

TEST_F(PdfTest, CorruptPdfFailsClearly) {
  auto doc = PdfParser().Parse(Write("bad.pdf", "%PDF-1.7\nthis is not really a pdf\n\x01\x02\x03 garbage\n"), {});
  ASSERT_FALSE(doc);
  EXPECT_EQ(doc.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(doc.error().message().find("damaged"), std::string::npos) << doc.error().message();

  auto junk = ParseFile(Write("junk.pdf", std::string(5000, '\x07')), "junk.pdf");
  ASSERT_FALSE(junk);
  EXPECT_EQ(junk.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(PdfTest, TruncatedPdfNeverCrashes) {
  const std::string pdf = MakePdf({{"Page one text"}, {"Page two text"}});
  for (std::size_t cut : {pdf.size() / 4, pdf.size() / 2, pdf.size() - 30}) {
    auto doc = PdfParser().Parse(Write("t.pdf", pdf.substr(0, cut)), {});
    if (doc) {
      EXPECT_EQ(doc->format, "pdf");
    } else {
      EXPECT_EQ(doc.error().code(), ErrorCode::kInvalidArgument) << doc.error().message();
    }
  }
}

TEST_F(PdfTest, EncryptedPdfFailsWithReason) {
  auto doc = PdfParser().Parse(testing::DataDir() / "encrypted.pdf", {});
  ASSERT_FALSE(doc);
  EXPECT_EQ(doc.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(doc.error().message().find("encrypted"), std::string::npos);
}

TEST_F(PdfTest, OwnerPasswordOnlyPdfIsReadable) {
  auto doc = PdfParser().Parse(testing::DataDir() / "owner_only.pdf", {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  EXPECT_NE(AllText(*doc).find("Secret page two"), std::string::npos);
  EXPECT_EQ(doc->metadata["encrypted"], "true");
}

TEST_F(PdfTest, EmptyFileFails) {
  auto doc = PdfParser().Parse(Write("e.pdf", ""), {});
  ASSERT_FALSE(doc);
  EXPECT_EQ(doc.error().message(), "file is empty");
}

TEST_F(PdfTest, PageLimit) {
  ParseLimits limits;
  limits.max_pages = 2;
  auto doc = PdfParser().Parse(Write("p.pdf", MakePdf({{"one"}, {"two"}, {"three"}})), limits);
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->blocks.size(), 2u);
  EXPECT_EQ(doc->page_count, 3);
  EXPECT_FALSE(doc->warnings.empty());
}

TEST_F(PdfTest, ConcurrentParsesAgree) {
  const auto path = Write("c.pdf", MakePdf({{"Concurrent one"}, {"Concurrent two"}}));
  const auto real = testing::DataDir() / "groff.pdf";
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        auto doc = PdfParser().Parse(t % 2 == 0 ? path : real, {});
        if (doc && !doc->blocks.empty()) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 40);
}

}  // namespace
}  // namespace modulo::parse
