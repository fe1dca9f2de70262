// Tests of the DOCX, PPTX and XLSX parsers, including zip bombs and damaged archives.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "modulo/parse/parsers.h"
#include "modulo/parse/test_util.h"

namespace modulo::parse {
namespace {

using testing::ZipEntry;
using Strings = std::vector<std::string>;

std::string P(std::string_view text, std::string_view style = "", std::string_view extra_ppr = "") {
  std::string ppr;
  if (!style.empty() || !extra_ppr.empty()) {
    ppr = "<w:pPr>" + (style.empty() ? std::string() : "<w:pStyle w:val=\"" + std::string(style) + "\"/>") +
          std::string(extra_ppr) + "</w:pPr>";
  }
  return "<w:p>" + ppr + "<w:r><w:t xml:space=\"preserve\">" + std::string(text) + "</w:t></w:r></w:p>";
}

constexpr std::string_view kStyles =
    R"(<w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/></w:style>)"
    R"(<w:style w:type="paragraph" w:styleId="H1x"><w:name w:val="heading 1"/></w:style>)"
    R"(<w:style w:type="paragraph" w:styleId="Custom"><w:name w:val="My Section"/><w:basedOn w:val="Base"/></w:style>)"
    R"(<w:style w:type="paragraph" w:styleId="Base"><w:name w:val="Base"/>)"
    R"(<w:pPr><w:outlineLvl w:val="1"/></w:pPr></w:style>)";

class DocxTest : public testing::TempDirTest {};

TEST_F(DocxTest, ParagraphsHeadingsListsTablesPages) {
  const std::string body = P("Annual Report", "Title") + P("Overview", "H1x") + P("Plain text here.") +
                           "<w:p><w:r><w:t>Split </w:t></w:r><w:r><w:t>runs</w:t><w:tab/><w:t>tab</w:t></w:r>"
                           "<w:del><w:r><w:delText>deleted</w:delText></w:r></w:del></w:p>" +
                           P("Bullet one", "", "<w:numPr><w:ilvl w:val=\"0\"/><w:numId w:val=\"1\"/></w:numPr>") +
                           P("Details", "Custom") +
                           "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Name</w:t></w:r></w:p></w:tc><w:tc>" + P("Value") +
                           "</w:tc></w:tr>"
                           "<w:tr><w:tc>" +
                           P("a") + "</w:tc><w:tc>" + P("1") + P("more") + "</w:tc></w:tr></w:tbl>" +
                           "<w:p><w:r><w:lastRenderedPageBreak/><w:t>On page two</w:t></w:r></w:p>" +
                           P("Heading Two", "Heading2") + "<w:sectPr/>";
  testing::WriteZip(dir_ / "a.docx", testing::MinimalDocx(body, kStyles));
  auto doc = DocxParser().Parse(dir_ / "a.docx", {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  EXPECT_EQ(doc->format, "docx");
  EXPECT_EQ(doc->title, "Fixture Title");  // docProps/core.xml wins over the Title paragraph
  EXPECT_EQ(doc->metadata["author"], "Ada Lovelace");
  std::vector<std::pair<BlockKind, std::string>> got;
  for (const auto& b : doc->blocks) got.emplace_back(b.kind, b.text);
  const std::vector<std::pair<BlockKind, std::string>> want = {
      {BlockKind::kHeading, "Annual Report"},
      {BlockKind::kHeading, "Overview"},
      {BlockKind::kParagraph, "Plain text here."},
      {BlockKind::kParagraph, "Split runs\ttab"},
      {BlockKind::kListItem, "Bullet one"},
      {BlockKind::kHeading, "Details"},
      {BlockKind::kTable, "Name | Value\na | 1 more"},
      {BlockKind::kParagraph, "On page two"},
      {BlockKind::kHeading, "Heading Two"},
  };
  ASSERT_EQ(got, want);
  EXPECT_EQ(doc->blocks[2].section_path, Strings{"Overview"});  // Title and Heading 1 share level 1
  EXPECT_EQ(doc->blocks[5].heading_level, 2);                   // outline level inherited via basedOn
  EXPECT_EQ(doc->blocks[6].section_path, (Strings{"Overview", "Details"}));
  EXPECT_EQ(doc->blocks[6].page, 1);
  EXPECT_EQ(doc->blocks[7].page, 2);
  EXPECT_EQ(doc->page_count, 2);
}

TEST_F(DocxTest, ZipBombIsStopped) {
  // 1 GiB of zeros deflated to about 1 MB: stopped by the declared size against max_decompressed_bytes
  // (default limits), and by the ratio check while inflating when the size limit is out of the way.
  auto entries = testing::MinimalDocx(P("x"));
  for (auto& e : entries) {
    if (e.name == "word/document.xml") e = ZipEntry{"word/document.xml", "", 1ull << 30};
  }
  const auto start = std::chrono::steady_clock::now();
  testing::WriteZip(dir_ / "bomb.docx", entries);
  std::cerr << "bomb built in " << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
            << " s, " << std::filesystem::file_size(dir_ / "bomb.docx") << " bytes\n";

  auto doc = ParseFile(dir_ / "bomb.docx", "bomb.docx");
  ASSERT_FALSE(doc);
  EXPECT_EQ(doc.error().code(), ErrorCode::kPayloadTooLarge) << doc.error().message();

  ParseLimits limits;
  limits.max_decompressed_bytes = 4ull << 30;
  const auto t0 = std::chrono::steady_clock::now();
  auto ratio = DocxParser().Parse(dir_ / "bomb.docx", limits);
  ASSERT_FALSE(ratio);
  EXPECT_EQ(ratio.error().code(), ErrorCode::kPayloadTooLarge);
  EXPECT_NE(ratio.error().message().find("compression ratio"), std::string::npos) << ratio.error().message();
  // The ratio is checked against the compressed bytes consumed so far: it stops after ~1 MiB.
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
}

TEST_F(DocxTest, LyingDeclaredSizeIsNotTrusted) {
  // A 64 MiB entry whose headers claim 100 bytes: the inflated bytes are counted, not the claim.
  auto entries = testing::MinimalDocx(P("x"));
  for (auto& e : entries) {
    if (e.name == "word/document.xml") e = ZipEntry{"word/document.xml", "", 64ull << 20};
  }
  testing::WriteZip(dir_ / "liar.docx", entries);
  std::string bytes;
  {
    std::ifstream in(dir_ / "liar.docx", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const auto patch = [&](std::string_view signature, std::size_t size_offset) {
    for (std::size_t pos = bytes.find(signature); pos != std::string::npos; pos = bytes.find(signature, pos + 4)) {
      const std::size_t name_len_offset = signature == std::string_view("PK\x01\x02", 4) ? 28 : 26;
      const std::size_t name_len = static_cast<unsigned char>(bytes[pos + name_len_offset]) |
                                   (static_cast<unsigned char>(bytes[pos + name_len_offset + 1]) << 8);
      const std::size_t name_start = pos + (signature == std::string_view("PK\x01\x02", 4) ? 46 : 30);
      if (bytes.compare(name_start, name_len, "word/document.xml") != 0) continue;
      bytes[pos + size_offset] = 100, bytes[pos + size_offset + 1] = 0, bytes[pos + size_offset + 2] = 0,
                  bytes[pos + size_offset + 3] = 0;
    }
  };
  patch(std::string_view("PK\x03\x04", 4), 22);  // local header: uncompressed size
  patch(std::string_view("PK\x01\x02", 4), 24);  // central directory: uncompressed size
  Write("liar.docx", bytes);
  ParseLimits limits;
  limits.max_decompressed_bytes = 8ull << 20;
  limits.max_compression_ratio = 1e9;
  auto doc = DocxParser().Parse(dir_ / "liar.docx", limits);
  ASSERT_FALSE(doc);
  // The inflated bytes are counted: the 8 MiB limit stops it, whatever the headers claim.
  EXPECT_EQ(doc.error().code(), ErrorCode::kPayloadTooLarge) << doc.error().ToString();
}

TEST_F(DocxTest, CorruptAndEmptyArchivesFailClearly) {
  auto empty = DocxParser().Parse(Write("e.docx", ""), {});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().message(), "file is empty");

  auto junk = DocxParser().Parse(Write("j.docx", "PK\x03\x04 definitely not a zip archive"), {});
  ASSERT_FALSE(junk);
  EXPECT_EQ(junk.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(junk.error().message().find("DOCX is damaged"), std::string::npos) << junk.error().message();

  testing::WriteZip(dir_ / "other.docx", {{"hello.txt", "hi"}});
  auto other = DocxParser().Parse(dir_ / "other.docx", {});
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message().find("word/document.xml"), std::string::npos);

  testing::WriteZip(dir_ / "badxml.docx", testing::MinimalDocx("<w:p><w:r><w:t>unclosed"));
  auto bad = DocxParser().Parse(dir_ / "badxml.docx", {});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("malformed XML"), std::string::npos) << bad.error().message();

  // A truncated archive.
  testing::WriteZip(dir_ / "full.docx", testing::MinimalDocx(P("text")));
  std::ifstream in(dir_ / "full.docx", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  auto cut = DocxParser().Parse(Write("cut.docx", bytes.substr(0, bytes.size() / 2)), {});
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(DocxTest, PasswordProtectedOfficeFile) {
  std::string ole("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 8);
  ole += std::string(2000, '\0');
  auto doc = ParseFile(Write("locked.docx", ole), "locked.docx");
  ASSERT_FALSE(doc);
  EXPECT_NE(doc.error().message().find("password-protected"), std::string::npos) << doc.error().message();
}

TEST_F(DocxTest, DeeplyNestedXmlDoesNotCrash) {
  std::string body = "<w:p><w:r><w:t>top</w:t></w:r></w:p>";
  for (int i = 0; i < 100000; ++i) body += "<w:sdt><w:sdtContent>";
  body += "<w:p><w:r><w:t>bottom</w:t></w:r></w:p>";
  for (int i = 0; i < 100000; ++i) body += "</w:sdtContent></w:sdt>";
  testing::WriteZip(dir_ / "deep.docx", testing::MinimalDocx(body));
  ParseLimits limits;
  limits.max_compression_ratio = 1e6;  // this repetitive XML compresses far better than real documents
  auto doc = DocxParser().Parse(dir_ / "deep.docx", limits);
  ASSERT_TRUE(doc) << doc.error().ToString();
  ASSERT_EQ(doc->blocks.size(), 2u);
  EXPECT_EQ(doc->blocks[1].text, "bottom");
}

class PptxTest : public testing::TempDirTest {};

std::string Shape(std::string_view ph_type, const std::vector<std::string>& paragraphs) {
  std::string sp = "<p:sp><p:nvSpPr><p:cNvPr id=\"1\" name=\"s\"/><p:cNvSpPr/><p:nvPr>";
  if (!ph_type.empty()) sp += "<p:ph type=\"" + std::string(ph_type) + "\"/>";
  sp += "</p:nvPr></p:nvSpPr><p:txBody><a:bodyPr/>";
  for (const auto& p : paragraphs) sp += "<a:p><a:r><a:t>" + p + "</a:t></a:r></a:p>";
  return sp + "</p:txBody></p:sp>";
}

TEST_F(PptxTest, SlidesInPresentationOrder) {
  const std::vector<std::string> slides = {
      Shape("", {"Body before title in tree order"}) + Shape("title", {"Welcome"}) + Shape("sldNum", {"1"}),
      Shape("ctrTitle", {"Second Slide"}) + Shape("body", {"point one", "point two"}) +
          "<p:graphicFrame><a:graphic><a:graphicData><a:tbl><a:tr><a:tc><a:txBody><a:p><a:r><a:t>k</a:t></a:r></a:p>"
          "</a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>v</a:t></a:r></a:p></a:txBody></a:tc></a:tr></a:tbl>"
          "</a:graphicData></a:graphic></p:graphicFrame>",
      Shape("", {"Untitled slide text"}),
  };
  testing::WriteZip(dir_ / "a.pptx", testing::MinimalPptx(slides));
  auto doc = PptxParser().Parse(dir_ / "a.pptx", {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  EXPECT_EQ(doc->page_count, 3);
  EXPECT_EQ(doc->title, "Fixture Title");
  struct Want {
    BlockKind kind;
    std::string text;
    int page;
    Strings path;
  };
  const std::vector<Want> want = {
      {BlockKind::kHeading, "Welcome", 1, {}},
      {BlockKind::kSlide, "Body before title in tree order", 1, {"Welcome"}},
      {BlockKind::kHeading, "Second Slide", 2, {}},
      {BlockKind::kSlide, "point one\npoint two", 2, {"Second Slide"}},
      {BlockKind::kTable, "k | v", 2, {"Second Slide"}},
      {BlockKind::kSlide, "Untitled slide text", 3, {}},
  };
  ASSERT_EQ(doc->blocks.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(doc->blocks[i].kind, want[i].kind) << i;
    EXPECT_EQ(doc->blocks[i].text, want[i].text) << i;
    EXPECT_EQ(doc->blocks[i].page, want[i].page) << i;
    EXPECT_EQ(doc->blocks[i].section_path, want[i].path) << i;
  }
}

TEST_F(PptxTest, SpeakerNotesFollowTheirSlide) {
  auto entries = testing::MinimalPptx({Shape("title", {"Only Slide"}) + Shape("", {"visible text"})});
  entries.push_back(
      {"ppt/slides/_rels/slide1.xml.rels",
       R"(<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">)"
       R"(<Relationship Id="rId1" )"
       R"(Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/notesSlide" )"
       R"(Target="../notesSlides/notesSlide1.xml"/></Relationships>)"});
  entries.push_back({"ppt/notesSlides/notesSlide1.xml",
                     R"(<?xml version="1.0"?><p:notes xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" )"
                     R"(xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"><p:cSld><p:spTree>)" +
                         Shape("body", {"Say this out loud"}) + Shape("sldNum", {"1"}) +
                         "</p:spTree></p:cSld></p:notes>"});
  testing::WriteZip(dir_ / "n.pptx", entries);
  auto doc = PptxParser().Parse(dir_ / "n.pptx", {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  ASSERT_EQ(doc->blocks.size(), 3u);
  EXPECT_EQ(doc->blocks[2].kind, BlockKind::kParagraph);
  EXPECT_EQ(doc->blocks[2].text, "Say this out loud");
  EXPECT_EQ(doc->blocks[2].page, 1);
  EXPECT_EQ(doc->blocks[2].section_path, Strings{"Only Slide"});
}

TEST_F(PptxTest, EmptyAndCorrupt) {
  auto empty = PptxParser().Parse(Write("e.pptx", ""), {});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().message(), "file is empty");
  auto junk = PptxParser().Parse(Write("j.pptx", std::string(3000, 'z')), {});
  ASSERT_FALSE(junk);
  EXPECT_EQ(junk.error().code(), ErrorCode::kInvalidArgument);
}

class XlsxTest : public testing::TempDirTest {};

TEST_F(XlsxTest, SheetsWithSharedStrings) {
  const std::string shared = "<si><t>Name</t></si><si><t>Price</t></si><si><r><t>Rich </t></r><r><t>text</t></r></si>";
  const std::string sheet1 =
      "<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c><c r=\"B1\" t=\"s\"><v>1</v></c></row>"
      "<row r=\"2\"><c r=\"A2\" t=\"s\"><v>2</v></c><c r=\"B2\"><v>9.5</v></c></row>"
      "<row r=\"3\"><c r=\"A3\" t=\"inlineStr\"><is><t>Inline</t></is></c><c r=\"C3\" t=\"b\"><v>1</v></c></row>"
      "<row r=\"4\"><c r=\"A4\" t=\"s\"><v>99</v></c></row>";
  const std::string sheet2 = "<row r=\"1\"><c r=\"B1\" t=\"str\"><f>1+1</f><v>2</v></c></row>";
  testing::WriteZip(dir_ / "a.xlsx", testing::MinimalXlsx({{"Prices", sheet1}, {"Other", sheet2}}, shared));
  auto doc = XlsxParser().Parse(dir_ / "a.xlsx", {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  EXPECT_EQ(doc->page_count, 2);
  ASSERT_EQ(doc->blocks.size(), 2u);
  EXPECT_EQ(doc->blocks[0].kind, BlockKind::kSheet);
  EXPECT_EQ(doc->blocks[0].text, "Name | Price\nRich text | 9.5\nInline |  | TRUE");
  EXPECT_EQ(doc->blocks[0].page, 1);
  EXPECT_EQ(doc->blocks[0].section_path, Strings{"Prices"});
  EXPECT_EQ(doc->blocks[1].text, "| 2");  // leading empty cell; block text is trimmed
  EXPECT_EQ(doc->blocks[1].page, 2);
  EXPECT_EQ(doc->blocks[1].section_path, Strings{"Other"});
}

TEST_F(XlsxTest, SharedStringsBombIsStopped) {
  auto entries = testing::MinimalXlsx({{"S", "<row r=\"1\"><c r=\"A1\"><v>1</v></c></row>"}}, "");
  for (auto& e : entries) {
    if (e.name == "xl/sharedStrings.xml") e = ZipEntry{"xl/sharedStrings.xml", "", 256ull << 20};
  }
  testing::WriteZip(dir_ / "bomb.xlsx", entries);
  auto doc = XlsxParser().Parse(dir_ / "bomb.xlsx", {});
  ASSERT_FALSE(doc);
  EXPECT_EQ(doc.error().code(), ErrorCode::kPayloadTooLarge) << doc.error().message();
}

TEST_F(XlsxTest, OneSharedStringInManyCellsIsCountedCellByCell) {
  // 2,000 cells of one row, each a 100 KB shared string: 200 MB of text from a file of a few
  // hundred KB. The text budget (1 MiB here) stops it inside the row.
  std::string cells;
  for (int i = 0; i < 2000; ++i) cells += "<c t=\"s\"><v>0</v></c>";
  std::string text;
  for (int i = 0; text.size() < 100000; ++i) text += "word" + std::to_string(i % 977) + " ";
  testing::WriteZip(dir_ / "cells.xlsx",
                    testing::MinimalXlsx({{"S", "<row r=\"1\">" + cells + "</row>"}}, "<si><t>" + text + "</t></si>"));
  ParseLimits limits;
  limits.max_text_bytes = 1 << 20;
  auto doc = XlsxParser().Parse(dir_ / "cells.xlsx", limits);
  ASSERT_TRUE(doc) << doc.error().message();
  std::size_t bytes = 0;
  for (const auto& b : doc->blocks) bytes += b.text.size();
  EXPECT_LE(bytes, 2u << 20);
  bool warned = false;
  for (const auto& w : doc->warnings) warned = warned || w.find("bytes of cell text") != std::string::npos;
  EXPECT_TRUE(warned) << ::testing::PrintToString(doc->warnings);
}

}  // namespace
}  // namespace modulo::parse
