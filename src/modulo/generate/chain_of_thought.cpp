#include "modulo/generate/chain_of_thought.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

#include "modulo/generate/answer_service.h"
#include "modulo/generate/query_rewriter.h"
#include "modulo/search/extractive_answer.h"

namespace modulo::generate {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

constexpr std::string_view kDecomposeSystem =
    "You break a complex question into simpler sub-questions that can each be answered by searching a document "
    "collection. Give 2 to {max} sub-questions in the order they should be answered; together their answers must "
    "answer the question. When a sub-question needs the answer of an earlier one, list the earlier numbers in "
    "depends_on. Reply with a JSON array only, for example: [{\"question\": \"What is X?\", \"depends_on\": []}, "
    "{\"question\": \"How does X affect Y?\", \"depends_on\": [1]}]";

constexpr std::string_view kStepSystem =
    "You answer one step of a larger question using only the numbered passages provided and the findings of "
    "earlier steps. Answer in one to three sentences. Cite the passages you use with their numbers in square "
    "brackets, e.g. [2], right after the statement they support; cite only the numbers given. If the passages do "
    "not contain the answer, say so briefly.";

constexpr std::string_view kSynthesisSystem =
    "You write the final answer to a question from the findings of the steps that investigated it. Use only those "
    "findings. Keep their [n] citations right after the statements they support and cite no other numbers. If the "
    "findings do not answer the question, say what is missing. Answer in the language of the question.";

const json& Member(const json& obj, const char* key) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

double ScoreOf(const json& result) {
  const json& s = Member(result, "score");
  return s.is_number() ? s.get<double>() : 0.0;
}

std::string_view TextOf(const json& result) {
  const json& t = Member(Member(result, "chunk"), "text");
  return t.is_string() ? std::string_view(t.get_ref<const std::string&>()) : std::string_view();
}

// The identity of a result for merging: its chunk_id, else its text.
std::string KeyOf(const json& result) {
  const json& chunk = Member(result, "chunk");
  const json& id = Member(chunk, "chunk_id");
  if (id.is_string()) return "id:" + id.get<std::string>();
  if (!id.is_null()) return "id:" + id.dump();
  return "text:" + std::string(TextOf(result));
}

json Attribution(const json& result, std::size_t n, double score) {
  const json& chunk = Member(result, "chunk");
  const json& meta = Member(chunk, "metadata");
  return {{"n", n},
          {"chunk_id", Member(chunk, "chunk_id")},
          {"document_id", Member(chunk, "document_id")},
          {"source", Member(meta, "source")},
          {"page_number", Member(meta, "page_number")},
          {"score", score}};
}

json ErrorEntry(std::string_view stage, std::size_t step, const Error& e) {
  json entry = {{"stage", stage}, {"code", ErrorCodeName(e.code())}, {"message", e.message()}};
  if (step > 0) entry["step"] = step;
  return entry;
}

bool SaysNotAnswered(std::string_view answer) {
  const std::string lower = LowerAscii(answer);
  for (std::string_view p : {"do not know", "don't know", "does not contain", "do not contain", "doesn't contain",
                             "don't contain", "no information", "not mentioned", "cannot be determined",
                             "not provided", "do not answer", "does not answer", "not specified", "unable to"}) {
    if (lower.find(p) != std::string::npos) return true;
  }
  return false;
}

// ---- The rule-based decomposition ----------------------------------------------------------

bool IsQuestionWord(std::string_view lower) {
  static const std::unordered_set<std::string_view> kWords = {
      "how", "what", "why", "when", "where", "which", "who", "whom", "whose", "does", "do", "did",
      "is", "are", "was", "were", "can", "could", "should", "will", "would", "has", "have"};
  return kWords.contains(lower);
}

// A sub-question out of a piece of text: trimmed, leading "and"/"also"/"then" and trailing
// punctuation removed, capitalised, ending in '?' when it asks (it did, or it starts with a question
// word). Empty when fewer than two words are left.
std::string AsQuestion(std::string_view piece) {
  std::string_view s = TrimText(piece);
  for (bool again = true; again;) {
    again = false;
    const std::string lower = LowerAscii(s.substr(0, 6));
    for (std::string_view lead : {"and ", "also ", "then ", "but "}) {
      if (lower.starts_with(lead)) {
        s = TrimText(s.substr(lead.size()));
        again = true;
      }
    }
  }
  const bool asked = s.ends_with('?');
  while (!s.empty() && std::string_view("?.!,;: ").find(s.back()) != std::string_view::npos) s.remove_suffix(1);
  const auto words = TextWords(s);
  if (words.size() < 2) return {};
  std::string q(s);
  q[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(q[0])));
  if (asked || IsQuestionWord(LowerAscii(words.front()))) q += '?';
  return q;
}

// The two things compared ("compare A and B", "difference between A and B", "A vs B"), if any.
std::optional<std::pair<std::string, std::string>> ComparedPair(std::string_view q) {
  const std::string lower = LowerAscii(q);
  auto cut_right = [&](std::size_t from, std::size_t to) {  // B ends at punctuation or a qualifier
    std::size_t end = to;
    for (std::string_view stop : {"?", ",", ";", ".", " in terms of ", " in ", " for ", " when ", " regarding ",
                                  " with respect to ", " and how ", " and why ", " and what "}) {
      if (auto at = lower.find(stop, from); at != std::string::npos && at < end) end = at;
    }
    return std::string(TrimText(q.substr(from, end - from)));
  };
  for (std::string_view lead : {"differences between ", "difference between ", "comparison of ", "comparison between ",
                                "comparing ", "compare "}) {
    const auto at = lower.find(lead);
    if (at == std::string::npos) continue;
    const std::size_t from = at + lead.size();
    for (std::string_view sep : {" and ", " with ", " to ", " vs. ", " vs ", " versus "}) {
      const auto mid = lower.find(sep, from);
      if (mid == std::string::npos) continue;
      std::string a(TrimText(q.substr(from, mid - from)));
      std::string b = cut_right(mid + sep.size(), q.size());
      if (!a.empty() && !b.empty()) return std::pair{std::move(a), std::move(b)};
    }
  }
  for (std::string_view sep : {" vs. ", " vs ", " versus "}) {
    const auto mid = lower.find(sep);
    if (mid == std::string::npos) continue;
    // A: the content words right before the separator (at most four).
    const std::string_view left = q.substr(0, mid);
    const auto words = TextWords(left);
    std::size_t first = words.size();
    while (first > 0 && words.size() - first < 4 && !IsFunctionWord(LowerAscii(words[first - 1]))) --first;
    if (first == words.size()) continue;
    std::string a(TrimText(left.substr(static_cast<std::size_t>(words[first].data() - left.data()))));
    // B: the content words right after it (at most four).
    const std::size_t from = mid + sep.size();
    const std::string_view right = q.substr(from);
    std::size_t end = 0, taken = 0;
    for (auto w : TextWords(right)) {
      const auto start = static_cast<std::size_t>(w.data() - right.data());
      if (taken == 4 || IsFunctionWord(LowerAscii(w)) || right.substr(end, start - end).find_first_of(",;?:") !=
                                                             std::string_view::npos) {
        break;
      }
      end = start + w.size();
      ++taken;
    }
    std::string b(TrimText(right.substr(0, end)));
    if (!a.empty() && !b.empty()) return std::pair{std::move(a), std::move(b)};
  }
  return std::nullopt;
}

// Splits every piece after each `sep` (kept on the left when `keep_sep`).
std::vector<std::string> SplitAt(const std::vector<std::string>& pieces, char sep, bool keep_sep) {
  std::vector<std::string> out;
  for (const auto& p : pieces) {
    std::size_t start = 0;
    for (std::size_t at = p.find(sep); at != std::string::npos; at = p.find(sep, start)) {
      out.push_back(p.substr(start, at - start + (keep_sep ? 1 : 0)));
      start = at + 1;
    }
    if (!TrimText(std::string_view(p).substr(start)).empty()) out.push_back(p.substr(start));
  }
  return out;
}

// Splits at " and " followed by a question word ("What is X and how does it work?").
std::vector<std::string> SplitAtAnd(const std::vector<std::string>& pieces) {
  std::vector<std::string> out;
  for (const auto& p : pieces) {
    const std::string lower = LowerAscii(p);
    std::size_t start = 0;
    for (std::size_t at = lower.find(" and "); at != std::string::npos; at = lower.find(" and ", at + 5)) {
      const auto next = TextWords(std::string_view(lower).substr(at + 5));
      if (next.empty() || !IsQuestionWord(next.front())) continue;
      out.push_back(p.substr(start, at - start));
      start = at + 5;
    }
    out.push_back(p.substr(start));
  }
  return out;
}

std::vector<SubQuestion> Distinct(std::vector<std::string> questions, std::size_t max_steps) {
  std::vector<SubQuestion> out;
  std::unordered_set<std::string> seen;
  for (auto& q : questions) {
    if (q.empty() || out.size() >= max_steps || !seen.insert(LowerAscii(q)).second) continue;
    out.push_back({std::move(q), {}});
  }
  return out;
}

// ---- The run -----------------------------------------------------------------------------------

struct Step {
  SubQuestion sub;
  json results = json::array();        // the step's own query_results
  std::vector<std::size_t> passages;   // global numbers of its best results
  std::vector<double> passage_scores;  // their scores in this step's retrieval
  std::vector<std::size_t> in_prompt;  // the numbers its answer may cite
  std::string answer;
  double confidence = 0;
  TokenUsage usage;
  double seconds = 0;
  json errors = json::array();
  bool cancelled = false;
};

// The numbered passages of a step in AnswerService's context format: a sparse copy of the merged
// results with only the step's passages, so each keeps its global number.
json SparseResults(const json& merged, const std::vector<std::size_t>& numbers) {
  json sparse(json::value_t::array);
  for (std::size_t i = 0; i < merged.size(); ++i) sparse.push_back(json::object());
  for (auto n : numbers) sparse[n - 1] = merged[n - 1];
  return sparse;
}

Error CancelledWith(const TokenUsage& usage) {
  return Error::Cancelled("the chain of thought was cancelled")
      .WithDetails(json{{"usage", {{"prompt_tokens", usage.prompt_tokens}, {"completion_tokens", usage.completion_tokens}}}}
                       .dump());
}

}  // namespace

bool ShouldUseCot(std::string_view question, std::optional<bool> explicit_flag, std::size_t long_question_words) {
  if (explicit_flag) return *explicit_flag;
  if (std::count(question.begin(), question.end(), '?') > 1) return true;
  const auto words = TextWords(question);
  if (words.size() > long_question_words) return true;
  std::string norm = " ";
  for (auto w : words) norm += LowerAscii(w) + " ";
  for (std::string_view cue : {" compare ", " compared ", " comparing ", " comparison ", " versus ", " vs ",
                               " difference between ", " differences between ", " and how ", " pros and cons ",
                               " step by step ", " step-by-step ", " relationship between ", " relation between "}) {
    if (norm.find(cue) != std::string::npos) return true;
  }
  for (std::string_view how : {" how does ", " how do ", " how did ", " how will ", " how would ", " how can "}) {
    const auto at = norm.find(how);
    if (at == std::string::npos) continue;
    for (std::string_view verb : {" affect ", " affects ", " impact ", " influence "}) {
      if (norm.find(verb, at) != std::string::npos) return true;
    }
  }
  return false;
}

std::vector<SubQuestion> ParseSubQuestions(std::string_view reply, std::size_t max_steps) {
  struct Raw {
    std::string question;
    std::vector<std::size_t> depends_on;
  };
  std::vector<Raw> raw;
  json j = JsonInReply(reply);
  if (j.is_object()) {
    for (const char* key : {"sub_questions", "subquestions", "sub-questions", "questions", "steps"}) {
      if (auto it = j.find(key); it != j.end() && it->is_array()) {
        j = *it;
        break;
      }
    }
  }
  if (j.is_array()) {
    for (const auto& e : j) {
      Raw r;
      if (e.is_string()) {
        r.question = e.get<std::string>();
      } else if (e.is_object()) {
        for (const char* key : {"question", "sub_question", "subquestion", "q", "text"}) {
          if (const json& v = Member(e, key); v.is_string()) {
            r.question = v.get<std::string>();
            break;
          }
        }
        for (const char* key : {"depends_on", "dependencies", "depends", "after"}) {
          json deps = Member(e, key);
          if (deps.is_null()) continue;
          if (!deps.is_array()) deps = json::array({deps});
          for (const auto& d : deps) {
            if (d.is_number_integer() && d.get<std::int64_t>() > 0) r.depends_on.push_back(d.get<std::size_t>());
            if (d.is_string()) {
              const auto digits = d.get<std::string>().find_first_of("0123456789");
              if (digits != std::string::npos) {
                const std::size_t v = std::strtoul(d.get<std::string>().c_str() + digits, nullptr, 10);
                if (v > 0) r.depends_on.push_back(v);
              }
            }
          }
          break;
        }
      }
      raw.push_back(std::move(r));  // kept (even when empty) so depends_on numbers stay aligned
    }
  }
  if (std::none_of(raw.begin(), raw.end(), [](const Raw& r) { return !r.question.empty(); })) {
    raw.clear();
    const std::vector<std::string> lines = ReplyLines(reply);
    const bool any_question = std::any_of(lines.begin(), lines.end(), [](const auto& l) { return l.ends_with('?'); });
    for (const auto& line : lines) {
      const bool usable = any_question ? line.ends_with('?') : (!line.ends_with(':') && TextWords(line).size() >= 3);
      if (usable) raw.push_back({line, {}});
    }
  }
  // Clean, drop duplicates (a dependency on one moves to the copy kept), cap, keep only
  // dependencies on earlier sub-questions.
  std::vector<SubQuestion> out;
  std::vector<std::size_t> renumbered(raw.size() + 1, 0);  // 1-based raw → 1-based out (0: dropped)
  std::unordered_map<std::string, std::size_t> seen;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    std::string q = CleanReplyLine(raw[i].question);
    if (TextWords(q).size() < 2) continue;
    if (auto it = seen.find(LowerAscii(q)); it != seen.end()) {
      renumbered[i + 1] = it->second;
      continue;
    }
    if (out.size() >= max_steps) break;
    SubQuestion sq{std::move(q), {}};
    for (auto d : raw[i].depends_on) {
      const std::size_t nd = d <= i ? renumbered[d] : 0;
      if (nd > 0 && std::find(sq.depends_on.begin(), sq.depends_on.end(), nd) == sq.depends_on.end()) {
        sq.depends_on.push_back(nd);
      }
    }
    std::sort(sq.depends_on.begin(), sq.depends_on.end());
    seen.emplace(LowerAscii(sq.question), out.size() + 1);
    out.push_back(std::move(sq));
    renumbered[i + 1] = out.size();
  }
  return out;
}

std::vector<SubQuestion> SplitQuestion(std::string_view question, std::size_t max_steps) {
  const std::string q(TrimText(question));
  max_steps = std::max<std::size_t>(max_steps, 1);
  if (auto pair = ComparedPair(q)) {
    auto out = Distinct({AsQuestion("What is " + pair->first), AsQuestion("What is " + pair->second), q}, max_steps);
    if (out.size() >= 2) return out;
  }
  std::vector<std::string> pieces = SplitAtAnd(SplitAt(SplitAt({q}, '?', true), ';', false));
  std::vector<std::string> questions;
  for (const auto& p : pieces) questions.push_back(AsQuestion(p));
  auto out = Distinct(std::move(questions), max_steps);
  if (out.size() < 2) return {{q, {}}};
  return out;
}

ChainOfThought::ChainOfThought(LlmProvider* provider, CotOptions options)
    : provider_(provider), options_(std::move(options)) {
  options_.max_steps = std::max<std::size_t>(options_.max_steps, 2);
}

std::vector<ChatMessage> ChainOfThought::DecompositionPrompt(std::string_view question) const {
  std::string system(kDecomposeSystem);
  system.replace(system.find("{max}"), 5, std::to_string(options_.max_steps));
  return {{"system", std::move(system)}, {"user", "Question: " + std::string(TrimText(question))}};
}

Result<CotResult> ChainOfThought::Run(std::string_view question_in, const RetrieveFn& retrieve,
                                      const CancelToken* cancel) const {
  const auto started = Clock::now();
  const std::string question(TrimText(question_in));
  CotResult res;
  auto spent = [&](const std::vector<Step>& steps) {
    TokenUsage u = res.usage;
    for (const auto& s : steps) AddUsage(u, s.usage);
    return u;
  };

  // 1. Decomposition.
  std::vector<SubQuestion> subs;
  std::string decomposition = "rules";
  if (provider_ != nullptr) {
    auto gen = GenerateCounted(*provider_, DecompositionPrompt(question), options_.decompose_params, cancel, res.usage);
    if (gen) {
      subs = ParseSubQuestions(gen->text, options_.max_steps);
      if (subs.size() >= 2) {
        decomposition = "llm";
      } else {
        res.errors.push_back(ErrorEntry("decompose", 0, Error::Unavailable("the model's decomposition was unusable: \"" +
                                                                           CutText(TrimText(gen->text), 160) + "\"")));
        subs.clear();
      }
    } else if (gen.error().code() == ErrorCode::kCancelled) {
      return Fail(CancelledWith(res.usage));
    } else {
      res.errors.push_back(ErrorEntry("decompose", 0, gen.error()));
    }
  }
  if (subs.empty()) subs = SplitQuestion(question, options_.max_steps);
  std::vector<Step> steps(subs.size());
  std::vector<std::vector<std::size_t>> after(subs.size());
  for (std::size_t i = 0; i < subs.size(); ++i) {
    for (auto d : subs[i].depends_on) after[i].push_back(d - 1);
    steps[i].sub = std::move(subs[i]);
  }

  // 2. Retrieval of every step.
  RunTasks(steps.size(), options_.max_concurrency, [&](std::size_t i) {
    const auto t = Clock::now();
    auto r = retrieve(steps[i].sub.question);
    if (!r) {
      steps[i].errors.push_back(ErrorEntry("retrieve", i + 1, r.error()));
    } else if (const json& results = r->is_array() ? *r : Member(*r, "query_results"); results.is_array()) {
      for (const auto& e : results) {
        if (e.is_object() && !TextOf(e).empty()) steps[i].results.push_back(e);
      }
    }
    steps[i].seconds += SecondsSince(t);
  }, {}, cancel);
  if (cancel != nullptr && cancel->cancelled()) return Fail(CancelledWith(spent(steps)));

  // 3. The merged results: one per chunk, its best score, best first; passages get their numbers.
  std::vector<json> merged;
  std::unordered_map<std::string, std::size_t> slot;
  for (const auto& s : steps) {
    for (const auto& e : s.results) {
      auto [it, added] = slot.emplace(KeyOf(e), merged.size());
      if (added) {
        merged.push_back(e);
      } else if (ScoreOf(e) > ScoreOf(merged[it->second])) {
        merged[it->second] = e;
      }
    }
  }
  std::vector<std::size_t> by_score(merged.size());
  std::iota(by_score.begin(), by_score.end(), std::size_t{0});
  std::stable_sort(by_score.begin(), by_score.end(),
                   [&](std::size_t a, std::size_t b) { return ScoreOf(merged[a]) > ScoreOf(merged[b]); });
  res.query_results = json::array();
  std::unordered_map<std::string, std::size_t> number;  // key → 1-based position in query_results
  for (auto i : by_score) {
    number.emplace(KeyOf(merged[i]), res.query_results.size() + 1);
    res.query_results.push_back(std::move(merged[i]));
  }
  for (auto& s : steps) {
    for (const auto& e : s.results) {
      if (s.passages.size() >= options_.passages_per_step) break;
      const std::size_t n = number.at(KeyOf(e));
      if (std::find(s.passages.begin(), s.passages.end(), n) != s.passages.end()) continue;
      s.passages.push_back(n);
      s.passage_scores.push_back(ScoreOf(e));
    }
  }
  const json& results = res.query_results;

  // 4. The step answers, each after the steps it depends on.
  AnswerOptions context_options;
  context_options.max_chunks_per_document = options_.max_chunks_per_document;
  context_options.max_passage_tokens = options_.max_passage_tokens;
  RunTasks(steps.size(), options_.max_concurrency, [&](std::size_t i) {
    Step& st = steps[i];
    const auto t = Clock::now();
    const json sparse = SparseResults(results, st.passages);
    const AssembledContext ctx = AssembleContext(
        sparse, (options_.max_passage_tokens + 32) * std::max<std::size_t>(st.passages.size(), 1), context_options);
    for (const auto& p : ctx.passages) st.in_prompt.push_back(p.n);
    if (ctx.passages.empty()) {
      st.answer = "No passage was found for this question.";
      st.seconds += SecondsSince(t);
      return;
    }
    if (provider_ != nullptr) {
      std::string user = "Overall question: " + question + "\n\n";
      if (!st.sub.depends_on.empty()) {
        user += "Findings of earlier steps:\n";
        for (auto d : st.sub.depends_on) {
          user += "Step " + std::to_string(d) + ": " + steps[d - 1].sub.question + "\n" + steps[d - 1].answer + "\n\n";
        }
      }
      user += "Passages:\n" + ctx.text + "\n\nQuestion: " + st.sub.question;
      auto gen = GenerateCounted(*provider_, {{"system", std::string(kStepSystem)}, {"user", std::move(user)}},
                                 options_.step_params, cancel, st.usage);
      if (gen && !TrimText(gen->text).empty()) {
        st.answer = std::string(TrimText(StripCitations(gen->text, st.in_prompt)));
        const std::size_t cited = CitedNumbers(st.answer).size();
        st.confidence = SaysNotAnswered(st.answer) ? 0.2 : 0.5 + (cited > 0 ? 0.3 : 0.0) + (cited > 1 ? 0.1 : 0.0);
        st.seconds += SecondsSince(t);
        return;
      }
      if (!gen && gen.error().code() == ErrorCode::kCancelled) {
        st.cancelled = true;
        return;
      }
      st.errors.push_back(ErrorEntry("answer", i + 1, gen ? Error::Unavailable("the model gave an empty answer") : gen.error()));
    }
    std::vector<std::string_view> texts(results.size());
    for (auto n : st.in_prompt) texts[n - 1] = TextOf(results[n - 1]);
    const auto ex = search::ComposeExtractiveAnswer(analyzer_, st.sub.question, texts, {.passages = texts.size()});
    st.answer = ex.text.empty() ? "No passage was found for this question." : ex.text;
    st.confidence = ex.matched ? 0.4 : 0.1;
    st.seconds += SecondsSince(t);
  }, after, cancel);
  if ((cancel != nullptr && cancel->cancelled()) ||
      std::any_of(steps.begin(), steps.end(), [](const Step& s) { return s.cancelled; })) {
    return Fail(CancelledWith(spent(steps)));
  }

  // 5. Synthesis.
  std::vector<std::size_t> allowed;
  for (const auto& s : steps) allowed.insert(allowed.end(), s.in_prompt.begin(), s.in_prompt.end());
  std::string synthesis = "concatenation";
  if (provider_ != nullptr && !allowed.empty()) {  // with no passage at all there is nothing to synthesise
    std::string user = "Findings:\n";
    for (std::size_t i = 0; i < steps.size(); ++i) {
      user += "Step " + std::to_string(i + 1) + ": " + steps[i].sub.question + "\n" + steps[i].answer + "\n\n";
    }
    user += "Question: " + question;
    auto gen = GenerateCounted(*provider_, {{"system", std::string(kSynthesisSystem)}, {"user", std::move(user)}},
                               options_.synthesis_params, cancel, res.usage);
    if (gen && !TrimText(gen->text).empty()) {
      res.final_answer = std::string(TrimText(StripCitations(gen->text, allowed)));
      synthesis = "llm";
    } else if (!gen && gen.error().code() == ErrorCode::kCancelled) {
      return Fail(CancelledWith(spent(steps)));
    } else {
      res.errors.push_back(
          ErrorEntry("synthesize", 0, gen ? Error::Unavailable("the model gave an empty answer") : gen.error()));
    }
  }
  if (synthesis != "llm") {
    for (std::size_t i = 0; i < steps.size(); ++i) {
      if (i > 0) res.final_answer += "\n\n";
      res.final_answer += steps[i].sub.question + "\n" + steps[i].answer;
    }
  }

  // 6. cot_output.
  json reasoning = json::array();
  json by_step = json::object();
  std::vector<std::size_t> used;
  double confidence_sum = 0;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const Step& st = steps[i];
    json attributions = json::array();
    json chunk_ids = json::array();
    for (std::size_t k = 0; k < st.passages.size(); ++k) {
      const std::size_t n = st.passages[k];
      if (std::find(st.in_prompt.begin(), st.in_prompt.end(), n) == st.in_prompt.end()) continue;
      attributions.push_back(Attribution(results[n - 1], n, st.passage_scores[k]));
      chunk_ids.push_back(Member(Member(results[n - 1], "chunk"), "chunk_id"));
      used.push_back(n);
    }
    by_step[std::to_string(i + 1)] = std::move(chunk_ids);
    confidence_sum += st.confidence;
    reasoning.push_back({{"step_number", i + 1},
                         {"question", st.sub.question},
                         {"depends_on", st.sub.depends_on},
                         {"intermediate_answer", st.answer},
                         {"confidence_score", st.confidence},
                         {"source_attributions", std::move(attributions)},
                         {"token_usage", TotalTokens(st.usage)},
                         {"execution_time", st.seconds}});
    for (const auto& e : st.errors) res.errors.push_back(e);
    AddUsage(res.usage, st.usage);
  }
  std::sort(used.begin(), used.end());
  used.erase(std::unique(used.begin(), used.end()), used.end());
  json all_sources = json::array(), primary = json::array();
  const auto cited = CitedNumbers(res.final_answer);
  for (auto n : used) {
    json a = Attribution(results[n - 1], n, ScoreOf(results[n - 1]));
    if (std::find(cited.begin(), cited.end(), n) != cited.end()) primary.push_back(a);
    all_sources.push_back(std::move(a));
  }
  res.cot_output = {{"original_question", question},
                    {"final_answer", res.final_answer},
                    {"reasoning_steps", std::move(reasoning)},
                    {"source_summary",
                     {{"all_sources", std::move(all_sources)},
                      {"primary_sources", std::move(primary)},
                      {"source_usage_by_step", std::move(by_step)}}},
                    {"total_confidence", steps.empty() ? 0.0 : confidence_sum / static_cast<double>(steps.size())},
                    {"token_usage", TotalTokens(res.usage)},
                    {"total_execution_time", SecondsSince(started)},
                    {"reasoning_strategy", synthesis == "llm" ? "decomposition" : "rules"},
                    {"decomposition_method", decomposition},
                    {"synthesis_method", synthesis}};
  return res;
}

}  // namespace modulo::generate
