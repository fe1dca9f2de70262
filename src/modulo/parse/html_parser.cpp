// HtmlParser: libxml2's HTML parser, then an iterative walk (parent/next pointers, no recursion)
// that turns the tree into blocks.
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include <array>
#include <limits>
#include <memory>
#include <mutex>

#include "modulo/parse/document_builder.h"
#include "modulo/parse/parsers.h"
#include "modulo/parse/text_decode.h"

namespace modulo::parse {
namespace {

constexpr std::size_t kMaxBlockBytes = 8 * 1024;

struct XmlDocDeleter {
  void operator()(xmlDoc* doc) const noexcept { xmlFreeDoc(doc); }
};
using XmlDocPtr = std::unique_ptr<xmlDoc, XmlDocDeleter>;

// libxml2 must be initialised once, from one thread, before it is used from several.
void InitLibxml() {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
}

std::string_view Name(const xmlNode* node) {
  return node->name != nullptr ? std::string_view(reinterpret_cast<const char*>(node->name)) : std::string_view();
}

template <std::size_t N>
bool OneOf(std::string_view name, const std::array<std::string_view, N>& names) {
  for (const auto n : names) {
    if (n == name) return true;
  }
  return false;
}

constexpr std::array<std::string_view, 11> kSkipped = {"script", "style",  "nav",    "noscript", "template", "head",
                                                       "svg",    "iframe", "object", "embed",    "select"};
constexpr std::array<std::string_view, 27> kBlocks = {
    "p",       "div",        "section", "article", "main", "aside", "header", "footer",   "blockquote",
    "figure",  "figcaption", "address", "dl",      "dt",   "dd",    "form",   "fieldset", "details",
    "summary", "center",     "hr",      "body",    "html", "ul",    "ol",     "menu",     "caption"};

int HeadingLevel(std::string_view name) {
  if (name.size() == 2 && name[0] == 'h' && name[1] >= '1' && name[1] <= '6') return name[1] - '0';
  return 0;
}

std::string Attr(const xmlNode* node, const char* attr) {
  xmlChar* value = xmlGetProp(node, reinterpret_cast<const xmlChar*>(attr));
  if (value == nullptr) return {};
  std::string out(reinterpret_cast<const char*>(value));
  xmlFree(value);
  return out;
}

// Concatenated text of a small subtree (used for <title>), walked iteratively.
std::string SubtreeText(const xmlNode* root) {
  std::string out;
  const xmlNode* node = root->children;
  while (node != nullptr && node != root) {
    if (node->type == XML_TEXT_NODE && node->content != nullptr) out += reinterpret_cast<const char*>(node->content);
    if (node->children != nullptr && node->type == XML_ELEMENT_NODE) {
      node = node->children;
      continue;
    }
    while (node != root && node->next == nullptr) node = node->parent;
    if (node != root) node = node->next;
  }
  return out;
}

class HtmlWalker {
 public:
  HtmlWalker(DocumentBuilder& builder, int max_depth) : b_(builder), max_depth_(max_depth) {}

  void ReadHead(const xmlNode* html) {
    for (const xmlNode* child = html->children; child != nullptr; child = child->next) {
      if (child->type != XML_ELEMENT_NODE || Name(child) != "head") continue;
      for (const xmlNode* n = child->children; n != nullptr; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) continue;
        if (Name(n) == "title" && b_.doc().title.empty()) b_.doc().title = SubtreeText(n);
        if (Name(n) == "meta") {
          const std::string name = AsciiLower(Attr(n, "name"));
          if (name == "author" || name == "description" || name == "keywords") {
            b_.doc().metadata[name] = Attr(n, "content");
          }
        }
      }
    }
  }

  void Walk(xmlNode* root) {
    xmlNode* node = root;
    int depth = 0;
    while (node != nullptr && !b_.full()) {
      if (Enter(node, depth) && node->children != nullptr) {
        node = node->children;
        ++depth;
        continue;
      }
      while (node != nullptr) {
        Leave(node, depth);
        if (node == root) {
          node = nullptr;
        } else if (node->next != nullptr) {
          node = node->next;
          break;
        } else {
          node = node->parent;
          --depth;
        }
      }
    }
    if (heading_level_ != 0) {  // an unclosed heading (tags cut off by a size limit or a table inside)
      b_.AddHeading(heading_level_, CollapseWhitespace(buf_));
      buf_.clear();
      heading_level_ = 0;
    }
    pre_depth_ = 0;
    FlushParagraph();
    if (flattened_) b_.Warn("HTML nested deeper than " + std::to_string(max_depth_) + " levels was flattened");
  }

 private:
  // Returns whether to descend into the node's children.
  bool Enter(const xmlNode* node, int depth) {
    if (node->type == XML_TEXT_NODE || node->type == XML_CDATA_SECTION_NODE) {
      if (node->content != nullptr) Text(reinterpret_cast<const char*>(node->content));
      return false;
    }
    if (node->type != XML_ELEMENT_NODE) return false;
    const std::string_view name = Name(node);
    if (OneOf(name, kSkipped)) return false;
    if (depth > max_depth_) {  // structure this deep is flattened into the enclosing block
      flattened_ = true;
      if (name == "br" || name == "td" || name == "th" || name == "li" || name == "p" || name == "div") Text(" ");
      return true;
    }
    if (name == "br") {
      Target().push_back('\n');
    } else if (table_depth_ > 0) {
      if (name == "table") ++table_depth_;
      if (table_depth_ == 1 && name == "tr") FinishRow();
      if (name == "td" || name == "th" || name == "tr" || name == "li" || name == "p") Text(" ");
    } else if (name == "table") {
      FlushParagraph();
      table_depth_ = 1;
    } else if (int level = HeadingLevel(name); level != 0) {
      FlushParagraph();
      heading_level_ = level;
    } else if (name == "pre") {
      FlushParagraph();
      ++pre_depth_;
    } else if (name == "li") {
      FlushParagraph();
      ++li_depth_;
    } else if (OneOf(name, kBlocks)) {
      FlushParagraph();
    }
    return true;
  }

  void Leave(const xmlNode* node, int depth) {
    if (node->type != XML_ELEMENT_NODE || depth > max_depth_) return;
    const std::string_view name = Name(node);
    if (OneOf(name, kSkipped)) return;
    if (table_depth_ > 0) {
      if (name == "td" || name == "th") {
        if (table_depth_ == 1) FinishCell();
      } else if (name == "tr") {
        if (table_depth_ == 1) FinishRow();
      } else if (name == "table" && --table_depth_ == 0) {
        FinishRow();
        b_.Add(BlockKind::kTable, rows_);
        rows_.clear();
      }
      return;
    }
    if (int level = HeadingLevel(name); level != 0 && heading_level_ != 0) {
      b_.AddHeading(heading_level_, CollapseWhitespace(buf_));
      buf_.clear();
      heading_level_ = 0;
    } else if (name == "pre") {
      if (pre_depth_ == 1) {
        b_.Add(BlockKind::kCode, buf_);
        buf_.clear();
      }
      pre_depth_ = std::max(0, pre_depth_ - 1);
    } else if (name == "li") {
      FlushParagraph();
      li_depth_ = std::max(0, li_depth_ - 1);
    } else if (OneOf(name, kBlocks)) {
      FlushParagraph();
    }
  }

  std::string& Target() { return table_depth_ > 0 ? cell_ : buf_; }

  void Text(std::string_view text) {
    std::string& target = Target();
    if (pre_depth_ > 0 && table_depth_ == 0) {
      target.append(text);
      while (target.size() > kMaxBlockBytes) {  // long code is cut at line ends into several blocks
        const std::size_t cut = target.rfind('\n', kMaxBlockBytes);
        if (cut == std::string::npos || cut == 0) break;
        b_.Add(BlockKind::kCode, std::string_view(target).substr(0, cut));
        target.erase(0, cut + 1);
      }
      return;
    }
    for (const char c : text) target.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
    if (target.size() > kMaxBlockBytes && table_depth_ == 0) {
      heading_level_ = 0;  // that much text is no heading: it becomes paragraphs
      FlushParagraph();
    }
  }

  void FlushParagraph() {
    if (heading_level_ != 0 || pre_depth_ > 0) return;  // those end at their closing tag
    std::string text;
    std::size_t start = 0;
    while (start <= buf_.size()) {  // keep <br> line breaks, collapse the rest
      std::size_t end = buf_.find('\n', start);
      if (end == std::string::npos) end = buf_.size();
      std::string line = CollapseWhitespace(std::string_view(buf_).substr(start, end - start));
      if (!line.empty()) {
        if (!text.empty()) text.push_back('\n');
        text += line;
      }
      start = end + 1;
    }
    buf_.clear();
    b_.Add(li_depth_ > 0 ? BlockKind::kListItem : BlockKind::kParagraph, text);
  }

  void FinishCell() {
    row_.push_back(CollapseWhitespace(cell_));
    cell_.clear();
  }
  void FinishRow() {
    if (!Trim(cell_).empty()) FinishCell();
    cell_.clear();
    bool empty = true;
    for (const auto& c : row_) empty = empty && c.empty();
    if (!empty) {
      if (!rows_.empty()) rows_.push_back('\n');
      for (std::size_t i = 0; i < row_.size(); ++i) {
        if (i > 0) rows_ += " | ";
        rows_ += row_[i];
      }
    }
    row_.clear();
    if (rows_.size() > kMaxBlockBytes) {
      b_.Add(BlockKind::kTable, rows_);
      rows_.clear();
    }
  }

  DocumentBuilder& b_;
  int max_depth_;
  std::string buf_, cell_, rows_;
  std::vector<std::string> row_;
  int heading_level_ = 0, pre_depth_ = 0, li_depth_ = 0, table_depth_ = 0;
  bool flattened_ = false;
};

// The encoding to hand libxml2: nullptr (let it read <meta charset>) when the document declares
// one, else what DecodeText's detection finds.
std::string EncodingHint(std::string_view bytes) {
  const std::string head = AsciiLower(bytes.substr(0, 4096));
  if (head.find("charset") != std::string::npos || head.starts_with("<?xml")) return {};
  std::string encoding = DetectEncoding(bytes);
  return encoding;
}

}  // namespace

Result<ParsedDocument> HtmlParser::Parse(const std::filesystem::path& file, const ParseLimits& limits) const {
  InitLibxml();
  auto bytes = ReadFileLimited(file, limits.max_decompressed_bytes);
  if (!bytes) return Fail(std::move(bytes.error()));
  if (bytes->size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return Fail(Error::PayloadTooLarge("HTML file is too large"));
  }
  const std::string encoding = EncodingHint(*bytes);
  if (encoding.empty() && bytes->find('\0') != std::string::npos && !bytes->starts_with("\xFF\xFE") &&
      !bytes->starts_with("\xFE\xFF")) {
    return Fail(Error::InvalidArgument("file does not look like HTML (binary content)"));
  }
  DocumentBuilder builder("html", limits);
  builder.doc().bytes = FileSizeOrZero(file);
  try {
    constexpr int kOptions = HTML_PARSE_RECOVER | HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                             HTML_PARSE_COMPACT | XML_PARSE_HUGE;
    XmlDocPtr doc(htmlReadMemory(bytes->data(), static_cast<int>(bytes->size()), nullptr,
                                 encoding.empty() ? nullptr : encoding.c_str(), kOptions));
    if (!doc) return Fail(Error::InvalidArgument("HTML could not be parsed"));
    xmlNode* root = xmlDocGetRootElement(doc.get());
    if (root == nullptr) return std::move(builder).Finish();
    HtmlWalker walker(builder, limits.max_html_depth);
    walker.ReadHead(root);
    walker.Walk(root);
  } catch (const std::bad_alloc&) {
    return Fail(Error::PayloadTooLarge("HTML document needs more memory than available"));
  }
  ParsedDocument doc = std::move(builder).Finish();
  if (doc.title.empty()) {
    for (const Block& block : doc.blocks) {
      if (block.kind == BlockKind::kHeading && block.heading_level == 1) {
        doc.title = block.text;
        break;
      }
    }
  }
  return doc;
}

}  // namespace modulo::parse
