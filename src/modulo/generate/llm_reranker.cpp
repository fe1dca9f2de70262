#include "modulo/generate/llm_reranker.h"

#include <algorithm>
#include <charconv>
#include <numeric>
#include <string>

#include "modulo/generate/query_rewriter.h"

namespace modulo::generate {
namespace {

using json = nlohmann::json;

constexpr std::string_view kRerankSystem =
    "You judge how relevant passages are to a question. Score each passage from 0 (unrelated) to 10 (answers the "
    "question directly). Reply with one line per passage in the form \"<passage number>: <score>\", for example "
    "\"1: 7\", and nothing else.";

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// A non-negative decimal number at s[i] (advancing i), or nullopt.
std::optional<double> ReadNumber(std::string_view s, std::size_t& i) {
  if (i >= s.size() || !IsDigit(s[i])) return std::nullopt;
  double value = 0;
  const auto [end, ec] = std::from_chars(s.data() + i, s.data() + s.size(), value);
  if (ec != std::errc()) return std::nullopt;
  i = static_cast<std::size_t>(end - s.data());
  return value;
}

void SkipAny(std::string_view s, std::size_t& i, std::string_view chars) {
  while (i < s.size() && chars.find(s[i]) != std::string_view::npos) ++i;
}

// Skips `word` (case-insensitive) at s[i] when it is there.
bool SkipWord(std::string_view s, std::size_t& i, std::string_view word) {
  if (s.size() - i < word.size() || LowerAscii(s.substr(i, word.size())) != word) return false;
  i += word.size();
  return true;
}

// A number out of a JSON value (a number, or a string that starts with one).
std::optional<double> NumberIn(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (!v.is_string()) return std::nullopt;
  const std::string_view s = v.get_ref<const std::string&>();
  std::size_t i = s.find_first_of("0123456789");
  return i == std::string_view::npos ? std::nullopt : ReadNumber(s, i);
}

std::optional<double> FirstNumberOf(const json& obj, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    if (auto it = obj.find(k); it != obj.end()) {
      if (auto v = NumberIn(*it)) return v;
    }
  }
  return std::nullopt;
}

// Sets scores[n - 1] unless n is outside 1..count or already set.
void Put(std::vector<std::optional<double>>& scores, double n, double score) {
  if (n < 1 || n > static_cast<double>(scores.size()) || n != static_cast<double>(static_cast<std::size_t>(n))) return;
  auto& slot = scores[static_cast<std::size_t>(n) - 1];
  if (!slot) slot = std::clamp(score, 0.0, 10.0);
}

void ReadJson(const json& j, std::vector<std::optional<double>>& scores) {
  if (j.is_object()) {
    for (const char* key : {"scores", "results", "rankings", "ratings"}) {
      if (auto it = j.find(key); it != j.end() && (it->is_array() || it->is_object())) return ReadJson(*it, scores);
    }
    for (const auto& [key, value] : j.items()) {
      const auto n = NumberIn(json(key));
      const auto s = value.is_object() ? FirstNumberOf(value, {"score", "relevance", "rating"}) : NumberIn(value);
      if (n && s) Put(scores, *n, *s);
    }
    return;
  }
  if (!j.is_array()) return;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const json& e = j[i];
    if (e.is_object()) {
      const auto n = FirstNumberOf(e, {"n", "id", "index", "passage", "passage_id", "number", "idx"});
      if (const auto s = FirstNumberOf(e, {"score", "relevance", "rating"})) Put(scores, n.value_or(i + 1.0), *s);
    } else if (const auto s = NumberIn(e)) {
      Put(scores, i + 1.0, *s);
    }
  }
}

// "n: s" and its variants on one line.
void ReadLine(std::string_view line, std::vector<std::optional<double>>& scores) {
  std::string clean;
  for (char c : line) {
    if (c != '*' && c != '#' && c != '`') clean += c;
  }
  const std::string_view s = TrimText(clean);
  std::size_t i = 0;
  for (std::string_view w : {"passage", "document", "doc", "p"}) {
    if (SkipWord(s, i, w)) break;
  }
  SkipAny(s, i, " #[(");
  const auto n = ReadNumber(s, i);
  if (!n) return;
  const std::size_t after_n = i;
  SkipAny(s, i, " \t:.)]-=>,|");
  if (i == after_n) return;  // "12abc"
  std::size_t at = i;
  for (std::string_view w : {"score", "relevance", "rating"}) {
    if (SkipWord(s, at, w)) {
      SkipAny(s, at, " :=");
      break;
    }
  }
  auto score = ReadNumber(s, at);
  if (!score) {  // "3. The passage ... (score: 6)"
    const std::string lower = LowerAscii(s);
    if (auto k = lower.find("score", i); k != std::string::npos) {
      at = k + 5;
      SkipAny(s, at, " :=is");
      score = ReadNumber(s, at);
    }
  }
  if (score) Put(scores, *n, *score);
}

}  // namespace

LlmReranker::LlmReranker(LlmProvider* provider, RerankOptions options)
    : provider_(provider), options_(std::move(options)) {
  options_.batch_size = std::max<std::size_t>(options_.batch_size, 1);
}

std::vector<ChatMessage> LlmReranker::Prompt(std::string_view question, std::span<const std::string_view> batch) const {
  std::string user = "Question: " + std::string(TrimText(question)) + "\n\nPassages:\n";
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (i > 0) user += "\n\n";
    user += "[" + std::to_string(i + 1) + "] " + CutText(TrimText(batch[i]), options_.max_passage_chars);
  }
  user += "\n\nScores for passages 1 to " + std::to_string(batch.size()) + ", one line each:";
  return {{"system", std::string(kRerankSystem)}, {"user", std::move(user)}};
}

std::vector<std::optional<double>> LlmReranker::ParseScores(std::string_view reply, std::size_t count) {
  const auto filled = [](const std::vector<std::optional<double>>& v) {
    return std::count_if(v.begin(), v.end(), [](const auto& s) { return s.has_value(); });
  };
  // Two readings, as lines and as JSON; the one with more scores wins, the lines on a tie ("[1] 8"
  // also reads as the JSON array [1]).
  std::vector<std::optional<double>> by_lines(count), by_json(count);
  if (count == 0) return by_lines;
  std::vector<std::string_view> lines;
  for (std::size_t pos = 0; pos < reply.size();) {
    std::size_t end = std::min(reply.find('\n', pos), reply.size());
    if (auto line = TrimText(reply.substr(pos, end - pos)); !line.empty()) lines.push_back(line);
    pos = end + 1;
  }
  for (auto line : lines) ReadLine(line, by_lines);
  if (filled(by_lines) == 0) {  // bare numbers, one per line, in passage order ("7", "3/10")
    std::size_t next = 1;
    for (auto line : lines) {
      std::size_t i = 0;
      const auto v = ReadNumber(line, i);
      if (v && (i == line.size() || line.substr(i) == "/10")) Put(by_lines, static_cast<double>(next++), *v);
    }
  }
  if (const json j = JsonInReply(reply); !j.is_discarded()) ReadJson(j, by_json);
  return filled(by_json) > filled(by_lines) ? by_json : by_lines;
}

RerankResult LlmReranker::Rerank(std::string_view question, const std::vector<std::string_view>& passages,
                                 const CancelToken* cancel) const {
  const std::size_t n = passages.size();
  RerankResult r;
  r.scores.assign(n, options_.neutral_score);
  r.scored.assign(n, false);
  r.order.resize(n);
  std::iota(r.order.begin(), r.order.end(), std::size_t{0});
  if (provider_ == nullptr || n == 0) return r;

  const std::size_t size = options_.batch_size;
  const std::size_t batches = (n + size - 1) / size;
  struct Batch {
    bool ran = false;
    TokenUsage usage;
    std::optional<Error> error;
    std::vector<std::optional<double>> scores;
  };
  std::vector<Batch> out(batches);
  const std::span<const std::string_view> all(passages);
  RunTasks(batches, options_.max_concurrency, [&](std::size_t b) {
    Batch& batch = out[b];
    batch.ran = true;
    const auto part = all.subspan(b * size, std::min(size, n - b * size));
    auto gen = GenerateCounted(*provider_, Prompt(question, part), options_.params, cancel, batch.usage);
    const std::string which = "reranking batch " + std::to_string(b + 1) + " of " + std::to_string(batches);
    if (!gen) {
      batch.error = Error(gen.error()).Wrap(which);
      return;
    }
    batch.scores = ParseScores(gen->text, part.size());
    if (std::none_of(batch.scores.begin(), batch.scores.end(), [](const auto& s) { return s.has_value(); })) {
      batch.error = Error::Unavailable(which + ": no score could be read from the model's reply \"" +
                                       CutText(TrimText(gen->text), 120) + "\"");
    }
  }, {}, cancel);

  bool skipped = false;
  for (std::size_t b = 0; b < batches; ++b) {
    AddUsage(r.usage, out[b].usage);
    if (out[b].error) r.errors.push_back(*out[b].error);
    skipped = skipped || !out[b].ran;
    for (std::size_t k = 0; k < out[b].scores.size(); ++k) {
      if (!out[b].scores[k]) continue;
      r.scores[b * size + k] = *out[b].scores[k];
      r.scored[b * size + k] = true;
      r.reranked = true;
    }
  }
  if (skipped) r.errors.push_back(Error::Cancelled("reranking cancelled before every batch was scored"));
  std::stable_sort(r.order.begin(), r.order.end(), [&](std::size_t a, std::size_t b) { return r.scores[a] > r.scores[b]; });
  return r;
}

}  // namespace modulo::generate
