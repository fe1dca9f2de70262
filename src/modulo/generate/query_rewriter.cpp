#include "modulo/generate/query_rewriter.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "modulo/core/json.h"
#include "modulo/generate/answer_service.h"
#include "modulo/index/bm25/analyzer.h"

namespace modulo::generate {
namespace {

using json = nlohmann::json;

bool IsSpaceChar(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool IsWordByte(unsigned char c) { return std::isalnum(c) || c >= 0x80; }
bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }


// Quote pairs that may surround a reply line.
constexpr std::pair<std::string_view, std::string_view> kQuotes[] = {
    {"\"", "\""}, {"'", "'"}, {"`", "`"}, {"\u201c", "\u201d"}, {"\u2018", "\u2019"}, {"\u00ab", "\u00bb"}, {"__", "__"}};

std::string_view StripListMarker(std::string_view s) {
  for (std::string_view bullet : {"- ", "+ ", "\u2022 ", "\u2013 ", "\u2014 ", "> "}) {
    if (StartsWith(s, bullet)) return TrimText(s.substr(bullet.size()));
  }
  std::size_t i = 0;
  const std::string head = LowerAscii(s.substr(0, 16));
  for (std::string_view label : {"sub-question ", "subquestion ", "question ", "step ", "query ", "q"}) {
    if (StartsWith(head, label) && head.size() > label.size() &&
        std::isdigit(static_cast<unsigned char>(head[label.size()]))) {
      i = label.size();  // "Step 2:", "Question 3.", "Q1:"
      break;
    }
  }
  const bool paren = i < s.size() && s[i] == '(';
  if (paren) ++i;
  const std::size_t digits = i;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && i - digits < 3) ++i;
  if (i == digits || i >= s.size()) return s;
  if (paren ? s[i] != ')' : (s[i] != '.' && s[i] != ')' && s[i] != ':')) return s;
  ++i;
  if (i < s.size() && !IsSpaceChar(s[i])) return s;  // "3.14", "1:30"
  return TrimText(s.substr(i));
}

std::string_view StripQuotes(std::string_view s) {
  for (bool again = true; again && s.size() >= 2;) {
    again = false;
    for (const auto& [open, close] : kQuotes) {
      if (s.size() >= open.size() + close.size() && StartsWith(s, open) &&
          s.substr(s.size() - close.size()) == close) {
        s = TrimText(s.substr(open.size(), s.size() - open.size() - close.size()));
        again = true;
        break;
      }
    }
  }
  return s;
}

// A question's previous turns without a trailing copy of the question itself, empty turns and
// system messages.
std::vector<ChatMessage> UsableHistory(std::string_view question, const std::vector<ChatMessage>& history) {
  std::vector<ChatMessage> out;
  for (const auto& m : history) {
    if ((m.role == "user" || m.role == "assistant") && !TrimText(m.content).empty()) out.push_back(m);
  }
  if (!out.empty() && out.back().role == "user" && TrimText(out.back().content) == TrimText(question)) out.pop_back();
  return out;
}

// "Query:", "Standalone search query:", "Here is the rewritten question:" … (lower-cased label).
bool IsReplyLabel(std::string_view label) {
  for (std::string_view end : {"query", "question", "answer", "output", "rewrite", "result"}) {
    if (label.size() >= end.size() && label.substr(label.size() - end.size()) == end) return true;
  }
  return StartsWith(label, "here is") || StartsWith(label, "here's") || StartsWith(label, "sure");
}

bool IsRefusal(std::string_view lower) {
  for (std::string_view p : {"i'm sorry", "i am sorry", "sorry,", "i cannot", "i can't", "as an ai", "i'm unable",
                             "i am unable"}) {
    if (StartsWith(lower, p)) return true;
  }
  return false;
}

constexpr std::string_view kRewriteSystem =
    "You rewrite the latest question of a conversation into ONE standalone search query for a document search "
    "engine. Replace pronouns and fill in what the question leaves out (\"it\", \"they\", \"that one\", \"what about "
    "...\") with what they refer to in the conversation, and keep the question's own key terms. If the question "
    "already stands on its own, return it as it is. Reply with the query only: one line, no explanation, no quotes, "
    "no prefix.";

}  // namespace

// ---- Shared helpers ----------------------------------------------------------------------------

void AddUsage(TokenUsage& total, const TokenUsage& more) noexcept {
  total.prompt_tokens += std::max(more.prompt_tokens, 0);
  total.completion_tokens += std::max(more.completion_tokens, 0);
}

int TotalTokens(const TokenUsage& usage) noexcept {
  return std::max(usage.prompt_tokens, 0) + std::max(usage.completion_tokens, 0);
}

Result<Generation> GenerateCounted(LlmProvider& provider, const std::vector<ChatMessage>& messages,
                                   const GenerationParams& params, const CancelToken* cancel, TokenUsage& spent) {
  if (cancel != nullptr && cancel->cancelled()) return Fail(Error::Cancelled("cancelled before the model was called"));
  auto gen = provider.Generate(messages, params, cancel);
  if (!gen) {
    if (auto u = UsageOf(gen.error())) AddUsage(spent, *u);
    return gen;
  }
  TokenUsage u = gen->usage;
  if (u.prompt_tokens <= 0) {
    std::size_t estimate = 8;  // chat-format tokens and the reply's priming
    for (const auto& m : messages) estimate += EstimateTokens(m.content) + 4;
    u.prompt_tokens = static_cast<int>(estimate);
  }
  if (u.completion_tokens <= 0) u.completion_tokens = static_cast<int>(EstimateTokens(gen->text));
  AddUsage(spent, u);
  return gen;
}

std::string_view TrimText(std::string_view text) noexcept {
  while (!text.empty() && IsSpaceChar(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpaceChar(text.back())) text.remove_suffix(1);
  return text;
}

std::string CleanReplyLine(std::string_view line) {
  std::string_view s = TrimText(line);
  for (int i = 0; i < 3; ++i) {
    const std::string_view before = s;
    // Markdown emphasis at either end ("**Query:**", "* item") goes first.
    while (!s.empty() && s.front() == '*') s.remove_prefix(1);
    while (!s.empty() && s.back() == '*') s.remove_suffix(1);
    s = StripQuotes(StripListMarker(TrimText(s)));
    if (s == before) break;
  }
  return std::string(s);
}

std::vector<std::string> ReplyLines(std::string_view reply) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= reply.size()) {
    std::size_t end = reply.find('\n', pos);
    if (end == std::string_view::npos) end = reply.size();
    const std::string_view raw = TrimText(reply.substr(pos, end - pos));
    pos = end + 1;
    if (StartsWith(raw, "```")) continue;
    std::string line = CleanReplyLine(raw);
    if (!line.empty()) out.push_back(std::move(line));
  }
  return out;
}

json JsonInReply(std::string_view reply) {
  int attempts = 0;
  for (std::size_t start = reply.find_first_of("[{"); start != std::string_view::npos && attempts < 16;
       start = reply.find_first_of("[{", start + 1), ++attempts) {
    // The matching bracket, strings skipped.
    int depth = 0;
    bool in_string = false;
    std::size_t end = std::string_view::npos;
    for (std::size_t i = start; i < reply.size(); ++i) {
      const char c = reply[i];
      if (in_string) {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          in_string = false;
        }
      } else if (c == '"') {
        in_string = true;
      } else if (c == '[' || c == '{') {
        ++depth;
      } else if (c == ']' || c == '}') {
        if (--depth == 0) {
          end = i + 1;
          break;
        }
      }
    }
    if (end == std::string_view::npos) continue;
    json parsed = modulo::ParseJsonOrDiscarded(reply.substr(start, end - start));
    if (!parsed.is_discarded()) return parsed;
  }
  return json(json::value_t::discarded);
}

std::string CutText(std::string_view text, std::size_t max_chars) {
  if (text.size() <= max_chars) return std::string(text);
  constexpr std::string_view kEllipsis = " \u2026";
  if (max_chars <= kEllipsis.size()) return {};
  std::size_t keep = max_chars - kEllipsis.size();
  while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) --keep;
  const auto space = text.rfind(' ', keep);
  if (space != std::string_view::npos && space > keep * 3 / 4) keep = space;
  std::string out(TrimText(text.substr(0, keep)));
  out += kEllipsis;
  return out;
}

std::string LowerAscii(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string_view> TextWords(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && !IsWordByte(static_cast<unsigned char>(text[i]))) ++i;
    const std::size_t start = i;
    while (i < text.size()) {
      const auto c = static_cast<unsigned char>(text[i]);
      if (IsWordByte(c)) {
        ++i;
      } else if ((c == '\'' || c == '-') && i + 1 < text.size() && IsWordByte(static_cast<unsigned char>(text[i + 1]))) {
        ++i;
      } else {
        break;
      }
    }
    if (i > start) out.push_back(text.substr(start, i - start));
  }
  return out;
}

bool IsFunctionWord(std::string_view w) noexcept {
  static const std::unordered_set<std::string_view> kWords = {
      "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "does", "do", "did", "done", "doing",
      "is", "am", "are", "was", "were", "be", "been", "being", "has", "have", "had", "having", "can", "could",
      "would", "should", "may", "might", "must", "shall", "i", "me", "my", "mine", "we", "us", "our", "ours", "you",
      "your", "yours", "he", "him", "his", "she", "her", "hers", "its", "it's", "they", "them", "their", "theirs",
      "this", "that", "these", "those", "about", "also", "tell", "more", "some", "any", "all", "here", "than",
      "from", "over", "into", "onto", "other", "each", "very", "just", "like", "so", "only", "same", "both",
      "please", "explain", "describe", "give", "know", "many", "much", "one", "ones", "up", "out", "again", "then",
      "too", "own", "get", "got", "make", "made", "let", "say", "said", "says", "thing", "things", "way", "well",
      "via", "per", "within", "without", "between", "after", "before", "under", "above", "while", "during",
      "because", "whether", "yes", "ok", "okay", "thanks", "thank", "vs", "versus", "compare", "compared",
      "difference", "differences", "whats", "what's", "hows", "how's", "don't", "doesn't", "isn't", "aren't"};
  return index::IsEnglishStopWord(w) || kWords.contains(w);
}

std::vector<std::string> ContentWords(std::string_view text) {
  std::vector<std::string> out;
  std::unordered_set<std::string> seen;
  for (auto word : TextWords(text)) {
    std::string w = LowerAscii(word);
    if (w.size() < 2 || IsFunctionWord(w)) continue;
    if (std::all_of(w.begin(), w.end(), [](unsigned char c) { return std::isdigit(c); })) continue;
    if (seen.insert(w).second) out.push_back(std::move(w));
  }
  return out;
}

std::size_t RunTasks(std::size_t count, std::size_t max_concurrency, const std::function<void(std::size_t)>& task,
                     const std::vector<std::vector<std::size_t>>& after, const CancelToken* cancel) {
  enum : char { kPending, kRunning, kDone, kSkipped };
  std::vector<char> state(count, kPending);
  std::size_t finished = 0, skipped = 0;
  std::exception_ptr failure;
  std::mutex mu;
  std::condition_variable cv;
  auto ready = [&](std::size_t i) {
    if (state[i] != kPending) return false;
    if (i < after.size()) {
      for (auto d : after[i]) {
        if (d < i && (state[d] == kPending || state[d] == kRunning)) return false;
      }
    }
    return true;
  };
  auto work = [&] {
    std::unique_lock lock(mu);
    while (finished < count) {
      if (cancel != nullptr && cancel->cancelled()) {
        for (auto& s : state) {
          if (s == kPending) {
            s = kSkipped;
            ++finished;
            ++skipped;
          }
        }
        cv.notify_all();
        if (finished == count) break;
      }
      std::size_t next = count;
      for (std::size_t i = 0; i < count && next == count; ++i) {
        if (ready(i)) next = i;
      }
      if (next == count) {  // everything left waits for a running task (or the token)
        cv.wait_for(lock, std::chrono::milliseconds(50));
        continue;
      }
      state[next] = kRunning;
      lock.unlock();
      std::exception_ptr thrown;
      try {
        task(next);
      } catch (...) {
        thrown = std::current_exception();
      }
      lock.lock();
      if (thrown && !failure) failure = thrown;
      state[next] = kDone;
      ++finished;
      cv.notify_all();
    }
  };
  const std::size_t threads = std::min(count, std::max<std::size_t>(max_concurrency, 1));
  {
    std::vector<std::jthread> helpers;
    for (std::size_t t = 1; t < threads; ++t) helpers.emplace_back(work);
    work();
  }  // joined
  if (failure) std::rethrow_exception(failure);
  return skipped;
}

// ---- QueryRewriter ---------------------------------------------------------------------------

QueryRewriter::QueryRewriter(LlmProvider* provider, RewriteOptions options)
    : provider_(provider), options_(std::move(options)) {}

std::vector<ChatMessage> QueryRewriter::Prompt(std::string_view question, const std::vector<ChatMessage>& history,
                                               std::string_view summary) const {
  const auto turns = UsableHistory(question, history);
  std::string user;
  if (!TrimText(summary).empty()) {
    user += "Summary of the earlier conversation:\n" + CutText(TrimText(summary), options_.max_summary_chars) + "\n\n";
  }
  if (!turns.empty()) {
    user += "Conversation:\n";
    const std::size_t first = turns.size() > options_.history_turns ? turns.size() - options_.history_turns : 0;
    for (std::size_t i = first; i < turns.size(); ++i) {
      user += turns[i].role == "user" ? "User: " : "Assistant: ";
      user += CutText(TrimText(turns[i].content), options_.max_turn_chars);
      user += '\n';
    }
    user += '\n';
  }
  user += "Follow-up question: ";
  user += TrimText(question);
  user += "\n\nStandalone search query:";
  return {{"system", std::string(kRewriteSystem)}, {"user", std::move(user)}};
}

std::optional<std::string> QueryRewriter::CleanReply(std::string_view reply, std::size_t max_chars) {
  for (std::string line : ReplyLines(reply)) {
    // "Standalone query: \"...\"" → the part after the label; a bare preamble ("Here it is:") is skipped.
    if (const auto colon = line.find(':'); colon != std::string::npos && colon < 48) {
      if (IsReplyLabel(LowerAscii(TrimText(std::string_view(line).substr(0, colon))))) {
        line = CleanReplyLine(std::string_view(line).substr(colon + 1));
        if (line.empty()) continue;
      }
    }
    if (IsRefusal(LowerAscii(line)) || line.size() > max_chars) return std::nullopt;
    return line;
  }
  return std::nullopt;
}

bool QueryRewriter::LooksLikeFollowUp(std::string_view question) const {
  const auto words = TextWords(question);
  if (words.size() <= options_.follow_up_max_words) return true;
  const std::string lower = LowerAscii(TrimText(question));
  if (StartsWith(lower, "and ") || StartsWith(lower, "what about") || StartsWith(lower, "how about")) return true;
  static const std::unordered_set<std::string_view> kPronouns = {"it", "its", "it's", "they", "them", "their",
                                                                 "theirs", "this", "that", "those", "these",
                                                                 "he", "him", "his", "she", "her", "hers"};
  return std::any_of(words.begin(), words.end(), [](std::string_view w) { return kPronouns.contains(LowerAscii(w)); });
}

std::string QueryRewriter::RewriteByRules(std::string_view question, const std::vector<ChatMessage>& history) const {
  std::string query(TrimText(question));
  if (!LooksLikeFollowUp(question)) return query;
  const auto turns = UsableHistory(question, history);
  const auto previous = std::find_if(turns.rbegin(), turns.rend(), [](const ChatMessage& m) { return m.role == "user"; });
  if (previous == turns.rend()) return query;
  const auto own = ContentWords(question);
  std::size_t added = 0;
  for (const auto& w : ContentWords(previous->content)) {
    if (added >= options_.max_added_terms) break;
    if (std::find(own.begin(), own.end(), w) != own.end()) continue;
    query += ' ';
    query += w;
    ++added;
  }
  return query;
}

RewriteResult QueryRewriter::Rewrite(std::string_view question, const std::vector<ChatMessage>& history,
                                     std::string_view summary, const CancelToken* cancel) const {
  RewriteResult r;
  r.query = std::string(TrimText(question));
  r.method = "none";
  if (UsableHistory(question, history).empty() && TrimText(summary).empty()) return r;
  if (cancel != nullptr && cancel->cancelled()) {
    r.error = Error::Cancelled("query rewriting cancelled");
    return r;
  }
  if (provider_ != nullptr) {
    auto gen = GenerateCounted(*provider_, Prompt(question, history, summary), options_.params, cancel, r.usage);
    if (gen) {
      if (auto q = CleanReply(gen->text, options_.max_query_chars)) {
        r.rewritten = *q != r.query;
        r.query = std::move(*q);
        r.method = "llm";
        return r;
      }
      r.error = Error::Unavailable("the model's rewrite was unusable: \"" + CutText(TrimText(gen->text), 120) + "\"");
    } else {
      r.error = gen.error();
      if (gen.error().code() == ErrorCode::kCancelled) return r;
    }
  }
  r.query = RewriteByRules(question, history);
  r.method = "rules";
  r.rewritten = r.query != TrimText(question);
  return r;
}

}  // namespace modulo::generate
