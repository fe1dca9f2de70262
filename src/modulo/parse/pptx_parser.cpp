// PptxParser: slides in presentation order (ppt/presentation.xml + its relationships), each slide's
// title as its section, text bodies as kSlide blocks, tables as kTable, speaker notes as kParagraph.
#include <algorithm>
#include <cctype>

#include "modulo/parse/document_builder.h"
#include "modulo/parse/ooxml.h"
#include "modulo/parse/parsers.h"

namespace modulo::parse {
namespace {

// Placeholders whose text repeats on every slide or is not content.
bool IsBoilerplatePlaceholder(std::string_view type) {
  return type == "sldNum" || type == "dt" || type == "ftr" || type == "hdr" || type == "sldImg";
}

bool IsTitlePlaceholder(std::string_view type) {
  return type == "title" || type == "ctrTitle";
}

// The placeholder type of a shape (p:sp/p:nvSpPr/p:nvPr/p:ph@type), "" when none.
std::string_view PlaceholderType(const pugi::xml_node& sp) {
  const pugi::xml_node ph = ChildLocal(ChildLocal(ChildLocal(sp, "nvSpPr"), "nvPr"), "ph");
  if (!ph) return {};
  const std::string_view type = AttrLocal(ph, "type");
  return type.empty() ? std::string_view("body") : type;
}

// Paragraphs (a:p) of a text body, one line each; a:br breaks lines.
std::string TextBody(const pugi::xml_node& body) {
  std::string out;
  for (const pugi::xml_node p : body.children()) {
    if (LocalName(p) != "p") continue;
    std::string line;
    WalkXml(p, [&](const pugi::xml_node& n) {
      if (n.type() != pugi::node_element) return false;
      const std::string_view name = LocalName(n);
      if (name == "t") {
        line += n.text().get();
        return false;
      }
      if (name == "br") line.push_back('\n');
      if (name == "tab") line.push_back('\t');
      return name != "rPr" && name != "pPr";
    });
    if (Trim(line).empty()) continue;
    if (!out.empty()) out.push_back('\n');
    out += line;
  }
  return out;
}

std::string TableText(const pugi::xml_node& tbl) {
  std::string rows;
  for (const pugi::xml_node tr : tbl.children()) {
    if (LocalName(tr) != "tr") continue;
    std::string line;
    bool first = true;
    for (const pugi::xml_node tc : tr.children()) {
      if (LocalName(tc) != "tc") continue;
      if (!first) line += " | ";
      first = false;
      const pugi::xml_node body = ChildLocal(tc, "txBody");
      line += CollapseWhitespace(body ? TextBody(body) : std::string());
    }
    if (Trim(line).find_first_not_of("| ") == std::string_view::npos) continue;
    if (!rows.empty()) rows.push_back('\n');
    rows += line;
  }
  return rows;
}

// The slide part names in presentation order.
std::vector<std::string> SlideOrder(ZipPackage& zip) {
  std::vector<std::string> slides;
  const auto rels = ReadRelationships(zip, "ppt/presentation.xml");
  if (auto xml = LoadXml(zip, "ppt/presentation.xml"); xml) {
    const pugi::xml_node list = ChildLocal((*xml)->document_element(), "sldIdLst");
    for (const pugi::xml_node id : list.children()) {
      if (LocalName(id) != "sldId") continue;
      if (auto it = rels.find(std::string(RelationshipId(id))); it != rels.end()) slides.push_back(it->second);
    }
  }
  if (!slides.empty()) return slides;
  // Fallback: ppt/slides/slideN.xml by N.
  std::vector<std::pair<int, std::string>> numbered;
  for (const std::string& name : zip.Names()) {
    if (!name.starts_with("ppt/slides/slide") || !name.ends_with(".xml")) continue;
    const std::string digits = name.substr(16, name.size() - 16 - 4);
    if (digits.empty() ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
      continue;
    numbered.emplace_back(std::atoi(digits.c_str()), name);
  }
  std::sort(numbered.begin(), numbered.end());
  for (auto& [n, name] : numbered) slides.push_back(std::move(name));
  return slides;
}

// Adds the text of a slide or notes part. Returns false when the part is damaged.
Status AddShapes(DocumentBuilder& b, const pugi::xml_node& tree, int page, BlockKind kind, bool skip_title) {
  WalkXml(tree, [&](const pugi::xml_node& n) {
    if (n.type() != pugi::node_element || b.full()) return false;
    const std::string_view name = LocalName(n);
    if (name == "sp") {
      const std::string_view ph = PlaceholderType(n);
      if (IsBoilerplatePlaceholder(ph) || (skip_title && IsTitlePlaceholder(ph))) return false;
      if (const pugi::xml_node body = ChildLocal(n, "txBody")) b.Add(kind, TextBody(body), page);
      return false;
    }
    if (name == "tbl") {
      b.Add(BlockKind::kTable, TableText(n), page);
      return false;
    }
    if (name == "Fallback") return false;  // mc:Fallback repeats mc:Choice
    return true;
  });
  return {};
}

}  // namespace

Result<ParsedDocument> PptxParser::Parse(const std::filesystem::path& file, const ParseLimits& limits) const {
  try {
    auto zip = OpenOfficePackage(file, limits, "ppt/presentation.xml", "PPTX");
    if (!zip) return Fail(std::move(zip.error()));
    DocumentBuilder builder("pptx", limits);
    builder.doc().bytes = FileSizeOrZero(file);
    ReadCoreProperties(*zip, builder.doc());

    const std::vector<std::string> slides = SlideOrder(*zip);
    const int parsed = std::min(static_cast<int>(slides.size()), limits.max_pages);
    if (parsed < static_cast<int>(slides.size())) {
      builder.Warn("only the first " + std::to_string(parsed) + " slides were parsed");
    }
    builder.doc().page_count = static_cast<int>(slides.size());
    for (int i = 0; i < parsed && !builder.full(); ++i) {
      const int page = i + 1;
      auto xml = LoadXml(*zip, slides[i]);
      if (!xml) {
        if (xml.error().code() == ErrorCode::kPayloadTooLarge) return Fail(std::move(xml.error()));
        builder.Warn("slide " + std::to_string(page) + " could not be read: " + xml.error().message());
        continue;
      }
      const pugi::xml_node tree = ChildLocal(ChildLocal((*xml)->document_element(), "cSld"), "spTree");
      // The title first, so every block of the slide carries it as its section.
      builder.ResetSections();
      std::string title;
      WalkXml(tree, [&](const pugi::xml_node& n) {
        if (!title.empty() || n.type() != pugi::node_element) return false;
        if (LocalName(n) == "sp") {
          if (IsTitlePlaceholder(PlaceholderType(n))) title = TextBody(ChildLocal(n, "txBody"));
          return false;
        }
        return LocalName(n) != "Fallback";
      });
      if (!Trim(title).empty()) {
        builder.AddHeading(1, title, page);
        if (page == 1 && builder.doc().title.empty()) builder.doc().title = CollapseWhitespace(title);
      }
      (void)AddShapes(builder, tree, page, BlockKind::kSlide, true);
      // Speaker notes.
      for (const auto& [id, rel] : ReadTypedRelationships(*zip, slides[i])) {
        if (rel.second != "notesSlide") continue;
        auto notes = LoadXml(*zip, rel.first);
        if (!notes) continue;
        const pugi::xml_node notes_tree = ChildLocal(ChildLocal((*notes)->document_element(), "cSld"), "spTree");
        (void)AddShapes(builder, notes_tree, page, BlockKind::kParagraph, false);
      }
    }
    return std::move(builder).Finish();
  } catch (const std::bad_alloc&) {
    return Fail(Error::PayloadTooLarge("PPTX needs more memory than available"));
  } catch (const std::exception& e) {
    return Fail(Error::InvalidArgument(std::string("PPTX could not be read: ") + e.what()));
  }
}

}  // namespace modulo::parse
