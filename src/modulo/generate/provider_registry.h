// ProviderRegistry: the provider factory cache. Get() returns one shared client per
// configuration key — (type, base_url without trailing '/', model, SHA-256 of api_key,
// project_id, iam_url) — created on first use; concurrent first calls for one key create exactly
// one client (the others wait for it; other keys are not held up). A failed creation is not
// cached. Invalidate() drops a key after its configuration changed (e.g. a new timeout or a
// rotated key); callers still holding the old client keep a working object.
//
// MakeProvider() is the plain factory: "openai" | "anthropic" | "watsonx".
//
// Thread-safety: all members may be called from any thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "modulo/generate/llm_provider.h"

namespace modulo::generate {

// A new client for `config` (no network traffic). kInvalidArgument for an unknown type or a
// missing required field.
[[nodiscard]] Result<std::unique_ptr<LlmProvider>> MakeProvider(const ProviderConfig& config);

class ProviderRegistry {
 public:
  using Factory = std::function<Result<std::unique_ptr<LlmProvider>>(const ProviderConfig&)>;

  // `factory` defaults to MakeProvider (tests inject their own).
  explicit ProviderRegistry(Factory factory = MakeProvider);

  [[nodiscard]] Result<std::shared_ptr<LlmProvider>> Get(const ProviderConfig& config);
  // Forgets the client for config's key (no-op when absent).
  void Invalidate(const ProviderConfig& config);
  // Forgets every client.
  void Clear();
  [[nodiscard]] std::size_t size() const;

  // The cache key (the API key appears only as its SHA-256).
  [[nodiscard]] static std::string Key(const ProviderConfig& config);

 private:
  struct Entry {
    std::mutex mu;
    std::shared_ptr<LlmProvider> provider;
  };
  Factory factory_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;
};

}  // namespace modulo::generate
