#include "modulo/generate/llm_provider.h"

namespace modulo::generate {

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
