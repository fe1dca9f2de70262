// TextParser and MarkdownParser: line-oriented formats decoded by DecodeText.
#include <cctype>
#include <optional>

#include "modulo/parse/document_builder.h"
#include "modulo/parse/parsers.h"
#include "modulo/parse/text_decode.h"

namespace modulo::parse {
namespace {

constexpr std::size_t kMaxBlockBytes = 8 * 1024;  // long paragraphs are split at line ends past this size

Result<DecodedText> ReadText(const std::filesystem::path& file, const ParseLimits& limits) {
  auto bytes = ReadFileLimited(file, limits.max_decompressed_bytes);
  if (!bytes) return Fail(std::move(bytes.error()));
  return DecodeText(*bytes);
}

// Splits text into lines without their terminators (\n, \r\n or \r).
template <typename Fn>
void ForEachLine(std::string_view text, Fn&& fn) {
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find_first_of("\r\n", start);
    if (end == std::string_view::npos) end = text.size();
    if (!fn(text.substr(start, end - start))) return;
    if (end < text.size() && text[end] == '\r' && end + 1 < text.size() && text[end + 1] == '\n') ++end;
    start = end + 1;
  }
}

void StartDocument(DocumentBuilder& builder, const DecodedText& decoded, std::uint64_t bytes) {
  builder.doc().metadata["encoding"] = decoded.encoding;
  builder.doc().bytes = bytes;
  if (decoded.replaced) builder.Warn("some bytes were not valid " + decoded.encoding + " and were replaced");
}

bool IsBlank(std::string_view line) {
  return Trim(line).empty();
}

std::size_t LeadingSpaces(std::string_view line) {
  std::size_t n = 0, i = 0;
  for (; i < line.size() && (line[i] == ' ' || line[i] == '\t'); ++i) n += line[i] == '\t' ? 4 : 1;
  return n;
}

// "# Title ##" -> (1, "Title"); nullopt when the line is not an ATX heading.
std::optional<std::pair<int, std::string_view>> AtxHeading(std::string_view line) {
  if (LeadingSpaces(line) > 3) return std::nullopt;
  line = Trim(line);
  int level = 0;
  while (level < static_cast<int>(line.size()) && line[level] == '#') ++level;
  if (level == 0 || level > 6) return std::nullopt;
  if (static_cast<std::size_t>(level) < line.size() && line[level] != ' ' && line[level] != '\t') return std::nullopt;
  std::string_view text = Trim(line.substr(level));
  // Optional closing sequence of #s preceded by a space.
  std::size_t end = text.size();
  while (end > 0 && text[end - 1] == '#') --end;
  if (end == 0) {
    text = {};
  } else if (end < text.size() && (text[end - 1] == ' ' || text[end - 1] == '\t')) {
    text = Trim(text.substr(0, end));
  }
  return std::make_pair(level, text);
}

// "===" -> 1, "---" -> 2, else 0.
int SetextUnderline(std::string_view line) {
  if (LeadingSpaces(line) > 3) return 0;
  line = Trim(line);
  if (line.empty()) return 0;
  const char c = line[0];
  if (c != '=' && c != '-') return 0;
  for (const char ch : line) {
    if (ch != c) return 0;
  }
  return c == '=' ? 1 : 2;
}

// "```lang" / "~~~" -> the fence string; nullopt otherwise.
std::optional<std::string> Fence(std::string_view line) {
  if (LeadingSpaces(line) > 3) return std::nullopt;
  line = Trim(line);
  if (line.size() < 3 || (line[0] != '`' && line[0] != '~')) return std::nullopt;
  std::size_t n = 0;
  while (n < line.size() && line[n] == line[0]) ++n;
  if (n < 3) return std::nullopt;
  return std::string(n, line[0]);
}

// "- item", "* item", "+ item", "1. item", "1) item" -> the item text; nullopt otherwise.
std::optional<std::string_view> ListItem(std::string_view line) {
  std::string_view t = Trim(line);
  if (t.size() >= 2 && (t[0] == '-' || t[0] == '*' || t[0] == '+') && (t[1] == ' ' || t[1] == '\t')) {
    return Trim(t.substr(2));
  }
  std::size_t digits = 0;
  while (digits < t.size() && digits < 9 && std::isdigit(static_cast<unsigned char>(t[digits]))) ++digits;
  if (digits > 0 && digits + 1 < t.size() && (t[digits] == '.' || t[digits] == ')') &&
      (t[digits + 1] == ' ' || t[digits + 1] == '\t')) {
    return Trim(t.substr(digits + 2));
  }
  return std::nullopt;
}

// "---", "* * *", "___": a horizontal rule.
bool IsThematicBreak(std::string_view line) {
  line = Trim(line);
  if (line.empty() || (line[0] != '-' && line[0] != '*' && line[0] != '_')) return false;
  std::size_t marks = 0;
  for (const char c : line) {
    if (c == line[0]) {
      ++marks;
    } else if (c != ' ' && c != '\t') {
      return false;
    }
  }
  return marks >= 3;
}

bool IsTableSeparator(std::string_view line) {
  line = Trim(line);
  if (line.find('-') == std::string_view::npos || line.find('|') == std::string_view::npos) return false;
  for (const char c : line) {
    if (c != '|' && c != '-' && c != ':' && c != ' ' && c != '\t') return false;
  }
  return true;
}

// "| a | b |" -> "a | b".
std::string TableRow(std::string_view line) {
  line = Trim(line);
  if (!line.empty() && line.front() == '|') line.remove_prefix(1);
  if (!line.empty() && line.back() == '|') line.remove_suffix(1);
  std::string out;
  std::size_t start = 0;
  while (true) {
    std::size_t bar = line.find('|', start);
    while (bar != std::string_view::npos && bar > 0 && line[bar - 1] == '\\') bar = line.find('|', bar + 1);
    const std::string_view cell = Trim(line.substr(start, bar == std::string_view::npos ? line.npos : bar - start));
    if (!out.empty() || start > 0) out += " | ";
    out += cell;
    if (bar == std::string_view::npos) break;
    start = bar + 1;
  }
  return out;
}

// Markdown state machine over lines. Paragraph text keeps its line breaks as spaces.
class MarkdownReader {
 public:
  explicit MarkdownReader(DocumentBuilder& builder) : b_(builder) {}

  bool Line(std::string_view line) {
    if (b_.full()) return false;
    if (fence_) {
      if (auto f = Fence(line); f && f->size() >= fence_->size() && (*f)[0] == (*fence_)[0] &&
                                Trim(line).find_first_not_of((*fence_)[0]) == std::string_view::npos) {
        FlushCode();
        fence_.reset();
      } else {
        AppendLine(code_, line);
      }
      return true;
    }
    if (front_matter_) {
      if (Trim(line) == "---" || Trim(line) == "...") {
        front_matter_ = false;
      } else if (line.starts_with("title:")) {
        std::string_view title = Trim(line.substr(6));
        if (title.size() >= 2 && (title.front() == '"' || title.front() == '\'') && title.back() == title.front()) {
          title = title.substr(1, title.size() - 2);
        }
        b_.doc().title = std::string(title);
      }
      return true;
    }
    if (first_line_ && Trim(line) == "---") {
      first_line_ = false;
      front_matter_ = true;
      return true;
    }
    first_line_ = false;

    if (IsBlank(line)) {
      FlushParagraph();
      FlushTable();
      FlushCode();
      blank_before_ = true;
      return true;
    }
    const bool was_blank = blank_before_;
    blank_before_ = false;

    if (auto f = Fence(line)) {
      FlushAll();
      fence_ = *f;
      return true;
    }
    if (auto h = AtxHeading(line)) {
      FlushAll();
      Heading(h->first, h->second);
      return true;
    }
    if (int level = SetextUnderline(line); level != 0 && !paragraph_.empty() && !in_list_) {
      std::string text = std::move(paragraph_);
      paragraph_.clear();
      Heading(level, text);
      return true;
    }
    if (IsThematicBreak(line) && paragraph_.empty()) {
      FlushAll();
      return true;
    }
    if (!table_.empty() || (LooksLikeTableRow(line) && paragraph_.empty())) {
      if (LooksLikeTableRow(line)) {
        if (!IsTableSeparator(line)) AppendLine(table_, TableRow(line));
        return true;
      }
      FlushTable();
    }
    if (!code_.empty() && LeadingSpaces(line) < 4) FlushCode();
    if (LeadingSpaces(line) >= 4 && paragraph_.empty() && (!in_list_ || was_blank) && (was_blank || !code_.empty())) {
      FlushList();
      std::string_view rest = line;
      for (int n = 0; n < 4 && !rest.empty() && (rest[0] == ' ' || rest[0] == '\t'); ++n) {
        const bool tab = rest[0] == '\t';
        rest.remove_prefix(1);
        if (tab) break;
      }
      AppendLine(code_, rest);
      return true;
    }
    if (auto item = ListItem(line)) {
      FlushParagraph();
      in_list_ = true;
      paragraph_ = std::string(*item);
      return true;
    }
    if (LeadingSpaces(line) >= 4 && !paragraph_.empty()) {
      AppendText(Trim(line));  // lazy continuation of a paragraph or list item
      return true;
    }
    if (in_list_ && was_blank) FlushParagraph(), in_list_ = false;
    std::string_view text = Trim(line);
    while (!text.empty() && text.front() == '>') text = Trim(text.substr(1));  // block quotes
    AppendText(text);
    return true;
  }

  void FlushAll() {
    FlushParagraph();
    FlushTable();
    FlushCode();
    in_list_ = false;
  }

 private:
  static bool LooksLikeTableRow(std::string_view line) {
    line = Trim(line);
    return line.size() >= 2 && line.front() == '|';
  }
  static void AppendLine(std::string& buf, std::string_view line) {
    if (!buf.empty()) buf.push_back('\n');
    buf.append(line);
  }
  void AppendText(std::string_view text) {
    if (!paragraph_.empty()) paragraph_.push_back(' ');
    paragraph_.append(text);
    if (paragraph_.size() > kMaxBlockBytes) FlushParagraph();
  }
  void Heading(int level, std::string_view text) {
    if (b_.doc().title.empty() && level == 1) b_.doc().title = std::string(text);
    b_.AddHeading(level, text);
  }
  void FlushParagraph() {
    if (!paragraph_.empty()) b_.Add(in_list_ ? BlockKind::kListItem : BlockKind::kParagraph, paragraph_);
    paragraph_.clear();
  }
  void FlushList() {
    FlushParagraph();
    in_list_ = false;
  }
  void FlushTable() {
    if (!table_.empty()) b_.Add(BlockKind::kTable, table_);
    table_.clear();
  }
  void FlushCode() {
    if (!code_.empty()) b_.Add(BlockKind::kCode, code_);
    code_.clear();
  }

  DocumentBuilder& b_;
  std::string paragraph_, table_, code_;
  std::optional<std::string> fence_;
  bool in_list_ = false;
  bool blank_before_ = true;
  bool first_line_ = true;
  bool front_matter_ = false;
};

}  // namespace

Result<ParsedDocument> TextParser::Parse(const std::filesystem::path& file, const ParseLimits& limits) const {
  auto decoded = ReadText(file, limits);
  if (!decoded) return Fail(std::move(decoded.error()));
  DocumentBuilder builder("text", limits);
  StartDocument(builder, *decoded, FileSizeOrZero(file));

  const std::string_view text = decoded->text;
  const bool paged = text.find('\f') != std::string_view::npos;
  int page = paged ? 1 : 0;
  std::string paragraph;
  auto flush = [&] {
    builder.Add(BlockKind::kParagraph, paragraph, page);
    paragraph.clear();
  };
  ForEachLine(text, [&](std::string_view line) {
    // Form feeds split the line into pages.
    std::size_t ff;
    while ((ff = line.find('\f')) != std::string_view::npos) {
      if (!IsBlank(line.substr(0, ff))) {
        if (!paragraph.empty()) paragraph.push_back('\n');
        paragraph.append(line.substr(0, ff));
      }
      flush();
      if (page >= limits.max_pages) {
        builder.Warn("only the first " + std::to_string(limits.max_pages) + " pages were parsed");
        return false;
      }
      ++page;
      line.remove_prefix(ff + 1);
    }
    if (IsBlank(line)) {
      flush();
    } else {
      if (!paragraph.empty()) paragraph.push_back('\n');
      paragraph.append(line);
      if (paragraph.size() > kMaxBlockBytes) flush();
    }
    return !builder.full();
  });
  flush();
  builder.doc().page_count = page;
  return std::move(builder).Finish();
}

Result<ParsedDocument> MarkdownParser::Parse(const std::filesystem::path& file, const ParseLimits& limits) const {
  auto decoded = ReadText(file, limits);
  if (!decoded) return Fail(std::move(decoded.error()));
  DocumentBuilder builder("markdown", limits);
  StartDocument(builder, *decoded, FileSizeOrZero(file));
  MarkdownReader reader(builder);
  ForEachLine(decoded->text, [&](std::string_view line) { return reader.Line(line); });
  reader.FlushAll();
  return std::move(builder).Finish();
}

}  // namespace modulo::parse
