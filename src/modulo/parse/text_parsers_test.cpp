// Tests of the text-based parsers: plain text (encodings, binary junk), Markdown, CSV and JSON.
#include <gtest/gtest.h>

#include "modulo/parse/document_builder.h"
#include "modulo/parse/parsers.h"
#include "modulo/parse/test_util.h"
#include "modulo/parse/text_decode.h"

namespace modulo::parse {
namespace {

using testing::TempDirTest;
using Strings = std::vector<std::string>;

std::string Utf16Le(std::string_view ascii, bool bom) {
  std::string out = bom ? "\xFF\xFE" : "";
  for (const char c : ascii) {
    out.push_back(c);
    out.push_back('\0');
  }
  return out;
}

// UTF-8 (code points below 256 only) -> ISO-8859-1 bytes.
std::string ToLatin1(std::string_view utf8) {
  std::string out;
  for (std::size_t i = 0; i < utf8.size(); ++i) {
    const auto c = static_cast<unsigned char>(utf8[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back(static_cast<char>(((c & 0x1F) << 6) | (static_cast<unsigned char>(utf8[++i]) & 0x3F)));
    }
  }
  return out;
}

class TextTest : public TempDirTest {};

TEST_F(TextTest, Utf8ParagraphsSplitAtBlankLines) {
  const auto path = Write("a.txt", "First paragraph\nstill first.\n\n\nSecond — ünïcode ✓\n");
  auto doc = TextParser().Parse(path, {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  ASSERT_EQ(doc->blocks.size(), 2u);
  EXPECT_EQ(doc->blocks[0].text, "First paragraph\nstill first.");
  EXPECT_EQ(doc->blocks[1].text, "Second — ünïcode ✓");
  EXPECT_EQ(doc->blocks[0].page, 0);
  EXPECT_EQ(doc->metadata["encoding"], "UTF-8");
  EXPECT_EQ(doc->format, "text");
  EXPECT_TRUE(doc->warnings.empty());
}

TEST_F(TextTest, FormFeedsNumberPages) {
  auto doc = TextParser().Parse(Write("a.txt", "page one\fpage two\n\nmore two\fpage three"), {});
  ASSERT_TRUE(doc);
  ASSERT_EQ(doc->blocks.size(), 4u);
  EXPECT_EQ(doc->blocks[0].page, 1);
  EXPECT_EQ(doc->blocks[1].page, 2);
  EXPECT_EQ(doc->blocks[2].page, 2);
  EXPECT_EQ(doc->blocks[3].page, 3);
  EXPECT_EQ(doc->page_count, 3);
}

TEST_F(TextTest, Utf16WithBom) {
  auto doc = TextParser().Parse(Write("u.txt", Utf16Le("Hello UTF-16\r\n\r\nSecond", true)), {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  EXPECT_EQ(doc->metadata["encoding"], "UTF-16LE");
  ASSERT_EQ(doc->blocks.size(), 2u);
  EXPECT_EQ(doc->blocks[0].text, "Hello UTF-16");
}

TEST_F(TextTest, Utf16WithoutBomByHeuristics) {
  std::string be;
  for (const char c : std::string_view("Big endian text without a byte order mark")) {
    be.push_back('\0');
    be.push_back(c);
  }
  auto doc = TextParser().Parse(Write("u.txt", be), {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  EXPECT_EQ(doc->metadata["encoding"], "UTF-16BE");
  EXPECT_EQ(doc->blocks.at(0).text, "Big endian text without a byte order mark");
}

TEST_F(TextTest, Latin1IsConverted) {
  const std::string latin1 = ToLatin1(
      "Le café crème à la française est très apprécié à Zürich. "
      "Naïve façade, déjà vu, résumé et crème brûlée. Grüß Gott, Straße.\n");
  auto doc = TextParser().Parse(Write("l.txt", latin1), {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  ASSERT_EQ(doc->blocks.size(), 1u);
  EXPECT_NE(doc->blocks[0].text.find("Le café crème à la française"), std::string::npos) << doc->blocks[0].text;
  EXPECT_NE(doc->blocks[0].text.find("Zürich"), std::string::npos);
  EXPECT_NE(doc->blocks[0].text.find("Straße"), std::string::npos);
  EXPECT_TRUE(IsValidUtf8(doc->blocks[0].text));
}

TEST_F(TextTest, InvalidBytesInMostlyUtf8AreReplacedNotFatal) {
  auto decoded = DecodeText("Ünïcödé text, café, naïve, ✓ then one bad byte \xFF here");
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->encoding, "UTF-8");
  EXPECT_TRUE(decoded->replaced);
  EXPECT_EQ(decoded->text, "Ünïcödé text, café, naïve, ✓ then one bad byte \xEF\xBF\xBD here");
}

TEST_F(TextTest, BinaryJunkNamedTxtFails) {
  std::string junk;
  for (int i = 0; i < 4096; ++i) junk.push_back(static_cast<char>((i * 7919 + 13) % 256));
  auto doc = TextParser().Parse(Write("junk.txt", junk), {});
  ASSERT_FALSE(doc);
  EXPECT_EQ(doc.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(doc.error().message().find("file does not look like text"), std::string::npos);

  auto via = ParseFile(Write("junk2.txt", junk), "junk2.txt");
  ASSERT_FALSE(via);
  EXPECT_NE(via.error().message().find("file does not look like text"), std::string::npos) << via.error().message();
}

TEST_F(TextTest, ControlBytesWithoutNulFail) {
  std::string junk(2000, 'a');
  for (std::size_t i = 0; i < junk.size(); i += 5) junk[i] = '\x01';
  auto doc = TextParser().Parse(Write("c.txt", junk), {});
  ASSERT_FALSE(doc);
  EXPECT_EQ(doc.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(TextTest, EmptyFileFailsClearly) {
  const auto path = Write("empty.txt", "");
  auto doc = TextParser().Parse(path, {});
  ASSERT_FALSE(doc);
  EXPECT_EQ(doc.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(doc.error().message(), "file is empty");
}

TEST_F(TextTest, TextLimitTruncatesWithWarning) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "paragraph number " + std::to_string(i) + "\n\n";
  ParseLimits limits;
  limits.max_text_bytes = 200;
  auto doc = TextParser().Parse(Write("big.txt", text), limits);
  ASSERT_TRUE(doc);
  std::size_t total = 0;
  for (const auto& b : doc->blocks) total += b.text.size();
  EXPECT_LE(total, 200u);
  ASSERT_EQ(doc->warnings.size(), 1u);
  EXPECT_NE(doc->warnings[0].find("truncated"), std::string::npos);
}

class MarkdownTest : public TempDirTest {};

TEST_F(MarkdownTest, HeadingsListsCodeAndTables) {
  const std::string md =
      "---\ntitle: \"Front Title\"\n---\n"
      "# Guide\n\nIntro text\nspanning lines.\n\n"
      "Setup\n-----\n\n"
      "- first item\n- second item\n  continued\n\n"
      "```cpp\nint main() {\n\n  return 0;\n}\n```\n\n"
      "### Deep ###\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
      "Other\n=====\n\n---\n\n* * *\nLast words.\n";
  auto doc = MarkdownParser().Parse(Write("g.md", md), {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  EXPECT_EQ(doc->title, "Front Title");
  std::vector<std::pair<BlockKind, std::string>> got;
  for (const auto& b : doc->blocks) got.emplace_back(b.kind, b.text);
  const std::vector<std::pair<BlockKind, std::string>> want = {
      {BlockKind::kHeading, "Guide"},
      {BlockKind::kParagraph, "Intro text spanning lines."},
      {BlockKind::kHeading, "Setup"},
      {BlockKind::kListItem, "first item"},
      {BlockKind::kListItem, "second item continued"},
      {BlockKind::kCode, "int main() {\n\n  return 0;\n}"},
      {BlockKind::kHeading, "Deep"},
      {BlockKind::kTable, "a | b\n1 | 2"},
      {BlockKind::kHeading, "Other"},
      {BlockKind::kParagraph, "Last words."},
  };
  ASSERT_EQ(got, want);
  EXPECT_EQ(doc->blocks[1].section_path, Strings{"Guide"});
  EXPECT_EQ(doc->blocks[2].section_path, Strings{"Guide"});
  EXPECT_EQ(doc->blocks[2].heading_level, 2);
  EXPECT_EQ(doc->blocks[3].section_path, (Strings{"Guide", "Setup"}));
  EXPECT_EQ(doc->blocks[7].section_path, (Strings{"Guide", "Setup", "Deep"}));
  EXPECT_EQ(doc->blocks[9].section_path, Strings{"Other"});
}

TEST_F(MarkdownTest, UnterminatedFenceKeepsCode) {
  auto doc = MarkdownParser().Parse(Write("f.md", "# T\n```\n# not a heading\ncode"), {});
  ASSERT_TRUE(doc);
  ASSERT_EQ(doc->blocks.size(), 2u);
  EXPECT_EQ(doc->blocks[1].kind, BlockKind::kCode);
  EXPECT_EQ(doc->blocks[1].text, "# not a heading\ncode");
  EXPECT_EQ(doc->title, "T");
}

class CsvJsonTest : public TempDirTest {};

TEST_F(CsvJsonTest, CsvQuotingAndHeader) {
  const std::string csv = "name,quote,n\r\n\"Smith, J\",\"He said \"\"hi\"\"\nthen left\",1\r\nDoe,plain,2\r\n";
  auto doc = CsvParser().Parse(Write("a.csv", csv), {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  ASSERT_EQ(doc->blocks.size(), 1u);
  EXPECT_EQ(doc->blocks[0].kind, BlockKind::kTable);
  EXPECT_EQ(doc->blocks[0].text, "name | quote | n\nSmith, J | He said \"hi\" then left | 1\nDoe | plain | 2");
  EXPECT_EQ(doc->metadata["rows"], "3");
}

TEST_F(CsvJsonTest, LongCsvRepeatsHeaderPerBlock) {
  std::string csv = "id;value\n";
  for (int i = 0; i < 2000; ++i) csv += std::to_string(i) + ";some value " + std::to_string(i) + "\n";
  auto doc = CsvParser().Parse(Write("b.csv", csv), {});
  ASSERT_TRUE(doc);
  ASSERT_GT(doc->blocks.size(), 2u);
  for (const auto& b : doc->blocks) EXPECT_TRUE(b.text.starts_with("id | value\n")) << b.text.substr(0, 40);
}

TEST_F(CsvJsonTest, JsonFlattensPaths) {
  const std::string json = R"({"a": {"b": [1, {"c": "x"}], "d": true}, "e": null, "f": 1.5})";
  auto doc = JsonParser().Parse(Write("a.json", json), {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  ASSERT_EQ(doc->blocks.size(), 1u);
  EXPECT_EQ(doc->blocks[0].text, "a.b[0]: 1\na.b[1].c: x\na.d: true\ne: null\nf: 1.5");
}

TEST_F(CsvJsonTest, JsonDeepNestingIsBounded) {
  const int depth = 100000;
  std::string json(depth, '[');
  json += "\"deep\"";
  json += std::string(depth, ']');
  auto doc = JsonParser().Parse(Write("deep.json", json), {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  ASSERT_EQ(doc->blocks.size(), 1u);
  EXPECT_TRUE(doc->blocks[0].text.ends_with(": deep"));
  EXPECT_LT(doc->blocks[0].text.size(), 2000u);
  EXPECT_FALSE(doc->warnings.empty());
}

TEST_F(CsvJsonTest, InvalidJsonFailsClearly) {
  auto doc = JsonParser().Parse(Write("bad.json", "{\"a\": [1, 2"), {});
  ASSERT_FALSE(doc);
  EXPECT_EQ(doc.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(doc.error().message().find("invalid JSON"), std::string::npos);
}

TEST_F(CsvJsonTest, EmptyFilesFailClearly) {
  for (const auto& [name, parser] :
       std::vector<std::pair<std::string, std::shared_ptr<Parser>>>{{"e.csv", std::make_shared<CsvParser>()},
                                                                    {"e.json", std::make_shared<JsonParser>()},
                                                                    {"e.md", std::make_shared<MarkdownParser>()},
                                                                    {"e.html", std::make_shared<HtmlParser>()}}) {
    auto doc = parser->Parse(Write(name, ""), {});
    ASSERT_FALSE(doc) << name;
    EXPECT_EQ(doc.error().message(), "file is empty") << name;
  }
}

TEST(Utf8Test, SanitizeReplacesInvalidAndDropsControls) {
  EXPECT_EQ(SanitizeUtf8(std::string("a\0b", 3)), "ab");
  EXPECT_EQ(SanitizeUtf8("x\xC0\xAFy"), "x\xEF\xBF\xBD\xEF\xBF\xBDy");              // overlong
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(SanitizeUtf8("tab\tnew\nline\x01"), "tab\tnew\nline");
  EXPECT_TRUE(IsValidUtf8("ü✓😀"));
  EXPECT_FALSE(IsValidUtf8("\xF5\x80\x80\x80"));
}

}  // namespace
}  // namespace modulo::parse
