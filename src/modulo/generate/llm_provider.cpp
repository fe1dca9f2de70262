#include "modulo/generate/llm_provider.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "modulo/core/json.h"

namespace modulo::generate {

std::optional<TokenUsage> UsageOf(const Error& e) {
  if (e.details().empty()) return std::nullopt;
  const auto d = modulo::ParseJsonOrDiscarded(e.details());
  if (!d.is_object() || !d.contains("usage") || !d["usage"].is_object()) return std::nullopt;
  TokenUsage u;
  u.prompt_tokens = std::max(d["usage"].value("prompt_tokens", 0), 0);
  u.completion_tokens = std::max(d["usage"].value("completion_tokens", 0), 0);
  if (u.prompt_tokens == 0 && u.completion_tokens == 0) return std::nullopt;
  return u;
}

void CancelToken::Cancel() noexcept {
  {
    std::lock_guard lock(mu_);
    cancelled_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
}

bool CancelToken::WaitFor(std::chrono::milliseconds d) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, d, [this] { return cancelled_.load(std::memory_order_acquire); });
}

}  // namespace modulo::generate
