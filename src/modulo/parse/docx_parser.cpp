// DocxParser: word/document.xml walked without recursion; heading levels from styles.xml.
#include <cctype>
#include <fstream>

#include "modulo/parse/document_builder.h"
#include "modulo/parse/ooxml.h"
#include "modulo/parse/parsers.h"

namespace modulo::parse {
namespace {

constexpr std::size_t kMaxBlockBytes = 8 * 1024;

// What a paragraph style means for us.
struct StyleInfo {
  int heading_level = 0;  // 1..9 (Title is 1)
  bool title = false;
  bool list = false;
};

// "heading 2" / "Heading2" -> 2, else 0.
int HeadingFromName(std::string_view name) {
  const std::string lower = AsciiLower(name);
  if (!lower.starts_with("heading")) return 0;
  std::string_view rest = Trim(std::string_view(lower).substr(7));
  if (rest.empty() || !std::isdigit(static_cast<unsigned char>(rest[0]))) return 0;
  const int level = rest[0] - '0';
  return (rest.size() == 1 && level >= 1) ? level : 0;
}

std::map<std::string, StyleInfo> ReadStyles(ZipPackage& zip) {
  std::map<std::string, StyleInfo> styles;
  auto xml = LoadXml(zip, "word/styles.xml");
  if (!xml) return styles;
  std::map<std::string, std::string> based_on;
  std::map<std::string, int> outline;  // style id -> 0-based outline level
  for (const pugi::xml_node style : (*xml)->document_element().children()) {
    if (LocalName(style) != "style" || AttrLocal(style, "type") != "paragraph") continue;
    const std::string id(AttrLocal(style, "styleId"));
    const std::string name(AttrLocal(ChildLocal(style, "name"), "val"));
    StyleInfo info;
    info.heading_level = HeadingFromName(name);
    if (info.heading_level == 0) info.heading_level = HeadingFromName(id);
    const std::string lower = AsciiLower(name);
    info.title = lower == "title" || AsciiLower(id) == "title";
    if (info.title) info.heading_level = 1;
    info.list = lower.starts_with("list");
    if (const pugi::xml_node lvl = ChildLocal(ChildLocal(style, "pPr"), "outlineLvl")) {
      outline[id] = std::atoi(std::string(AttrLocal(lvl, "val")).c_str());
    }
    if (const pugi::xml_node base = ChildLocal(style, "basedOn")) based_on[id] = AttrLocal(base, "val");
    styles[id] = info;
  }
  // Outline levels are inherited through basedOn (bounded: cycles are possible in broken files).
  for (auto& [id, info] : styles) {
    if (info.heading_level != 0) continue;
    std::string cur = id;
    for (int step = 0; step < 16 && !cur.empty(); ++step) {
      if (auto it = outline.find(cur); it != outline.end()) {
        if (it->second >= 0 && it->second < 9) info.heading_level = it->second + 1;
        break;
      }
      auto base = based_on.find(cur);
      cur = base == based_on.end() ? std::string() : base->second;
    }
  }
  return styles;
}

class DocxWalker {
 public:
  // rendered_breaks: the file records where Word broke pages (w:lastRenderedPageBreak); then
  // those alone count, as explicit page breaks are recorded there too.
  DocxWalker(DocumentBuilder& builder, std::map<std::string, StyleInfo> styles, bool rendered_breaks)
      : b_(builder), styles_(std::move(styles)), rendered_breaks_(rendered_breaks) {}

  void Body(const pugi::xml_node& body) {
    // Body-level containers (w:sdt content controls, w:customXml) are entered; w:p and w:tbl are handled whole.
    WalkXml(body, [&](const pugi::xml_node& n) {
      if (b_.full() || n.type() != pugi::node_element) return false;
      const std::string_view name = LocalName(n);
      if (name == "p") {
        Paragraph(n);
        return false;
      }
      if (name == "tbl") {
        Table(n);
        return false;
      }
      return name == "sdt" || name == "sdtContent" || name == "customXml" || name == "smartTag" || name == "ins";
    });
  }

  [[nodiscard]] int pages() const { return page_; }

 private:
  // Text of a subtree: w:t, tabs and breaks; page breaks advance the page counter. Returns the
  // page the text started on.
  int Text(const pugi::xml_node& root, std::string& out, bool inline_breaks) {
    int start_page = 0;
    WalkXml(root, [&](const pugi::xml_node& n) {
      if (n.type() != pugi::node_element) return false;
      const std::string_view name = LocalName(n);
      if (name == "t") {
        if (start_page == 0 && *n.text().get() != '\0') start_page = page_;
        out += n.text().get();
        return false;
      }
      if (name == "tab") {
        out.push_back('\t');
      } else if (name == "br" || name == "cr") {
        if (AttrLocal(n, "type") == "page") {
          if (!rendered_breaks_) ++page_;
        } else {
          out.push_back(inline_breaks ? ' ' : '\n');
        }
      } else if (name == "lastRenderedPageBreak") {
        if (rendered_breaks_) ++page_;
      } else if (name == "Fallback" || name == "pPr" || name == "rPr" || name == "del" || name == "instrText") {
        return false;  // mc:Fallback repeats mc:Choice; properties hold no text
      }
      return true;
    });
    return start_page == 0 ? page_ : start_page;
  }

  void Paragraph(const pugi::xml_node& p) {
    std::string text;
    const int page = Text(p, text, false);
    const pugi::xml_node ppr = ChildLocal(p, "pPr");
    const std::string style(AttrLocal(ChildLocal(ppr, "pStyle"), "val"));
    StyleInfo info;
    if (auto it = styles_.find(style); it != styles_.end()) {
      info = it->second;
    } else if (!style.empty()) {
      info.heading_level = HeadingFromName(style);
      info.title = AsciiLower(style) == "title";
      if (info.title) info.heading_level = 1;
    }
    if (const pugi::xml_node lvl = ChildLocal(ppr, "outlineLvl")) {
      const int v = std::atoi(std::string(AttrLocal(lvl, "val")).c_str());
      if (v >= 0 && v < 9) info.heading_level = v + 1;
    }
    if (info.title && b_.doc().title.empty()) b_.doc().title = CollapseWhitespace(text);
    if (info.heading_level > 0) {
      b_.AddHeading(std::min(info.heading_level, 6), text, page);
    } else if (ChildLocal(ppr, "numPr") || info.list) {
      b_.Add(BlockKind::kListItem, text, page);
    } else {
      b_.Add(BlockKind::kParagraph, text, page);
    }
  }

  void Table(const pugi::xml_node& tbl) {
    std::string rows;
    int page = 0;
    auto flush = [&] {
      b_.Add(BlockKind::kTable, rows, page);
      rows.clear();
      page = 0;
    };
    for (const pugi::xml_node tr : tbl.children()) {
      if (LocalName(tr) != "tr") continue;
      std::string line;
      bool first = true;
      int row_page = 0;
      for (const pugi::xml_node tc : tr.children()) {
        if (LocalName(tc) != "tc") continue;
        std::string cell;
        // Paragraphs of a cell are separated by spaces; nested tables are flattened into the cell.
        WalkXml(tc, [&](const pugi::xml_node& n) {
          if (n.type() != pugi::node_element) return false;
          if (LocalName(n) == "p") {
            std::string para;
            const int pg = Text(n, para, true);
            if (row_page == 0) row_page = pg;
            if (!cell.empty() && !para.empty()) cell.push_back(' ');
            cell += para;
            return false;
          }
          return LocalName(n) != "tcPr";
        });
        if (!first) line += " | ";
        line += CollapseWhitespace(cell);
        first = false;
      }
      if (Trim(line).find_first_not_of("| ") == std::string_view::npos) continue;
      if (page == 0) page = row_page == 0 ? page_ : row_page;
      if (!rows.empty()) rows.push_back('\n');
      rows += line;
      if (rows.size() > kMaxBlockBytes) flush();
    }
    flush();
  }

  DocumentBuilder& b_;
  std::map<std::string, StyleInfo> styles_;
  bool rendered_breaks_;
  int page_ = 1;
};

// A password-protected Office file is an OLE compound file, not a zip.
bool IsOleCompoundFile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  char magic[8] = {};
  in.read(magic, sizeof(magic));
  return in.gcount() == 8 && std::string_view(magic, 8) == std::string_view("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 8);
}

}  // namespace

// Opens an OOXML package; shared by the DOCX, PPTX and XLSX parsers.
Result<ZipPackage> OpenOfficePackage(const std::filesystem::path& file, const ParseLimits& limits,
                                     std::string_view main_part, std::string_view kind) {
  if (IsOleCompoundFile(file)) {
    return Fail(Error::InvalidArgument(std::string(kind) +
                                       " is password-protected (encrypted) or a legacy binary Office file"));
  }
  if (FileSizeOrZero(file) == 0) return Fail(Error::InvalidArgument("file is empty"));
  auto zip = ZipPackage::Open(file, limits);
  if (!zip) return Fail(std::move(zip.error()).Wrap(std::string(kind) + " is damaged"));
  if (!zip->Has(main_part)) {
    return Fail(
        Error::InvalidArgument(std::string(kind) + " is damaged: the archive has no " + std::string(main_part)));
  }
  return zip;
}

Result<ParsedDocument> DocxParser::Parse(const std::filesystem::path& file, const ParseLimits& limits) const {
  try {
    auto zip = OpenOfficePackage(file, limits, "word/document.xml", "DOCX");
    if (!zip) return Fail(std::move(zip.error()));
    DocumentBuilder builder("docx", limits);
    builder.doc().bytes = FileSizeOrZero(file);
    ReadCoreProperties(*zip, builder.doc());
    auto data = zip->Read("word/document.xml");
    if (!data) return Fail(std::move(data.error()).Wrap("DOCX is damaged"));
    const bool rendered_breaks = data->find("lastRenderedPageBreak") != std::string::npos;
    auto xml = std::make_unique<pugi::xml_document>();
    if (const auto parsed =
            xml->load_buffer(data->data(), data->size(), pugi::parse_default | pugi::parse_ws_pcdata_single);
        !parsed) {
      return Fail(Error::InvalidArgument(std::string("DOCX is damaged: malformed XML in word/document.xml: ") +
                                         parsed.description()));
    }
    data->clear();
    data->shrink_to_fit();
    const pugi::xml_node body = ChildLocal(xml->document_element(), "body");
    DocxWalker walker(builder, ReadStyles(*zip), rendered_breaks);
    if (body) walker.Body(body);
    builder.doc().page_count = walker.pages();
    return std::move(builder).Finish();
  } catch (const std::bad_alloc&) {
    return Fail(Error::PayloadTooLarge("DOCX needs more memory than available"));
  } catch (const std::exception& e) {
    return Fail(Error::InvalidArgument(std::string("DOCX could not be read: ") + e.what()));
  }
}

}  // namespace modulo::parse
