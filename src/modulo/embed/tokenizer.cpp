#include "modulo/embed/tokenizer.h"

#include <utf8proc.h>

#include <fstream>

namespace modulo::embed {
namespace {

bool IsAsciiPunct(std::int32_t c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}

// Cc, Cf, Cs, Co and Cn: dropped by text cleaning (tab, CR and LF are whitespace instead).
bool IsControl(utf8proc_category_t cat) {
  return cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_CS ||
         cat == UTF8PROC_CATEGORY_CO || cat == UTF8PROC_CATEGORY_CN;
}

bool IsWhitespace(utf8proc_category_t cat) {
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

bool IsPunct(utf8proc_category_t cat) {
  return cat == UTF8PROC_CATEGORY_PC || cat == UTF8PROC_CATEGORY_PD || cat == UTF8PROC_CATEGORY_PS ||
         cat == UTF8PROC_CATEGORY_PE || cat == UTF8PROC_CATEGORY_PI || cat == UTF8PROC_CATEGORY_PF ||
         cat == UTF8PROC_CATEGORY_PO;
}

// The CJK Unified Ideographs blocks, as BERT defines "Chinese characters".
bool IsChinese(std::int32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

void AppendUtf8(std::string& out, std::int32_t cp) {
  std::uint8_t buf[4];
  const auto n = utf8proc_encode_char(cp, buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
}

}  // namespace

// A normalised word: its UTF-8 bytes, and per character the byte position in `text` and the
// byte range of the original input it came from.
struct WordPieceTokenizer::Word {
  std::string text;
  std::vector<std::uint32_t> pos;    // size chars + 1 once finished
  std::vector<std::uint32_t> begin;  // original byte offsets
  std::vector<std::uint32_t> end;
  void Clear() {
    text.clear();
    pos.clear();
    begin.clear();
    end.clear();
  }
  void Append(std::int32_t cp, std::uint32_t b, std::uint32_t e) {
    pos.push_back(static_cast<std::uint32_t>(text.size()));
    if (cp < 0x80) {
      text.push_back(static_cast<char>(cp));
    } else {
      AppendUtf8(text, cp);
    }
    begin.push_back(b);
    end.push_back(e);
  }
};

Result<WordPieceTokenizer> WordPieceTokenizer::FromVocabFile(const std::string& path, const TokenizerConfig& config) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(Error::NotFound("vocabulary file missing: " + path));
  std::vector<std::string> vocab;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    vocab.push_back(std::move(line));
  }
  auto tok = FromVocab(std::move(vocab), config);
  if (!tok) return Fail(std::move(tok.error()).Wrap(path));
  return tok;
}

Result<WordPieceTokenizer> WordPieceTokenizer::FromVocab(std::vector<std::string> vocab, const TokenizerConfig& config) {
  WordPieceTokenizer t;
  t.config_ = config;
  t.vocab_ = std::move(vocab);
  if (t.vocab_.size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
    return Fail(Error::InvalidArgument("vocabulary too large"));
  }
  for (std::size_t i = 0; i < t.vocab_.size(); ++i) {
    const std::string& s = t.vocab_[i];
    const auto id = static_cast<std::int32_t>(i);
    if (s.size() > 2 && s[0] == '#' && s[1] == '#') {
      t.continuations_.try_emplace(s.substr(2), id);
    }
    t.words_.try_emplace(s, id);  // "##x" may also be looked up as a word starting with "##"
  }
  auto special = [&](const char* name, std::int32_t& out) -> Status {
    auto it = t.words_.find(std::string_view(name));
    if (it == t.words_.end()) return Fail(Error::InvalidArgument(std::string("vocabulary lacks ") + name));
    out = it->second;
    return {};
  };
  for (auto s : {special("[CLS]", t.cls_), special("[SEP]", t.sep_), special("[UNK]", t.unk_), special("[PAD]", t.pad_)}) {
    if (!s) return Fail(std::move(s.error()));
  }
  return t;
}

std::string_view WordPieceTokenizer::IdToToken(std::int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= vocab_.size()) return {};
  return vocab_[static_cast<std::size_t>(id)];
}

void WordPieceTokenizer::WordPiece(const Word& w, std::vector<Token>& out) const {
  const std::size_t n = w.begin.size();
  if (n == 0) return;
  if (n > static_cast<std::size_t>(config_.max_input_chars_per_word)) {
    out.push_back({unk_, w.begin.front(), w.end.back()});
    return;
  }
  const std::size_t mark = out.size();
  std::size_t start = 0;
  while (start < n) {
    std::size_t end = n;
    std::int32_t id = -1;
    const Map& map = start == 0 ? words_ : continuations_;
    for (; end > start; --end) {
      const std::string_view piece(w.text.data() + w.pos[start], w.pos[end] - w.pos[start]);
      if (auto it = map.find(piece); it != map.end()) {
        id = it->second;
        break;
      }
    }
    if (id < 0) {  // the word cannot be covered: it becomes a single [UNK]
      out.resize(mark);
      out.push_back({unk_, w.begin.front(), w.end.back()});
      return;
    }
    out.push_back({id, w.begin[start], w.end[end - 1]});
    start = end;
  }
}

template <typename Sink>
void WordPieceTokenizer::Run(std::string_view text, Sink&& sink) const {
  const auto* s = reinterpret_cast<const std::uint8_t*>(text.data());
  const std::size_t n = text.size();
  Word word;
  std::vector<Token> pieces;
  bool go = true;
  auto flush = [&] {
    if (word.begin.empty()) return;
    word.pos.push_back(static_cast<std::uint32_t>(word.text.size()));
    pieces.clear();
    WordPiece(word, pieces);
    for (const Token& t : pieces) {
      if (!sink(t)) {
        go = false;
        break;
      }
    }
    word.Clear();
  };
  std::size_t i = 0;
  while (i < n && go) {
    const auto b = static_cast<std::uint32_t>(i);
    std::int32_t cp;
    if (s[i] < 0x80) {
      cp = s[i];
      ++i;
      const auto e = static_cast<std::uint32_t>(i);
      if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') {
        flush();
      } else if (cp < 0x20 || cp == 0x7f) {
        // control character: dropped
      } else if (IsAsciiPunct(cp)) {
        flush();
        if (!go) break;
        word.Append(cp, b, e);
        flush();
      } else {
        if (config_.lowercase && cp >= 'A' && cp <= 'Z') cp += 'a' - 'A';
        word.Append(cp, b, e);
      }
      continue;
    }
    const auto len = utf8proc_iterate(s + i, static_cast<utf8proc_ssize_t>(n - i), &cp);
    if (len <= 0) {  // invalid UTF-8: one byte becomes U+FFFD, which cleaning drops
      ++i;
      continue;
    }
    i += static_cast<std::size_t>(len);
    const auto e = static_cast<std::uint32_t>(i);
    const auto cat = utf8proc_category(cp);
    if (cp == 0xFFFD || IsControl(cat)) continue;
    if (IsWhitespace(cat)) {
      flush();
      continue;
    }
    if (config_.tokenize_chinese_chars && IsChinese(cp)) {
      flush();
      if (!go) break;
      word.Append(cp, b, e);
      flush();
      continue;
    }
    std::int32_t buf[32];
    utf8proc_ssize_t count = 1;
    buf[0] = cp;
    if (config_.strip_accents) {
      int boundclass = 0;
      count = utf8proc_decompose_char(cp, buf, 32, UTF8PROC_DECOMPOSE, &boundclass);
      if (count < 0 || count > 32) {
        buf[0] = cp;
        count = 1;
      }
    }
    for (utf8proc_ssize_t k = 0; k < count && go; ++k) {
      std::int32_t c = buf[k];
      const auto ccat = c == cp ? cat : utf8proc_category(c);
      if (config_.strip_accents && ccat == UTF8PROC_CATEGORY_MN) continue;
      if (config_.lowercase) c = utf8proc_tolower(c);
      if (IsWhitespace(ccat)) {
        flush();
      } else if (IsPunct(ccat) || (c < 0x80 && IsAsciiPunct(c))) {
        flush();
        if (!go) break;
        word.Append(c, b, e);
        flush();
      } else {
        word.Append(c, b, e);
      }
    }
  }
  if (go) flush();
}

std::vector<Token> WordPieceTokenizer::Tokenize(std::string_view text, std::size_t limit) const {
  std::vector<Token> out;
  if (limit == 0) return out;
  Run(text, [&](const Token& t) {
    out.push_back(t);
    return out.size() < limit;
  });
  return out;
}

std::size_t WordPieceTokenizer::CountTokens(std::string_view text, std::size_t limit) const {
  std::size_t count = 0;
  if (limit == 0) return 0;
  Run(text, [&](const Token&) { return ++count < limit; });
  return count;
}

std::vector<std::int32_t> WordPieceTokenizer::Encode(std::string_view text, std::size_t max_length) const {
  std::vector<std::int32_t> ids;
  ids.push_back(cls_);
  const std::size_t limit = max_length > 2 ? max_length - 2 : 0;
  if (limit > 0) {
    Run(text, [&](const Token& t) {
      ids.push_back(t.id);
      return ids.size() - 1 < limit;
    });
  }
  ids.push_back(sep_);
  return ids;
}

}  // namespace modulo::embed
