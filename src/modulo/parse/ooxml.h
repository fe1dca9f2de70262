// Reading OOXML packages (DOCX, PPTX, XLSX) safely: a zip reader that enforces ParseLimits while
// inflating, and pugixml helpers that never recurse over the XML tree.
//
// Thread-safety: a ZipPackage belongs to one Parse call (not thread-safe); the free functions are
// thread-safe.
#pragma once

#include <zip.h>

#include <pugixml.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/parse/parser.h"

namespace modulo::parse {

// A zip archive opened read-only. Every entry is inflated in chunks while counting the bytes really
// produced: reading stops with kPayloadTooLarge once the archive's total passes
// max_decompressed_bytes or an entry's inflated/compressed ratio passes max_compression_ratio.
// For deflate entries the ratio is that of the bytes inflated so far to the compressed bytes they
// came from, so a bomb stops after about 1 MiB (the ratio is checked once an entry has produced
// more than 1 MiB, so small, highly compressible XML parts are fine). Declared sizes are used only
// to fail early, never trusted to stop reading. CRCs are verified.
class ZipPackage {
 public:
  // Fails with kInvalidArgument for a missing, empty, damaged or encrypted archive.
  [[nodiscard]] static Result<ZipPackage> Open(const std::filesystem::path& file, const ParseLimits& limits);

  // Whether an entry exists (names compared case-insensitively, as OOXML part names are).
  [[nodiscard]] bool Has(std::string_view name) const;
  // All entry names, in archive order.
  [[nodiscard]] std::vector<std::string> Names() const;
  // Inflates one entry. kNotFound when absent.
  [[nodiscard]] Result<std::string> Read(std::string_view name);

  [[nodiscard]] std::uint64_t inflated_bytes() const noexcept { return inflated_; }

 private:
  struct ZipCloser {
    void operator()(zip_t* z) const noexcept { zip_discard(z); }
  };
  ZipPackage(std::unique_ptr<zip_t, ZipCloser> zip, const ParseLimits& limits)
      : zip_(std::move(zip)), limits_(limits) {}

  std::unique_ptr<zip_t, ZipCloser> zip_;
  ParseLimits limits_;
  std::uint64_t inflated_ = 0;
};

// An XML part parsed with pugixml (no DTD or entity expansion, no recursion).
using XmlPart = std::unique_ptr<pugi::xml_document>;

// Reads and parses a part. kNotFound when absent, kInvalidArgument when not well-formed.
[[nodiscard]] Result<XmlPart> LoadXml(ZipPackage& zip, std::string_view name);

// The element name without its namespace prefix ("w:p" -> "p").
[[nodiscard]] std::string_view LocalName(const pugi::xml_node& node) noexcept;
// An attribute by local name, ignoring the prefix; empty when absent.
[[nodiscard]] std::string_view AttrLocal(const pugi::xml_node& node, std::string_view local) noexcept;
// The relationship id of an element: its prefixed "r:id" attribute (not a plain "id"); empty when absent.
[[nodiscard]] std::string_view RelationshipId(const pugi::xml_node& node) noexcept;
// The first child element with a local name; null when absent.
[[nodiscard]] pugi::xml_node ChildLocal(const pugi::xml_node& node, std::string_view local) noexcept;

// Visits the descendants of `root` in document order without recursion. `enter` returns whether to
// visit the node's children; `leave` (optional) runs after a node's children.
void WalkXml(const pugi::xml_node& root, const std::function<bool(const pugi::xml_node&)>& enter,
             const std::function<void(const pugi::xml_node&)>& leave = {});

// Concatenated text of every descendant element with local name `text_element` (e.g. "t").
[[nodiscard]] std::string CollectText(const pugi::xml_node& root, std::string_view text_element);

// The relationships of a part: Id -> absolute part name (e.g. "rId2" -> "ppt/slides/slide1.xml").
// `part` is the part whose .rels file is read, e.g. "ppt/presentation.xml". Empty when absent.
[[nodiscard]] std::map<std::string, std::string> ReadRelationships(ZipPackage& zip, std::string_view part);
// Same, keyed by Id, with the relationship Type (its last path segment, e.g. "notesSlide").
[[nodiscard]] std::map<std::string, std::pair<std::string, std::string>> ReadTypedRelationships(ZipPackage& zip,
                                                                                                std::string_view part);

// Opens an OOXML package and checks that it holds main_part (e.g. "word/document.xml"); `kind`
// ("DOCX") prefixes error messages. Recognises password-protected Office files (OLE containers).
[[nodiscard]] Result<ZipPackage> OpenOfficePackage(const std::filesystem::path& file, const ParseLimits& limits,
                                                   std::string_view main_part, std::string_view kind);

// Title and author/subject/keywords/modified-by/created from docProps/core.xml (absent is fine).
void ReadCoreProperties(ZipPackage& zip, ParsedDocument& doc);

}  // namespace modulo::parse
