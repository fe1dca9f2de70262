#include "modulo/parse/document_builder.h"

#include <algorithm>
#include <fstream>
#include <system_error>

namespace modulo::parse {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Decodes one UTF-8 sequence at in[i]. Returns its length and code point, or length 0 when invalid.
std::pair<std::size_t, char32_t> DecodeOne(std::string_view in, std::size_t i) noexcept {
  const auto b0 = static_cast<unsigned char>(in[i]);
  if (b0 < 0x80) return {1, b0};
  std::size_t len = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return {0, 0};
  }
  if (i + len > in.size()) return {0, 0};
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(in[i + k]);
    if ((b & 0xC0) != 0x80) return {0, 0};
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {0, 0};
  return {len, cp};
}

bool IsSpaceByte(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

}  // namespace

std::string_view BlockKindName(BlockKind kind) noexcept {
  switch (kind) {
    case BlockKind::kParagraph: return "paragraph";
    case BlockKind::kHeading: return "heading";
    case BlockKind::kListItem: return "list_item";
    case BlockKind::kTable: return "table";
    case BlockKind::kCode: return "code";
    case BlockKind::kSlide: return "slide";
    case BlockKind::kSheet: return "sheet";
  }
  return "paragraph";
}

bool IsValidUtf8(std::string_view in) noexcept {
  for (std::size_t i = 0; i < in.size();) {
    if (static_cast<unsigned char>(in[i]) < 0x80) {
      ++i;
      continue;
    }
    const auto [len, cp] = DecodeOne(in, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string SanitizeUtf8(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size();) {
    const auto [len, cp] = DecodeOne(in, i);
    if (len == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    const bool control =
        (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r' && cp != '\f') || cp == 0x7F || (cp >= 0x80 && cp < 0xA0);
    if (!control) out.append(in.substr(i, len));
    i += len;
  }
  return out;
}

std::string CollapseWhitespace(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  bool pending_space = false;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    bool space = IsSpaceByte(c);
    std::size_t skip = 0;
    if (!space && c == '\xC2' && i + 1 < in.size() && in[i + 1] == '\xA0') space = true, skip = 1;  // NBSP
    if (space) {
      pending_space = !out.empty();
      i += skip;
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

std::string_view Trim(std::string_view in) noexcept {
  while (!in.empty() && IsSpaceByte(in.front())) in.remove_prefix(1);
  while (!in.empty() && IsSpaceByte(in.back())) in.remove_suffix(1);
  return in;
}

std::string AsciiLower(std::string_view in) {
  std::string out(in);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; });
  return out;
}

std::uint64_t FileSizeOrZero(const std::filesystem::path& file) noexcept {
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  return ec ? 0 : static_cast<std::uint64_t>(size);
}

Result<std::string> ReadFileLimited(const std::filesystem::path& file, std::uint64_t max_bytes) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (ec) return Fail(Error::InvalidArgument("cannot read file: " + ec.message()));
  if (size == 0) return Fail(Error::InvalidArgument("file is empty"));
  if (size > max_bytes) {
    return Fail(
        Error::PayloadTooLarge("file is larger than the parse limit of " + std::to_string(max_bytes) + " bytes"));
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return Fail(Error::InvalidArgument("cannot open file"));
  std::string data(static_cast<std::size_t>(size), '\0');
  in.read(data.data(), static_cast<std::streamsize>(size));
  data.resize(static_cast<std::size_t>(in.gcount()));
  if (data.empty()) return Fail(Error::InvalidArgument("file is empty"));
  return data;
}

DocumentBuilder::DocumentBuilder(std::string format, const ParseLimits& limits) : limits_(limits) {
  doc_.format = std::move(format);
}

std::vector<std::string> DocumentBuilder::SectionPath() const {
  std::vector<std::string> path;
  path.reserve(headings_.size());
  for (const auto& [level, text] : headings_) path.push_back(text);
  return path;
}

void DocumentBuilder::SetSection(std::string_view name) {
  headings_.clear();
  std::string clean = CollapseWhitespace(SanitizeUtf8(name));
  if (!clean.empty()) headings_.emplace_back(0, std::move(clean));
}

void DocumentBuilder::Warn(std::string warning) {
  if (std::find(doc_.warnings.begin(), doc_.warnings.end(), warning) == doc_.warnings.end()) {
    doc_.warnings.push_back(std::move(warning));
  }
}

bool DocumentBuilder::Admit(std::string_view text, std::string& out, bool keep_indent) {
  if (full_) return false;
  out = SanitizeUtf8(text);
  std::string_view trimmed = Trim(out);
  if (trimmed.empty()) return false;
  if (keep_indent) {  // code keeps the indentation of its first line: drop only blank lines before it
    std::string_view kept(out);
    for (std::size_t nl = kept.find('\n'); nl != std::string_view::npos && Trim(kept.substr(0, nl)).empty();
         nl = kept.find('\n')) {
      kept.remove_prefix(nl + 1);
    }
    while (!kept.empty() && IsSpaceByte(kept.back())) kept.remove_suffix(1);
    trimmed = kept;
  }
  if (trimmed.size() != out.size()) out = std::string(trimmed);
  if (text_bytes_ + out.size() > limits_.max_text_bytes) {
    full_ = true;
    Warn("text truncated at the limit of " + std::to_string(limits_.max_text_bytes) + " bytes");
    std::size_t keep = static_cast<std::size_t>(limits_.max_text_bytes - text_bytes_);
    while (keep > 0 && (static_cast<unsigned char>(out[keep]) & 0xC0) == 0x80) --keep;  // code point boundary
    if (keep == 0) return false;
    out.resize(keep);
  }
  text_bytes_ += out.size();
  return true;
}

void DocumentBuilder::AddHeading(int level, std::string_view text, int page) {
  level = std::clamp(level, 1, 6);
  std::string clean;
  if (!Admit(CollapseWhitespace(text), clean)) return;
  while (!headings_.empty() && headings_.back().first >= level) headings_.pop_back();
  doc_.blocks.push_back(Block{BlockKind::kHeading, clean, page, SectionPath(), level});
  headings_.emplace_back(level, std::move(clean));
}

void DocumentBuilder::Add(BlockKind kind, std::string_view text, int page) {
  std::string clean;
  if (!Admit(text, clean, kind == BlockKind::kCode)) return;
  doc_.blocks.push_back(Block{kind, std::move(clean), page, SectionPath(), 0});
}

ParsedDocument DocumentBuilder::Finish() && {
  doc_.title = CollapseWhitespace(SanitizeUtf8(doc_.title));
  for (auto& [key, value] : doc_.metadata) value = CollapseWhitespace(SanitizeUtf8(value));
  std::erase_if(doc_.metadata, [](const auto& kv) { return kv.second.empty(); });
  return std::move(doc_);
}

void RowPacker::Row(std::string line) {
  if (!has_header_) {
    header_ = std::move(line);
    has_header_ = true;
    return;
  }
  if (rows_in_block_ > 0 && block_.size() + line.size() > max_block_bytes_) Flush();
  if (rows_in_block_ == 0) block_ = header_;
  block_.push_back('\n');
  block_ += line;
  ++rows_in_block_;
}

void RowPacker::Flush() {
  if (rows_in_block_ > 0) {
    b_.Add(kind_, block_, page_);
    emitted_ = true;
  } else if (has_header_ && !emitted_) {
    b_.Add(kind_, header_, page_);
    emitted_ = true;
  }
  block_.clear();
  rows_in_block_ = 0;
}

}  // namespace modulo::parse
