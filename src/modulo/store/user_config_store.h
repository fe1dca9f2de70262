// UserConfigStore: each user's answer configuration as data — LLM providers, their models, LLM
// parameter sets, prompt templates and pipelines (RAG Modulo's /api/users/{id}/llm-providers,
// /llm-parameters, /prompt-templates, /pipelines). Implementations: SqliteUserConfigStore
// (store/sqlite/) and PostgresUserConfigStore (store/postgres/); both pass
// user_config_store_contract.h.
//
// A record is a document: the layer above (api/user_config_routes) owns the fields of each kind
// and keeps them, validated, as a JSON object in `body`; the store keeps identity, ownership,
// naming, defaults and the secret. `secret` is opaque bytes (a provider's API key, encrypted by
// the caller with the server key: the store never sees a key in clear and never interprets it).
//
// Promises:
// - Every record belongs to one user; Get/Update/Delete/SetDefault of another user's record (or
//   of an unknown id, or of a record of another kind) are NotFound, never a hint.
// - Names are unique per (user, kind, parent_id): AlreadyExists otherwise (also on Update).
// - At most one record per (user, kind, scope) has is_default: creating, updating or SetDefault
//   with is_default true clears the flag of the others of that scope in the same transaction.
// - Deleting a record deletes its children (records whose parent_id is its id: a provider's
//   models). Deleting a user deletes their records.
// - List orders by created_at_ms, then id.
//
// Thread-safety: all methods are thread-safe and block (call them on the blocking pool).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modulo/core/error.h"

namespace modulo::store {

enum class ConfigKind { kLlmProvider, kLlmModel, kLlmParameters, kPromptTemplate, kPipeline };
// "llm_provider", "llm_model", "llm_parameters", "prompt_template", "pipeline".
[[nodiscard]] std::string_view ToString(ConfigKind k) noexcept;
[[nodiscard]] std::optional<ConfigKind> ParseConfigKind(std::string_view s) noexcept;

struct ConfigRecord {
  std::string id;  // assigned by Create (a UUID) when empty
  std::string user_id;
  ConfigKind kind = ConfigKind::kLlmProvider;
  std::string parent_id;  // llm_model: its provider's id; otherwise empty
  std::string name;       // 1..255 bytes, unique per (user, kind, parent_id)
  // The default's scope: one default per (user, kind, scope). The caller chooses it: a prompt
  // template's type ("RAG_QUERY", "COT_REASONING", …), a model's provider id, otherwise empty.
  std::string scope;
  bool is_default = false;
  std::string body = "{}";  // a JSON object's text, at most 1 MiB
  std::string secret;       // opaque (binary-safe) bytes, at most 16 KiB; empty: none
  std::int64_t created_at_ms = 0;  // assigned
  std::int64_t updated_at_ms = 0;  // assigned
};

class UserConfigStore {
 public:
  virtual ~UserConfigStore() = default;

  // Assigns id (when empty) and timestamps. NotFound when the user does not exist, or when
  // parent_id is set and is not a record of the same user; AlreadyExists for a duplicate name
  // (or id); InvalidArgument for a bad name or body (ValidateConfigRecord).
  [[nodiscard]] virtual Result<ConfigRecord> Create(const ConfigRecord& r) = 0;
  [[nodiscard]] virtual Result<ConfigRecord> Get(const std::string& user_id, ConfigKind kind,
                                                 const std::string& id) = 0;
  // The user's records of `kind`; with parent_id, only that parent's children.
  [[nodiscard]] virtual Result<std::vector<ConfigRecord>> List(const std::string& user_id, ConfigKind kind,
                                                               const std::optional<std::string>& parent_id =
                                                                   std::nullopt) = 0;
  // Replaces name, scope, is_default and body of (r.user_id, r.kind, r.id); the secret too when
  // replace_secret (an empty secret then removes it). parent_id and created_at_ms never change.
  // Returns the record as stored.
  [[nodiscard]] virtual Result<ConfigRecord> Update(const ConfigRecord& r, bool replace_secret) = 0;
  [[nodiscard]] virtual Status Delete(const std::string& user_id, ConfigKind kind, const std::string& id) = 0;
  // Makes the record its scope's default (and no other). Returns it as stored.
  [[nodiscard]] virtual Result<ConfigRecord> SetDefault(const std::string& user_id, ConfigKind kind,
                                                        const std::string& id) = 0;
  // The default of (user, kind, scope); NotFound when none.
  [[nodiscard]] virtual Result<ConfigRecord> GetDefault(const std::string& user_id, ConfigKind kind,
                                                        const std::string& scope) = 0;
};

// Checks every implementation applies before it writes (InvalidArgument naming the field):
// user_id present, name 1..255 bytes of valid UTF-8 without control characters, body a JSON
// object of at most 1 MiB, secret at most 16 KiB, parent_id set exactly for kLlmModel.
[[nodiscard]] Status ValidateConfigRecord(const ConfigRecord& r);

}  // namespace modulo::store
