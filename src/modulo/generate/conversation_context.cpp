#include "modulo/generate/conversation_context.h"

#include <algorithm>

#include "modulo/generate/query_rewriter.h"
#include "modulo/search/extractive_answer.h"

namespace modulo::generate {
namespace {

constexpr std::string_view kSummaryPreface = "Summary of the earlier conversation: ";
constexpr std::size_t kMaxSentenceChars = 200;

constexpr std::string_view kSummarySystem =
    "You keep a running summary of a conversation between a user and an assistant about a document collection. "
    "Merge the previous summary and the new messages into one updated summary of at most {words} words. Keep "
    "names, numbers, dates, decisions and open questions; drop greetings and repetition. Write plain prose in the "
    "language of the conversation, with no preamble.";

std::string_view Speaker(const std::string& role) {
  if (role == "user") return "User: ";
  if (role == "assistant") return "Assistant: ";
  return "System: ";
}

}  // namespace

ConversationContext::ConversationContext(ContextOptions options) : options_(std::move(options)) {
  if (!options_.count_tokens) options_.count_tokens = EstimateTokens;
}

std::size_t ConversationContext::Cost(const HistoryMessage& m) const {
  const std::size_t own = m.token_count > 0 ? static_cast<std::size_t>(m.token_count) : options_.count_tokens(m.content);
  return own + options_.per_message_overhead;
}

CarriedHistory ConversationContext::Build(const std::vector<HistoryMessage>& recent,
                                          const std::optional<HistorySummary>& summary,
                                          std::size_t token_budget) const {
  CarriedHistory out;
  std::size_t room = token_budget;
  std::int64_t covered = 0;

  // The summary, cut to its share of the budget.
  if (summary && !TrimText(summary->text).empty()) {
    covered = summary->up_to_seq;
    const auto share = static_cast<std::size_t>(static_cast<double>(token_budget) * options_.max_summary_share);
    std::string text(TrimText(summary->text));
    std::size_t max_chars = text.size();
    std::string preface;
    std::size_t cost = 0;
    while (max_chars > 0) {
      preface = std::string(kSummaryPreface) + CutText(text, max_chars);
      cost = options_.count_tokens(preface) + options_.per_message_overhead;
      if (cost <= share) break;
      max_chars = std::min(max_chars * 9 / 10, share * 4);
    }
    if (max_chars > 0 && cost <= room) {
      out.messages.push_back({"system", std::move(preface)});
      out.tokens += cost;
      room -= cost;
      out.summary_included = true;
    }
  }

  // Whole turns, newest first, while they fit.
  std::vector<const HistoryMessage*> open;  // not covered by the summary, oldest first
  for (const auto& m : recent) {
    if (m.seq > covered) open.push_back(&m);
  }
  std::size_t first_carried = open.size();
  std::size_t end = open.size();
  while (end > 0) {
    std::size_t begin = end - 1;
    while (begin > 0 && open[begin]->role != "user") --begin;  // the turn's user message
    std::size_t cost = 0;
    for (std::size_t i = begin; i < end; ++i) cost += Cost(*open[i]);
    if (cost > room) break;
    room -= cost;
    out.tokens += cost;
    first_carried = begin;
    ++out.turns;
    end = begin;
  }
  for (std::size_t i = first_carried; i < open.size(); ++i) out.messages.push_back({open[i]->role, open[i]->content});

  // What fell out and is not folded yet.
  out.fold_count = first_carried;
  if (first_carried > 0) {
    out.fold_from_seq = open.front()->seq;
    out.fold_to_seq = open[first_carried - 1]->seq;
    out.needs_summary = first_carried >= std::max<std::size_t>(options_.min_fold_messages, 1);
  }
  return out;
}

std::vector<ChatMessage> ConversationContext::SummaryPrompt(std::string_view previous_summary,
                                                            const std::vector<HistoryMessage>& messages) const {
  std::string system(kSummarySystem);
  system.replace(system.find("{words}"), 7, std::to_string(options_.summary_words));
  std::string user = "Previous summary:\n";
  user += TrimText(previous_summary).empty() ? std::string("(none)") : std::string(TrimText(previous_summary));
  user += "\n\nNew messages:\n";
  for (const auto& m : messages) {
    user += Speaker(m.role);
    user += CutText(TrimText(m.content), options_.max_message_chars);
    user += '\n';
  }
  user += "\nUpdated summary:";
  return {{"system", std::move(system)}, {"user", std::move(user)}};
}

std::string ConversationContext::ExtractiveSummary(std::string_view previous_summary,
                                                   const std::vector<HistoryMessage>& messages) const {
  std::vector<std::string> lines;
  for (const auto& m : messages) {
    const auto sentences = search::SplitSentences(m.content);
    if (sentences.empty()) continue;
    lines.push_back(std::string(Speaker(m.role)) + CutText(sentences.front(), kMaxSentenceChars));
  }
  // The newest lines are kept first; the previous summary gets the room left.
  const std::size_t max = options_.max_summary_chars;
  std::size_t used = 0, first = lines.size();
  while (first > 0 && used + lines[first - 1].size() + 1 <= max) used += lines[--first].size() + 1;
  std::string out;
  const std::string_view previous = TrimText(previous_summary);
  if (!previous.empty() && used + 40 < max) out = CutText(previous, max - used - 1);
  for (std::size_t i = first; i < lines.size(); ++i) {
    if (!out.empty()) out += '\n';
    out += lines[i];
  }
  return out;
}

SummaryResult ConversationContext::Summarize(LlmProvider* provider, std::string_view previous_summary,
                                             const std::vector<HistoryMessage>& messages,
                                             const CancelToken* cancel) const {
  SummaryResult r;
  const std::string_view previous = TrimText(previous_summary);
  if (messages.empty()) {
    r.text = std::string(previous);
    r.method = "none";
    return r;
  }
  if (provider != nullptr) {
    auto gen = GenerateCounted(*provider, SummaryPrompt(previous, messages), options_.summary_params, cancel, r.usage);
    if (gen) {
      std::string_view text = TrimText(gen->text);
      for (std::string_view label : {"Updated summary:", "Summary:"}) {
        if (LowerAscii(text.substr(0, label.size())) == LowerAscii(label)) text = TrimText(text.substr(label.size()));
      }
      if (!text.empty()) {
        r.text = CutText(text, options_.max_summary_chars);
        r.method = "llm";
      } else {
        r.error = Error::Unavailable("the model gave an empty summary");
      }
    } else {
      r.error = gen.error();
    }
  }
  if (r.method.empty()) {
    r.text = ExtractiveSummary(previous, messages);
    r.method = "extractive";
  }
  std::int64_t before = static_cast<std::int64_t>(options_.count_tokens(previous));
  for (const auto& m : messages) before += static_cast<std::int64_t>(Cost(m));
  r.tokens_saved = std::max<std::int64_t>(0, before - static_cast<std::int64_t>(options_.count_tokens(r.text)));
  return r;
}

}  // namespace modulo::generate
