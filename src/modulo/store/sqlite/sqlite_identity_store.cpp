#include "modulo/store/sqlite/sqlite_identity_store.h"

#include <algorithm>
#include <cctype>
#include <limits>

#include <nlohmann/json.hpp>

#include "modulo/core/clock.h"
#include "modulo/core/request_id.h"

namespace modulo::store::sqlite {
namespace {

constexpr const char* kUserColumns =
    "id, name, email, role, kind, external_subject, disabled, created_at, updated_at";

User ReadUser(const Statement& s) {
  User u;
  u.id = s.Text(0);
  u.name = s.Text(1);
  u.email = s.Text(2);
  u.role = s.Text(3);
  u.kind = s.Text(4);
  u.external_subject = s.IsNull(5) ? std::string() : s.Text(5);
  u.disabled = s.Int(6) != 0;
  u.created_at_ms = s.Int(7);
  u.updated_at_ms = s.Int(8);
  return u;
}

constexpr const char* kTeamColumns = "id, name, description, created_at, updated_at";

// Reads a team from columns first.. first+4.
Team ReadTeam(const Statement& s, int first = 0) {
  Team t;
  t.id = s.Text(first);
  t.name = s.Text(first + 1);
  t.description = s.Text(first + 2);
  t.created_at_ms = s.Int(first + 3);
  t.updated_at_ms = s.Int(first + 4);
  return t;
}

constexpr const char* kApiKeyColumns =
    "key_id, user_id, name, prefix, hash, created_at, expires_at, last_used_at, revoked_at";

ApiKeyRecord ReadApiKey(const Statement& s, int first = 0) {
  ApiKeyRecord k;
  k.key_id = s.Text(first);
  k.user_id = s.Text(first + 1);
  k.name = s.Text(first + 2);
  k.prefix = s.Text(first + 3);
  k.hash = s.Text(first + 4);
  k.created_at_ms = s.Int(first + 5);
  k.expires_at_ms = s.Int(first + 6);
  k.last_used_at_ms = s.Int(first + 7);
  k.revoked_at_ms = s.Int(first + 8);
  return k;
}

constexpr const char* kAuditColumns = "seq, at, principal_id, action, resource, outcome, detail, remote_address";

AuditEntry ReadAudit(const Statement& s) {
  AuditEntry e;
  e.seq = s.Int(0);
  e.at_ms = s.Int(1);
  e.principal_id = s.Text(2);
  e.action = s.Text(3);
  e.resource = s.Text(4);
  e.outcome = s.Text(5);
  e.detail = s.Text(6);
  e.remote_address = s.Text(7);
  return e;
}

// A UNIQUE violation on the users table, named after the column that collided.
Error UserConflict(const Error& e, const User& u) {
  if (e.message().find("external_subject") != std::string::npos) {
    return Error::AlreadyExists("a user with external subject '" + u.external_subject + "' already exists");
  }
  return Error::AlreadyExists("a user named '" + u.name + "' already exists");
}

// True when `sql` (one `?` bound to `id`) returns a row.
Result<bool> Exists(Connection& c, const char* sql, const std::string& id) {
  auto q = c.Prepare(sql);
  if (!q) return Fail(q.error());
  q->Bind(1, id);
  auto row = q->Step();
  if (!row) return Fail(row.error());
  q->Reset();
  return *row;
}

Status RequireUser(Connection& c, const std::string& user_id) {
  auto e = Exists(c, "SELECT 1 FROM users WHERE id = ?", user_id);
  if (!e) return Fail(e.error());
  if (!*e) return Fail(Error::NotFound("user " + user_id + " not found"));
  return {};
}

Status RequireTeam(Connection& c, const std::string& team_id) {
  auto e = Exists(c, "SELECT 1 FROM teams WHERE id = ?", team_id);
  if (!e) return Fail(e.error());
  if (!*e) return Fail(Error::NotFound("team " + team_id + " not found"));
  return {};
}

Status RequireCollection(Connection& c, const std::string& collection_id) {
  auto e = Exists(c, "SELECT 1 FROM collections WHERE id = ?", collection_id);
  if (!e) return Fail(e.error());
  if (!*e) return Fail(Error::NotFound("collection " + collection_id + " not found"));
  return {};
}

// The user's teams, from team_members (authoritative; see the header). Used as a CTE by the
// access queries, where ?1 is the user id.
constexpr const char* kMyTeams = "my_teams (team_id, role) AS (SELECT team_id, role FROM team_members WHERE user_id = ?1)";

// A grant's level as a number comparable with AccessLevel.
constexpr const char* kGrantLevel = "CASE g.level WHEN 'admin' THEN 3 WHEN 'write' THEN 2 WHEN 'read' THEN 1 ELSE 0 END";

std::int64_t ClampLimit(std::size_t limit) {
  return static_cast<std::int64_t>(
      std::min<std::size_t>(limit, static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Users

Result<User> SqliteIdentityStore::CreateUser(const User& in) {
  if (auto st = ValidateUser(in); !st) return Fail(st.error());
  User u = in;
  u.id = in.id.empty() ? NewUuid() : in.id;  // a given id is kept (the local user of MODULO_AUTH=none)
  u.created_at_ms = u.updated_at_ms = NowMs();
  auto c = db_.Acquire();
  auto s = c->Prepare(
      "INSERT INTO users (id, name, email, role, kind, external_subject, disabled, created_at, updated_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!s) return Fail(s.error());
  s->Bind(1, u.id).Bind(2, u.name).Bind(3, u.email).Bind(4, u.role).Bind(5, u.kind);
  if (u.external_subject.empty()) {
    s->BindNull(6);  // NULLs do not collide under UNIQUE
  } else {
    s->Bind(6, u.external_subject);
  }
  auto st = s->Bind(7, u.disabled ? 1 : 0).Bind(8, u.created_at_ms).Bind(9, u.updated_at_ms).Run();
  if (!st) {
    if (st.error().code() == ErrorCode::kAlreadyExists) return Fail(UserConflict(st.error(), u));
    return Fail(st.error());
  }
  return u;
}

Result<User> SqliteIdentityStore::GetUser(const std::string& id) {
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kUserColumns + " FROM users WHERE id = ?");
  if (!s) return Fail(s.error());
  s->Bind(1, id);
  return s->One(ReadUser, Error::NotFound("user " + id + " not found"));
}

Result<User> SqliteIdentityStore::FindUserByName(const std::string& name) {
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kUserColumns + " FROM users WHERE name = ?");
  if (!s) return Fail(s.error());
  s->Bind(1, name);
  return s->One(ReadUser, Error::NotFound("no user named '" + name + "'"));
}

Result<User> SqliteIdentityStore::FindUserBySubject(const std::string& external_subject) {
  if (external_subject.empty()) return Fail(Error::NotFound("no user with an empty external subject"));
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kUserColumns + " FROM users WHERE external_subject = ?");
  if (!s) return Fail(s.error());
  s->Bind(1, external_subject);
  return s->One(ReadUser, Error::NotFound("no user with external subject '" + external_subject + "'"));
}

Result<std::vector<User>> SqliteIdentityStore::ListUsers() {
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kUserColumns + " FROM users ORDER BY name");
  if (!s) return Fail(s.error());
  std::vector<User> out;
  if (auto st = s->ForEachRow([&](const Statement& row) { out.push_back(ReadUser(row)); }); !st) {
    return Fail(st.error());
  }
  return out;
}

Result<User> SqliteIdentityStore::UpdateUser(const User& u) {
  if (auto st = ValidateUser(u); !st) return Fail(st.error());
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  auto s = c->Prepare("UPDATE users SET name = ?, email = ?, role = ?, disabled = ?, updated_at = ? WHERE id = ?");
  if (!s) return Fail(s.error());
  auto st = s->Bind(1, u.name).Bind(2, u.email).Bind(3, u.role).Bind(4, u.disabled ? 1 : 0).Bind(5, NowMs())
                .Bind(6, u.id)
                .Run();
  if (!st) {
    if (st.error().code() == ErrorCode::kAlreadyExists) return Fail(UserConflict(st.error(), u));
    return Fail(st.error());
  }
  if (c->Changes() == 0) return Fail(Error::NotFound("user " + u.id + " not found"));
  auto q = c->Prepare(std::string("SELECT ") + kUserColumns + " FROM users WHERE id = ?");
  if (!q) return Fail(q.error());
  q->Bind(1, u.id);
  auto out = q->One(ReadUser, Error::NotFound("user " + u.id + " not found"));
  if (!out) return out;
  if (auto cst = tx->Commit(); !cst) return Fail(cst.error());
  return out;
}

Status SqliteIdentityStore::DeleteUser(const std::string& id) {
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  // Keys, memberships and quota overrides go with the user (ON DELETE CASCADE).
  auto d = c->Prepare("DELETE FROM users WHERE id = ?");
  if (!d) return Fail(d.error());
  if (auto st = d->Bind(1, id).Run(); !st) return st;
  if (c->Changes() == 0) return Fail(Error::NotFound("user " + id + " not found"));
  auto g = c->Prepare("DELETE FROM collection_grants WHERE grantee_type = 'user' AND grantee_id = ?");
  if (!g) return Fail(g.error());
  if (auto st = g->Bind(1, id).Run(); !st) return st;
  auto t = c->Prepare("DELETE FROM llm_token_usage WHERE user_id = ?");
  if (!t) return Fail(t.error());
  if (auto st = t->Bind(1, id).Run(); !st) return st;
  return tx->Commit();
}

// ---------------------------------------------------------------------------------------------
// Teams

Result<Team> SqliteIdentityStore::CreateTeam(const Team& in, const std::string& creator_user_id) {
  if (in.name.empty()) return Fail(Error::InvalidArgument("team name must not be empty"));
  Team t = in;
  t.id = NewUuid();
  t.created_at_ms = t.updated_at_ms = NowMs();
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  if (auto st = RequireUser(*c, creator_user_id); !st) return Fail(st.error());
  auto s = c->Prepare("INSERT INTO teams (id, name, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?)");
  if (!s) return Fail(s.error());
  auto st = s->Bind(1, t.id).Bind(2, t.name).Bind(3, t.description).Bind(4, t.created_at_ms).Bind(5, t.updated_at_ms)
                .Run();
  if (!st) {
    if (st.error().code() == ErrorCode::kAlreadyExists) {
      return Fail(Error::AlreadyExists("a team named '" + t.name + "' already exists"));
    }
    return Fail(st.error());
  }
  auto m = c->Prepare("INSERT INTO team_members (team_id, user_id, role) VALUES (?, ?, 'admin')");
  if (!m) return Fail(m.error());
  if (auto mst = m->Bind(1, t.id).Bind(2, creator_user_id).Run(); !mst) return Fail(mst.error());
  if (auto cst = tx->Commit(); !cst) return Fail(cst.error());
  return t;
}

Result<Team> SqliteIdentityStore::GetTeam(const std::string& id) {
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kTeamColumns + " FROM teams WHERE id = ?");
  if (!s) return Fail(s.error());
  s->Bind(1, id);
  return s->One([](const Statement& row) { return ReadTeam(row); }, Error::NotFound("team " + id + " not found"));
}

Result<std::vector<Team>> SqliteIdentityStore::ListTeams(const std::string& user_id) {
  auto c = db_.Acquire();
  std::vector<Team> out;
  if (user_id.empty()) {
    auto s = c->Prepare(std::string("SELECT ") + kTeamColumns + " FROM teams ORDER BY name");
    if (!s) return Fail(s.error());
    if (auto st = s->ForEachRow([&](const Statement& row) { out.push_back(ReadTeam(row)); }); !st) {
      return Fail(st.error());
    }
    return out;
  }
  // One query: a row per team of the user, or one row of NULLs when the user has none; no row
  // at all when the user does not exist.
  auto s = c->Prepare(
      "SELECT t.id, t.name, t.description, t.created_at, t.updated_at FROM users u "
      "LEFT JOIN team_members m ON m.user_id = u.id LEFT JOIN teams t ON t.id = m.team_id "
      "WHERE u.id = ? ORDER BY t.name");
  if (!s) return Fail(s.error());
  s->Bind(1, user_id);
  bool user_found = false;
  if (auto st = s->ForEachRow([&](const Statement& row) {
        user_found = true;
        if (!row.IsNull(0)) out.push_back(ReadTeam(row));
      });
      !st) {
    return Fail(st.error());
  }
  if (!user_found) return Fail(Error::NotFound("user " + user_id + " not found"));
  return out;
}

Result<Team> SqliteIdentityStore::UpdateTeam(const Team& t) {
  if (t.name.empty()) return Fail(Error::InvalidArgument("team name must not be empty"));
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  auto s = c->Prepare("UPDATE teams SET name = ?, description = ?, updated_at = ? WHERE id = ?");
  if (!s) return Fail(s.error());
  auto st = s->Bind(1, t.name).Bind(2, t.description).Bind(3, NowMs()).Bind(4, t.id).Run();
  if (!st) {
    if (st.error().code() == ErrorCode::kAlreadyExists) {
      return Fail(Error::AlreadyExists("a team named '" + t.name + "' already exists"));
    }
    return Fail(st.error());
  }
  if (c->Changes() == 0) return Fail(Error::NotFound("team " + t.id + " not found"));
  auto q = c->Prepare(std::string("SELECT ") + kTeamColumns + " FROM teams WHERE id = ?");
  if (!q) return Fail(q.error());
  q->Bind(1, t.id);
  auto out = q->One([](const Statement& row) { return ReadTeam(row); }, Error::NotFound("team " + t.id + " not found"));
  if (!out) return out;
  if (auto cst = tx->Commit(); !cst) return Fail(cst.error());
  return out;
}

Status SqliteIdentityStore::DeleteTeam(const std::string& id) {
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  // Memberships go with the team (ON DELETE CASCADE); collections it owns stay (see the header).
  auto d = c->Prepare("DELETE FROM teams WHERE id = ?");
  if (!d) return Fail(d.error());
  if (auto st = d->Bind(1, id).Run(); !st) return st;
  if (c->Changes() == 0) return Fail(Error::NotFound("team " + id + " not found"));
  auto g = c->Prepare("DELETE FROM collection_grants WHERE grantee_type = 'team' AND grantee_id = ?");
  if (!g) return Fail(g.error());
  if (auto st = g->Bind(1, id).Run(); !st) return st;
  return tx->Commit();
}

Status SqliteIdentityStore::SetTeamMember(const TeamMember& m) {
  if (!IsOneOf(m.role, {"member", "admin"})) {
    return Fail(Error::InvalidArgument("team role must be 'member' or 'admin', not '" + m.role + "'"));
  }
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  if (auto st = RequireTeam(*c, m.team_id); !st) return st;
  if (auto st = RequireUser(*c, m.user_id); !st) return st;
  auto s = c->Prepare(
      "INSERT INTO team_members (team_id, user_id, role) VALUES (?, ?, ?) "
      "ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role");
  if (!s) return Fail(s.error());
  if (auto st = s->Bind(1, m.team_id).Bind(2, m.user_id).Bind(3, m.role).Run(); !st) return st;
  return tx->Commit();
}

Status SqliteIdentityStore::RemoveTeamMember(const std::string& team_id, const std::string& user_id) {
  auto c = db_.Acquire();
  auto s = c->Prepare("DELETE FROM team_members WHERE team_id = ? AND user_id = ?");
  if (!s) return Fail(s.error());
  if (auto st = s->Bind(1, team_id).Bind(2, user_id).Run(); !st) return st;
  if (c->Changes() == 0) {
    return Fail(Error::NotFound("user " + user_id + " is not a member of team " + team_id));
  }
  return {};
}

Result<std::vector<TeamMember>> SqliteIdentityStore::ListTeamMembers(const std::string& team_id) {
  auto c = db_.Acquire();
  auto s = c->Prepare(
      "SELECT t.id, m.user_id, m.role FROM teams t LEFT JOIN team_members m ON m.team_id = t.id "
      "WHERE t.id = ? ORDER BY m.user_id");
  if (!s) return Fail(s.error());
  s->Bind(1, team_id);
  bool team_found = false;
  std::vector<TeamMember> out;
  if (auto st = s->ForEachRow([&](const Statement& row) {
        team_found = true;
        if (!row.IsNull(1)) out.push_back(TeamMember{row.Text(0), row.Text(1), row.Text(2)});
      });
      !st) {
    return Fail(st.error());
  }
  if (!team_found) return Fail(Error::NotFound("team " + team_id + " not found"));
  return out;
}

Result<std::vector<TeamMember>> SqliteIdentityStore::MembershipsOf(const std::string& user_id) {
  auto c = db_.Acquire();
  auto s = c->Prepare(
      "SELECT m.team_id, u.id, m.role FROM users u LEFT JOIN team_members m ON m.user_id = u.id "
      "WHERE u.id = ? ORDER BY m.team_id");
  if (!s) return Fail(s.error());
  s->Bind(1, user_id);
  bool user_found = false;
  std::vector<TeamMember> out;
  if (auto st = s->ForEachRow([&](const Statement& row) {
        user_found = true;
        if (!row.IsNull(0)) out.push_back(TeamMember{row.Text(0), row.Text(1), row.Text(2)});
      });
      !st) {
    return Fail(st.error());
  }
  if (!user_found) return Fail(Error::NotFound("user " + user_id + " not found"));
  return out;
}

// ---------------------------------------------------------------------------------------------
// API keys

Status SqliteIdentityStore::CreateApiKey(const ApiKeyRecord& k) {
  if (k.key_id.empty()) return Fail(Error::InvalidArgument("API key id must not be empty"));
  if (k.hash.empty()) return Fail(Error::InvalidArgument("API key hash must not be empty"));
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  if (auto st = RequireUser(*c, k.user_id); !st) return st;
  auto s = c->Prepare(
      "INSERT INTO api_keys (key_id, user_id, name, prefix, hash, created_at, expires_at, last_used_at, revoked_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!s) return Fail(s.error());
  auto st = s->Bind(1, k.key_id)
                .Bind(2, k.user_id)
                .Bind(3, k.name)
                .Bind(4, k.prefix)
                .Bind(5, k.hash)
                .Bind(6, k.created_at_ms != 0 ? k.created_at_ms : NowMs())
                .Bind(7, k.expires_at_ms)
                .Bind(8, k.last_used_at_ms)
                .Bind(9, k.revoked_at_ms)
                .Run();
  if (!st) {
    if (st.error().code() == ErrorCode::kAlreadyExists) {
      return Fail(Error::AlreadyExists("an API key with id " + k.key_id + " already exists"));
    }
    return st;
  }
  return tx->Commit();
}

Result<ApiKeyRecord> SqliteIdentityStore::GetApiKey(const std::string& key_id) {
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kApiKeyColumns + " FROM api_keys WHERE key_id = ?");
  if (!s) return Fail(s.error());
  s->Bind(1, key_id);
  return s->One([](const Statement& row) { return ReadApiKey(row); },
                Error::NotFound("API key " + key_id + " not found"));
}

Result<std::vector<ApiKeyRecord>> SqliteIdentityStore::ListApiKeys(const std::string& user_id) {
  auto c = db_.Acquire();
  auto s = c->Prepare(
      "SELECT u.id, k.key_id, k.user_id, k.name, k.prefix, k.hash, k.created_at, k.expires_at, k.last_used_at, "
      "k.revoked_at FROM users u LEFT JOIN api_keys k ON k.user_id = u.id WHERE u.id = ? "
      "ORDER BY k.created_at DESC, k.key_id");
  if (!s) return Fail(s.error());
  s->Bind(1, user_id);
  bool user_found = false;
  std::vector<ApiKeyRecord> out;
  if (auto st = s->ForEachRow([&](const Statement& row) {
        user_found = true;
        if (!row.IsNull(1)) out.push_back(ReadApiKey(row, 1));
      });
      !st) {
    return Fail(st.error());
  }
  if (!user_found) return Fail(Error::NotFound("user " + user_id + " not found"));
  return out;
}

Status SqliteIdentityStore::RevokeApiKey(const std::string& user_id, const std::string& key_id) {
  auto c = db_.Acquire();
  auto s = c->Prepare(
      "UPDATE api_keys SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END "
      "WHERE key_id = ? AND user_id = ?");
  if (!s) return Fail(s.error());
  if (auto st = s->Bind(1, NowMs()).Bind(2, key_id).Bind(3, user_id).Run(); !st) return st;
  if (c->Changes() == 0) return Fail(Error::NotFound("API key " + key_id + " of user " + user_id + " not found"));
  return {};
}

Status SqliteIdentityStore::TouchApiKey(const std::string& key_id, std::int64_t used_at_ms) {
  auto c = db_.Acquire();
  // MAX keeps the newest time when touches arrive out of order; the row counts as changed either
  // way, so Changes() tells a missing key apart.
  auto s = c->Prepare("UPDATE api_keys SET last_used_at = MAX(last_used_at, ?) WHERE key_id = ?");
  if (!s) return Fail(s.error());
  if (auto st = s->Bind(1, used_at_ms).Bind(2, key_id).Run(); !st) return st;
  if (c->Changes() == 0) return Fail(Error::NotFound("API key " + key_id + " not found"));
  return {};
}

// ---------------------------------------------------------------------------------------------
// Sharing

Status SqliteIdentityStore::SetGrant(const Grant& g) {
  if (!IsOneOf(g.grantee_type, {"user", "team"})) {
    return Fail(Error::InvalidArgument("grantee_type must be 'user' or 'team', not '" + g.grantee_type + "'"));
  }
  if (g.level != AccessLevel::kRead && g.level != AccessLevel::kWrite && g.level != AccessLevel::kAdmin) {
    return Fail(Error::InvalidArgument("a grant's level must be read, write or admin (remove the grant instead)"));
  }
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  if (auto st = RequireCollection(*c, g.collection_id); !st) return st;
  if (auto st = g.grantee_type == "user" ? RequireUser(*c, g.grantee_id) : RequireTeam(*c, g.grantee_id); !st) {
    return st;
  }
  auto s = c->Prepare(
      "INSERT INTO collection_grants (collection_id, grantee_type, grantee_id, level) VALUES (?, ?, ?, ?) "
      "ON CONFLICT (collection_id, grantee_type, grantee_id) DO UPDATE SET level = excluded.level");
  if (!s) return Fail(s.error());
  if (auto st = s->Bind(1, g.collection_id).Bind(2, g.grantee_type).Bind(3, g.grantee_id).Bind(4, ToString(g.level))
                    .Run();
      !st) {
    return st;
  }
  return tx->Commit();
}

Status SqliteIdentityStore::RemoveGrant(const std::string& collection_id, const std::string& grantee_type,
                                        const std::string& grantee_id) {
  if (!IsOneOf(grantee_type, {"user", "team"})) {
    return Fail(Error::InvalidArgument("grantee_type must be 'user' or 'team', not '" + grantee_type + "'"));
  }
  auto c = db_.Acquire();
  auto s = c->Prepare("DELETE FROM collection_grants WHERE collection_id = ? AND grantee_type = ? AND grantee_id = ?");
  if (!s) return Fail(s.error());
  if (auto st = s->Bind(1, collection_id).Bind(2, grantee_type).Bind(3, grantee_id).Run(); !st) return st;
  if (c->Changes() == 0) {
    return Fail(Error::NotFound("collection " + collection_id + " has no grant to " + grantee_type + " " + grantee_id));
  }
  return {};
}

Result<std::vector<Grant>> SqliteIdentityStore::ListGrants(const std::string& collection_id) {
  auto c = db_.Acquire();
  auto s = c->Prepare(
      "SELECT c.id, g.grantee_type, g.grantee_id, g.level FROM collections c "
      "LEFT JOIN collection_grants g ON g.collection_id = c.id WHERE c.id = ? ORDER BY g.grantee_type, g.grantee_id");
  if (!s) return Fail(s.error());
  s->Bind(1, collection_id);
  bool found = false;
  std::vector<Grant> out;
  if (auto st = s->ForEachRow([&](const Statement& row) {
        found = true;
        if (row.IsNull(1)) return;
        Grant g;
        g.collection_id = row.Text(0);
        g.grantee_type = row.Text(1);
        g.grantee_id = row.Text(2);
        g.level = ParseAccessLevel(row.Text(3)).value_or(AccessLevel::kNone);
        out.push_back(std::move(g));
      });
      !st) {
    return Fail(st.error());
  }
  if (!found) return Fail(Error::NotFound("collection " + collection_id + " not found"));
  return out;
}

Result<AccessLevel> SqliteIdentityStore::AccessLevelFor(const std::string& user_id,
                                                        const std::vector<std::string>& /*team_ids*/,
                                                        const std::string& collection_id) {
  // team_ids is not used: team_members is authoritative (see the header).
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("WITH ") + kMyTeams +
                      " SELECT COALESCE(MAX(lvl), 0) FROM ("
                      // the owner of a user-owned collection
                      "SELECT 3 AS lvl FROM collections c WHERE c.id = ?2 AND c.owner_type = 'user' "
                      "AND c.owner_id = ?1 AND ?1 <> '' "
                      // admins and members of the team owning a team-owned collection
                      "UNION ALL SELECT CASE m.role WHEN 'admin' THEN 3 ELSE 2 END FROM collections c "
                      "JOIN my_teams m ON m.team_id = c.owner_id WHERE c.id = ?2 AND c.owner_type = 'team' "
                      // grants to the user or to one of the user's teams
                      "UNION ALL SELECT " + kGrantLevel + " FROM collection_grants g WHERE g.collection_id = ?2 "
                      "AND ((g.grantee_type = 'user' AND g.grantee_id = ?1) OR "
                      "(g.grantee_type = 'team' AND g.grantee_id IN (SELECT team_id FROM my_teams))))");
  if (!s) return Fail(s.error());
  s->Bind(1, user_id).Bind(2, collection_id);
  auto level = s->One([](const Statement& row) { return row.Int(0); }, Error::Internal("MAX returned no row"));
  if (!level) return Fail(level.error());
  switch (*level) {
    case 3: return AccessLevel::kAdmin;
    case 2: return AccessLevel::kWrite;
    case 1: return AccessLevel::kRead;
    default: return AccessLevel::kNone;
  }
}

Result<std::vector<std::string>> SqliteIdentityStore::ReadableCollectionIds(
    const std::string& user_id, const std::vector<std::string>& /*team_ids*/) {
  // team_ids is not used: team_members is authoritative (see the header).
  auto c = db_.Acquire();
  // Each branch is an index lookup (CROSS JOIN keeps the user's few teams as the outer loop), so
  // the cost follows what the user can read, not how many collections exist.
  auto s = c->Prepare(std::string("WITH ") + kMyTeams +
                      ", readable (id) AS ("
                      "SELECT id FROM collections WHERE owner_type = 'user' AND owner_id = ?1 AND ?1 <> '' "
                      "UNION SELECT c.id FROM my_teams m CROSS JOIN collections c "
                      "ON c.owner_type = 'team' AND c.owner_id = m.team_id "
                      "UNION SELECT collection_id FROM collection_grants WHERE grantee_type = 'user' AND grantee_id = ?1 "
                      "UNION SELECT g.collection_id FROM my_teams m CROSS JOIN collection_grants g "
                      "ON g.grantee_type = 'team' AND g.grantee_id = m.team_id) "
                      "SELECT c.id FROM readable r JOIN collections c ON c.id = r.id "
                      "ORDER BY c.created_at DESC, c.id");
  if (!s) return Fail(s.error());
  s->Bind(1, user_id);
  std::vector<std::string> out;
  if (auto st = s->ForEachRow([&](const Statement& row) { out.push_back(row.Text(0)); }); !st) {
    return Fail(st.error());
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Quotas

Result<QuotaOverrides> SqliteIdentityStore::GetQuotaOverrides(const std::string& user_id) {
  auto c = db_.Acquire();
  auto s = c->Prepare(
      "SELECT q.collections, q.files_per_collection, q.storage_bytes, q.llm_tokens_per_day FROM users u "
      "LEFT JOIN quota_overrides q ON q.user_id = u.id WHERE u.id = ?");
  if (!s) return Fail(s.error());
  s->Bind(1, user_id);
  return s->One(
      [](const Statement& row) {
        auto opt = [&](int col) { return row.IsNull(col) ? std::nullopt : std::optional<std::int64_t>(row.Int(col)); };
        QuotaOverrides q;
        q.collections = opt(0);
        q.files_per_collection = opt(1);
        q.storage_bytes = opt(2);
        q.llm_tokens_per_day = opt(3);
        return q;
      },
      Error::NotFound("user " + user_id + " not found"));
}

Status SqliteIdentityStore::SetQuotaOverrides(const std::string& user_id, const QuotaOverrides& q) {
  for (const auto& [name, v] : {std::pair{"collections", q.collections},
                                std::pair{"files_per_collection", q.files_per_collection},
                                std::pair{"storage_bytes", q.storage_bytes},
                                std::pair{"llm_tokens_per_day", q.llm_tokens_per_day}}) {
    if (v && *v < 0) return Fail(Error::InvalidArgument(std::string("quota ") + name + " must not be negative"));
  }
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  if (auto st = RequireUser(*c, user_id); !st) return st;
  auto s = c->Prepare(
      "INSERT INTO quota_overrides (user_id, collections, files_per_collection, storage_bytes, llm_tokens_per_day) "
      "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET collections = excluded.collections, "
      "files_per_collection = excluded.files_per_collection, storage_bytes = excluded.storage_bytes, "
      "llm_tokens_per_day = excluded.llm_tokens_per_day");
  if (!s) return Fail(s.error());
  if (auto st = s->Bind(1, user_id)
                    .Bind(2, q.collections)
                    .Bind(3, q.files_per_collection)
                    .Bind(4, q.storage_bytes)
                    .Bind(5, q.llm_tokens_per_day)
                    .Run();
      !st) {
    return st;
  }
  return tx->Commit();
}

Result<Usage> SqliteIdentityStore::GetUsage(const std::string& user_id, const std::string& day) {
  if (auto st = ValidateDay(day); !st) return Fail(st.error());
  auto c = db_.Acquire();
  // One statement, so the three numbers come from one snapshot.
  auto s = c->Prepare(
      "SELECT "
      "(SELECT COUNT(*) FROM collections c WHERE c.owner_type = 'user' AND c.owner_id = u.id), "
      "(SELECT COALESCE(SUM(f.size_bytes), 0) FROM files f JOIN collections c ON c.id = f.collection_id "
      " WHERE c.owner_type = 'user' AND c.owner_id = u.id), "
      "(SELECT COALESCE(SUM(t.tokens), 0) FROM llm_token_usage t WHERE t.user_id = u.id AND t.day = ?2) "
      "FROM users u WHERE u.id = ?1");
  if (!s) return Fail(s.error());
  s->Bind(1, user_id).Bind(2, day);
  return s->One(
      [](const Statement& row) {
        Usage u;
        u.collections = row.Int(0);
        u.storage_bytes = row.Int(1);
        u.llm_tokens_today = row.Int(2);
        return u;
      },
      Error::NotFound("user " + user_id + " not found"));
}

Result<std::int64_t> SqliteIdentityStore::AddLlmTokens(const std::string& user_id, const std::string& day,
                                                       std::int64_t tokens, std::int64_t limit) {
  if (auto st = ValidateDay(day); !st) return Fail(st.error());
  if (tokens < 0) return Fail(Error::InvalidArgument("tokens must not be negative"));
  if (limit < 0) return Fail(Error::InvalidArgument("the token limit must not be negative"));
  auto c = db_.Acquire();
  // BEGIN IMMEDIATE takes the write lock first, so the check and the add see no other writer.
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  if (auto st = RequireUser(*c, user_id); !st) return Fail(st.error());
  auto q = c->Prepare("SELECT tokens FROM llm_token_usage WHERE user_id = ? AND day = ?");
  if (!q) return Fail(q.error());
  q->Bind(1, user_id).Bind(2, day);
  auto row = q->Step();
  if (!row) return Fail(row.error());
  const std::int64_t used = *row ? q->Int(0) : 0;
  q->Reset();
  if (tokens > std::numeric_limits<std::int64_t>::max() - used) {
    return Fail(Error::InvalidArgument("token count overflows"));
  }
  const std::int64_t total = used + tokens;
  if (limit > 0 && total > limit) {
    // The same shape as the metadata store's quota errors: details name resource, usage, limit.
    return Fail(Error::QuotaExceeded("Quota exceeded for llm_tokens_per_day: " + std::to_string(used) + " used of " +
                                     std::to_string(limit) + " on " + day + ", " + std::to_string(tokens) +
                                     " more asked")
                    .WithDetails(nlohmann::json{{"resource", "llm_tokens_per_day"}, {"usage", used}, {"limit", limit}}
                                     .dump()));
  }
  auto up = c->Prepare(
      "INSERT INTO llm_token_usage (user_id, day, tokens) VALUES (?, ?, ?) "
      "ON CONFLICT (user_id, day) DO UPDATE SET tokens = excluded.tokens");
  if (!up) return Fail(up.error());
  if (auto st = up->Bind(1, user_id).Bind(2, day).Bind(3, total).Run(); !st) return Fail(st.error());
  if (auto st = tx->Commit(); !st) return Fail(st.error());
  return total;
}

// ---------------------------------------------------------------------------------------------
// Audit

Status SqliteIdentityStore::AppendAudit(const AuditEntry& e) {
  if (e.action.empty()) return Fail(Error::InvalidArgument("audit action must not be empty"));
  if (!IsOneOf(e.outcome, {"ok", "denied", "failed"})) {
    return Fail(Error::InvalidArgument("audit outcome must be ok, denied or failed, not '" + e.outcome + "'"));
  }
  auto c = db_.Acquire();
  auto s = c->Prepare(
      "INSERT INTO audit_log (at, principal_id, action, resource, outcome, detail, remote_address) "
      "VALUES (?, ?, ?, ?, ?, ?, ?)");
  if (!s) return Fail(s.error());
  return s->Bind(1, e.at_ms != 0 ? e.at_ms : NowMs())
      .Bind(2, e.principal_id)
      .Bind(3, e.action)
      .Bind(4, e.resource)
      .Bind(5, e.outcome)
      .Bind(6, e.detail.empty() ? std::string("{}") : e.detail)
      .Bind(7, e.remote_address)
      .Run();
}

Result<std::vector<AuditEntry>> SqliteIdentityStore::ListAudit(std::int64_t after_seq, std::size_t limit) {
  std::vector<AuditEntry> out;
  if (limit == 0) return out;
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kAuditColumns + " FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?");
  if (!s) return Fail(s.error());
  s->Bind(1, after_seq).Bind(2, ClampLimit(limit));
  if (auto st = s->ForEachRow([&](const Statement& row) { out.push_back(ReadAudit(row)); }); !st) {
    return Fail(st.error());
  }
  return out;
}

Status SqliteIdentityStore::Ping() {
  auto c = db_.Acquire();
  auto s = c->Prepare("SELECT 1");
  if (!s) return Fail(s.error());
  return s->Run();
}

}  // namespace modulo::store::sqlite
