#include "modulo/store/user_config_store.h"

#include <array>

#include <nlohmann/json.hpp>

#include "modulo/core/json.h"
#include "modulo/store/postgres/pg.h"

namespace modulo::store {
namespace {

constexpr std::size_t kMaxNameBytes = 255;
constexpr std::size_t kMaxScopeBytes = 255;
constexpr std::size_t kMaxBodyBytes = std::size_t{1} << 20;
constexpr std::size_t kMaxSecretBytes = std::size_t{16} << 10;

constexpr std::array kKinds = {ConfigKind::kLlmProvider, ConfigKind::kLlmModel, ConfigKind::kLlmParameters,
                               ConfigKind::kPromptTemplate, ConfigKind::kPipeline};

// Valid UTF-8 without NUL: what both databases store as text unchanged.
bool IsStorableText(std::string_view s) { return postgres::SanitizeUtf8(s) == s; }

// C0 controls, DEL, and C1 controls (U+0080..U+009F, encoded C2 80..C2 9F).
bool HasControlCharacter(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) return true;
    if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) <= 0x9F) return true;
  }
  return false;
}

}  // namespace

std::string_view ToString(ConfigKind k) noexcept {
  switch (k) {
    case ConfigKind::kLlmProvider: return "llm_provider";
    case ConfigKind::kLlmModel: return "llm_model";
    case ConfigKind::kLlmParameters: return "llm_parameters";
    case ConfigKind::kPromptTemplate: return "prompt_template";
    case ConfigKind::kPipeline: return "pipeline";
  }
  return "";
}

std::optional<ConfigKind> ParseConfigKind(std::string_view s) noexcept {
  for (auto k : kKinds) {
    if (ToString(k) == s) return k;
  }
  return std::nullopt;
}

Status ValidateConfigRecord(const ConfigRecord& r) {
  if (ToString(r.kind).empty()) return Fail(Error::InvalidArgument("kind: unknown configuration kind"));
  if (r.user_id.empty()) return Fail(Error::InvalidArgument("user_id must not be empty"));
  if (r.name.empty() || r.name.size() > kMaxNameBytes) {
    return Fail(Error::InvalidArgument("name must be 1 to 255 bytes, not " + std::to_string(r.name.size())));
  }
  if (!IsStorableText(r.name) || HasControlCharacter(r.name)) {
    return Fail(Error::InvalidArgument("name must be valid UTF-8 without control characters"));
  }
  if (r.scope.size() > kMaxScopeBytes || !IsStorableText(r.scope)) {
    return Fail(Error::InvalidArgument("scope must be at most 255 bytes of valid UTF-8"));
  }
  if (r.body.size() > kMaxBodyBytes) {
    return Fail(Error::InvalidArgument("body must be at most 1 MiB, not " + std::to_string(r.body.size()) + " bytes"));
  }
  if (auto body = modulo::ParseJsonOrDiscarded(r.body); body.is_discarded() || !body.is_object()) {
    return Fail(Error::InvalidArgument("body must be a JSON object"));
  }
  if (r.secret.size() > kMaxSecretBytes) {
    return Fail(
        Error::InvalidArgument("secret must be at most 16 KiB, not " + std::to_string(r.secret.size()) + " bytes"));
  }
  if (r.kind == ConfigKind::kLlmModel && r.parent_id.empty()) {
    return Fail(Error::InvalidArgument("parent_id: an llm_model needs its provider's id"));
  }
  if (r.kind != ConfigKind::kLlmModel && !r.parent_id.empty()) {
    return Fail(Error::InvalidArgument(std::string("parent_id: a ") + std::string(ToString(r.kind)) +
                                       " has no parent"));
  }
  return {};
}

}  // namespace modulo::store
