#include "modulo/generate/provider_registry.h"

#include <openssl/sha.h>

#include <cstdio>

#include "modulo/generate/anthropic_messages.h"
#include "modulo/generate/openai_chat.h"
#include "modulo/generate/watsonx_text.h"

namespace modulo::generate {
namespace {

std::string Sha256Hex(const std::string& s) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
  std::string hex;
  hex.reserve(2 * SHA256_DIGEST_LENGTH);
  for (unsigned char b : digest) {
    char buf[3];
    std::snprintf(buf, sizeof buf, "%02x", b);
    hex += buf;
  }
  return hex;
}

std::string Trim(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

template <typename T>
Result<std::unique_ptr<LlmProvider>> Upcast(Result<std::unique_ptr<T>> r) {
  if (!r) return Fail(std::move(r.error()));
  return std::unique_ptr<LlmProvider>(std::move(*r));
}

}  // namespace

Result<std::unique_ptr<LlmProvider>> MakeProvider(const ProviderConfig& config) {
  if (config.type == "openai") return Upcast(OpenAiChatProvider::Create(config));
  if (config.type == "anthropic") return Upcast(AnthropicMessagesProvider::Create(config));
  if (config.type == "watsonx") return Upcast(WatsonxTextProvider::Create(config));
  return Fail(Error::InvalidArgument("unknown LLM provider type '" + config.type +
                                     "' (expected openai, anthropic or watsonx)"));
}

ProviderRegistry::ProviderRegistry(Factory factory) : factory_(std::move(factory)) {}

std::string ProviderRegistry::Key(const ProviderConfig& c) {
  std::string key;
  for (const std::string& part :
       {c.type, Trim(c.base_url), c.model, Sha256Hex(c.api_key), c.project_id, Trim(c.iam_url),
        std::string(c.egress ? "user" : "server")}) {
    key += part;
    key += '\x1f';
  }
  return key;
}

Result<std::shared_ptr<LlmProvider>> ProviderRegistry::Get(const ProviderConfig& config) {
  const std::string key = Key(config);
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard lock(mu_);
    auto& slot = entries_[key];
    if (!slot) slot = std::make_shared<Entry>();
    entry = slot;
  }
  std::lock_guard lock(entry->mu);  // concurrent first calls for this key wait here
  if (entry->provider) return entry->provider;
  auto made = factory_(config);
  if (!made) return Fail(std::move(made.error()));
  entry->provider = std::shared_ptr<LlmProvider>(std::move(*made));
  return entry->provider;
}

void ProviderRegistry::Invalidate(const ProviderConfig& config) {
  std::lock_guard lock(mu_);
  entries_.erase(Key(config));
}

void ProviderRegistry::Clear() {
  std::lock_guard lock(mu_);
  entries_.clear();
}

std::size_t ProviderRegistry::size() const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (const auto& [key, entry] : entries_) {
    std::lock_guard entry_lock(entry->mu);
    if (entry->provider) ++n;
  }
  return n;
}

}  // namespace modulo::generate
