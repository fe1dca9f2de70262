// Building blocks shared by the parsers: the DocumentBuilder that keeps the section path and the
// text budget, UTF-8 sanitising, whitespace helpers and bounded file reading.
//
// Thread-safety: a DocumentBuilder belongs to one Parse call (not thread-safe); the free
// functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/parse/parser.h"

namespace modulo::parse {

// Returns `in` as valid UTF-8: invalid or overlong sequences and surrogates become U+FFFD, NUL
// and C0/C1 control characters other than \t \n \r \f are dropped.
[[nodiscard]] std::string SanitizeUtf8(std::string_view in);

// True when `in` is entirely valid UTF-8.
[[nodiscard]] bool IsValidUtf8(std::string_view in) noexcept;

// Collapses every run of whitespace (ASCII and NBSP) to one space and trims both ends.
[[nodiscard]] std::string CollapseWhitespace(std::string_view in);

// Trims ASCII whitespace at both ends.
[[nodiscard]] std::string_view Trim(std::string_view in) noexcept;

// Lower-cased ASCII copy.
[[nodiscard]] std::string AsciiLower(std::string_view in);

// Reads a whole file. Fails with kInvalidArgument when it cannot be read or is empty
// ("file is empty"), kPayloadTooLarge when it is larger than max_bytes.
[[nodiscard]] Result<std::string> ReadFileLimited(const std::filesystem::path& file, std::uint64_t max_bytes);

// Size of a file, or 0 when it cannot be determined.
[[nodiscard]] std::uint64_t FileSizeOrZero(const std::filesystem::path& file) noexcept;

// Accumulates blocks in reading order. Tracks the heading stack (section path), sanitises text,
// drops empty blocks and enforces ParseLimits::max_text_bytes (further text is dropped and one
// warning is recorded).
class DocumentBuilder {
 public:
  DocumentBuilder(std::string format, const ParseLimits& limits);

  // A heading of level 1..6: closes every open section of the same or deeper level.
  void AddHeading(int level, std::string_view text, int page = 0);
  // Any other block; its section_path is the current heading stack.
  void Add(BlockKind kind, std::string_view text, int page = 0);
  // Forgets every open section (e.g. at a new slide or sheet).
  void ResetSections() { headings_.clear(); }
  // Replaces the section path with exactly one entry (e.g. a slide title or sheet name).
  void SetSection(std::string_view name);

  void Warn(std::string warning);
  // True once max_text_bytes has been reached: callers may stop producing text.
  [[nodiscard]] bool full() const noexcept { return full_; }

  ParsedDocument& doc() noexcept { return doc_; }
  [[nodiscard]] ParsedDocument Finish() &&;

 private:
  [[nodiscard]] std::vector<std::string> SectionPath() const;
  // Sanitises, trims and budgets `text`; returns false when nothing should be added.
  // keep_indent: trim only blank lines at the start (for code).
  bool Admit(std::string_view text, std::string& out, bool keep_indent = false);

  ParsedDocument doc_;
  ParseLimits limits_;
  std::vector<std::pair<int, std::string>> headings_;  // (level, text), outermost first
  std::uint64_t text_bytes_ = 0;
  bool full_ = false;
};

// Packs table rows (one line each) into blocks of about max_block_bytes, each block starting with
// the table's first row (its header), so every block can be read on its own.
class RowPacker {
 public:
  RowPacker(DocumentBuilder& builder, BlockKind kind, int page, std::size_t max_block_bytes = 8 * 1024)
      : b_(builder), kind_(kind), page_(page), max_block_bytes_(max_block_bytes) {}
  void Row(std::string line);
  // Emits the pending rows (or the header alone when the table has no other row).
  void Flush();

 private:
  DocumentBuilder& b_;
  BlockKind kind_;
  int page_;
  std::size_t max_block_bytes_;
  std::string header_, block_;
  bool has_header_ = false, emitted_ = false;
  std::size_t rows_in_block_ = 0;
};

}  // namespace modulo::parse
