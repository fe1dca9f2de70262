// PdfParser: poppler-cpp. Each Parse call opens its own poppler::document; poppler keeps its
// global state (GlobalParams, font caches) behind its own locks, so distinct documents may be
// read from several threads at once. Poppler's error printer is a process-wide setting: it is set
// once, to a function that discards the messages (a broken PDF is reported through the Result).
#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-global.h>
#include <poppler/cpp/poppler-page.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "modulo/parse/document_builder.h"
#include "modulo/parse/parsers.h"

namespace modulo::parse {
namespace {

// Measured on real documents (see bench/parse): the non-raw, non-physical layout gives reading
// order (columns kept apart) without the space padding of the physical layout.
constexpr poppler::page::text_layout_enum kLayout = poppler::page::non_raw_non_physical_layout;

void InitPoppler() {
  static std::once_flag once;
  std::call_once(once, [] { poppler::set_debug_error_function([](const std::string&, void*) {}, nullptr); });
}

std::string Utf8(const poppler::ustring& s) {
  if (s.empty()) return {};
  const poppler::byte_array bytes = s.to_utf8();
  return std::string(bytes.begin(), bytes.end());
}

constexpr int kEdgeLines = 2;   // lines at the top and bottom of a page checked for running headers
constexpr int kMinRepeats = 3;  // an edge line on this many pages is a running header/footer
constexpr std::size_t kMaxEdgeLine = 160;

// A line's identity for header detection: digits (page numbers) folded, whitespace collapsed.
std::string EdgeKey(std::string_view line) {
  std::string key = CollapseWhitespace(line);
  if (key.size() > kMaxEdgeLine) return {};
  for (char& c : key) {
    if (c >= '0' && c <= '9') c = '#';
  }
  return key;
}

// The non-blank lines of a page, collapsed.
std::vector<std::string> Lines(std::string_view text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    lines.push_back(CollapseWhitespace(text.substr(start, end - start)));  // blank lines kept: they split paragraphs
    start = end + 1;
  }
  return lines;
}

// Indexes of the first and last kEdgeLines non-blank lines (one each on pages too short to have
// both a header/footer block and a body).
std::vector<std::size_t> EdgeIndexes(const std::vector<std::string>& lines) {
  std::size_t non_blank = 0;
  for (const auto& line : lines) non_blank += !line.empty();
  const std::size_t edge = non_blank > 2 * kEdgeLines ? kEdgeLines : 1;
  std::vector<std::size_t> idx;
  for (std::size_t i = 0, n = 0; i < lines.size() && n < edge; ++i) {
    if (!lines[i].empty()) idx.push_back(i), ++n;
  }
  for (std::size_t i = lines.size(), n = 0; i > 0 && n < edge; --i) {
    if (!lines[i - 1].empty() && std::find(idx.begin(), idx.end(), i - 1) == idx.end()) idx.push_back(i - 1), ++n;
  }
  return idx;
}

// Running headers and footers (page numbers, chapter titles, document names repeated at the top
// or bottom of pages) carry no content and would pollute every chunk: lines whose EdgeKey is at
// a page edge on kMinRepeats or more pages are dropped.
void DropRunningHeaders(std::vector<std::vector<std::string>>& pages) {
  std::map<std::string, int> counts;
  for (const auto& lines : pages) {
    std::set<std::string> seen;
    for (const std::size_t i : EdgeIndexes(lines)) {
      if (std::string key = EdgeKey(lines[i]); !key.empty() && seen.insert(key).second) ++counts[key];
    }
  }
  for (auto& lines : pages) {
    for (const std::size_t i : EdgeIndexes(lines)) {
      const auto it = counts.find(EdgeKey(lines[i]));
      if (it != counts.end() && it->second >= kMinRepeats) lines[i].clear();
    }
  }
}

constexpr double kHeadingScale = 1.15;  // a heading's font is at least this much larger than body text
constexpr std::size_t kMaxHeadingChars = 150;

// Font sizes are compared in half points.
int SizeKey(double points) {
  return static_cast<int>(std::lround(points * 2));
}

// A line of a page as poppler's word list forms it, with its mean font size (per character).
struct StyledLine {
  std::string text;
  double size = 0;
};

// The page's lines from poppler's word list (reading order); counts characters per font size into
// `chars_by_size` so the body text size can be found over the whole document.
std::vector<StyledLine> StyledLines(const poppler::page& page, std::map<int, std::size_t>& chars_by_size) {
  std::vector<StyledLine> lines;
  StyledLine cur;
  double weighted = 0, line_y = 0, line_h = 0, last_right = 0;
  std::size_t chars = 0;
  bool space_after = false;
  const auto close = [&] {
    if (chars > 0) {
      cur.size = weighted / static_cast<double>(chars);
      lines.push_back(std::move(cur));
    }
    cur = {};
    weighted = 0;
    chars = 0;
  };
  for (const poppler::text_box& box : page.text_list(poppler::page::text_list_include_font)) {
    const poppler::rectf r = box.bbox();
    const std::string word = Utf8(box.text());
    const double size = box.get_font_size();
    if (word.empty() || size <= 0) continue;
    const bool same_line =
        chars > 0 && std::abs(r.y() - line_y) < 0.5 * std::max(line_h, r.height()) && r.x() >= last_right - 1;
    if (!same_line) {
      close();
      line_y = r.y();
      line_h = r.height();
    } else if (space_after) {
      cur.text.push_back(' ');
    }
    cur.text += word;
    weighted += size * static_cast<double>(word.size());
    chars += word.size();
    chars_by_size[SizeKey(size)] += word.size();
    last_right = r.x() + r.width();
    space_after = box.has_space_after();
  }
  close();
  return lines;
}

// Headings by font size: lines set clearly larger than the body text (the size most characters
// use), short and with letters. Distinct heading sizes, largest first, give levels 1..6.
// Returns, per page, the collapsed text of each heading line and its level.
std::vector<std::map<std::string, int>> FindHeadings(const std::vector<std::vector<StyledLine>>& pages,
                                                     const std::map<int, std::size_t>& chars_by_size) {
  std::vector<std::map<std::string, int>> headings(pages.size());
  if (chars_by_size.empty()) return headings;
  const auto body = std::max_element(chars_by_size.begin(), chars_by_size.end(),
                                     [](const auto& a, const auto& b) { return a.second < b.second; });
  const double min_size = body->first / 2.0 * kHeadingScale;
  const auto is_heading = [&](const StyledLine& line) {
    return line.size >= min_size && line.text.size() <= kMaxHeadingChars &&
           line.text.find(". . .") == std::string::npos && line.text.find("....") == std::string::npos &&  // TOC
           std::any_of(line.text.begin(), line.text.end(),
                       [](char c) { return std::isalpha(static_cast<unsigned char>(c)); });
  };
  std::set<int, std::greater<>> sizes;
  for (const auto& lines : pages) {
    for (const auto& line : lines) {
      if (is_heading(line)) sizes.insert(SizeKey(line.size));
    }
  }
  std::map<int, int> level_of;
  for (const int size : sizes) level_of[size] = std::min(static_cast<int>(level_of.size()) + 1, 6);
  for (std::size_t p = 0; p < pages.size(); ++p) {
    for (const auto& line : pages[p]) {
      if (is_heading(line)) headings[p][CollapseWhitespace(line.text)] = level_of[SizeKey(line.size)];
    }
  }
  return headings;
}

// Splits a page's lines at blank lines into paragraph blocks (lines inside a paragraph are kept);
// lines found in `headings` become headings (consecutive lines of one level form one heading).
void AddPageText(DocumentBuilder& builder, const std::vector<std::string>& lines,
                 const std::map<std::string, int>& headings, int page) {
  std::string paragraph, heading;
  int heading_level = 0;
  const auto flush_heading = [&] {
    if (heading_level != 0) builder.AddHeading(heading_level, heading, page);
    heading.clear();
    heading_level = 0;
  };
  for (const std::string& line : lines) {
    const auto h = line.empty() ? headings.end() : headings.find(line);
    if (h != headings.end()) {
      builder.Add(BlockKind::kParagraph, paragraph, page);
      paragraph.clear();
      if (heading_level != 0 && heading_level != h->second) flush_heading();
      if (!heading.empty()) heading.push_back(' ');
      heading += line;
      heading_level = h->second;
      continue;
    }
    flush_heading();
    if (line.empty()) {
      builder.Add(BlockKind::kParagraph, paragraph, page);
      paragraph.clear();
    } else {
      if (!paragraph.empty()) paragraph.push_back('\n');
      paragraph += line;
    }
  }
  flush_heading();
  builder.Add(BlockKind::kParagraph, paragraph, page);
}

}  // namespace

Result<ParsedDocument> PdfParser::Parse(const std::filesystem::path& file, const ParseLimits& limits) const {
  InitPoppler();
  // The whole file in memory: poppler then parses from a buffer instead of issuing many small reads.
  auto data = ReadFileLimited(file, std::min<std::uint64_t>(limits.max_decompressed_bytes, INT_MAX));
  if (!data) return Fail(std::move(data.error()));
  DocumentBuilder builder("pdf", limits);
  builder.doc().bytes = data->size();
  try {
    std::unique_ptr<poppler::document> doc(
        poppler::document::load_from_raw_data(data->data(), static_cast<int>(data->size())));
    if (!doc) return Fail(Error::InvalidArgument("PDF is damaged or not a PDF (poppler could not open it)"));
    if (doc->is_locked()) return Fail(Error::PermissionDenied("PDF is encrypted and needs a password"));

    builder.doc().title = Utf8(doc->get_title());
    builder.doc().metadata["author"] = Utf8(doc->get_author());
    builder.doc().metadata["subject"] = Utf8(doc->get_subject());
    builder.doc().metadata["keywords"] = Utf8(doc->get_keywords());
    builder.doc().metadata["creator"] = Utf8(doc->get_creator());
    builder.doc().metadata["producer"] = Utf8(doc->get_producer());
    if (doc->is_encrypted()) builder.doc().metadata["encrypted"] = "true";

    const int pages = doc->pages();
    if (pages <= 0) return Fail(Error::InvalidArgument("PDF has no pages"));
    const int parsed = std::min(pages, limits.max_pages);
    if (parsed < pages) builder.Warn("only the first " + std::to_string(parsed) + " pages were parsed");
    builder.doc().page_count = pages;

    // Text of every page first (bounded by max_text_bytes), so running headers can be recognised.
    std::vector<std::vector<std::string>> pages_lines;
    pages_lines.reserve(static_cast<std::size_t>(parsed));
    std::vector<std::vector<StyledLine>> styled;
    styled.reserve(static_cast<std::size_t>(parsed));
    std::map<int, std::size_t> chars_by_size;
    std::uint64_t text_bytes = 0;
    int empty_pages = 0;  // pages without any text (before running headers are dropped)
    for (int i = 0; i < parsed && text_bytes <= limits.max_text_bytes; ++i) {
      std::unique_ptr<poppler::page> page(doc->create_page(i));
      if (!page) {
        builder.Warn("page " + std::to_string(i + 1) + " could not be read");
        pages_lines.emplace_back();
        if (options_.detect_headings) styled.emplace_back();
        ++empty_pages;
        continue;
      }
      const std::string text = Utf8(page->text(poppler::rectf(), kLayout));
      text_bytes += text.size();
      if (Trim(text).empty()) ++empty_pages;
      pages_lines.push_back(Lines(text));
      if (options_.detect_headings) styled.push_back(StyledLines(*page, chars_by_size));
    }
    if (pages_lines.size() >= static_cast<std::size_t>(kMinRepeats)) DropRunningHeaders(pages_lines);
    const std::vector<std::map<std::string, int>> headings = FindHeadings(styled, chars_by_size);
    styled.clear();
    const std::map<std::string, int> none;
    for (std::size_t i = 0; i < pages_lines.size() && !builder.full(); ++i) {
      AddPageText(builder, pages_lines[i], i < headings.size() ? headings[i] : none, static_cast<int>(i) + 1);
    }
    // Without a title in the metadata, the first line of the first page is the best guess.
    if (Trim(builder.doc().title).empty() && !builder.doc().blocks.empty() && builder.doc().blocks[0].page == 1) {
      const std::string& first = builder.doc().blocks[0].text;
      builder.doc().title = first.substr(0, first.find('\n'));
    }
    if (empty_pages == static_cast<int>(pages_lines.size())) {
      builder.Warn("PDF has no text layer; it needs OCR");
    } else if (empty_pages > 0) {
      builder.Warn(std::to_string(empty_pages) + " of " + std::to_string(pages_lines.size()) +
                   " pages have no text layer; they need OCR");
    }
  } catch (const std::bad_alloc&) {
    return Fail(Error::PayloadTooLarge("PDF needs more memory than available"));
  } catch (const std::exception& e) {
    return Fail(Error::InvalidArgument(std::string("PDF could not be read: ") + e.what()));
  }
  return std::move(builder).Finish();
}

}  // namespace modulo::parse
