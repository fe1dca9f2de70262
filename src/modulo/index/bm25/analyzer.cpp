#include "modulo/index/bm25/analyzer.h"

#include <libstemmer.h>
#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

namespace modulo::index {
namespace {

constexpr std::array<std::string_view, 33> kEnglishStopWords = {
    "a",   "an",    "and",  "are",   "as",    "at",   "be",   "but", "by",  "for",  "if",
    "in",  "into",  "is",   "it",    "no",    "not",  "of",   "on",  "or",  "such", "that",
    "the", "their", "then", "there", "these", "they", "this", "to",  "was", "will", "with"};

// ---- stemmers: libstemmer objects are not thread-safe, so one per thread and algorithm ----

class ThreadStemmers {
 public:
  ~ThreadStemmers() {
    for (auto& [name, stemmer] : slots_) {
      if (stemmer != nullptr) sb_stemmer_delete(stemmer);
    }
  }
  sb_stemmer* Get(const std::string& name) {
    for (auto& [n, s] : slots_) {
      if (n == name) return s;
    }
    sb_stemmer* s = sb_stemmer_new(name.c_str(), "UTF_8");  // nullptr when unknown
    slots_.emplace_back(name, s);
    return s;
  }

 private:
  std::vector<std::pair<std::string, sb_stemmer*>> slots_;
};

sb_stemmer* StemmerForThisThread(const std::string& name) {
  thread_local ThreadStemmers stemmers;
  return stemmers.Get(name);
}

// ---- character classes ----

enum class Cls : std::uint8_t { kSeparator, kLetter, kDigit, kMark, kCjk };

bool IsCjk(std::int32_t c) {
  if (c == 0x3099 || c == 0x309A) return false;  // combining (semi-)voiced sound marks
  return (c >= 0x3040 && c <= 0x30FF) ||         // Hiragana, Katakana
         (c >= 0x31F0 && c <= 0x31FF) ||         // Katakana phonetic extensions
         (c >= 0x3400 && c <= 0x4DBF) ||         // CJK extension A
         (c >= 0x4E00 && c <= 0x9FFF) ||         // CJK unified ideographs
         (c >= 0xF900 && c <= 0xFAFF) ||         // CJK compatibility ideographs
         (c >= 0x20000 && c <= 0x323AF) ||       // CJK extensions B..H
         c == 0x3005 || c == 0x3007;             // 々 〇
}

Cls Classify(std::int32_t c) {
  if (c < 0x80) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return Cls::kLetter;
    if (c >= '0' && c <= '9') return Cls::kDigit;
    return Cls::kSeparator;
  }
  if (IsCjk(c)) return Cls::kCjk;
  switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return Cls::kLetter;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return Cls::kDigit;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME: return Cls::kMark;
    default: return Cls::kSeparator;
  }
}

bool IsDecimalDigit(std::int32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return utf8proc_category(c) == UTF8PROC_CATEGORY_ND;
}

bool IsWordLetter(std::int32_t c) {
  return Classify(c) == Cls::kLetter;
}

bool IsApostrophe(std::int32_t c) {
  return c == '\'' || c == 0x2019 || c == 0x02BC;
}

// Scripts whose diacritics are folded away: Latin, Greek, Cyrillic (and their extensions).
bool FoldsMarks(std::int32_t base) {
  return base < 0x0530 || (base >= 0x1D00 && base <= 0x1FFF) || (base >= 0x2C60 && base <= 0x2C7F) ||
         (base >= 0xA720 && base <= 0xA7FF) || (base >= 0xAB30 && base <= 0xAB6F);
}

// Decodes and normalises `text` into code points: invalid bytes and zero-width spaces become
// spaces; everything is case folded and NFKD-decomposed; marks after folding scripts dropped.
void Normalise(std::string_view text, std::vector<std::int32_t>& out) {
  out.clear();
  out.reserve(text.size());
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  std::size_t left = text.size();
  std::int32_t last_base = ' ';
  std::array<utf8proc_int32_t, 32> buf{};
  while (left > 0) {
    const auto byte = static_cast<std::int32_t>(*p);
    if (byte < 0x80) {  // ASCII fast path
      const std::int32_t c = (byte >= 'A' && byte <= 'Z') ? byte + ('a' - 'A') : byte;
      out.push_back(c);
      last_base = c;
      ++p;
      --left;
      continue;
    }
    utf8proc_int32_t cp = -1;
    const auto n = utf8proc_iterate(p, static_cast<utf8proc_ssize_t>(std::min<std::size_t>(left, 4)), &cp);
    if (n <= 0 || cp < 0) {
      out.push_back(' ');
      last_base = ' ';
      ++p;
      --left;
      continue;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
    if (cp == 0x200B || cp == 0xFEFF) {  // zero-width space / BOM: separators
      out.push_back(' ');
      last_base = ' ';
      continue;
    }
    int boundclass = 0;
    const auto m = utf8proc_decompose_char(
        cp, buf.data(), static_cast<utf8proc_ssize_t>(buf.size()),
        static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE),
        &boundclass);
    if (m < 0 || m > static_cast<utf8proc_ssize_t>(buf.size())) {
      out.push_back(' ');
      last_base = ' ';
      continue;
    }
    for (utf8proc_ssize_t i = 0; i < m; ++i) {
      const std::int32_t d = buf[static_cast<std::size_t>(i)];
      if (Classify(d) == Cls::kMark) {
        if (FoldsMarks(last_base)) continue;  // "e" + U+0301 -> "e"
        out.push_back(d);
        continue;
      }
      out.push_back(d);
      last_base = d;
    }
  }
}

void AppendUtf8(std::int32_t c, std::string& out) {
  std::array<utf8proc_uint8_t, 4> b{};
  const auto n = utf8proc_encode_char(c, b.data());
  out.append(reinterpret_cast<const char*>(b.data()), static_cast<std::size_t>(n));
}

class Emitter {
 public:
  Emitter(const AnalyzerOptions& options, std::vector<std::string>& out) : options_(options), out_(out) {}

  // A word token: code points of a letter/digit run (apostrophes included as '\'').
  void Word(std::vector<std::int32_t>& cps) {
    if (cps.size() > options_.max_token_chars) return;
    // Possessive "'s", then the remaining apostrophes.
    if (cps.size() >= 2 && cps[cps.size() - 1] == 's' && cps[cps.size() - 2] == '\'') cps.resize(cps.size() - 2);
    std::erase(cps, static_cast<std::int32_t>('\''));
    if (cps.empty()) return;
    Finish(cps);
  }

  // CJK characters (each a base plus its marks), emitted as one term.
  void Cjk(std::vector<std::int32_t>& cps) { Finish(cps); }

 private:
  void Finish(std::vector<std::int32_t>& cps) {
    bool ascii = true;
    bool has_letter = false;
    for (const auto c : cps) {
      if (c >= 0x80) ascii = false;
      if ((c >= 'a' && c <= 'z')) has_letter = true;
    }
    term_.clear();
    if (ascii) {
      for (const auto c : cps) term_.push_back(static_cast<char>(c));
    } else {
      // Recompose (NFC) so that e.g. Hangul jamo become syllables again.
      const auto n = utf8proc_normalize_utf32(cps.data(), static_cast<utf8proc_ssize_t>(cps.size()),
                                              static_cast<utf8proc_option_t>(UTF8PROC_COMPOSE | UTF8PROC_STABLE));
      const std::size_t len = n >= 0 ? static_cast<std::size_t>(n) : cps.size();
      for (std::size_t i = 0; i < len; ++i) AppendUtf8(cps[i], term_);
    }
    if (options_.remove_stop_words && ascii && IsEnglishStopWord(term_)) return;
    if (ascii && has_letter && !options_.stemmer.empty()) {
      if (sb_stemmer* s = StemmerForThisThread(options_.stemmer); s != nullptr) {
        const sb_symbol* stem =
            sb_stemmer_stem(s, reinterpret_cast<const sb_symbol*>(term_.data()), static_cast<int>(term_.size()));
        if (stem != nullptr) {
          const int len = sb_stemmer_length(s);
          if (len > 0) {
            out_.emplace_back(reinterpret_cast<const char*>(stem), static_cast<std::size_t>(len));
            return;
          }
        }
      }
    }
    out_.push_back(term_);
  }

  const AnalyzerOptions& options_;
  std::vector<std::string>& out_;
  std::string term_;
};

}  // namespace

Analyzer::Analyzer(AnalyzerOptions options) : options_(std::move(options)) {}

std::vector<std::string> Analyzer::Analyze(std::string_view text) const {
  std::vector<std::string> out;
  Analyze(text, out);
  return out;
}

void Analyzer::Analyze(std::string_view text, std::vector<std::string>& out) const {
  thread_local std::vector<std::int32_t> norm;
  thread_local std::vector<std::int32_t> token;
  thread_local std::vector<std::pair<std::size_t, std::size_t>> units;  // CJK characters in norm
  Normalise(text, norm);
  Emitter emit(options_, out);

  const std::size_t n = norm.size();
  std::size_t i = 0;
  while (i < n) {
    const Cls cls = Classify(norm[i]);
    if (cls == Cls::kCjk) {
      units.clear();
      std::size_t j = i;
      while (j < n && Classify(norm[j]) == Cls::kCjk) {
        const std::size_t start = j++;
        while (j < n && Classify(norm[j]) == Cls::kMark) ++j;  // e.g. the dakuten of "が"
        units.emplace_back(start, j);
      }
      auto put = [&](std::size_t from, std::size_t count) {
        token.clear();
        for (std::size_t u = from; u < from + count; ++u) {
          token.insert(token.end(), norm.begin() + static_cast<std::ptrdiff_t>(units[u].first),
                       norm.begin() + static_cast<std::ptrdiff_t>(units[u].second));
        }
        emit.Cjk(token);
      };
      if (units.size() == 1) {
        put(0, 1);
      } else {
        for (std::size_t u = 0; u < units.size(); ++u) {
          if (options_.cjk_unigrams) put(u, 1);
          if (u + 1 < units.size()) put(u, 2);
        }
      }
      i = j;
      continue;
    }
    if (cls != Cls::kLetter && cls != Cls::kDigit) {
      ++i;  // separator, or a mark with nothing to attach to
      continue;
    }
    token.clear();
    std::size_t j = i;
    while (j < n) {
      const std::int32_t c = norm[j];
      const Cls cl = Classify(c);
      if (cl == Cls::kLetter || cl == Cls::kDigit || cl == Cls::kMark) {
        token.push_back(c);
        ++j;
        continue;
      }
      if ((c == '.' || c == ',') && IsDecimalDigit(token.back()) && j + 1 < n && IsDecimalDigit(norm[j + 1])) {
        token.push_back(c);
        ++j;
        continue;
      }
      if (IsApostrophe(c) && IsWordLetter(token.back()) && j + 1 < n && IsWordLetter(norm[j + 1])) {
        token.push_back('\'');
        ++j;
        continue;
      }
      break;
    }
    emit.Word(token);
    i = j;
  }
}

std::span<const std::string_view> EnglishStopWords() noexcept {
  return kEnglishStopWords;
}

bool IsEnglishStopWord(std::string_view folded_term) noexcept {
  if (folded_term.size() > 5) return false;
  return std::find(kEnglishStopWords.begin(), kEnglishStopWords.end(), folded_term) != kEnglishStopWords.end();
}

bool IsKnownStemmer(std::string_view name) {
  if (name.empty()) return true;
  sb_stemmer* s = sb_stemmer_new(std::string(name).c_str(), "UTF_8");
  if (s == nullptr) return false;
  sb_stemmer_delete(s);
  return true;
}

}  // namespace modulo::index
