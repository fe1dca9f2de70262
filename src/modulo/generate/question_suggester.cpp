#include "modulo/generate/question_suggester.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "modulo/generate/query_rewriter.h"

namespace modulo::generate {
namespace {

constexpr std::string_view kSuggestSystem =
    "You suggest questions that users could ask about a document collection. Write exactly {n} different questions "
    "that the passages below answer, each on its own line, each a complete question ending with a question mark. "
    "Ask about the content (facts, definitions, procedures, comparisons), not about the passages themselves. Write "
    "the questions in the language of the passages, and nothing else.";

bool IsCapitalised(std::string_view w) { return !w.empty() && std::isupper(static_cast<unsigned char>(w.front())); }

// Only spaces between two words of one text (no punctuation, no line break).
bool Adjacent(std::string_view a, std::string_view b) {
  for (const char* p = a.data() + a.size(); p < b.data(); ++p) {
    if (*p != ' ') return false;
  }
  return true;
}

bool IsConnector(std::string_view lower) {
  return lower == "of" || lower == "and" || lower == "for" || lower == "the" || lower == "de" || lower == "van" ||
         lower == "von";
}

struct Term {
  std::string surface;
  std::size_t count = 0;
  std::size_t docs = 0;
  std::size_t first = 0;  // order of first appearance
  std::size_t last_doc = static_cast<std::size_t>(-1);
  bool always_capitalised = true;
  bool multiword = false;
};

void Tally(std::unordered_map<std::string, Term>& terms, std::string key, std::string_view surface, std::size_t doc,
           std::size_t position, bool multiword) {
  auto [it, added] = terms.try_emplace(std::move(key));
  Term& t = it->second;
  if (added) {
    t.surface = std::string(surface);
    t.first = position;
    t.multiword = multiword;
  }
  ++t.count;
  if (t.last_doc != doc) {
    ++t.docs;
    t.last_doc = doc;
  }
  t.always_capitalised = t.always_capitalised && IsCapitalised(surface);
}

}  // namespace

QuestionSuggester::QuestionSuggester(LlmProvider* provider, SuggestOptions options)
    : provider_(provider), options_(std::move(options)) {}

std::vector<ChatMessage> QuestionSuggester::Prompt(const std::vector<std::string_view>& passages, std::size_t n) const {
  std::string system(kSuggestSystem);
  system.replace(system.find("{n}"), 3, std::to_string(n));
  std::string user = "Passages:\n";
  std::size_t k = 0;
  for (auto p : passages) {
    if (TrimText(p).empty()) continue;
    if (k == options_.max_passages) break;
    if (k > 0) user += "\n\n";
    user += "[" + std::to_string(++k) + "] " + CutText(TrimText(p), options_.max_passage_chars);
  }
  user += "\n\nQuestions:";
  return {{"system", std::move(system)}, {"user", std::move(user)}};
}

std::vector<std::string> QuestionSuggester::CleanQuestions(std::string_view reply, std::size_t n) const {
  std::vector<std::string> out;
  std::unordered_set<std::string> seen;
  for (auto& line : ReplyLines(reply)) {
    if (out.size() >= n) break;
    if (!line.ends_with('?') || line.size() < options_.min_question_chars || line.size() > options_.max_question_chars) {
      continue;
    }
    if (seen.insert(LowerAscii(line)).second) out.push_back(std::move(line));
  }
  return out;
}

std::vector<std::string> QuestionSuggester::SalientTerms(const std::vector<std::string_view>& passages, std::size_t n) {
  std::unordered_map<std::string, Term> phrases, words;
  std::size_t position = 0;  // of the first word of a passage, counted over all passages
  for (std::size_t d = 0; d < passages.size(); ++d) {
    const auto ws = TextWords(passages[d]);
    for (std::size_t i = 0; i < ws.size();) {
      if (!IsCapitalised(ws[i])) {
        ++i;
        continue;
      }
      // A run of capitalised words, connectors allowed between two of them.
      std::size_t end = i + 1;
      while (end < ws.size() && Adjacent(ws[end - 1], ws[end])) {
        if (IsCapitalised(ws[end])) {
          ++end;
        } else if (end + 1 < ws.size() && IsConnector(LowerAscii(ws[end])) && Adjacent(ws[end], ws[end + 1]) &&
                   IsCapitalised(ws[end + 1])) {
          end += 2;
        } else {
          break;
        }
      }
      std::size_t begin = i;
      i = end;
      while (begin < end && IsFunctionWord(LowerAscii(ws[begin]))) ++begin;  // "The", "What", "In"
      while (end > begin && IsConnector(LowerAscii(ws[end - 1]))) --end;
      if (end - begin < 2 || end - begin > 5) continue;
      const std::string_view text = passages[d];
      const auto from = static_cast<std::size_t>(ws[begin].data() - text.data());
      const auto to = static_cast<std::size_t>(ws[end - 1].data() + ws[end - 1].size() - text.data());
      const std::string_view phrase = text.substr(from, to - from);
      Tally(phrases, LowerAscii(phrase), phrase, d, position + begin, true);
    }
    for (std::size_t k = 0; k < ws.size(); ++k) {
      const std::string_view w = ws[k];
      std::string lower = LowerAscii(w);
      if (lower.size() < 4 || IsFunctionWord(lower) ||
          std::all_of(lower.begin(), lower.end(), [](unsigned char c) { return std::isdigit(c) || c == '.' || c == ','; })) {
        continue;
      }
      Tally(words, std::move(lower), w, d, position + k, false);
    }
    position += ws.size();
  }
  // A multiword term counts double; ties: in more passages, then earlier.
  std::vector<const Term*> ranked;
  for (const auto& [_, t] : phrases) ranked.push_back(&t);
  for (const auto& [_, t] : words) ranked.push_back(&t);
  auto score = [](const Term* t) { return t->count * (t->multiword ? 2 : 1); };
  std::sort(ranked.begin(), ranked.end(), [&](const Term* a, const Term* b) {
    if (score(a) != score(b)) return score(a) > score(b);
    if (a->docs != b->docs) return a->docs > b->docs;
    if (a->multiword != b->multiword) return a->multiword;
    return a->first < b->first;
  });
  std::vector<std::string> out;
  std::unordered_set<std::string> in_phrases;  // words of the multiword terms taken
  for (const Term* t : ranked) {
    if (out.size() >= n) break;
    if (t->multiword) {
      for (auto w : TextWords(t->surface)) in_phrases.insert(LowerAscii(w));
      out.push_back(t->surface);
    } else if (!in_phrases.contains(LowerAscii(t->surface))) {
      out.push_back(t->always_capitalised ? t->surface : LowerAscii(t->surface));
    }
  }
  return out;
}

std::vector<std::string> QuestionSuggester::QuestionsByRules(const std::vector<std::string_view>& passages,
                                                             std::size_t n) {
  std::vector<std::string> out;
  for (const auto& term : SalientTerms(passages, n)) {
    out.push_back(term.find(' ') != std::string::npos ? "What is " + term + "?"
                                                      : "What does the collection say about " + term + "?");
  }
  return out;
}

SuggestResult QuestionSuggester::Suggest(const std::vector<std::string_view>& passages, std::size_t n,
                                         const CancelToken* cancel) const {
  SuggestResult r;
  std::vector<std::string_view> sample;
  for (auto p : passages) {
    if (sample.size() < options_.max_passages && !TrimText(p).empty()) sample.push_back(p);
  }
  if (sample.empty() || n == 0) {
    r.method = "none";
    return r;
  }
  if (provider_ != nullptr) {
    auto gen = GenerateCounted(*provider_, Prompt(sample, n), options_.params, cancel, r.usage);
    if (!gen) {
      r.error = gen.error();
    } else if (r.questions = CleanQuestions(gen->text, n); r.questions.empty()) {
      r.error = Error::Unavailable("no usable question in the model's reply \"" + CutText(TrimText(gen->text), 120) + "\"");
    } else {
      r.method = "llm";
    }
  }
  if (r.questions.size() < n) {
    std::unordered_set<std::string> seen;
    for (const auto& q : r.questions) seen.insert(LowerAscii(q));
    const std::size_t before = r.questions.size();
    for (auto& q : QuestionsByRules(sample, n)) {
      if (r.questions.size() >= n) break;
      if (seen.insert(LowerAscii(q)).second) r.questions.push_back(std::move(q));
    }
    if (r.method.empty()) {
      r.method = "rules";
    } else if (r.questions.size() > before) {
      r.method = "llm+rules";
    }
  }
  return r;
}

}  // namespace modulo::generate
