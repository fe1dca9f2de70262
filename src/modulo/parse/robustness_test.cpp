// Robustness: damaged variants (bit flips, truncations, spliced bytes) of a valid document of every
// format go through ParseFile. Each must give an Error or a document whose blocks hold valid,
// NUL-free, non-empty UTF-8; nothing may crash or hang.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "modulo/parse/document_builder.h"
#include "modulo/parse/parser.h"
#include "modulo/parse/test_util.h"

namespace modulo::parse {
namespace {

class RobustnessTest : public testing::TempDirTest {
 protected:
  std::string ReadBack(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }

  void CheckVariants(const std::string& original, const std::string& name, int variants) {
    std::mt19937 rng(12345);
    for (int v = 0; v < variants; ++v) {
      std::string bytes = original;
      switch (v % 4) {
        case 0:  // flip a few bytes
          for (int k = 0; k < 1 + v % 7; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
          break;
        case 1:  // truncate
          bytes.resize(rng() % bytes.size());
          break;
        case 2: {  // duplicate a slice somewhere else
          const std::size_t from = rng() % bytes.size(), len = rng() % std::min<std::size_t>(512, bytes.size() - from);
          bytes.insert(rng() % bytes.size(), bytes.substr(from, len));
          break;
        }
        default:  // zero a run
          for (std::size_t i = rng() % bytes.size(), n = 0; i < bytes.size() && n < 64; ++i, ++n) bytes[i] = '\0';
      }
      const auto path = Write(name, bytes);
      auto doc = ParseFile(path, name);
      if (!doc) continue;
      for (const Block& b : doc->blocks) {
        ASSERT_FALSE(b.text.empty()) << name << " variant " << v;
        ASSERT_TRUE(IsValidUtf8(b.text)) << name << " variant " << v;
        ASSERT_EQ(b.text.find('\0'), std::string::npos) << name << " variant " << v;
      }
      ASSERT_TRUE(IsValidUtf8(doc->title));
    }
  }
};

TEST_F(RobustnessTest, DamagedDocumentsOfEveryFormat) {
  CheckVariants(testing::MakePdf({{"Hello world", "second line"}, {"Page two"}}, "T", "A"), "f.pdf", 120);
  CheckVariants(ReadBack(testing::DataDir() / "groff.pdf"), "g.pdf", 60);

  testing::WriteZip(
      dir_ / "d.docx",
      testing::MinimalDocx("<w:p><w:pPr><w:pStyle w:val=\"Heading1\"/></w:pPr><w:r><w:t>Head</w:t></w:r></w:p>"
                           "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>cell</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"));
  CheckVariants(ReadBack(dir_ / "d.docx"), "f.docx", 120);
  testing::WriteZip(dir_ / "p.pptx",
                    testing::MinimalPptx({"<p:sp><p:txBody><a:p><a:r><a:t>slide</a:t></a:r></a:p></p:txBody></p:sp>"}));
  CheckVariants(ReadBack(dir_ / "p.pptx"), "f.pptx", 80);
  testing::WriteZip(dir_ / "x.xlsx",
                    testing::MinimalXlsx({{"S", "<row><c t=\"s\"><v>0</v></c></row>"}}, "<si><t>v</t></si>"));
  CheckVariants(ReadBack(dir_ / "x.xlsx"), "f.xlsx", 80);

  CheckVariants(
      "<html><head><title>t</title></head><body><h1>H</h1><p>para <b>b</b></p><table><tr><td>1</td></tr>"
      "</table><ul><li>x</li></ul><pre>code</pre></body></html>",
      "f.html", 120);
  CheckVariants("# Title\n\ntext\n\n- item\n\n```\ncode\n```\n| a | b |\n|---|---|\n| 1 | 2 |\n", "f.md", 80);
  CheckVariants("a,b,\"c\"\"d\"\n1,2,3\n\"x\ny\",5,6\n", "f.csv", 80);
  CheckVariants("{\"a\": {\"b\": [1, 2, {\"c\": \"d\"}]}, \"e\": \"\\u00e9\"}", "f.json", 80);
  CheckVariants("Plain text with ünïcode.\n\nSecond paragraph.\fNext page.", "f.txt", 80);
}

}  // namespace
}  // namespace modulo::parse
