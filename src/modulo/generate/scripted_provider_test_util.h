// Test helper: ScriptedProvider, an in-process LlmProvider for the answer-pipeline components'
// unit tests. It answers from a queue of scripted replies or errors (or, for calls that may arrive
// in any order, from a handler that sees the messages), records every call's messages and its
// start and end times, and can take a while per call to make overlap measurable. The HTTP clients
// are tested against real protocol fakes elsewhere (llm_provider_test.cpp).
#pragma once

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "modulo/generate/llm_provider.h"

namespace modulo::generate::testing {

class ScriptedProvider : public LlmProvider {
 public:
  using Clock = std::chrono::steady_clock;
  using Handler = std::function<Result<Generation>(const std::vector<ChatMessage>& messages)>;

  struct Call {
    std::vector<ChatMessage> messages;
    GenerationParams params;
    Clock::time_point started, ended;
    // The user message (the last one), where the components put what varies.
    [[nodiscard]] const std::string& user() const { return messages.back().content; }
    [[nodiscard]] const std::string& system() const { return messages.front().content; }
  };

  // A reply; usage {0, 0} means "the provider reported none".
  void Reply(std::string text, TokenUsage usage = {3, 2}) {
    std::lock_guard lock(mu_);
    script_.push_back(Generation{std::move(text), usage, "stop", model_});
  }
  void Fail(Error e) {
    std::lock_guard lock(mu_);
    script_.push_back(std::unexpected<Error>(std::move(e)));
  }
  // Answers when the script is empty (unset: kUnavailable "script exhausted").
  void OnCall(Handler handler) {
    std::lock_guard lock(mu_);
    handler_ = std::move(handler);
  }
  // Each call takes this long (cut short by its CancelToken).
  void SetDelay(std::chrono::milliseconds delay) { delay_ = delay; }

  [[nodiscard]] std::vector<Call> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  [[nodiscard]] std::size_t call_count() const {
    std::lock_guard lock(mu_);
    return calls_.size();
  }

  [[nodiscard]] const std::string& name() const override { return name_; }
  [[nodiscard]] const std::string& model() const override { return model_; }

  Result<Generation> Generate(const std::vector<ChatMessage>& messages, const GenerationParams& params,
                              const CancelToken* cancel) override {
    Call call{messages, params, Clock::now(), {}};
    bool cancelled = cancel != nullptr && cancel->cancelled();
    if (!cancelled && delay_.count() > 0) {
      if (cancel != nullptr) {
        cancelled = cancel->WaitFor(delay_);
      } else {
        std::this_thread::sleep_for(delay_);
      }
    }
    Result<Generation> out = std::unexpected<Error>(Error::Unavailable("script exhausted"));
    Handler handler;
    {
      std::lock_guard lock(mu_);
      if (!script_.empty()) {
        out = std::move(script_.front());
        script_.pop_front();
      } else {
        handler = handler_;
      }
    }
    if (handler) out = handler(messages);
    if (cancelled) {
      out = std::unexpected<Error>(
          Error::Cancelled("cancelled").WithDetails(R"({"usage":{"prompt_tokens":5,"completion_tokens":1}})"));
    }
    call.ended = Clock::now();
    std::lock_guard lock(mu_);
    calls_.push_back(std::move(call));
    return out;
  }

  Result<Generation> Stream(const std::vector<ChatMessage>& messages, const GenerationParams& params,
                            const StreamCallback& on_delta, const CancelToken* cancel) override {
    auto out = Generate(messages, params, cancel);
    if (out && !out->text.empty() && !on_delta(out->text)) return std::unexpected<Error>(Error::Cancelled("stopped"));
    return out;
  }

 private:
  std::string name_ = "scripted";
  std::string model_ = "scripted-model";
  mutable std::mutex mu_;
  std::deque<Result<Generation>> script_;
  Handler handler_;
  std::chrono::milliseconds delay_{0};
  std::vector<Call> calls_;
};

// The largest number of calls that were in flight at once.
inline std::size_t PeakOverlap(const std::vector<ScriptedProvider::Call>& calls) {
  std::size_t peak = 0;
  for (const auto& c : calls) {
    std::size_t in_flight = 0;
    for (const auto& o : calls) in_flight += o.started <= c.started && c.started < o.ended ? 1 : 0;
    peak = std::max(peak, in_flight);
  }
  return peak;
}

// A reply from a handler.
inline Result<Generation> Text(std::string text, TokenUsage usage = {3, 2}) {
  return Generation{std::move(text), usage, "stop", "scripted-model"};
}

}  // namespace modulo::generate::testing
