// CsvParser and JsonParser.
#include <nlohmann/json.hpp>

#include "modulo/parse/document_builder.h"
#include "modulo/parse/parsers.h"
#include "modulo/parse/text_decode.h"

namespace modulo::parse {
namespace {

constexpr std::size_t kMaxBlockBytes = 8 * 1024;  // rows/lines are packed into blocks up to about this size

// The delimiter that occurs most often (outside quotes) in the first record.
char DetectDelimiter(std::string_view text) {
  std::size_t comma = 0, semicolon = 0, tab = 0;
  bool quoted = false;
  for (const char c : text.substr(0, 64 * 1024)) {
    if (c == '"') quoted = !quoted;
    if (quoted) continue;
    if (c == '\n' || c == '\r') break;
    comma += c == ',';
    semicolon += c == ';';
    tab += c == '\t';
  }
  if (tab > comma && tab >= semicolon) return '\t';
  if (semicolon > comma) return ';';
  return ',';
}

// Flattens JSON into "path: value" lines while parsing (SAX): no DOM is built, and frames deeper
// than max_depth are not added to the path, so any nesting depth costs bounded memory per line.
class FlattenSax final : public nlohmann::json_sax<nlohmann::json> {
 public:
  FlattenSax(DocumentBuilder& builder, int max_depth) : b_(builder), max_depth_(max_depth) {}

  bool null() override { return Value("null"); }
  bool boolean(bool v) override { return Value(v ? "true" : "false"); }
  bool number_integer(number_integer_t v) override { return Value(std::to_string(v)); }
  bool number_unsigned(number_unsigned_t v) override { return Value(std::to_string(v)); }
  bool number_float(number_float_t v, const string_t& s) override {
    return Value(s.empty() ? nlohmann::json(v).dump() : s);
  }
  bool string(string_t& v) override { return Value(v); }
  bool binary(binary_t&) override { return Value("<binary>"); }
  bool start_object(std::size_t) override { return Push(false); }
  bool key(string_t& k) override {
    if (!frames_.empty()) frames_.back().key = k;
    return true;
  }
  bool end_object() override { return Pop(); }
  bool start_array(std::size_t) override { return Push(true); }
  bool end_array() override { return Pop(); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) override {
    error_ = "invalid JSON at byte " + std::to_string(position) + ": " + ex.what();
    return false;
  }

  void Finish() { FlushBlock(); }
  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] bool flattened() const { return flattened_; }

 private:
  struct Frame {
    bool array = false;
    std::size_t index = 0;
    std::string key;
  };

  std::string Path() const {
    std::string path;
    const std::size_t shown = std::min(frames_.size(), static_cast<std::size_t>(std::max(max_depth_, 1)));
    for (std::size_t i = 0; i < shown; ++i) {
      const Frame& f = frames_[i];
      if (f.array) {
        path += "[" + std::to_string(f.index) + "]";
      } else {
        if (!path.empty()) path.push_back('.');
        path += f.key;
      }
    }
    return path;
  }
  bool Value(const std::string& v) {
    if (b_.full()) return false;
    std::string path = Path();
    std::string line = path.empty() ? v : path + ": " + v;
    if (block_.size() + line.size() > kMaxBlockBytes) FlushBlock();
    if (!block_.empty()) block_.push_back('\n');
    block_ += line;
    Advance();
    return true;
  }
  bool Push(bool array) {
    frames_.push_back(Frame{array, 0, {}});
    if (static_cast<int>(frames_.size()) > max_depth_) flattened_ = true;
    return !b_.full();
  }
  bool Pop() {
    if (!frames_.empty()) frames_.pop_back();
    Advance();
    return !b_.full();
  }
  void Advance() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
  }
  void FlushBlock() {
    b_.Add(BlockKind::kParagraph, block_);
    block_.clear();
  }

  DocumentBuilder& b_;
  int max_depth_;
  std::vector<Frame> frames_;
  std::string block_, error_;
  bool flattened_ = false;
};

}  // namespace

Result<ParsedDocument> CsvParser::Parse(const std::filesystem::path& file, const ParseLimits& limits) const {
  auto bytes = ReadFileLimited(file, limits.max_decompressed_bytes);
  if (!bytes) return Fail(std::move(bytes.error()));
  auto decoded = DecodeText(*bytes);
  if (!decoded) return Fail(std::move(decoded.error()));
  bytes->clear();
  DocumentBuilder builder("csv", limits);
  builder.doc().bytes = FileSizeOrZero(file);
  builder.doc().metadata["encoding"] = decoded->encoding;
  if (decoded->replaced) builder.Warn("some bytes were not valid " + decoded->encoding + " and were replaced");

  const std::string_view text = decoded->text;
  const char delimiter = DetectDelimiter(text);
  RowPacker packer(builder, BlockKind::kTable, 0);
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false, field_started = false, unbalanced = false;
  std::size_t records = 0;
  auto end_field = [&] {
    fields.push_back(CollapseWhitespace(field));
    field.clear();
    field_started = false;
  };
  auto end_record = [&] {
    end_field();
    bool empty = true;
    for (const auto& f : fields) empty = empty && f.empty();
    if (!empty) {
      std::string line;
      for (std::size_t i = 0; i < fields.size(); ++i) {
        if (i > 0) line += " | ";
        line += fields[i];
      }
      packer.Row(std::move(line));
      ++records;
    }
    fields.clear();
  };
  for (std::size_t i = 0; i < text.size() && !builder.full(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          quoted = false;
        }
      } else {
        field.push_back(c);
      }
    } else if (c == '"' && !field_started) {
      quoted = true;
      field_started = true;
    } else if (c == delimiter) {
      end_field();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_record();
    } else {
      field.push_back(c);
      field_started = true;
    }
  }
  unbalanced = quoted;
  if (!field.empty() || !fields.empty()) end_record();
  packer.Flush();
  if (unbalanced) builder.Warn("unterminated quoted field at the end of the file");
  builder.doc().metadata["rows"] = std::to_string(records);
  return std::move(builder).Finish();
}

Result<ParsedDocument> JsonParser::Parse(const std::filesystem::path& file, const ParseLimits& limits) const {
  auto bytes = ReadFileLimited(file, limits.max_decompressed_bytes);
  if (!bytes) return Fail(std::move(bytes.error()));
  auto decoded = DecodeText(*bytes);
  if (!decoded) return Fail(std::move(decoded.error()));
  bytes->clear();
  DocumentBuilder builder("json", limits);
  builder.doc().bytes = FileSizeOrZero(file);
  FlattenSax sax(builder, limits.max_html_depth);
  bool ok = false;
  try {
    ok = nlohmann::json::sax_parse(decoded->text, &sax, nlohmann::json::input_format_t::json, true, true);
  } catch (const std::exception& e) {
    return Fail(Error::InvalidArgument(std::string("invalid JSON: ") + e.what()));
  }
  if (!ok && !sax.error().empty()) return Fail(Error::InvalidArgument(sax.error()));
  sax.Finish();
  if (sax.flattened()) {
    builder.Warn("JSON nested deeper than " + std::to_string(limits.max_html_depth) + " levels was flattened");
  }
  return std::move(builder).Finish();
}

}  // namespace modulo::parse
