// Parser: turns an uploaded file into structured text (blocks in reading order).
//
// What it promises:
//   - Every Block's text is valid UTF-8 without NUL bytes; invalid input bytes become U+FFFD.
//   - Blocks come in reading order. `page` is 1-based where the format has pages (PDF pages,
//     PPTX slides, XLSX sheets, DOCX rendered page breaks, form feeds in text) and 0 otherwise.
//   - `section_path` holds the enclosing headings, outermost first. A kHeading block's own
//     section_path holds only its parents (its own text is the block's text).
//   - Malformed, hostile or unsupported input never crashes the process: it yields an Error
//     (kInvalidArgument for broken or unreadable files, kPayloadTooLarge for inputs beyond
//     ParseLimits, kUnsupportedMediaType for unknown types, kPermissionDenied for encrypted
//     documents) or a ParsedDocument with warnings (text truncated, no text layer, ...).
//     Third-party exceptions and error codes are converted at each parser's edge.
//   - Resource use is bounded by ParseLimits: decompressed bytes and compression ratio of
//     archives are checked while inflating, HTML depth is flattened past a limit, text and
//     page counts are capped (with a warning).
//
// Thread-safety: Parser implementations hold no mutable state; Parse, ParseFile and
// DetectFormat may be called concurrently from any number of threads. The process-wide
// initialisation that libxml2 and poppler need is done once, internally, before first use.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "modulo/core/error.h"

namespace modulo::parse {

enum class BlockKind { kParagraph, kHeading, kListItem, kTable, kCode, kSlide, kSheet };

// "paragraph", "heading", ... (stable names for logs and JSON).
[[nodiscard]] std::string_view BlockKindName(BlockKind kind) noexcept;

// One unit of text in reading order.
struct Block {
  BlockKind kind = BlockKind::kParagraph;
  std::string text;                       // UTF-8, valid, NUL-free, never empty
  int page = 0;                           // 1-based page/slide/sheet number; 0 when the format has none
  std::vector<std::string> section_path;  // enclosing headings, outermost first
  int heading_level = 0;                  // 1..6 for kHeading, 0 otherwise
};

struct ParsedDocument {
  std::string format;                           // "pdf", "docx", "pptx", "xlsx", "html", "markdown", ...
  std::string title;                            // may be empty
  std::map<std::string, std::string> metadata;  // "author", "subject", "encoding", ...
  int page_count = 0;                           // 0 when the format has no pages
  std::vector<Block> blocks;
  std::vector<std::string> warnings;  // non-fatal problems, e.g. "PDF has no text layer; it needs OCR"
  std::uint64_t bytes = 0;            // size of the input file
};

inline constexpr std::uint64_t kMiB = 1024 * 1024;

struct ParseLimits {
  std::uint64_t max_decompressed_bytes = 512 * kMiB;  // total bytes inflated from an archive (or read from a file)
  double max_compression_ratio = 200;                 // inflated / compressed bytes of one archive entry
  int max_html_depth = 256;                           // deeper HTML (and JSON) content is flattened, not walked
  std::uint64_t max_text_bytes = 64 * kMiB;           // total block text kept; the rest is dropped with a warning
  int max_pages = 10000;                              // pages/slides/sheets parsed; the rest dropped with a warning
};

// One file format. Implementations are stateless and safe to share between threads.
class Parser {
 public:
  virtual ~Parser() = default;
  [[nodiscard]] virtual Result<ParsedDocument> Parse(const std::filesystem::path& file,
                                                     const ParseLimits& limits) const = 0;
};

// The parser for a format name returned by DetectFormat; nullptr for "unknown" or unsupported names.
[[nodiscard]] std::unique_ptr<Parser> MakeParser(std::string_view format);

// Detects the format from the content (libmagic, and a look inside zip archives) and the declared
// filename's extension. Returns "pdf", "docx", "pptx", "xlsx", "html", "markdown", "text", "csv",
// "json", or "unknown". Content wins for binary formats; among text formats the extension decides.
[[nodiscard]] std::string DetectFormat(const std::filesystem::path& file, std::string_view declared_filename);

// DetectFormat + MakeParser + Parse. Empty files fail with kInvalidArgument ("file is empty"),
// unknown types with kUnsupportedMediaType.
[[nodiscard]] Result<ParsedDocument> ParseFile(const std::filesystem::path& file, std::string_view declared_filename,
                                               const ParseLimits& limits = {});

}  // namespace modulo::parse
