// The concrete parsers, one per format. Most callers use ParseFile (parser.h), which picks one by
// content and extension; tests and tools may use a parser directly.
//
// Every class here is stateless and thread-safe (see parser.h for what a Parser promises).
#pragma once

#include "modulo/parse/parser.h"

namespace modulo::parse {

// Plain text in UTF-8, UTF-16/32 (BOM or heuristics) or a legacy encoding (uchardet + iconv).
// Paragraphs are separated by blank lines; form feeds start a new page (pages numbered only when
// the file contains a form feed). metadata["encoding"] names the detected encoding.
class TextParser final : public Parser {
 public:
  [[nodiscard]] Result<ParsedDocument> Parse(const std::filesystem::path& file,
                                             const ParseLimits& limits) const override;
};

// CommonMark-style Markdown: ATX and setext headings form the section path, fenced and indented
// code become kCode, list items kListItem, pipe tables kTable; YAML front matter's title is used.
class MarkdownParser final : public Parser {
 public:
  [[nodiscard]] Result<ParsedDocument> Parse(const std::filesystem::path& file,
                                             const ParseLimits& limits) const override;
};

// HTML through libxml2's forgiving HTML parser (no network access). Drops script, style, nav,
// noscript, template, head, svg and iframe; h1-h6 form the section path; lists, tables (one line
// per row, cells joined by " | ") and pre blocks are kept. Walks the tree iteratively: nesting
// deeper than ParseLimits::max_html_depth is flattened into its enclosing block.
class HtmlParser final : public Parser {
 public:
  [[nodiscard]] Result<ParsedDocument> Parse(const std::filesystem::path& file,
                                             const ParseLimits& limits) const override;
};

// PDF through poppler: text per page in reading order, page numbers, title/author/subject/
// keywords/creator metadata, running headers and footers removed. Headings are found by font size
// (lines set clearly larger than the body text; sizes rank the levels) and form the section path.
// Encrypted (password-protected) files fail with kPermissionDenied, unreadable ones with
// kInvalidArgument; a PDF without a text layer succeeds with a warning.
struct PdfOptions {
  bool detect_headings = true;  // font-size headings need a second poppler pass: about 2.5x the parse time
};

class PdfParser final : public Parser {
 public:
  PdfParser() = default;
  explicit PdfParser(PdfOptions options) : options_(options) {}
  [[nodiscard]] Result<ParsedDocument> Parse(const std::filesystem::path& file,
                                             const ParseLimits& limits) const override;

 private:
  PdfOptions options_;
};

// Word (OOXML) documents: paragraphs, Title/Heading N styles and outline levels as the section
// path, numbered/bulleted paragraphs as kListItem, tables as kTable. Pages follow Word's
// rendered page breaks and explicit page breaks (page 1 when there are none).
class DocxParser final : public Parser {
 public:
  [[nodiscard]] Result<ParsedDocument> Parse(const std::filesystem::path& file,
                                             const ParseLimits& limits) const override;
};

// PowerPoint (OOXML): one kSlide block per text body (tables as kTable, notes as kParagraph),
// page = slide number in presentation order, section path = the slide title.
class PptxParser final : public Parser {
 public:
  [[nodiscard]] Result<ParsedDocument> Parse(const std::filesystem::path& file,
                                             const ParseLimits& limits) const override;
};

// Excel (OOXML): cells of every sheet (shared strings, inline strings, numbers, booleans, cached
// formula results), one line per row with cells joined by " | ", in kSheet blocks of bounded
// size that each repeat the sheet's first row; page = sheet index, section path = sheet name.
class XlsxParser final : public Parser {
 public:
  [[nodiscard]] Result<ParsedDocument> Parse(const std::filesystem::path& file,
                                             const ParseLimits& limits) const override;
};

// CSV (RFC 4180 quoting, ',' or ';' or tab detected from the first line): one line per record
// with fields joined by " | ", in kTable blocks of bounded size that each repeat the header row.
class CsvParser final : public Parser {
 public:
  [[nodiscard]] Result<ParsedDocument> Parse(const std::filesystem::path& file,
                                             const ParseLimits& limits) const override;
};

// JSON (nlohmann_json): flattened to "path.to.key: value" lines (arrays as path[i]); values
// nested deeper than ParseLimits::max_html_depth are kept as compact JSON text.
class JsonParser final : public Parser {
 public:
  [[nodiscard]] Result<ParsedDocument> Parse(const std::filesystem::path& file,
                                             const ParseLimits& limits) const override;
};

}  // namespace modulo::parse
