#include "modulo/store/sqlite/sqlite_user_config_store.h"

#include <span>

#include "modulo/core/clock.h"
#include "modulo/core/request_id.h"

namespace modulo::store::sqlite {
namespace {

constexpr const char* kColumns =
    "id, user_id, kind, parent_id, name, scope, is_default, body, secret, created_at, updated_at";

ConfigRecord ReadRecord(const Statement& s) {
  ConfigRecord r;
  r.id = s.Text(0);
  r.user_id = s.Text(1);
  r.kind = ParseConfigKind(s.Text(2)).value_or(ConfigKind::kLlmProvider);
  r.parent_id = s.Text(3);  // "" for NULL
  r.name = s.Text(4);
  r.scope = s.Text(5);
  r.is_default = s.Int(6) != 0;
  r.body = s.Text(7);
  const auto secret = s.Blob(8);
  if (!secret.empty()) r.secret.assign(reinterpret_cast<const char*>(secret.data()), secret.size());
  r.created_at_ms = s.Int(9);
  r.updated_at_ms = s.Int(10);
  return r;
}

Error NotFoundError(ConfigKind kind, const std::string& id) {
  return Error::NotFound(std::string(ToString(kind)) + " " + id + " not found");
}

// A UNIQUE violation on user_configs: the id, or the name within (user, kind, parent).
Error Conflict(const Error& e, const ConfigRecord& r) {
  if (e.message().find("user_configs.id") != std::string::npos) {
    return Error::AlreadyExists("a record with id " + r.id + " already exists");
  }
  return Error::AlreadyExists("a " + std::string(ToString(r.kind)) + " named '" + r.name + "' already exists");
}

Result<ConfigRecord> Load(Connection& c, const std::string& user_id, ConfigKind kind, const std::string& id) {
  auto s =
      c.Prepare(std::string("SELECT ") + kColumns + " FROM user_configs WHERE id = ? AND user_id = ? AND kind = ?");
  if (!s) return Fail(s.error());
  s->Bind(1, id).Bind(2, user_id).Bind(3, ToString(kind));
  return s->One(ReadRecord, NotFoundError(kind, id));
}

// Clears the default flag of the other records of r's (user, kind, scope).
Status ClearOtherDefaults(Connection& c, const ConfigRecord& r) {
  auto s = c.Prepare(
      "UPDATE user_configs SET is_default = 0 "
      "WHERE user_id = ? AND kind = ? AND scope = ? AND is_default AND id <> ?");
  if (!s) return Fail(s.error());
  return s->Bind(1, r.user_id).Bind(2, ToString(r.kind)).Bind(3, r.scope).Bind(4, r.id).Run();
}

// Binds the secret as a BLOB, or NULL when there is none.
void BindSecret(Statement& s, int index, const std::string& secret) {
  if (secret.empty()) {
    s.BindNull(index);
  } else {
    s.BindBlob(index, std::as_bytes(std::span(secret.data(), secret.size())));
  }
}

}  // namespace

Result<ConfigRecord> SqliteUserConfigStore::Create(const ConfigRecord& in) {
  if (auto st = ValidateConfigRecord(in); !st) return Fail(st.error());
  ConfigRecord r = in;
  if (r.id.empty()) r.id = NewUuid();
  r.created_at_ms = r.updated_at_ms = NowMs();
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  // The user, and the parent provider when there is one, in one lookup.
  auto owners = c->Prepare(
      "SELECT (SELECT 1 FROM users WHERE id = ?1), "
      "(SELECT 1 FROM user_configs WHERE id = ?2 AND user_id = ?1 AND kind = 'llm_provider')");
  if (!owners) return Fail(owners.error());
  owners->Bind(1, r.user_id).Bind(2, r.parent_id);
  auto found = owners->One([](const Statement& s) { return std::pair{!s.IsNull(0), !s.IsNull(1)}; },
                           Error::Internal("the owner lookup returned no row"));
  if (!found) return Fail(found.error());
  if (!found->first) return Fail(Error::NotFound("user " + r.user_id + " not found"));
  if (!r.parent_id.empty() && !found->second) return Fail(NotFoundError(ConfigKind::kLlmProvider, r.parent_id));
  if (r.is_default) {
    if (auto st = ClearOtherDefaults(*c, r); !st) return Fail(st.error());
  }
  auto s = c->Prepare(std::string("INSERT INTO user_configs (") + kColumns +
                      ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!s) return Fail(s.error());
  s->Bind(1, r.id).Bind(2, r.user_id).Bind(3, ToString(r.kind));
  if (r.parent_id.empty()) {
    s->BindNull(4);
  } else {
    s->Bind(4, r.parent_id);
  }
  s->Bind(5, r.name).Bind(6, r.scope).Bind(7, r.is_default ? 1 : 0).Bind(8, r.body);
  BindSecret(*s, 9, r.secret);
  if (auto st = s->Bind(10, r.created_at_ms).Bind(11, r.updated_at_ms).Run(); !st) {
    if (st.error().code() == ErrorCode::kAlreadyExists) return Fail(Conflict(st.error(), r));
    return Fail(st.error());
  }
  if (auto st = tx->Commit(); !st) return Fail(st.error());
  return r;
}

Result<ConfigRecord> SqliteUserConfigStore::Get(const std::string& user_id, ConfigKind kind, const std::string& id) {
  auto c = db_.Acquire();
  return Load(*c, user_id, kind, id);
}

Result<std::vector<ConfigRecord>> SqliteUserConfigStore::List(const std::string& user_id, ConfigKind kind,
                                                              const std::optional<std::string>& parent_id) {
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kColumns +
                      " FROM user_configs WHERE user_id = ?1 AND kind = ?2 AND (?3 IS NULL OR parent_id = ?3) "
                      "ORDER BY created_at, id");
  if (!s) return Fail(s.error());
  s->Bind(1, user_id).Bind(2, ToString(kind)).Bind(3, parent_id);
  std::vector<ConfigRecord> out;
  if (auto st = s->ForEachRow([&](const Statement& row) { out.push_back(ReadRecord(row)); }); !st) {
    return Fail(st.error());
  }
  return out;
}

Result<ConfigRecord> SqliteUserConfigStore::Update(const ConfigRecord& r, bool replace_secret) {
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  auto stored = Load(*c, r.user_id, r.kind, r.id);
  if (!stored) return stored;
  ConfigRecord next = *stored;
  next.name = r.name;
  next.scope = r.scope;
  next.is_default = r.is_default;
  next.body = r.body;
  if (replace_secret) next.secret = r.secret;
  next.updated_at_ms = NowMs();
  if (auto st = ValidateConfigRecord(next); !st) return Fail(st.error());
  if (next.is_default) {
    if (auto st = ClearOtherDefaults(*c, next); !st) return Fail(st.error());
  }
  auto s = c->Prepare(
      "UPDATE user_configs SET name = ?, scope = ?, is_default = ?, body = ?, secret = ?, updated_at = ? WHERE id = ?");
  if (!s) return Fail(s.error());
  s->Bind(1, next.name).Bind(2, next.scope).Bind(3, next.is_default ? 1 : 0).Bind(4, next.body);
  BindSecret(*s, 5, next.secret);
  if (auto st = s->Bind(6, next.updated_at_ms).Bind(7, next.id).Run(); !st) {
    if (st.error().code() == ErrorCode::kAlreadyExists) return Fail(Conflict(st.error(), next));
    return Fail(st.error());
  }
  if (auto st = tx->Commit(); !st) return Fail(st.error());
  return next;
}

Status SqliteUserConfigStore::Delete(const std::string& user_id, ConfigKind kind, const std::string& id) {
  auto c = db_.Acquire();
  // A provider's models go with it (ON DELETE CASCADE).
  auto s = c->Prepare("DELETE FROM user_configs WHERE id = ? AND user_id = ? AND kind = ?");
  if (!s) return Fail(s.error());
  if (auto st = s->Bind(1, id).Bind(2, user_id).Bind(3, ToString(kind)).Run(); !st) return st;
  if (c->Changes() == 0) return Fail(NotFoundError(kind, id));
  return {};
}

Result<ConfigRecord> SqliteUserConfigStore::SetDefault(const std::string& user_id, ConfigKind kind,
                                                       const std::string& id) {
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  auto r = Load(*c, user_id, kind, id);
  if (!r) return r;
  r->is_default = true;
  r->updated_at_ms = NowMs();
  if (auto st = ClearOtherDefaults(*c, *r); !st) return Fail(st.error());
  auto s = c->Prepare("UPDATE user_configs SET is_default = 1, updated_at = ? WHERE id = ?");
  if (!s) return Fail(s.error());
  if (auto st = s->Bind(1, r->updated_at_ms).Bind(2, r->id).Run(); !st) return Fail(st.error());
  if (auto st = tx->Commit(); !st) return Fail(st.error());
  return r;
}

Result<ConfigRecord> SqliteUserConfigStore::GetDefault(const std::string& user_id, ConfigKind kind,
                                                       const std::string& scope) {
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kColumns +
                      " FROM user_configs WHERE user_id = ? AND kind = ? AND scope = ? AND is_default");
  if (!s) return Fail(s.error());
  s->Bind(1, user_id).Bind(2, ToString(kind)).Bind(3, scope);
  return s->One(ReadRecord,
                Error::NotFound("no default " + std::string(ToString(kind)) + " for scope '" + scope + "'"));
}

}  // namespace modulo::store::sqlite
