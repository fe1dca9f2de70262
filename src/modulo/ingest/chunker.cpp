#include "modulo/ingest/chunker.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>

namespace modulo::ingest {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Words after which a period does not end a sentence.
bool IsAbbreviation(std::string_view word) {
  static constexpr std::array<std::string_view, 36> kAbbrev = {
      "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "fig", "figs", "no", "al",
      "inc", "ltd", "co", "corp", "cf", "approx", "dept", "est", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
      "sep", "sept", "oct", "nov", "dec"};
  std::string lower;
  for (char c : word) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.size() == 1 && std::isalpha(static_cast<unsigned char>(lower[0]))) return true;  // initials
  return std::find(kAbbrev.begin(), kAbbrev.end(), lower) != kAbbrev.end();
}

struct Unit {
  std::size_t start = 0, end = 0;  // in the document text
  int page = 0;
  std::size_t segment = 0;  // index of its section segment
  int tokens = 0;
};

struct DocText {
  std::string text;
  std::vector<Unit> units;
  std::vector<std::string> segment_paths;
};

std::string JoinPath(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += " > ";
    out += p;
  }
  return out;
}

DocText Build(const parse::ParsedDocument& doc, const TokenSpans& tokens) {
  DocText d;
  std::string current_path;
  bool first = true;
  for (const auto& b : doc.blocks) {
    if (b.text.empty()) continue;
    std::vector<std::string> path = b.section_path;
    if (b.kind == parse::BlockKind::kHeading) path.push_back(b.text);
    std::string joined = JoinPath(path);
    if (first || joined != current_path) {
      d.segment_paths.push_back(joined);
      current_path = joined;
      first = false;
    }
    if (!d.text.empty()) d.text += "\n\n";
    const std::size_t base = d.text.size();
    d.text += b.text;
    for (auto [s, e] : SplitSentences(b.text)) {
      Unit u;
      u.start = base + s;
      u.end = base + e;
      u.page = b.page;
      u.segment = d.segment_paths.size() - 1;
      u.tokens = static_cast<int>(tokens.Count(std::string_view(d.text).substr(u.start, u.end - u.start)));
      if (u.tokens > 0) d.units.push_back(u);
    }
  }
  return d;
}

class Emitter {
 public:
  Emitter(const DocText& d, const TokenSpans& tokens) : d_(d), tokens_(tokens) {}

  int Emit(std::size_t start, std::size_t end, int page, std::size_t segment, std::optional<int> parent,
           bool is_parent) {
    ChunkOut c;
    c.chunk_number = static_cast<int>(out_.size());
    c.text = d_.text.substr(start, end - start);
    c.page = page;
    c.section_path = d_.segment_paths[segment];
    c.char_start = static_cast<std::int64_t>(start);
    c.char_end = static_cast<std::int64_t>(end);
    c.token_count = static_cast<int>(tokens_.Count(c.text));
    c.parent_number = parent;
    c.is_parent = is_parent;
    out_.push_back(std::move(c));
    return out_.back().chunk_number;
  }

  // Token windows over [start, end) of the document text.
  void Windows(std::size_t start, std::size_t end, std::size_t segment, int budget, int overlap,
               const std::vector<Unit>& units, std::optional<int> parent) {
    const std::string_view text = std::string_view(d_.text).substr(start, end - start);
    const auto spans = tokens_.Spans(text);
    if (spans.empty()) return;
    const std::size_t step = static_cast<std::size_t>(std::max(1, budget - std::max(0, overlap)));
    for (std::size_t w = 0; w < spans.size(); w += step) {
      const std::size_t last = std::min(spans.size(), w + static_cast<std::size_t>(budget)) - 1;
      const std::size_t s = start + spans[w].first, e = start + spans[last].second;
      Emit(s, e, PageAt(units, s), segment, parent, false);
      if (last + 1 >= spans.size()) break;
    }
  }

  static int PageAt(const std::vector<Unit>& units, std::size_t pos) {
    int page = units.empty() ? 0 : units.front().page;
    for (const auto& u : units) {
      if (u.start > pos) break;
      page = u.page;
    }
    return page;
  }

  std::vector<ChunkOut> Take() { return std::move(out_); }

 private:
  const DocText& d_;
  const TokenSpans& tokens_;
  std::vector<ChunkOut> out_;
};

// The first non-zero page among units [i, j) (headings may carry no page).
int FirstPage(const std::vector<Unit>& units, std::size_t i, std::size_t j) {
  for (std::size_t k = i; k < j; ++k) {
    if (units[k].page > 0) return units[k].page;
  }
  return units[i].page;
}

// Packs units [first, last) into chunks of at most `budget` tokens with `overlap` tokens of
// trailing units repeated; `breaks[i]` forces a chunk boundary before unit i.
void Pack(const DocText& d, const std::vector<Unit>& units, std::size_t first, std::size_t last, int budget,
          int overlap, const std::vector<bool>* breaks, Emitter& em, std::optional<int> parent) {
  std::size_t i = first;
  while (i < last) {
    const Unit& u0 = units[i];
    if (u0.tokens > budget) {
      // A sentence longer than the budget is cut into token windows.
      em.Windows(u0.start, u0.end, u0.segment, budget, overlap, units, parent);
      ++i;
      continue;
    }
    int tokens = 0;
    std::size_t j = i;
    while (j < last && units[j].segment == u0.segment && tokens + units[j].tokens <= budget &&
           (j == i || breaks == nullptr || !(*breaks)[j])) {
      tokens += units[j].tokens;
      ++j;
    }
    em.Emit(u0.start, units[j - 1].end, FirstPage(units, i, j), u0.segment, parent, false);
    if (j >= last) break;
    // Start the next chunk with the trailing units that fit in the overlap (same section only).
    std::size_t next = j;
    int carried = 0;
    while (overlap > 0 && next - 1 > i && units[next - 1].segment == units[j].segment &&
           carried + units[next - 1].tokens <= overlap && (breaks == nullptr || !(*breaks)[j])) {
      carried += units[next - 1].tokens;
      --next;
    }
    i = next;
  }
  (void)d;
}

double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (std::size_t k = 0; k < std::min(a.size(), b.size()); ++k) s += static_cast<double>(a[k]) * b[k];
  return s;
}

}  // namespace

Result<ChunkingSettings> ChunkingSettings::FromJson(const nlohmann::json& j, int model_max_tokens) {
  ChunkingSettings s;
  if (!j.is_null() && !j.is_object()) return Fail(Error::InvalidArgument("chunking settings must be an object"));
  if (j.is_null()) return FromJson(nlohmann::json::object(), model_max_tokens);
  auto get_int = [&](const char* key, int& out) -> Status {
    if (!j.contains(key)) return {};
    if (!j[key].is_number_integer()) return Fail(Error::InvalidArgument(std::string("'") + key + "' must be an integer"));
    out = j[key].get<int>();
    return {};
  };
  for (const auto& [key, value] : j.items()) {
    if (key != "strategy" && key != "chunk_tokens" && key != "overlap_tokens" && key != "parent_tokens" &&
        key != "semantic_percentile") {
      return Fail(Error::InvalidArgument("unknown chunking setting '" + key + "'"));
    }
    (void)value;
  }
  if (j.contains("strategy")) {
    if (!j["strategy"].is_string()) return Fail(Error::InvalidArgument("'strategy' must be a string"));
    s.strategy = j["strategy"].get<std::string>();
  }
  if (s.strategy != "sentence" && s.strategy != "fixed" && s.strategy != "semantic" && s.strategy != "hierarchical") {
    return Fail(Error::InvalidArgument("unknown chunking strategy '" + s.strategy +
                                       "'; expected sentence, fixed, semantic or hierarchical"));
  }
  if (auto st = get_int("chunk_tokens", s.chunk_tokens); !st) return Fail(st.error());
  if (auto st = get_int("overlap_tokens", s.overlap_tokens); !st) return Fail(st.error());
  if (auto st = get_int("parent_tokens", s.parent_tokens); !st) return Fail(st.error());
  if (j.contains("semantic_percentile")) {
    if (!j["semantic_percentile"].is_number()) {
      return Fail(Error::InvalidArgument("'semantic_percentile' must be a number"));
    }
    s.semantic_percentile = j["semantic_percentile"].get<double>();
  }
  const int max_chunk = model_max_tokens - 2;
  if (!j.contains("chunk_tokens")) s.chunk_tokens = std::min(s.chunk_tokens, max_chunk);
  if (s.chunk_tokens < 16 || s.chunk_tokens > max_chunk) {
    return Fail(Error::InvalidArgument("'chunk_tokens' must be between 16 and " + std::to_string(max_chunk) +
                                       " (the embedding model reads at most " + std::to_string(model_max_tokens) +
                                       " tokens)"));
  }
  // An overlap near the chunk size would multiply the chunks (and their embedding and storage) by
  // up to chunk_tokens; half the chunk at most doubles them.
  if (s.overlap_tokens < 0 || s.overlap_tokens > s.chunk_tokens / 2) {
    return Fail(Error::InvalidArgument("'overlap_tokens' must be between 0 and half of 'chunk_tokens' (" +
                                       std::to_string(s.chunk_tokens / 2) + ")"));
  }
  if (s.parent_tokens < s.chunk_tokens || s.parent_tokens > 100000) {
    return Fail(Error::InvalidArgument("'parent_tokens' must be at least 'chunk_tokens' and at most 100000"));
  }
  if (!(s.semantic_percentile > 0 && s.semantic_percentile < 1)) {
    return Fail(Error::InvalidArgument("'semantic_percentile' must be between 0 and 1"));
  }
  return s;
}

nlohmann::json ChunkingSettings::ToJson() const {
  return {{"strategy", strategy},
          {"chunk_tokens", chunk_tokens},
          {"overlap_tokens", overlap_tokens},
          {"parent_tokens", parent_tokens},
          {"semantic_percentile", semantic_percentile}};
}

std::vector<std::pair<std::size_t, std::size_t>> SplitSentences(std::string_view text) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  auto push = [&](std::size_t s, std::size_t e) {
    while (s < e && IsSpace(text[s])) ++s;
    while (e > s && IsSpace(text[e - 1])) --e;
    if (e > s) out.emplace_back(s, e);
  };
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      // Line breaks inside a block separate list items, table rows and verse: a boundary.
      push(start, i);
      start = i + 1;
      continue;
    }
    // CJK full stops: 。！？ (E3 80 82, EF BC 81, EF BC 9F)
    if (static_cast<unsigned char>(c) == 0xE3 && i + 2 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0x80 &&
        static_cast<unsigned char>(text[i + 2]) == 0x82) {
      push(start, i + 3);
      start = i + 3;
      i += 2;
      continue;
    }
    if (static_cast<unsigned char>(c) == 0xEF && i + 2 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0xBC &&
        (static_cast<unsigned char>(text[i + 2]) == 0x81 || static_cast<unsigned char>(text[i + 2]) == 0x9F)) {
      push(start, i + 3);
      start = i + 3;
      i += 2;
      continue;
    }
    if (c != '.' && c != '!' && c != '?') continue;
    // Include closing quotes and brackets, then require whitespace.
    std::size_t j = i + 1;
    while (j < text.size() && (text[j] == '"' || text[j] == '\'' || text[j] == ')' || text[j] == ']' ||
                               text[j] == '.' || text[j] == '!' || text[j] == '?')) {
      ++j;
    }
    if (j < text.size() && !IsSpace(text[j])) continue;
    if (c == '.') {
      // The word before the period.
      std::size_t w = i;
      while (w > start && !IsSpace(text[w - 1])) --w;
      std::string_view word = text.substr(w, i - w);
      while (!word.empty() && (word.front() == '(' || word.front() == '"' || word.front() == '\'')) word.remove_prefix(1);
      if (IsAbbreviation(word)) continue;
      // A lower-case continuation means the period did not end the sentence.
      std::size_t k = j;
      while (k < text.size() && IsSpace(text[k]) && text[k] != '\n') ++k;
      if (k < text.size() && std::islower(static_cast<unsigned char>(text[k]))) continue;
    }
    push(start, j);
    start = j;
    i = j - 1;
  }
  push(start, text.size());
  return out;
}

Result<std::vector<ChunkOut>> ChunkDocument(const parse::ParsedDocument& doc, const ChunkingSettings& s,
                                            const TokenSpans& tokens, const SentenceEmbedder& embed_sentences) {
  const DocText d = Build(doc, tokens);
  Emitter em(d, tokens);
  const auto& units = d.units;
  // Segments: runs of units with the same section.
  std::vector<std::pair<std::size_t, std::size_t>> segments;
  for (std::size_t i = 0; i < units.size();) {
    std::size_t j = i;
    while (j < units.size() && units[j].segment == units[i].segment) ++j;
    segments.emplace_back(i, j);
    i = j;
  }
  if (s.strategy == "sentence") {
    for (auto [a, b] : segments) Pack(d, units, a, b, s.chunk_tokens, s.overlap_tokens, nullptr, em, std::nullopt);
  } else if (s.strategy == "fixed") {
    for (auto [a, b] : segments) {
      em.Windows(units[a].start, units[b - 1].end, units[a].segment, s.chunk_tokens, s.overlap_tokens, units,
                 std::nullopt);
    }
  } else if (s.strategy == "semantic") {
    if (!embed_sentences) return Fail(Error::Internal("semantic chunking needs a sentence embedder"));
    std::vector<std::string> texts;
    texts.reserve(units.size());
    for (const auto& u : units) texts.push_back(d.text.substr(u.start, u.end - u.start));
    auto vectors = embed_sentences(texts);
    if (!vectors) return Fail(vectors.error());
    if (vectors->size() != units.size()) return Fail(Error::Internal("sentence embedder returned the wrong count"));
    std::vector<double> sims(units.size(), 1.0);
    std::vector<double> sorted;
    for (std::size_t i = 1; i < units.size(); ++i) {
      sims[i] = Dot((*vectors)[i - 1], (*vectors)[i]);
      if (units[i].segment == units[i - 1].segment) sorted.push_back(sims[i]);
    }
    std::sort(sorted.begin(), sorted.end());
    const double threshold =
        sorted.empty() ? -2 : sorted[static_cast<std::size_t>(std::floor(s.semantic_percentile * (sorted.size() - 1)))];
    std::vector<bool> breaks(units.size(), false);
    for (std::size_t i = 1; i < units.size(); ++i) breaks[i] = sims[i] <= threshold;
    for (auto [a, b] : segments) Pack(d, units, a, b, s.chunk_tokens, 0, &breaks, em, std::nullopt);
  } else if (s.strategy == "hierarchical") {
    // Parents first (as context), then the children inside each parent.
    for (auto [a, b] : segments) {
      std::size_t i = a;
      while (i < b) {
        int tokens = 0;
        std::size_t j = i;
        while (j < b && (j == i || tokens + units[j].tokens <= s.parent_tokens)) {
          tokens += units[j].tokens;
          ++j;
        }
        const int parent =
            em.Emit(units[i].start, units[j - 1].end, FirstPage(units, i, j), units[i].segment, std::nullopt, true);
        Pack(d, units, i, j, s.chunk_tokens, s.overlap_tokens, nullptr, em, parent);
        i = j;
      }
    }
  }
  return em.Take();
}

}  // namespace modulo::ingest
