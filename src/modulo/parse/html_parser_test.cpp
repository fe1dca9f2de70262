// Tests of HtmlParser: structure, dropped elements, tables, deep nesting, encodings.
#include <gtest/gtest.h>

#include "modulo/parse/parsers.h"
#include "modulo/parse/test_util.h"

namespace modulo::parse {
namespace {

using Strings = std::vector<std::string>;

class HtmlTest : public testing::TempDirTest {};

TEST_F(HtmlTest, StructureAndDroppedElements) {
  const std::string html = R"(<!DOCTYPE html><html><head><title>The  Title</title>
<meta name="author" content="Grace Hopper"><style>p{color:red}</style><script>var x = "hidden";</script></head>
<body><nav><a href="/">Home</a> menu</nav>
<h1>Chapter <em>One</em></h1>
<p>First   paragraph with <b>bold</b> text.<br>After break.</p>
<noscript>enable js</noscript><template><p>tmpl</p></template>
<h2>Lists</h2><ul><li>apple</li><li>banana<ul><li>inner</li></ul></li></ul>
<h2>Data</h2>
<table><tr><th>Name</th><th>Qty</th></tr><tr><td>Pen</td><td>3</td></tr></table>
<pre>  code
    indented</pre>
<h1>Chapter Two</h1><div>Closing &amp; text</div>
<script>document.write("no")</script></body></html>)";
  auto doc = HtmlParser().Parse(Write("a.html", html), {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  EXPECT_EQ(doc->title, "The Title");
  EXPECT_EQ(doc->metadata["author"], "Grace Hopper");
  std::vector<std::pair<BlockKind, std::string>> got;
  for (const auto& b : doc->blocks) got.emplace_back(b.kind, b.text);
  const std::vector<std::pair<BlockKind, std::string>> want = {
      {BlockKind::kHeading, "Chapter One"},
      {BlockKind::kParagraph, "First paragraph with bold text.\nAfter break."},
      {BlockKind::kHeading, "Lists"},
      {BlockKind::kListItem, "apple"},
      {BlockKind::kListItem, "banana"},
      {BlockKind::kListItem, "inner"},
      {BlockKind::kHeading, "Data"},
      {BlockKind::kTable, "Name | Qty\nPen | 3"},
      {BlockKind::kCode, "  code\n    indented"},
      {BlockKind::kHeading, "Chapter Two"},
      {BlockKind::kParagraph, "Closing & text"},
  };
  ASSERT_EQ(got, want);
  EXPECT_EQ(doc->blocks[3].section_path, (Strings{"Chapter One", "Lists"}));
  EXPECT_EQ(doc->blocks[7].section_path, (Strings{"Chapter One", "Data"}));
  EXPECT_EQ(doc->blocks[10].section_path, Strings{"Chapter Two"});
  EXPECT_EQ(doc->blocks[9].heading_level, 1);
}

TEST_F(HtmlTest, DeeplyNestedHtmlDoesNotCrash) {
  const int depth = 100000;
  std::string html = "<html><body><h1>Top</h1>";
  for (int i = 0; i < depth; ++i) html += "<div>";
  html += "deep text";
  for (int i = 0; i < depth; ++i) html += "</div>";
  html += "<p>after</p></body></html>";
  auto doc = HtmlParser().Parse(Write("deep.html", html), {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  std::string all;
  for (const auto& b : doc->blocks) all += b.text + "\n";
  EXPECT_NE(all.find("Top"), std::string::npos);
  EXPECT_NE(all.find("deep text"), std::string::npos) << all;
}

TEST_F(HtmlTest, DeepInlineNestingIsFlattened) {
  std::string html = "<p>start ";
  for (int i = 0; i < 5000; ++i) html += "<span><b>";
  html += "bottom";
  for (int i = 0; i < 5000; ++i) html += "</b></span>";
  html += " end</p><p>next</p>";
  ParseLimits limits;
  limits.max_html_depth = 64;
  auto doc = HtmlParser().Parse(Write("inline.html", html), limits);
  ASSERT_TRUE(doc) << doc.error().ToString();
  std::string all;
  for (const auto& b : doc->blocks) all += b.text + "\n";
  EXPECT_NE(all.find("bottom"), std::string::npos) << all;
}

TEST_F(HtmlTest, Latin1WithoutCharsetAndDeclaredCharset) {
  auto doc = HtmlParser().Parse(Write("l.html",
                                      "<p>Caf\xE9 cr\xE8me br\xFBl\xE9"
                                      "e \xE0 Z\xFCrich, na\xEFve fa\xE7"
                                      "ade</p>"),
                                {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  ASSERT_EQ(doc->blocks.size(), 1u);
  EXPECT_EQ(doc->blocks[0].text, "Café crème brûlée à Zürich, naïve façade");

  auto declared = HtmlParser().Parse(Write("d.html",
                                           "<html><head><meta charset=\"iso-8859-1\"></head><body><p>Gr\xFC\xDF"
                                           "e</p></body></html>"),
                                     {});
  ASSERT_TRUE(declared);
  ASSERT_EQ(declared->blocks.size(), 1u);
  EXPECT_EQ(declared->blocks[0].text, "Grüße");
}

TEST_F(HtmlTest, HugeHeadingAndLongCodeBecomeBoundedBlocks) {
  std::string words, code;
  for (int i = 0; i < 3000; ++i) words += "word" + std::to_string(i) + " ";
  for (int i = 0; i < 3000; ++i) code += "line " + std::to_string(i) + "\n";
  auto doc = HtmlParser().Parse(Write("huge.html", "<h1>" + words + "</h1><pre>" + code + "</pre><p>end</p>"), {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  std::size_t code_blocks = 0;
  for (const auto& b : doc->blocks) {
    EXPECT_NE(b.kind, BlockKind::kHeading);  // 20 KB of text is no heading
    if (b.kind == BlockKind::kCode) {
      ++code_blocks;
      EXPECT_LE(b.text.size(), 8192u);
    }
  }
  EXPECT_GE(code_blocks, 3u);
  EXPECT_EQ(doc->blocks.back().text, "end");
  EXPECT_TRUE(doc->blocks.back().section_path.empty());
}

TEST_F(HtmlTest, BrokenMarkupRecovers) {
  auto doc = HtmlParser().Parse(Write("b.html", "<h2>Unclosed<p>para <b>bold<td>cell</table></div>tail"), {});
  ASSERT_TRUE(doc) << doc.error().ToString();
  std::string all;
  for (const auto& b : doc->blocks) all += b.text + "\n";
  EXPECT_NE(all.find("para"), std::string::npos);
  EXPECT_NE(all.find("tail"), std::string::npos);
}

TEST_F(HtmlTest, NoNetworkAccessForExternalEntities) {
  // A DOCTYPE with an external URL must not be fetched (NONET); parsing still succeeds.
  auto doc = HtmlParser().Parse(
      Write("n.html", "<!DOCTYPE html SYSTEM \"http://192.0.2.1/x.dtd\"><html><body><p>ok</p></body></html>"), {});
  ASSERT_TRUE(doc);
  ASSERT_EQ(doc->blocks.size(), 1u);
  EXPECT_EQ(doc->blocks[0].text, "ok");
}

}  // namespace
}  // namespace modulo::parse
