#include "modulo/store/postgres/pg_user_config_store.h"

#include <span>

#include "modulo/core/clock.h"
#include "modulo/core/request_id.h"

namespace modulo::store::postgres {
namespace {

// Serializes the writes of one user's defaults (see the header). Key 19794: user configuration.
constexpr const char* kDefaultsLock = "SELECT pg_advisory_xact_lock(19794, hashtext($1))";

constexpr const char* kColumns =
    "id, user_id, kind, parent_id, name, scope, is_default, body, secret, created_at, updated_at";

ConfigRecord ReadRecord(const PgResult& r, int i) {
  ConfigRecord x;
  x.id = r.Text(i, 0);
  x.user_id = r.Text(i, 1);
  x.kind = ParseConfigKind(r.View(i, 2)).value_or(ConfigKind::kLlmProvider);
  x.parent_id = r.IsNull(i, 3) ? std::string() : r.Text(i, 3);
  x.name = r.Text(i, 4);
  x.scope = r.Text(i, 5);
  x.is_default = r.Bool(i, 6);
  x.body = r.Text(i, 7);
  const auto secret = r.Bytes(i, 8);
  if (!secret.empty()) x.secret.assign(reinterpret_cast<const char*>(secret.data()), secret.size());
  x.created_at_ms = r.Int(i, 9);
  x.updated_at_ms = r.Int(i, 10);
  return x;
}

Error NotFoundError(ConfigKind kind, const std::string& id) {
  return Error::NotFound(std::string(ToString(kind)) + " " + id + " not found");
}

// A UNIQUE violation on user_configs: the id, or the name within (user, kind, parent).
Error Conflict(const Error& e, const ConfigRecord& r) {
  if (e.message().find("user_configs_pkey") != std::string::npos) {
    return Error::AlreadyExists("a record with id " + r.id + " already exists");
  }
  return Error::AlreadyExists("a " + std::string(ToString(r.kind)) + " named '" + r.name + "' already exists");
}

// The record; FOR UPDATE inside writes.
Result<ConfigRecord> Load(Connection& c, const std::string& user_id, ConfigKind kind, const std::string& id,
                          bool for_update) {
  auto r = c.Exec(std::string("SELECT ") + kColumns +
                      " FROM user_configs WHERE id = $1 AND user_id = $2 AND kind = $3" +
                      (for_update ? " FOR UPDATE" : ""),
                  Params().Add(id).Add(user_id).Add(ToString(kind)));
  if (!r) return Fail(r.error());
  if (r->empty()) return Fail(NotFoundError(kind, id));
  return ReadRecord(*r, 0);
}

Status LockDefaults(Connection& c, const std::string& user_id) {
  if (auto l = c.Exec(kDefaultsLock, Params().Add(user_id)); !l) return Fail(l.error());
  return {};
}

// Clears the default flag of the other records of r's (user, kind, scope); under LockDefaults.
Status ClearOtherDefaults(Connection& c, const ConfigRecord& r) {
  auto u = c.Exec(
      "UPDATE user_configs SET is_default = false "
      "WHERE user_id = $1 AND kind = $2 AND scope = $3 AND is_default AND id <> $4",
      Params().Add(r.user_id).Add(ToString(r.kind)).Add(r.scope).Add(r.id));
  if (!u) return Fail(u.error());
  return {};
}

// The secret as bytea, or NULL when there is none.
void AddSecret(Params& p, const std::string& secret) {
  if (secret.empty()) {
    p.AddNull();
  } else {
    p.AddBytes(std::as_bytes(std::span(secret.data(), secret.size())));
  }
}

}  // namespace

Result<ConfigRecord> PostgresUserConfigStore::Create(const ConfigRecord& in) {
  if (auto st = ValidateConfigRecord(in); !st) return Fail(st.error());
  ConfigRecord r = in;
  if (r.id.empty()) r.id = NewUuid();
  r.created_at_ms = r.updated_at_ms = NowMs();
  auto st = db_.WithTransaction([&](Connection& c) -> Status {
    if (auto s = LockDefaults(c, r.user_id); !s) return s;
    // The user, and the parent provider when there is one, in one lookup.
    auto owners = c.Exec(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1), "
        "EXISTS (SELECT 1 FROM user_configs WHERE id = $2 AND user_id = $1 AND kind = 'llm_provider')",
        Params().Add(r.user_id).Add(r.parent_id));
    if (!owners) return Fail(owners.error());
    if (!owners->Bool(0, 0)) return Fail(Error::NotFound("user " + r.user_id + " not found"));
    if (!r.parent_id.empty() && !owners->Bool(0, 1)) return Fail(NotFoundError(ConfigKind::kLlmProvider, r.parent_id));
    if (r.is_default) {
      if (auto s = ClearOtherDefaults(c, r); !s) return s;
    }
    Params p;
    p.Add(r.id).Add(r.user_id).Add(ToString(r.kind));
    if (r.parent_id.empty()) p.AddNull();
    else p.Add(r.parent_id);
    p.Add(r.name).Add(r.scope).Add(r.is_default).Add(r.body);
    AddSecret(p, r.secret);
    p.Add(r.created_at_ms);
    auto ins = c.Exec(std::string("INSERT INTO user_configs (") + kColumns +
                          ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
                      p);
    if (!ins) {
      if (ins.error().code() == ErrorCode::kAlreadyExists) return Fail(Conflict(ins.error(), r));
      // The user or the parent went between the lookup and the insert.
      if (ins.error().code() == ErrorCode::kNotFound) return Fail(Error::NotFound("user or parent not found"));
      return Fail(ins.error());
    }
    return {};
  });
  if (!st) return Fail(st.error());
  return r;
}

Result<ConfigRecord> PostgresUserConfigStore::Get(const std::string& user_id, ConfigKind kind, const std::string& id) {
  return db_.WithRead([&](Connection& c) { return Load(c, user_id, kind, id, false); });
}

Result<std::vector<ConfigRecord>> PostgresUserConfigStore::List(const std::string& user_id, ConfigKind kind,
                                                                const std::optional<std::string>& parent_id) {
  return db_.WithRead([&](Connection& c) -> Result<std::vector<ConfigRecord>> {
    auto r = c.Exec(std::string("SELECT ") + kColumns +
                        " FROM user_configs WHERE user_id = $1 AND kind = $2 AND ($3::text IS NULL OR parent_id = $3) "
                        "ORDER BY created_at, id",
                    Params().Add(user_id).Add(ToString(kind)).Add(parent_id));
    if (!r) return Fail(r.error());
    std::vector<ConfigRecord> out;
    for (int i = 0; i < r->rows(); ++i) out.push_back(ReadRecord(*r, i));
    return out;
  }, [](const std::vector<ConfigRecord>& found) { return found.empty(); });
}

Result<ConfigRecord> PostgresUserConfigStore::Update(const ConfigRecord& r, bool replace_secret) {
  return db_.WithTransaction([&](Connection& c) -> Result<ConfigRecord> {
    // The defaults lock before the row lock, in every write: no lock cycles.
    if (auto st = LockDefaults(c, r.user_id); !st) return Fail(st.error());
    auto stored = Load(c, r.user_id, r.kind, r.id, true);
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
      if (auto st = ClearOtherDefaults(c, next); !st) return Fail(st.error());
    }
    Params p;
    p.Add(next.name).Add(next.scope).Add(next.is_default).Add(next.body);
    AddSecret(p, next.secret);
    p.Add(next.updated_at_ms).Add(next.id);
    auto u = c.Exec(
        "UPDATE user_configs SET name = $1, scope = $2, is_default = $3, body = $4, secret = $5, updated_at = $6 "
        "WHERE id = $7",
        p);
    if (!u) {
      if (u.error().code() == ErrorCode::kAlreadyExists) return Fail(Conflict(u.error(), next));
      return Fail(u.error());
    }
    return next;
  });
}

Status PostgresUserConfigStore::Delete(const std::string& user_id, ConfigKind kind, const std::string& id) {
  return db_.WithWrite([&](Connection& c) -> Status {
    // A provider's models go with it (ON DELETE CASCADE).
    auto r = c.Exec("DELETE FROM user_configs WHERE id = $1 AND user_id = $2 AND kind = $3",
                    Params().Add(id).Add(user_id).Add(ToString(kind)));
    if (!r) return Fail(r.error());
    if (r->affected() == 0) return Fail(NotFoundError(kind, id));
    return {};
  });
}

Result<ConfigRecord> PostgresUserConfigStore::SetDefault(const std::string& user_id, ConfigKind kind,
                                                         const std::string& id) {
  return db_.WithTransaction([&](Connection& c) -> Result<ConfigRecord> {
    if (auto st = LockDefaults(c, user_id); !st) return Fail(st.error());
    auto r = Load(c, user_id, kind, id, true);
    if (!r) return r;
    r->is_default = true;
    r->updated_at_ms = NowMs();
    if (auto st = ClearOtherDefaults(c, *r); !st) return Fail(st.error());
    auto u = c.Exec("UPDATE user_configs SET is_default = true, updated_at = $1 WHERE id = $2",
                    Params().Add(r->updated_at_ms).Add(r->id));
    if (!u) return Fail(u.error());
    return r;
  });
}

Result<ConfigRecord> PostgresUserConfigStore::GetDefault(const std::string& user_id, ConfigKind kind,
                                                         const std::string& scope) {
  return db_.WithRead([&](Connection& c) -> Result<ConfigRecord> {
    auto r = c.Exec(std::string("SELECT ") + kColumns +
                        " FROM user_configs WHERE user_id = $1 AND kind = $2 AND scope = $3 AND is_default",
                    Params().Add(user_id).Add(ToString(kind)).Add(scope));
    if (!r) return Fail(r.error());
    if (r->empty()) {
      return Fail(Error::NotFound("no default " + std::string(ToString(kind)) + " for scope '" + scope + "'"));
    }
    return ReadRecord(*r, 0);
  });
}

}  // namespace modulo::store::postgres
