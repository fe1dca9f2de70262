// DetectFormat, MakeParser and ParseFile.
#include <magic.h>

#include <array>
#include <fstream>
#include <memory>

#include "modulo/parse/document_builder.h"
#include "modulo/parse/ooxml.h"
#include "modulo/parse/parsers.h"
#include "modulo/parse/text_decode.h"

namespace modulo::parse {
namespace {

// Bytes handed to libmagic (its text rules are regular expressions over the whole buffer, so more
// costs time without changing the answer for the formats parsed here).
constexpr std::size_t kSniffBytes = 16 * 1024;

struct MagicCloser {
  void operator()(magic_t m) const noexcept { magic_close(m); }
};
using MagicPtr = std::unique_ptr<std::remove_pointer_t<magic_t>, MagicCloser>;

// A libmagic handle is not thread-safe, so each detection opens its own (about 0.15 ms: the
// compiled database is memory-mapped).
MagicPtr OpenMagic() {
  MagicPtr m(magic_open(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS | MAGIC_NO_CHECK_ELF | MAGIC_NO_CHECK_TAR));
  if (m && magic_load(m.get(), nullptr) != 0) m.reset();
  return m;
}

std::string Extension(std::string_view filename) {
  const std::size_t slash = filename.find_last_of("/\\");
  if (slash != std::string_view::npos) filename.remove_prefix(slash + 1);
  const std::size_t dot = filename.rfind('.');
  if (dot == std::string_view::npos || dot + 1 >= filename.size()) return {};
  return AsciiLower(filename.substr(dot + 1));
}

// The format an extension names; "" when it names none.
std::string FormatOfExtension(std::string_view ext) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 22> kMap = {{
      {"pdf", "pdf"},     {"docx", "docx"},         {"docm", "docx"},      {"pptx", "pptx"},    {"pptm", "pptx"},
      {"xlsx", "xlsx"},   {"xlsm", "xlsx"},         {"html", "html"},      {"htm", "html"},     {"xhtml", "html"},
      {"md", "markdown"}, {"markdown", "markdown"}, {"mdown", "markdown"}, {"mkd", "markdown"}, {"csv", "csv"},
      {"tsv", "csv"},     {"json", "json"},         {"txt", "text"},       {"text", "text"},    {"log", "text"},
      {"rst", "text"},    {"asc", "text"},
  }};
  for (const auto& [e, format] : kMap) {
    if (e == ext) return std::string(format);
  }
  return {};
}

bool IsTextFormat(std::string_view format) {
  return format == "html" || format == "markdown" || format == "csv" || format == "json" || format == "text";
}
bool IsOfficeFormat(std::string_view format) {
  return format == "docx" || format == "pptx" || format == "xlsx";
}

struct Detection {
  std::string format;
  std::string mime;
};

std::string SniffMime(std::string_view head) {
  const MagicPtr m = OpenMagic();
  if (!m) return {};
  const char* mime = magic_buffer(m.get(), head.data(), head.size());
  return mime != nullptr ? std::string(mime) : std::string();
}

// Looks inside a zip for the main part of an OOXML package.
std::string OfficeFormatInside(const std::filesystem::path& file) {
  auto zip = ZipPackage::Open(file, ParseLimits{});
  if (!zip) return {};
  if (zip->Has("word/document.xml")) return "docx";
  if (zip->Has("ppt/presentation.xml")) return "pptx";
  if (zip->Has("xl/workbook.xml")) return "xlsx";
  return {};
}

Detection Detect(const std::filesystem::path& file, std::string_view declared_filename) {
  const std::string by_ext = FormatOfExtension(Extension(declared_filename));
  std::string head(kSniffBytes, '\0');
  {
    std::ifstream in(file, std::ios::binary);
    if (!in) return {"unknown", ""};
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<std::size_t>(in.gcount()));
  }
  if (head.empty()) return {by_ext.empty() ? "unknown" : by_ext, "application/x-empty"};
  const std::string mime = SniffMime(head);

  // PDF readers accept the header anywhere in the first 1024 bytes (libmagic looks there too); a
  // file named as text that merely mentions "%PDF-" after its start stays text.
  const bool pdf_later = mime == "application/pdf" || head.substr(0, 1024).find("%PDF-") != std::string::npos;
  if (head.starts_with("%PDF-") || (pdf_later && !IsTextFormat(by_ext))) {
    return {"pdf", mime};
  }
  if (head.starts_with("PK\x03\x04") || mime == "application/zip" || mime.find("openxmlformats") != std::string::npos) {
    std::string inside = OfficeFormatInside(file);
    if (!inside.empty()) return {inside, mime};
    return {IsOfficeFormat(by_ext) ? by_ext : "unknown", mime};
  }
  const bool text_mime = mime.starts_with("text/") || mime == "application/json" || mime == "application/csv" ||
                         mime == "application/javascript" || mime == "application/xml";
  if (text_mime || (!DetectEncoding(std::string_view(head).substr(0, 64 * 1024)).empty() && mime.empty())) {
    if (IsTextFormat(by_ext)) return {by_ext, mime};
    if (mime == "text/html" || mime == "application/xhtml+xml") return {"html", mime};
    if (mime == "application/json") return {"json", mime};
    if (mime == "text/csv" || mime == "application/csv") return {"csv", mime};
    if (mime == "text/markdown" || mime == "text/x-markdown") return {"markdown", mime};
    return {"text", mime};
  }
  // Binary content: a text extension goes to its parser, which rejects binary data with a clear
  // reason; an Office/PDF extension on unrecognised or OLE data likewise.
  if (IsTextFormat(by_ext)) return {by_ext, mime};
  const bool unrecognised = mime.empty() || mime == "application/octet-stream";
  const bool ole = mime == "application/x-ole-storage" || mime == "application/CDFV2" ||
                   mime == "application/encrypted" || mime.find("ms-") != std::string::npos;
  if ((unrecognised && !by_ext.empty()) || (ole && IsOfficeFormat(by_ext))) return {by_ext, mime};
  return {"unknown", mime};
}

}  // namespace

std::unique_ptr<Parser> MakeParser(std::string_view format) {
  if (format == "pdf") return std::make_unique<PdfParser>();
  if (format == "docx") return std::make_unique<DocxParser>();
  if (format == "pptx") return std::make_unique<PptxParser>();
  if (format == "xlsx") return std::make_unique<XlsxParser>();
  if (format == "html") return std::make_unique<HtmlParser>();
  if (format == "markdown") return std::make_unique<MarkdownParser>();
  if (format == "text") return std::make_unique<TextParser>();
  if (format == "csv") return std::make_unique<CsvParser>();
  if (format == "json") return std::make_unique<JsonParser>();
  return nullptr;
}

std::string DetectFormat(const std::filesystem::path& file, std::string_view declared_filename) {
  try {
    return Detect(file, declared_filename).format;
  } catch (const std::exception&) {
    return "unknown";
  }
}

Result<ParsedDocument> ParseFile(const std::filesystem::path& file, std::string_view declared_filename,
                                 const ParseLimits& limits) {
  try {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) return Fail(Error::InvalidArgument("not a readable file"));
    if (FileSizeOrZero(file) == 0) return Fail(Error::InvalidArgument("file is empty"));
    const Detection detection = Detect(file, declared_filename);
    const std::unique_ptr<Parser> parser = MakeParser(detection.format);
    if (!parser) {
      return Fail(Error::UnsupportedMediaType("unsupported file type" +
                                              (detection.mime.empty() ? std::string() : " (" + detection.mime + ")")));
    }
    return parser->Parse(file, limits);
  } catch (const std::bad_alloc&) {
    return Fail(Error::PayloadTooLarge("document needs more memory than available"));
  } catch (const std::exception& e) {
    return Fail(Error::Internal(std::string("parsing failed: ") + e.what()));
  }
}

}  // namespace modulo::parse
