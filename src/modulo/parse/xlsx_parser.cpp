// XlsxParser: sheets in workbook order, cells resolved through the shared-string table, rows as
// " | "-joined lines packed into kSheet blocks that repeat the sheet's first row.
#include <algorithm>
#include <cctype>

#include "modulo/parse/document_builder.h"
#include "modulo/parse/ooxml.h"
#include "modulo/parse/parsers.h"

namespace modulo::parse {
namespace {

constexpr int kMaxColumnGap = 64;  // empty cells filled in between two values at most this far apart

// "BC12" -> 54 (0-based column), -1 when there is no column.
int ColumnIndex(std::string_view ref) {
  int col = 0;
  std::size_t i = 0;
  for (; i < ref.size() && i < 4 && std::isalpha(static_cast<unsigned char>(ref[i])); ++i) {
    col = col * 26 + (std::toupper(static_cast<unsigned char>(ref[i])) - 'A' + 1);
  }
  return i == 0 ? -1 : col - 1;
}

Result<std::vector<std::string>> SharedStrings(ZipPackage& zip, const std::string& part) {
  std::vector<std::string> strings;
  auto xml = LoadXml(zip, part);
  if (!xml) {
    if (xml.error().code() == ErrorCode::kNotFound) return strings;
    return Fail(std::move(xml.error()));
  }
  for (const pugi::xml_node si : (*xml)->document_element().children()) {
    if (LocalName(si) == "si") strings.push_back(CollectText(si, "t"));
  }
  return strings;
}

std::string CellValue(const pugi::xml_node& c, const std::vector<std::string>& shared) {
  const std::string_view type = AttrLocal(c, "t");
  const pugi::xml_node v = ChildLocal(c, "v");
  if (type == "s") {
    const long index = std::strtol(v.text().get(), nullptr, 10);
    return (index >= 0 && static_cast<std::size_t>(index) < shared.size()) ? shared[static_cast<std::size_t>(index)]
                                                                           : std::string();
  }
  if (type == "inlineStr") return CollectText(ChildLocal(c, "is"), "t");
  if (type == "b") return std::string_view(v.text().get()) == "1" ? "TRUE" : "FALSE";
  return v.text().get();  // numbers, "str" formula results, "e" errors
}

struct Sheet {
  std::string name;
  std::string part;
};

std::vector<Sheet> SheetOrder(ZipPackage& zip) {
  std::vector<Sheet> sheets;
  const auto rels = ReadRelationships(zip, "xl/workbook.xml");
  if (auto xml = LoadXml(zip, "xl/workbook.xml"); xml) {
    for (const pugi::xml_node s : ChildLocal((*xml)->document_element(), "sheets").children()) {
      if (LocalName(s) != "sheet") continue;
      if (auto it = rels.find(std::string(RelationshipId(s))); it != rels.end()) {
        sheets.push_back({std::string(AttrLocal(s, "name")), it->second});
      }
    }
  }
  return sheets;
}

}  // namespace

Result<ParsedDocument> XlsxParser::Parse(const std::filesystem::path& file, const ParseLimits& limits) const {
  try {
    auto zip = OpenOfficePackage(file, limits, "xl/workbook.xml", "XLSX");
    if (!zip) return Fail(std::move(zip.error()));
    DocumentBuilder builder("xlsx", limits);
    builder.doc().bytes = FileSizeOrZero(file);
    ReadCoreProperties(*zip, builder.doc());

    std::string shared_part = "xl/sharedStrings.xml";
    for (const auto& [id, rel] : ReadTypedRelationships(*zip, "xl/workbook.xml")) {
      if (rel.second == "sharedStrings") shared_part = rel.first;
    }
    if (!zip->Has(shared_part) && zip->Has("xl/sharedStrings.xml")) shared_part = "xl/sharedStrings.xml";
    auto shared_strings = SharedStrings(*zip, shared_part);
    if (!shared_strings) return Fail(std::move(shared_strings.error()).Wrap("XLSX shared strings"));
    const std::vector<std::string>& shared = *shared_strings;

    const std::vector<Sheet> sheets = SheetOrder(*zip);
    const int parsed = std::min(static_cast<int>(sheets.size()), limits.max_pages);
    if (parsed < static_cast<int>(sheets.size())) {
      builder.Warn("only the first " + std::to_string(parsed) + " sheets were parsed");
    }
    builder.doc().page_count = static_cast<int>(sheets.size());
    // Cell text produced so far, counted cell by cell: one shared string referenced by a million
    // cells is a few hundred KB on disk and hundreds of GB as text, so the check between rows
    // (builder.full()) comes too late.
    // The budget is also bounded by the file's own size: real workbooks hold a few times their
    // compressed size in text, a bomb thousands of times.
    const std::uint64_t budget = std::min<std::uint64_t>(limits.max_text_bytes, 50 * builder.doc().bytes + (1u << 20));
    std::uint64_t produced = 0;
    bool over = false;
    for (int i = 0; i < parsed && !builder.full() && !over; ++i) {
      const int page = i + 1;
      auto xml = LoadXml(*zip, sheets[i].part);
      if (!xml) {
        if (xml.error().code() == ErrorCode::kPayloadTooLarge) return Fail(std::move(xml.error()));
        builder.Warn("sheet " + sheets[i].name + " could not be read: " + xml.error().message());
        continue;
      }
      builder.SetSection(sheets[i].name);
      RowPacker packer(builder, BlockKind::kSheet, page);
      const pugi::xml_node data = ChildLocal((*xml)->document_element(), "sheetData");
      for (const pugi::xml_node row : data.children()) {
        if (over) break;
        if (LocalName(row) != "row" || builder.full()) continue;
        std::vector<std::string> cells;
        for (const pugi::xml_node c : row.children()) {
          if (LocalName(c) != "c") continue;
          std::string value = CollapseWhitespace(CellValue(c, shared));
          if (value.empty()) continue;
          produced += value.size();
          if (produced > budget) {
            over = true;
            break;
          }
          const int col = ColumnIndex(AttrLocal(c, "r"));
          if (col >= 0 && col > static_cast<int>(cells.size()) &&
              col - static_cast<int>(cells.size()) <= kMaxColumnGap) {
            cells.resize(static_cast<std::size_t>(col));
          }
          cells.push_back(std::move(value));
        }
        if (cells.empty()) continue;
        std::string line;
        for (std::size_t k = 0; k < cells.size(); ++k) {
          if (k > 0) line += " | ";
          line += cells[k];
        }
        packer.Row(std::move(line));
      }
      packer.Flush();
    }
    if (over) {
      builder.Warn("the sheets hold more than " + std::to_string(budget) + " bytes of cell text (50 times the " +
                   "file's size, at most " + std::to_string(limits.max_text_bytes) + "); the rest was dropped");
    }
    return std::move(builder).Finish();
  } catch (const std::bad_alloc&) {
    return Fail(Error::PayloadTooLarge("XLSX needs more memory than available"));
  } catch (const std::exception& e) {
    return Fail(Error::InvalidArgument(std::string("XLSX could not be read: ") + e.what()));
  }
}

}  // namespace modulo::parse
