#include "modulo/search/extractive_answer.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace modulo::search {

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view TrimView(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// The word before position `end` (exclusive), lower-cased ASCII.
std::string WordBefore(std::string_view text, std::size_t end) {
  std::size_t start = end;
  while (start > 0 && !IsSpace(text[start - 1])) --start;
  std::string w(text.substr(start, end - start));
  for (auto& c : w) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return w;
}

bool IsAbbreviation(const std::string& w) {
  static const std::set<std::string> kAbbrev = {"e.g", "i.e", "etc", "vs", "dr", "mr", "mrs", "ms", "prof", "fig",
                                                "al", "no", "approx", "cf", "st", "jr", "sr", "inc", "ltd", "eq"};
  std::string bare = w;
  while (!bare.empty() && (bare.front() == '(' || bare.front() == '"')) bare.erase(bare.begin());
  if (bare.size() == 1 && std::isalpha(static_cast<unsigned char>(bare[0]))) return true;  // initials: "J. Smith"
  return kAbbrev.contains(bare);
}

}  // namespace

std::vector<std::string_view> SplitSentences(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  auto emit = [&](std::size_t end) {
    auto s = TrimView(text.substr(start, end - start));
    if (!s.empty()) out.push_back(s);
    start = end;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n' && (i + 1 < text.size() && text[i + 1] == '\n')) {  // a blank line ends a sentence
      emit(i);
      continue;
    }
    if (c != '.' && c != '!' && c != '?') continue;
    std::size_t j = i + 1;
    while (j < text.size() && (text[j] == '"' || text[j] == '\'' || text[j] == ')')) ++j;  // closing marks
    if (j >= text.size()) break;
    if (!IsSpace(text[j])) continue;  // "3.14", "e.g.," and URLs
    std::size_t k = j;
    while (k < text.size() && IsSpace(text[k])) ++k;
    if (k >= text.size()) break;
    const unsigned char next = static_cast<unsigned char>(text[k]);
    const bool starts = std::isupper(next) || std::isdigit(next) || next == '"' || next == '(' || next >= 0x80;
    if (!starts) continue;
    if (c == '.' && IsAbbreviation(WordBefore(text, i))) continue;
    emit(j);
  }
  emit(text.size());
  return out;
}

ExtractiveAnswer ComposeExtractiveAnswer(const index::Analyzer& analyzer, std::string_view question,
                                         const std::vector<std::string_view>& passages,
                                         const ExtractiveOptions& options) {
  ExtractiveAnswer out;
  const std::size_t n = std::min(passages.size(), options.passages);
  if (n == 0) return out;
  std::vector<std::string> q_terms_list;
  analyzer.Analyze(question.substr(0, 4096), q_terms_list);
  const std::unordered_set<std::string> q_terms(q_terms_list.begin(), q_terms_list.end());

  struct Sentence {
    std::size_t passage;  // 0-based rank
    std::size_t position;
    std::string_view text;
    std::unordered_set<std::string> terms;  // question terms it contains
    double score = 0;
  };
  std::vector<Sentence> sentences;
  std::unordered_map<std::string, int> df;  // question term -> sentences containing it
  for (std::size_t p = 0; p < n; ++p) {
    auto split = SplitSentences(passages[p]);
    for (std::size_t i = 0; i < split.size(); ++i) {
      // Headings and fragments: short, and not ended like a sentence.
      const char last = split[i].back();
      const bool ended = last == '.' || last == '!' || last == '?' || last == '"' || last == ')';
      if (split[i].size() < 12 || (!ended && std::count(split[i].begin(), split[i].end(), ' ') < 6)) continue;
      Sentence s{p, i, split[i], {}, 0};
      std::vector<std::string> terms;
      analyzer.Analyze(split[i], terms);
      for (auto& t : terms) {
        if (q_terms.contains(t)) s.terms.insert(t);
      }
      for (const auto& t : s.terms) ++df[t];
      sentences.push_back(std::move(s));
    }
  }
  const double total = static_cast<double>(std::max<std::size_t>(sentences.size(), 1));
  for (auto& s : sentences) {
    for (const auto& t : s.terms) s.score += std::log(1.0 + total / df[t]);
    if (s.score > 0) s.score *= 1.0 + 0.25 / static_cast<double>(1 + s.passage);  // prefer better passages
  }
  std::vector<const Sentence*> ranked;
  for (const auto& s : sentences) ranked.push_back(&s);
  std::stable_sort(ranked.begin(), ranked.end(), [](const Sentence* a, const Sentence* b) {
    return a->score != b->score ? a->score > b->score : a->passage < b->passage;
  });

  std::vector<const Sentence*> chosen;
  std::size_t chars = 0;
  for (const Sentence* s : ranked) {
    if (chosen.size() >= options.max_sentences) break;
    if (s->score <= 0) break;
    if (!chosen.empty() && chars + s->text.size() > options.max_chars) continue;
    bool repeat = false;
    for (const Sentence* c : chosen) {
      // Same question terms and nearly the same length: overlapping chunks repeat sentences.
      if (c->text == s->text || (c->terms == s->terms && std::abs(static_cast<long>(c->text.size()) -
                                                                  static_cast<long>(s->text.size())) < 8)) {
        repeat = true;
        break;
      }
    }
    if (repeat) continue;
    chosen.push_back(s);
    chars += s->text.size();
  }
  out.matched = !chosen.empty();
  if (chosen.empty()) {
    // Nothing shares a word with the question: offer the best passage's opening, said plainly.
    auto first = SplitSentences(passages[0]);
    std::string lead = first.empty() ? std::string(passages[0].substr(0, options.max_chars))
                                     : std::string(first[0].substr(0, options.max_chars));
    out.text = "No passage answers this directly; the closest one says: " + lead + " [1]";
    out.cited = {1};
    return out;
  }
  std::sort(chosen.begin(), chosen.end(), [](const Sentence* a, const Sentence* b) {
    return a->passage != b->passage ? a->passage < b->passage : a->position < b->position;
  });
  std::set<std::size_t> cited;
  for (const Sentence* s : chosen) {
    if (!out.text.empty()) out.text += ' ';
    out.text.append(s->text);
    out.text += " [" + std::to_string(s->passage + 1) + "]";
    cited.insert(s->passage + 1);
  }
  out.cited.assign(cited.begin(), cited.end());
  return out;
}

}  // namespace modulo::search
