#include "modulo/parse/ooxml.h"

#include <zlib.h>

#include <array>
#include <optional>

#include "modulo/parse/document_builder.h"

namespace modulo::parse {
namespace {

constexpr std::uint64_t kRatioFloor = 1024 * 1024;  // the ratio limit applies past this many inflated bytes
constexpr std::size_t kChunk = 64 * 1024;

std::string ZipErrorText(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string text = zip_error_strerror(&error);
  zip_error_fini(&error);
  return text;
}

struct ZipFileCloser {
  void operator()(zip_file_t* f) const noexcept { zip_fclose(f); }
};

struct InflateEnd {
  void operator()(z_stream* z) const noexcept { inflateEnd(z); }
};

// Inflates a raw deflate stream read from `entry` into `out`, calling `check(produced, consumed)`
// after every output chunk, and verifies the CRC.
template <typename Check>
Status Inflate(zip_file_t* entry, const std::string& key, const zip_stat_t& st, const Check& check, std::string& out) {
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) return Fail(Error::Internal("zlib initialisation failed"));
  const std::unique_ptr<z_stream, InflateEnd> guard(&zs);
  std::array<unsigned char, kChunk> in;
  std::array<unsigned char, kChunk> chunk;
  std::uint64_t fed = 0;
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto damaged = [&](std::string_view why) {
    return Fail(Error::InvalidArgument("damaged zip entry " + key + ": " + std::string(why)));
  };
  for (bool end = false; !end;) {
    if (zs.avail_in == 0) {
      const zip_int64_t n = zip_fread(entry, in.data(), in.size());
      if (n < 0) return damaged(zip_file_strerror(entry));
      if (n == 0) return damaged("compressed data ends early");
      fed += static_cast<std::uint64_t>(n);
      zs.next_in = in.data();
      zs.avail_in = static_cast<uInt>(n);
    }
    zs.next_out = chunk.data();
    zs.avail_out = static_cast<uInt>(chunk.size());
    const int rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) {
      end = true;
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return damaged(zs.msg != nullptr ? zs.msg : "invalid deflate data");
    }
    const std::size_t produced = chunk.size() - zs.avail_out;
    crc = crc32(crc, chunk.data(), static_cast<uInt>(produced));
    out.append(reinterpret_cast<const char*>(chunk.data()), produced);
    if (auto error = check(out.size(), fed - zs.avail_in)) return Fail(std::move(*error));
  }
  if ((st.valid & ZIP_STAT_CRC) != 0 && crc != st.crc) return damaged("CRC mismatch");
  return {};
}

// "ppt/slides/../media/x.png" -> "ppt/media/x.png".
std::string NormalisePath(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(start, end - start);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = end + 1;
  }
  std::string out;
  for (const auto part : parts) {
    if (!out.empty()) out.push_back('/');
    out += part;
  }
  return out;
}

}  // namespace

Result<ZipPackage> ZipPackage::Open(const std::filesystem::path& file, const ParseLimits& limits) {
  if (FileSizeOrZero(file) == 0) return Fail(Error::InvalidArgument("file is empty"));
  int code = 0;
  zip_t* raw = zip_open(file.c_str(), ZIP_RDONLY, &code);
  if (raw == nullptr) {
    return Fail(Error::InvalidArgument("not a valid zip archive (" + ZipErrorText(code) + ")"));
  }
  return ZipPackage(std::unique_ptr<zip_t, ZipCloser>(raw), limits);
}

bool ZipPackage::Has(std::string_view name) const {
  return zip_name_locate(zip_.get(), std::string(name).c_str(), ZIP_FL_NOCASE) >= 0;
}

std::vector<std::string> ZipPackage::Names() const {
  std::vector<std::string> names;
  const zip_int64_t n = zip_get_num_entries(zip_.get(), 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    if (const char* name = zip_get_name(zip_.get(), static_cast<zip_uint64_t>(i), 0)) names.emplace_back(name);
  }
  return names;
}

Result<std::string> ZipPackage::Read(std::string_view name) {
  const std::string key(name);
  const zip_int64_t index = zip_name_locate(zip_.get(), key.c_str(), ZIP_FL_NOCASE);
  if (index < 0) return Fail(Error::NotFound("archive has no entry " + key));
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(zip_.get(), static_cast<zip_uint64_t>(index), 0, &st) != 0) {
    return Fail(Error::InvalidArgument("damaged zip entry " + key));
  }
  if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) != 0 && st.encryption_method != ZIP_EM_NONE) {
    return Fail(Error::PermissionDenied("zip entry " + key + " is encrypted"));
  }
  const std::uint64_t budget = limits_.max_decompressed_bytes - std::min(inflated_, limits_.max_decompressed_bytes);
  const auto too_large = [&] {
    return Error::PayloadTooLarge("archive inflates beyond the limit of " +
                                  std::to_string(limits_.max_decompressed_bytes) + " bytes (zip bomb?)");
  };
  if ((st.valid & ZIP_STAT_SIZE) != 0 && st.size > budget) return Fail(too_large());
  // Called after every inflated chunk with the bytes produced and the compressed bytes they came from.
  const auto check = [&](std::uint64_t produced, std::uint64_t consumed) -> std::optional<Error> {
    if (produced > budget) return too_large();
    if (produced > kRatioFloor &&
        static_cast<double>(produced) >
            limits_.max_compression_ratio * static_cast<double>(std::max<std::uint64_t>(consumed, 1))) {
      return Error::PayloadTooLarge("zip entry " + key + " exceeds the compression ratio limit of " +
                                    std::to_string(static_cast<int>(limits_.max_compression_ratio)) + " (zip bomb?)");
    }
    return std::nullopt;
  };
  // Deflate (all that OOXML writers use) is inflated here from the raw stream, so the ratio is known
  // at every step; other methods go through libzip and are measured against the entry's whole size.
  const bool deflated = (st.valid & ZIP_STAT_COMP_METHOD) != 0 && st.comp_method == ZIP_CM_DEFLATE;
  std::unique_ptr<zip_file_t, ZipFileCloser> entry(
      zip_fopen_index(zip_.get(), static_cast<zip_uint64_t>(index), deflated ? ZIP_FL_COMPRESSED : 0));
  if (!entry) {
    return Fail(Error::InvalidArgument("cannot read zip entry " + key + ": " + zip_strerror(zip_.get())));
  }
  std::string out;
  if ((st.valid & ZIP_STAT_SIZE) != 0)
    out.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(st.size, 8 * kMiB)));
  if (deflated) {
    if (auto inflated = Inflate(entry.get(), key, st, check, out); !inflated) return Fail(std::move(inflated.error()));
  } else {
    const std::uint64_t compressed = (st.valid & ZIP_STAT_COMP_SIZE) != 0 ? st.comp_size : 0;
    std::array<char, kChunk> buffer;
    while (true) {
      const zip_int64_t n = zip_fread(entry.get(), buffer.data(), buffer.size());
      if (n < 0) {
        return Fail(Error::InvalidArgument("damaged zip entry " + key + ": " + zip_file_strerror(entry.get())));
      }
      if (n == 0) break;
      out.append(buffer.data(), static_cast<std::size_t>(n));
      if (auto error = check(out.size(), compressed)) return Fail(std::move(*error));
    }
  }
  inflated_ += out.size();
  return out;
}

Result<XmlPart> LoadXml(ZipPackage& zip, std::string_view name) {
  auto data = zip.Read(name);
  if (!data) return Fail(std::move(data.error()));
  auto doc = std::make_unique<pugi::xml_document>();
  const pugi::xml_parse_result result =
      doc->load_buffer(data->data(), data->size(), pugi::parse_default | pugi::parse_ws_pcdata_single);
  if (!result) {
    return Fail(Error::InvalidArgument("malformed XML in " + std::string(name) + ": " + result.description()));
  }
  return doc;
}

std::string_view LocalName(const pugi::xml_node& node) noexcept {
  std::string_view name = node.name();
  const std::size_t colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

std::string_view AttrLocal(const pugi::xml_node& node, std::string_view local) noexcept {
  for (const pugi::xml_attribute attr : node.attributes()) {
    std::string_view name = attr.name();
    const std::size_t colon = name.find(':');
    if (colon != std::string_view::npos) name = name.substr(colon + 1);
    if (name == local) return attr.value();
  }
  return {};
}

std::string_view RelationshipId(const pugi::xml_node& node) noexcept {
  for (const pugi::xml_attribute attr : node.attributes()) {
    const std::string_view name = attr.name();
    const std::size_t colon = name.find(':');
    if (colon != std::string_view::npos && name.substr(colon + 1) == "id") return attr.value();
  }
  return {};
}

pugi::xml_node ChildLocal(const pugi::xml_node& node, std::string_view local) noexcept {
  for (pugi::xml_node child = node.first_child(); child; child = child.next_sibling()) {
    if (child.type() == pugi::node_element && LocalName(child) == local) return child;
  }
  return {};
}

void WalkXml(const pugi::xml_node& root, const std::function<bool(const pugi::xml_node&)>& enter,
             const std::function<void(const pugi::xml_node&)>& leave) {
  pugi::xml_node node = root.first_child();
  while (node) {
    if (enter(node) && node.first_child()) {
      node = node.first_child();
      continue;
    }
    while (node) {
      if (leave) leave(node);
      if (node.next_sibling()) {
        node = node.next_sibling();
        break;
      }
      node = node.parent();
      if (node == root) node = pugi::xml_node();
    }
  }
}

std::string CollectText(const pugi::xml_node& root, std::string_view text_element) {
  std::string out;
  WalkXml(root, [&](const pugi::xml_node& n) {
    if (n.type() != pugi::node_element) return false;
    if (LocalName(n) == text_element) {
      out += n.text().get();
      return false;
    }
    return LocalName(n) != "rPh";  // phonetic guides repeat the text
  });
  return out;
}

std::map<std::string, std::pair<std::string, std::string>> ReadTypedRelationships(ZipPackage& zip,
                                                                                  std::string_view part) {
  std::map<std::string, std::pair<std::string, std::string>> rels;
  const std::size_t slash = part.rfind('/');
  const std::string dir = slash == std::string_view::npos ? "" : std::string(part.substr(0, slash + 1));
  const std::string file = std::string(slash == std::string_view::npos ? part : part.substr(slash + 1));
  auto xml = LoadXml(zip, dir + "_rels/" + file + ".rels");
  if (!xml) return rels;
  for (const pugi::xml_node rel : (*xml)->document_element().children()) {
    if (LocalName(rel) != "Relationship") continue;
    const std::string_view target = rel.attribute("Target").value();
    if (std::string_view(rel.attribute("TargetMode").value()) == "External") continue;
    std::string path = target.starts_with('/') ? NormalisePath(target) : NormalisePath(dir + std::string(target));
    std::string_view type = rel.attribute("Type").value();
    if (const std::size_t s = type.rfind('/'); s != std::string_view::npos) type = type.substr(s + 1);
    rels[rel.attribute("Id").value()] = {std::move(path), std::string(type)};
  }
  return rels;
}

std::map<std::string, std::string> ReadRelationships(ZipPackage& zip, std::string_view part) {
  std::map<std::string, std::string> out;
  for (auto& [id, target] : ReadTypedRelationships(zip, part)) out[id] = std::move(target.first);
  return out;
}

void ReadCoreProperties(ZipPackage& zip, ParsedDocument& doc) {
  auto xml = LoadXml(zip, "docProps/core.xml");
  if (!xml) return;
  for (const pugi::xml_node n : (*xml)->document_element().children()) {
    const std::string_view name = LocalName(n);
    const std::string value = n.text().get();
    if (name == "title") {
      doc.title = value;
    } else if (name == "creator") {
      doc.metadata["author"] = value;
    } else if (name == "subject" || name == "keywords" || name == "description") {
      doc.metadata[std::string(name)] = value;
    } else if (name == "lastModifiedBy") {
      doc.metadata["last_modified_by"] = value;
    } else if (name == "created" || name == "modified") {
      doc.metadata[std::string(name)] = value;
    }
  }
}

}  // namespace modulo::parse
