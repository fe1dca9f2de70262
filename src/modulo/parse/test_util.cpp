#include "modulo/parse/test_util.h"

#include <zip.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <list>
#include <memory>
#include <random>

namespace modulo::parse::testing {
namespace {

std::atomic<int> counter{0};

// A libzip source producing `size` zero bytes without holding them in memory.
struct ZeroSource {
  std::uint64_t size = 0;
  std::uint64_t offset = 0;
  zip_error_t error{};
};

zip_int64_t ZeroCallback(void* user, void* data, zip_uint64_t len, zip_source_cmd_t cmd) {
  auto* src = static_cast<ZeroSource*>(user);
  switch (cmd) {
    case ZIP_SOURCE_OPEN: src->offset = 0; return 0;
    case ZIP_SOURCE_READ: {
      const std::uint64_t n = std::min<std::uint64_t>(len, src->size - src->offset);
      std::memset(data, 0, n);
      src->offset += n;
      return static_cast<zip_int64_t>(n);
    }
    case ZIP_SOURCE_CLOSE: return 0;
    case ZIP_SOURCE_STAT: {
      auto* st = static_cast<zip_stat_t*>(data);
      zip_stat_init(st);
      st->size = src->size;
      st->valid |= ZIP_STAT_SIZE;
      return sizeof(zip_stat_t);
    }
    case ZIP_SOURCE_ERROR: return zip_error_to_data(&src->error, data, len);
    case ZIP_SOURCE_FREE: return 0;
    case ZIP_SOURCE_SUPPORTS: return ZIP_SOURCE_SUPPORTS_READABLE;
    default: return -1;
  }
}

}  // namespace

void TempDirTest::SetUp() {
  std::random_device rd;
  dir_ = std::filesystem::temp_directory_path() /
         ("modulo-parse-" + std::to_string(rd()) + "-" + std::to_string(counter++));
  std::filesystem::create_directories(dir_);
}

void TempDirTest::TearDown() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::filesystem::path TempDirTest::Write(std::string_view name, std::string_view content) const {
  const auto path = dir_ / std::string(name);
  std::ofstream out(path, std::ios::binary);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  return path;
}

void WriteZip(const std::filesystem::path& path, const std::vector<ZipEntry>& entries) {
  int err = 0;
  zip_t* zip = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  ASSERT_NE(zip, nullptr) << "zip_open " << err;
  std::list<ZeroSource> zero_sources;  // must outlive zip_close
  for (const ZipEntry& e : entries) {
    zip_source_t* src = nullptr;
    if (e.zeros > 0) {
      zero_sources.push_back(ZeroSource{e.zeros, 0, {}});
      zip_error_init(&zero_sources.back().error);
      src = zip_source_function(zip, ZeroCallback, &zero_sources.back());
    } else {
      src = zip_source_buffer(zip, e.content.data(), e.content.size(), 0);
    }
    ASSERT_NE(src, nullptr);
    const zip_int64_t index = zip_file_add(zip, e.name.c_str(), src, ZIP_FL_OVERWRITE);
    ASSERT_GE(index, 0) << zip_strerror(zip);
    zip_set_file_compression(zip, static_cast<zip_uint64_t>(index), ZIP_CM_DEFLATE, e.zeros > 0 ? 1 : 6);
  }
  ASSERT_EQ(zip_close(zip), 0) << zip_strerror(zip);
  for (auto& z : zero_sources) zip_error_fini(&z.error);
}

std::string MakePdf(const std::vector<std::vector<std::string>>& pages, std::string_view title,
                    std::string_view author) {
  // Objects: 1 catalog, 2 pages, 3 font, 4 info, then (page, contents) pairs.
  std::vector<std::string> objects;
  const int n = static_cast<int>(pages.size());
  std::string kids;
  for (int i = 0; i < n; ++i) kids += std::to_string(5 + 2 * i) + " 0 R ";
  objects.push_back("<< /Type /Catalog /Pages 2 0 R >>");
  objects.push_back("<< /Type /Pages /Kids [" + kids + "] /Count " + std::to_string(n) + " >>");
  objects.push_back("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>");
  objects.push_back("<< /Title (" + std::string(title) + ") /Author (" + std::string(author) + ") >>");
  for (int i = 0; i < n; ++i) {
    std::string content;
    if (pages[i].empty()) {
      content = "0 0 1 rg 100 100 200 200 re f\n";
    } else {
      content = "BT /F1 12 Tf 72 720 Td 24 TL\n";
      if (pages[i][0] == "<two-columns>") {  // lines 1.. alternate: left column, right column
        std::string left = "BT /F1 12 Tf 72 720 Td 16 TL\n", right = "BT /F1 12 Tf 320 720 Td 16 TL\n";
        for (std::size_t k = 1; k < pages[i].size(); ++k)
          (k % 2 == 1 ? left : right) += "(" + pages[i][k] + ") Tj T*\n";
        content = left + "ET\n" + right;
      }
      for (const auto& line : pages[i]) {
        if (line == "<two-columns>") break;
        // "# " and "## " start lines set in 20 and 16 point (headings).
        const int size = line.starts_with("# ") ? 20 : line.starts_with("## ") ? 16 : 12;
        const std::string text = size == 12 ? line : line.substr(line.find(' ') + 1);
        content += "/F1 " + std::to_string(size) + " Tf (" + text + ") Tj T*\n";
      }
      content += "ET\n";
    }
    objects.push_back(
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
        "/Contents " +
        std::to_string(6 + 2 * i) + " 0 R >>");
    objects.push_back("<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content + "endstream");
  }
  std::string pdf = "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n";
  std::vector<std::size_t> offsets;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    offsets.push_back(pdf.size());
    pdf += std::to_string(i + 1) + " 0 obj\n" + objects[i] + "\nendobj\n";
  }
  const std::size_t xref = pdf.size();
  pdf += "xref\n0 " + std::to_string(objects.size() + 1) + "\n0000000000 65535 f \n";
  for (const std::size_t off : offsets) {
    char line[32];
    std::snprintf(line, sizeof(line), "%010zu 00000 n \n", off);
    pdf += line;
  }
  pdf += "trailer\n<< /Size " + std::to_string(objects.size() + 1) + " /Root 1 0 R /Info 4 0 R >>\nstartxref\n" +
         std::to_string(xref) + "\n%%EOF\n";
  return pdf;
}

std::filesystem::path DataDir() {
  return MODULO_PARSE_TEST_DATA;
}

namespace {
constexpr std::string_view kDecl = R"(<?xml version="1.0" encoding="UTF-8"?>)";
constexpr std::string_view kRelNs = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
constexpr std::string_view kPackageRelNs = "http://schemas.openxmlformats.org/package/2006/relationships";
constexpr std::string_view kWordNs = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";
constexpr std::string_view kDrawingNs = "http://schemas.openxmlformats.org/drawingml/2006/main";
constexpr std::string_view kPresentationNs = "http://schemas.openxmlformats.org/presentationml/2006/main";
constexpr std::string_view kSheetNs = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";

std::string S(std::string_view v) {
  return std::string(v);
}

ZipEntry ContentTypes() {
  return {"[Content_Types].xml", S(kDecl) +
                                     R"(<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">)" +
                                     R"(<Default Extension="xml" ContentType="application/xml"/></Types>)"};
}

ZipEntry CoreProperties() {
  return {"docProps/core.xml",
          S(kDecl) + R"(<cp:coreProperties xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:cp=")" +
              "http://schemas.openxmlformats.org/package/2006/metadata/core-properties" + R"(">)" +
              R"(<dc:title>Fixture Title</dc:title><dc:creator>Ada Lovelace</dc:creator></cp:coreProperties>)"};
}

ZipEntry Relationships(std::string name, const std::string& relationships) {
  return {std::move(name),
          S(kDecl) + "<Relationships xmlns=\"" + S(kPackageRelNs) + "\">" + relationships + "</Relationships>"};
}
}  // namespace

std::vector<ZipEntry> MinimalDocx(std::string_view body_xml, std::string_view styles_xml) {
  std::vector<ZipEntry> e = {ContentTypes(), CoreProperties()};
  e.push_back({"word/document.xml", S(kDecl) + "<w:document xmlns:w=\"" + S(kWordNs) + "\"><w:body>" + S(body_xml) +
                                        "</w:body></w:document>"});
  if (!styles_xml.empty()) {
    e.push_back(
        {"word/styles.xml", S(kDecl) + "<w:styles xmlns:w=\"" + S(kWordNs) + "\">" + S(styles_xml) + "</w:styles>"});
  }
  return e;
}

std::vector<ZipEntry> MinimalPptx(const std::vector<std::string>& slide_xmls) {
  std::vector<ZipEntry> e = {ContentTypes(), CoreProperties()};
  std::string ids, rels;
  // Presentation order is the reverse of the part numbering, to check that the order is followed.
  const int n = static_cast<int>(slide_xmls.size());
  for (int i = 0; i < n; ++i) {
    const int part = n - i;
    ids += "<p:sldId id=\"" + std::to_string(256 + i) + "\" r:id=\"rId" + std::to_string(10 + i) + "\"/>";
    rels += "<Relationship Id=\"rId" + std::to_string(10 + i) + "\" Type=\"" + S(kRelNs) +
            "/slide\" Target=\"slides/slide" + std::to_string(part) + ".xml\"/>";
    e.push_back({"ppt/slides/slide" + std::to_string(part) + ".xml",
                 S(kDecl) + "<p:sld xmlns:a=\"" + S(kDrawingNs) + "\" xmlns:p=\"" + S(kPresentationNs) +
                     "\"><p:cSld><p:spTree>" + slide_xmls[i] + "</p:spTree></p:cSld></p:sld>"});
  }
  e.push_back({"ppt/presentation.xml", S(kDecl) + "<p:presentation xmlns:p=\"" + S(kPresentationNs) + "\" xmlns:r=\"" +
                                           S(kRelNs) + "\"><p:sldIdLst>" + ids + "</p:sldIdLst></p:presentation>"});
  e.push_back(Relationships("ppt/_rels/presentation.xml.rels", rels));
  return e;
}

std::vector<ZipEntry> MinimalXlsx(const std::vector<std::pair<std::string, std::string>>& sheets,
                                  std::string_view shared_strings_xml) {
  std::vector<ZipEntry> e = {ContentTypes()};
  std::string list, rels;
  for (std::size_t i = 0; i < sheets.size(); ++i) {
    const std::string id = "rId" + std::to_string(i + 1);
    list += "<sheet name=\"" + sheets[i].first + "\" sheetId=\"" + std::to_string(i + 1) + "\" r:id=\"" + id + "\"/>";
    rels += "<Relationship Id=\"" + id + "\" Type=\"" + S(kRelNs) + "/worksheet\" Target=\"worksheets/sheet" +
            std::to_string(i + 1) + ".xml\"/>";
    e.push_back({"xl/worksheets/sheet" + std::to_string(i + 1) + ".xml",
                 S(kDecl) + "<worksheet xmlns=\"" + S(kSheetNs) + "\"><sheetData>" + sheets[i].second +
                     "</sheetData></worksheet>"});
  }
  rels += "<Relationship Id=\"rIdS\" Type=\"" + S(kRelNs) + "/sharedStrings\" Target=\"sharedStrings.xml\"/>";
  e.push_back({"xl/workbook.xml", S(kDecl) + "<workbook xmlns=\"" + S(kSheetNs) + "\" xmlns:r=\"" + S(kRelNs) +
                                      "\"><sheets>" + list + "</sheets></workbook>"});
  e.push_back(Relationships("xl/_rels/workbook.xml.rels", rels));
  e.push_back(
      {"xl/sharedStrings.xml", S(kDecl) + "<sst xmlns=\"" + S(kSheetNs) + "\">" + S(shared_strings_xml) + "</sst>"});
  return e;
}

}  // namespace modulo::parse::testing

// LeakSanitizer (MODULO_SANITIZE=address): fontconfig, loaded by poppler when it reads font
// information, keeps a process-wide configuration that it never frees.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:libfontconfig.so\n";
}
