#include "modulo/store/postgres/pg_identity_store.h"

#include <algorithm>
#include <cctype>
#include <limits>

#include <nlohmann/json.hpp>

#include "modulo/core/clock.h"
#include "modulo/core/request_id.h"

namespace modulo::store::postgres {
namespace {

constexpr const char* kUserColumns = "id, name, email, role, kind, external_subject, disabled, created_at, updated_at";

User ReadUser(const PgResult& r, int i) {
  User u;
  u.id = r.Text(i, 0);
  u.name = r.Text(i, 1);
  u.email = r.Text(i, 2);
  u.role = r.Text(i, 3);
  u.kind = r.Text(i, 4);
  u.external_subject = r.IsNull(i, 5) ? std::string() : r.Text(i, 5);
  u.disabled = r.Bool(i, 6);
  u.created_at_ms = r.Int(i, 7);
  u.updated_at_ms = r.Int(i, 8);
  return u;
}

constexpr const char* kTeamColumns = "id, name, description, created_at, updated_at";

Team ReadTeam(const PgResult& r, int i, int first = 0) {
  Team t;
  t.id = r.Text(i, first);
  t.name = r.Text(i, first + 1);
  t.description = r.Text(i, first + 2);
  t.created_at_ms = r.Int(i, first + 3);
  t.updated_at_ms = r.Int(i, first + 4);
  return t;
}

constexpr const char* kApiKeyColumns =
    "key_id, user_id, name, prefix, hash, created_at, expires_at, last_used_at, revoked_at";

ApiKeyRecord ReadApiKey(const PgResult& r, int i, int first = 0) {
  ApiKeyRecord k;
  k.key_id = r.Text(i, first);
  k.user_id = r.Text(i, first + 1);
  k.name = r.Text(i, first + 2);
  k.prefix = r.Text(i, first + 3);
  k.hash = r.Text(i, first + 4);
  k.created_at_ms = r.Int(i, first + 5);
  k.expires_at_ms = r.Int(i, first + 6);
  k.last_used_at_ms = r.Int(i, first + 7);
  k.revoked_at_ms = r.Int(i, first + 8);
  return k;
}

constexpr const char* kAuditColumns = "seq, at, principal_id, action, resource, outcome, detail, remote_address";

AuditEntry ReadAudit(const PgResult& r, int i) {
  AuditEntry e;
  e.seq = r.Int(i, 0);
  e.at_ms = r.Int(i, 1);
  e.principal_id = r.Text(i, 2);
  e.action = r.Text(i, 3);
  e.resource = r.Text(i, 4);
  e.outcome = r.Text(i, 5);
  e.detail = r.Text(i, 6);
  e.remote_address = r.Text(i, 7);
  return e;
}

// A UNIQUE violation on users, named after the constraint that collided.
Error UserConflict(const Error& e, const User& u) {
  if (e.message().find("users_external_subject") != std::string::npos) {
    return Error::AlreadyExists("a user with external subject '" + u.external_subject + "' already exists");
  }
  return Error::AlreadyExists("a user named '" + u.name + "' already exists");
}

Status Require(Connection& c, const char* sql, const std::string& id, const std::string& what) {
  auto r = c.Exec(sql, Params().Add(id));
  if (!r) return Fail(r.error());
  if (r->empty()) return Fail(Error::NotFound(what + " " + id + " not found"));
  return {};
}
Status RequireUser(Connection& c, const std::string& id) {
  return Require(c, "SELECT 1 FROM users WHERE id = $1", id, "user");
}
Status RequireTeam(Connection& c, const std::string& id) {
  return Require(c, "SELECT 1 FROM teams WHERE id = $1", id, "team");
}
Status RequireCollection(Connection& c, const std::string& id) {
  return Require(c, "SELECT 1 FROM collections WHERE id = $1", id, "collection");
}

Status Done(Result<PgResult> r) {
  if (!r) return Fail(r.error());
  return {};
}

// The user's teams (authoritative), as a CTE over $1 = the user id.
constexpr const char* kMyTeams = "my_teams (team_id, role) AS (SELECT team_id, role FROM team_members WHERE user_id = $1)";
constexpr const char* kGrantLevel = "CASE g.level WHEN 'admin' THEN 3 WHEN 'write' THEN 2 WHEN 'read' THEN 1 ELSE 0 END";

std::int64_t ClampLimit(std::size_t limit) {
  return static_cast<std::int64_t>(
      std::min<std::size_t>(limit, static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Users

Result<User> PostgresIdentityStore::CreateUser(const User& in) {
  if (auto st = ValidateUser(in); !st) return Fail(st.error());
  User u = in;
  u.id = in.id.empty() ? NewUuid() : in.id;  // a given id is kept (the local user of MODULO_AUTH=none)
  u.created_at_ms = u.updated_at_ms = NowMs();
  auto st = db_.WithWrite([&](Connection& c) -> Status {
    Params p;
    p.Add(u.id).Add(u.name).Add(u.email).Add(u.role).Add(u.kind);
    if (u.external_subject.empty()) p.AddNull();  // NULLs do not collide under UNIQUE
    else p.Add(u.external_subject);
    p.Add(u.disabled).Add(u.created_at_ms);
    auto r = c.Exec(
        "INSERT INTO users (id, name, email, role, kind, external_subject, disabled, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        p);
    if (!r) {
      if (r.error().code() == ErrorCode::kAlreadyExists) return Fail(UserConflict(r.error(), u));
      return Fail(r.error());
    }
    return {};
  });
  if (!st) return Fail(st.error());
  return u;
}

namespace {
Result<User> OneUser(Database& db, const char* where, const std::string& value, Error not_found, bool primary) {
  auto run = [&](Connection& c) -> Result<User> {
    auto r = c.Exec(std::string("SELECT ") + kUserColumns + " FROM users WHERE " + where, Params().Add(value));
    if (!r) return Fail(r.error());
    if (r->empty()) return Fail(not_found);
    return ReadUser(*r, 0);
  };
  return primary ? db.WithPrimary(run) : db.WithRead(run);
}
}  // namespace

Result<User> PostgresIdentityStore::GetUser(const std::string& id) {
  return OneUser(db_, "id = $1", id, Error::NotFound("user " + id + " not found"), false);
}

Result<User> PostgresIdentityStore::FindUserByName(const std::string& name) {
  return OneUser(db_, "name = $1", name, Error::NotFound("no user named '" + name + "'"), false);
}

Result<User> PostgresIdentityStore::FindUserBySubject(const std::string& external_subject) {
  if (external_subject.empty()) return Fail(Error::NotFound("no user with an empty external subject"));
  // The primary: a JWT login right after the user was created must find it.
  return OneUser(db_, "external_subject = $1", external_subject,
                 Error::NotFound("no user with external subject '" + external_subject + "'"), true);
}

Result<std::vector<User>> PostgresIdentityStore::ListUsers() {
  return db_.WithRead([&](Connection& c) -> Result<std::vector<User>> {
    auto r = c.Exec(std::string("SELECT ") + kUserColumns + " FROM users ORDER BY name");
    if (!r) return Fail(r.error());
    std::vector<User> out;
    for (int i = 0; i < r->rows(); ++i) out.push_back(ReadUser(*r, i));
    return out;
  });
}

Result<User> PostgresIdentityStore::UpdateUser(const User& u) {
  if (auto st = ValidateUser(u); !st) return Fail(st.error());
  return db_.WithWrite([&](Connection& c) -> Result<User> {
    auto r = c.Exec(std::string("UPDATE users SET name = $1, email = $2, role = $3, disabled = $4, updated_at = $5 "
                                "WHERE id = $6 RETURNING ") +
                        kUserColumns,
                    Params().Add(u.name).Add(u.email).Add(u.role).Add(u.disabled).Add(NowMs()).Add(u.id));
    if (!r) {
      if (r.error().code() == ErrorCode::kAlreadyExists) return Fail(UserConflict(r.error(), u));
      return Fail(r.error());
    }
    if (r->empty()) return Fail(Error::NotFound("user " + u.id + " not found"));
    return ReadUser(*r, 0);
  });
}

Status PostgresIdentityStore::DeleteUser(const std::string& id) {
  return db_.WithTransaction([&](Connection& c) -> Status {
    // Keys, memberships and quota overrides go with the user (ON DELETE CASCADE).
    auto d = c.Exec("DELETE FROM users WHERE id = $1", Params().Add(id));
    if (!d) return Fail(d.error());
    if (d->affected() == 0) return Fail(Error::NotFound("user " + id + " not found"));
    if (auto st = Done(c.Exec("DELETE FROM collection_grants WHERE grantee_type = 'user' AND grantee_id = $1",
                              Params().Add(id)));
        !st) {
      return st;
    }
    return Done(c.Exec("DELETE FROM llm_token_usage WHERE user_id = $1", Params().Add(id)));
  });
}

// ---------------------------------------------------------------------------------------------
// Teams

Result<Team> PostgresIdentityStore::CreateTeam(const Team& in, const std::string& creator_user_id) {
  if (in.name.empty()) return Fail(Error::InvalidArgument("team name must not be empty"));
  Team t = in;
  t.id = NewUuid();
  t.created_at_ms = t.updated_at_ms = NowMs();
  auto st = db_.WithTransaction([&](Connection& c) -> Status {
    // FOR SHARE keeps the creator from being deleted before the membership lands.
    if (auto s = Require(c, "SELECT 1 FROM users WHERE id = $1 FOR SHARE", creator_user_id, "user"); !s) return s;
    auto r = c.Exec("INSERT INTO teams (id, name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
                    Params().Add(t.id).Add(t.name).Add(t.description).Add(t.created_at_ms));
    if (!r) {
      if (r.error().code() == ErrorCode::kAlreadyExists) {
        return Fail(Error::AlreadyExists("a team named '" + t.name + "' already exists"));
      }
      return Fail(r.error());
    }
    return Done(c.Exec("INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, 'admin')",
                       Params().Add(t.id).Add(creator_user_id)));
  });
  if (!st) return Fail(st.error());
  return t;
}

Result<Team> PostgresIdentityStore::GetTeam(const std::string& id) {
  return db_.WithRead([&](Connection& c) -> Result<Team> {
    auto r = c.Exec(std::string("SELECT ") + kTeamColumns + " FROM teams WHERE id = $1", Params().Add(id));
    if (!r) return Fail(r.error());
    if (r->empty()) return Fail(Error::NotFound("team " + id + " not found"));
    return ReadTeam(*r, 0);
  });
}

Result<std::vector<Team>> PostgresIdentityStore::ListTeams(const std::string& user_id) {
  return db_.WithRead([&](Connection& c) -> Result<std::vector<Team>> {
    std::vector<Team> out;
    if (user_id.empty()) {
      auto r = c.Exec(std::string("SELECT ") + kTeamColumns + " FROM teams ORDER BY name");
      if (!r) return Fail(r.error());
      for (int i = 0; i < r->rows(); ++i) out.push_back(ReadTeam(*r, i));
      return out;
    }
    // One query: a row per team of the user, one row of NULLs when none, no row for no user.
    auto r = c.Exec(
        "SELECT t.id, t.name, t.description, t.created_at, t.updated_at FROM users u "
        "LEFT JOIN team_members m ON m.user_id = u.id LEFT JOIN teams t ON t.id = m.team_id "
        "WHERE u.id = $1 ORDER BY t.name",
        Params().Add(user_id));
    if (!r) return Fail(r.error());
    if (r->empty()) return Fail(Error::NotFound("user " + user_id + " not found"));
    for (int i = 0; i < r->rows(); ++i) {
      if (!r->IsNull(i, 0)) out.push_back(ReadTeam(*r, i));
    }
    return out;
  });
}

Result<Team> PostgresIdentityStore::UpdateTeam(const Team& t) {
  if (t.name.empty()) return Fail(Error::InvalidArgument("team name must not be empty"));
  return db_.WithWrite([&](Connection& c) -> Result<Team> {
    auto r = c.Exec(std::string("UPDATE teams SET name = $1, description = $2, updated_at = $3 WHERE id = $4 RETURNING ") +
                        kTeamColumns,
                    Params().Add(t.name).Add(t.description).Add(NowMs()).Add(t.id));
    if (!r) {
      if (r.error().code() == ErrorCode::kAlreadyExists) {
        return Fail(Error::AlreadyExists("a team named '" + t.name + "' already exists"));
      }
      return Fail(r.error());
    }
    if (r->empty()) return Fail(Error::NotFound("team " + t.id + " not found"));
    return ReadTeam(*r, 0);
  });
}

Status PostgresIdentityStore::DeleteTeam(const std::string& id) {
  return db_.WithTransaction([&](Connection& c) -> Status {
    auto d = c.Exec("DELETE FROM teams WHERE id = $1", Params().Add(id));
    if (!d) return Fail(d.error());
    if (d->affected() == 0) return Fail(Error::NotFound("team " + id + " not found"));
    return Done(c.Exec("DELETE FROM collection_grants WHERE grantee_type = 'team' AND grantee_id = $1", Params().Add(id)));
  });
}

Status PostgresIdentityStore::SetTeamMember(const TeamMember& m) {
  if (!IsOneOf(m.role, {"member", "admin"})) {
    return Fail(Error::InvalidArgument("team role must be 'member' or 'admin', not '" + m.role + "'"));
  }
  return db_.WithTransaction([&](Connection& c) -> Status {
    if (auto st = RequireTeam(c, m.team_id); !st) return st;
    if (auto st = RequireUser(c, m.user_id); !st) return st;
    auto r = c.Exec(
        "INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, $3) "
        "ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role",
        Params().Add(m.team_id).Add(m.user_id).Add(m.role));
    if (!r) {
      // The team or user vanished between the checks and the insert.
      if (r.error().code() == ErrorCode::kNotFound) return Fail(Error::NotFound("team or user not found"));
      return Fail(r.error());
    }
    return {};
  });
}

Status PostgresIdentityStore::RemoveTeamMember(const std::string& team_id, const std::string& user_id) {
  return db_.WithWrite([&](Connection& c) -> Status {
    auto r = c.Exec("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2", Params().Add(team_id).Add(user_id));
    if (!r) return Fail(r.error());
    if (r->affected() == 0) return Fail(Error::NotFound("user " + user_id + " is not a member of team " + team_id));
    return {};
  });
}

Result<std::vector<TeamMember>> PostgresIdentityStore::ListTeamMembers(const std::string& team_id) {
  return db_.WithRead([&](Connection& c) -> Result<std::vector<TeamMember>> {
    auto r = c.Exec(
        "SELECT t.id, m.user_id, m.role FROM teams t LEFT JOIN team_members m ON m.team_id = t.id "
        "WHERE t.id = $1 ORDER BY m.user_id",
        Params().Add(team_id));
    if (!r) return Fail(r.error());
    if (r->empty()) return Fail(Error::NotFound("team " + team_id + " not found"));
    std::vector<TeamMember> out;
    for (int i = 0; i < r->rows(); ++i) {
      if (!r->IsNull(i, 1)) out.push_back(TeamMember{r->Text(i, 0), r->Text(i, 1), r->Text(i, 2)});
    }
    return out;
  });
}

Result<std::vector<TeamMember>> PostgresIdentityStore::MembershipsOf(const std::string& user_id) {
  return db_.WithPrimary([&](Connection& c) -> Result<std::vector<TeamMember>> {
    auto r = c.Exec(
        "SELECT m.team_id, u.id, m.role FROM users u LEFT JOIN team_members m ON m.user_id = u.id "
        "WHERE u.id = $1 ORDER BY m.team_id",
        Params().Add(user_id));
    if (!r) return Fail(r.error());
    if (r->empty()) return Fail(Error::NotFound("user " + user_id + " not found"));
    std::vector<TeamMember> out;
    for (int i = 0; i < r->rows(); ++i) {
      if (!r->IsNull(i, 0)) out.push_back(TeamMember{r->Text(i, 0), r->Text(i, 1), r->Text(i, 2)});
    }
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// API keys

Status PostgresIdentityStore::CreateApiKey(const ApiKeyRecord& k) {
  if (k.key_id.empty()) return Fail(Error::InvalidArgument("API key id must not be empty"));
  if (k.hash.empty()) return Fail(Error::InvalidArgument("API key hash must not be empty"));
  return db_.WithTransaction([&](Connection& c) -> Status {
    if (auto st = RequireUser(c, k.user_id); !st) return st;
    auto r = c.Exec(
        "INSERT INTO api_keys (key_id, user_id, name, prefix, hash, created_at, expires_at, last_used_at, revoked_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        Params()
            .Add(k.key_id)
            .Add(k.user_id)
            .Add(k.name)
            .Add(k.prefix)
            .Add(k.hash)
            .Add(k.created_at_ms != 0 ? k.created_at_ms : NowMs())
            .Add(k.expires_at_ms)
            .Add(k.last_used_at_ms)
            .Add(k.revoked_at_ms));
    if (!r) {
      if (r.error().code() == ErrorCode::kAlreadyExists) {
        return Fail(Error::AlreadyExists("an API key with id " + k.key_id + " already exists"));
      }
      if (r.error().code() == ErrorCode::kNotFound) return Fail(Error::NotFound("user " + k.user_id + " not found"));
      return Fail(r.error());
    }
    return {};
  });
}

Result<ApiKeyRecord> PostgresIdentityStore::GetApiKey(const std::string& key_id) {
  return db_.WithPrimary([&](Connection& c) -> Result<ApiKeyRecord> {
    auto r = c.Exec(std::string("SELECT ") + kApiKeyColumns + " FROM api_keys WHERE key_id = $1", Params().Add(key_id));
    if (!r) return Fail(r.error());
    if (r->empty()) return Fail(Error::NotFound("API key " + key_id + " not found"));
    return ReadApiKey(*r, 0);
  });
}

Result<std::vector<ApiKeyRecord>> PostgresIdentityStore::ListApiKeys(const std::string& user_id) {
  return db_.WithRead([&](Connection& c) -> Result<std::vector<ApiKeyRecord>> {
    auto r = c.Exec(
        "SELECT u.id, k.key_id, k.user_id, k.name, k.prefix, k.hash, k.created_at, k.expires_at, k.last_used_at, "
        "k.revoked_at FROM users u LEFT JOIN api_keys k ON k.user_id = u.id WHERE u.id = $1 "
        "ORDER BY k.created_at DESC, k.key_id",
        Params().Add(user_id));
    if (!r) return Fail(r.error());
    if (r->empty()) return Fail(Error::NotFound("user " + user_id + " not found"));
    std::vector<ApiKeyRecord> out;
    for (int i = 0; i < r->rows(); ++i) {
      if (!r->IsNull(i, 1)) out.push_back(ReadApiKey(*r, i, 1));
    }
    return out;
  });
}

Status PostgresIdentityStore::RevokeApiKey(const std::string& user_id, const std::string& key_id) {
  return db_.WithWrite([&](Connection& c) -> Status {
    auto r = c.Exec(
        "UPDATE api_keys SET revoked_at = CASE WHEN revoked_at = 0 THEN $1 ELSE revoked_at END "
        "WHERE key_id = $2 AND user_id = $3",
        Params().Add(NowMs()).Add(key_id).Add(user_id));
    if (!r) return Fail(r.error());
    if (r->affected() == 0) return Fail(Error::NotFound("API key " + key_id + " of user " + user_id + " not found"));
    return {};
  });
}

Status PostgresIdentityStore::TouchApiKey(const std::string& key_id, std::int64_t used_at_ms) {
  return db_.WithWrite([&](Connection& c) -> Status {
    // GREATEST keeps the newest time when touches arrive out of order.
    auto r = c.Exec("UPDATE api_keys SET last_used_at = GREATEST(last_used_at, $1) WHERE key_id = $2",
                    Params().Add(used_at_ms).Add(key_id));
    if (!r) return Fail(r.error());
    if (r->affected() == 0) return Fail(Error::NotFound("API key " + key_id + " not found"));
    return {};
  });
}

// ---------------------------------------------------------------------------------------------
// Sharing

Status PostgresIdentityStore::SetGrant(const Grant& g) {
  if (!IsOneOf(g.grantee_type, {"user", "team"})) {
    return Fail(Error::InvalidArgument("grantee_type must be 'user' or 'team', not '" + g.grantee_type + "'"));
  }
  if (g.level != AccessLevel::kRead && g.level != AccessLevel::kWrite && g.level != AccessLevel::kAdmin) {
    return Fail(Error::InvalidArgument("a grant's level must be read, write or admin (remove the grant instead)"));
  }
  return db_.WithTransaction([&](Connection& c) -> Status {
    if (auto st = RequireCollection(c, g.collection_id); !st) return st;
    // FOR SHARE: the grantee cannot be deleted (leaving a dangling grant) until this commits.
    const char* grantee_sql = g.grantee_type == "user" ? "SELECT 1 FROM users WHERE id = $1 FOR SHARE"
                                                       : "SELECT 1 FROM teams WHERE id = $1 FOR SHARE";
    if (auto st = Require(c, grantee_sql, g.grantee_id, g.grantee_type); !st) return st;
    auto r = c.Exec(
        "INSERT INTO collection_grants (collection_id, grantee_type, grantee_id, level) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (collection_id, grantee_type, grantee_id) DO UPDATE SET level = excluded.level",
        Params().Add(g.collection_id).Add(g.grantee_type).Add(g.grantee_id).Add(ToString(g.level)));
    if (!r) {
      if (r.error().code() == ErrorCode::kNotFound) {
        return Fail(Error::NotFound("collection " + g.collection_id + " not found"));
      }
      return Fail(r.error());
    }
    return {};
  });
}

Status PostgresIdentityStore::RemoveGrant(const std::string& collection_id, const std::string& grantee_type,
                                          const std::string& grantee_id) {
  if (!IsOneOf(grantee_type, {"user", "team"})) {
    return Fail(Error::InvalidArgument("grantee_type must be 'user' or 'team', not '" + grantee_type + "'"));
  }
  return db_.WithWrite([&](Connection& c) -> Status {
    auto r = c.Exec("DELETE FROM collection_grants WHERE collection_id = $1 AND grantee_type = $2 AND grantee_id = $3",
                    Params().Add(collection_id).Add(grantee_type).Add(grantee_id));
    if (!r) return Fail(r.error());
    if (r->affected() == 0) {
      return Fail(Error::NotFound("collection " + collection_id + " has no grant to " + grantee_type + " " + grantee_id));
    }
    return {};
  });
}

Result<std::vector<Grant>> PostgresIdentityStore::ListGrants(const std::string& collection_id) {
  return db_.WithRead([&](Connection& c) -> Result<std::vector<Grant>> {
    auto r = c.Exec(
        "SELECT c.id, g.grantee_type, g.grantee_id, g.level FROM collections c "
        "LEFT JOIN collection_grants g ON g.collection_id = c.id WHERE c.id = $1 ORDER BY g.grantee_type, g.grantee_id",
        Params().Add(collection_id));
    if (!r) return Fail(r.error());
    if (r->empty()) return Fail(Error::NotFound("collection " + collection_id + " not found"));
    std::vector<Grant> out;
    for (int i = 0; i < r->rows(); ++i) {
      if (r->IsNull(i, 1)) continue;
      Grant g;
      g.collection_id = r->Text(i, 0);
      g.grantee_type = r->Text(i, 1);
      g.grantee_id = r->Text(i, 2);
      g.level = ParseAccessLevel(r->View(i, 3)).value_or(AccessLevel::kNone);
      out.push_back(std::move(g));
    }
    return out;
  });
}

Result<AccessLevel> PostgresIdentityStore::AccessLevelFor(const std::string& user_id,
                                                          const std::vector<std::string>& /*team_ids*/,
                                                          const std::string& collection_id) {
  // team_ids is not used: team_members is authoritative (see the header).
  return db_.WithPrimary([&](Connection& c) -> Result<AccessLevel> {
    auto r = c.Exec(std::string("WITH ") + kMyTeams +
                        " SELECT COALESCE(MAX(lvl), 0) FROM ("
                        "SELECT 3 AS lvl FROM collections c WHERE c.id = $2 AND c.owner_type = 'user' "
                        "AND c.owner_id = $1 AND $1 <> '' "
                        "UNION ALL SELECT CASE m.role WHEN 'admin' THEN 3 ELSE 2 END FROM collections c "
                        "JOIN my_teams m ON m.team_id = c.owner_id WHERE c.id = $2 AND c.owner_type = 'team' "
                        "UNION ALL SELECT " +
                        kGrantLevel +
                        " FROM collection_grants g WHERE g.collection_id = $2 "
                        "AND ((g.grantee_type = 'user' AND g.grantee_id = $1) OR "
                        "(g.grantee_type = 'team' AND g.grantee_id IN (SELECT team_id FROM my_teams)))) levels",
                    Params().Add(user_id).Add(collection_id));
    if (!r) return Fail(r.error());
    switch (r->Int(0, 0)) {
      case 3: return AccessLevel::kAdmin;
      case 2: return AccessLevel::kWrite;
      case 1: return AccessLevel::kRead;
      default: return AccessLevel::kNone;
    }
  });
}

Result<std::vector<std::string>> PostgresIdentityStore::ReadableCollectionIds(
    const std::string& user_id, const std::vector<std::string>& /*team_ids*/) {
  return db_.WithRead([&](Connection& c) -> Result<std::vector<std::string>> {
    auto r = c.Exec(std::string("WITH ") + kMyTeams +
                        ", readable (id) AS ("
                        "SELECT id FROM collections WHERE owner_type = 'user' AND owner_id = $1 AND $1 <> '' "
                        "UNION SELECT c.id FROM my_teams m JOIN collections c "
                        "ON c.owner_type = 'team' AND c.owner_id = m.team_id "
                        "UNION SELECT collection_id FROM collection_grants WHERE grantee_type = 'user' AND grantee_id = $1 "
                        "UNION SELECT g.collection_id FROM my_teams m JOIN collection_grants g "
                        "ON g.grantee_type = 'team' AND g.grantee_id = m.team_id) "
                        "SELECT c.id FROM readable r JOIN collections c ON c.id = r.id "
                        "ORDER BY c.created_at DESC, c.id",
                    Params().Add(user_id));
    if (!r) return Fail(r.error());
    std::vector<std::string> out;
    for (int i = 0; i < r->rows(); ++i) out.push_back(r->Text(i, 0));
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// Quotas

Result<QuotaOverrides> PostgresIdentityStore::GetQuotaOverrides(const std::string& user_id) {
  return db_.WithRead([&](Connection& c) -> Result<QuotaOverrides> {
    auto r = c.Exec(
        "SELECT q.collections, q.files_per_collection, q.storage_bytes, q.llm_tokens_per_day FROM users u "
        "LEFT JOIN quota_overrides q ON q.user_id = u.id WHERE u.id = $1",
        Params().Add(user_id));
    if (!r) return Fail(r.error());
    if (r->empty()) return Fail(Error::NotFound("user " + user_id + " not found"));
    auto opt = [&](int col) {
      return r->IsNull(0, col) ? std::nullopt : std::optional<std::int64_t>(r->Int(0, col));
    };
    QuotaOverrides q;
    q.collections = opt(0);
    q.files_per_collection = opt(1);
    q.storage_bytes = opt(2);
    q.llm_tokens_per_day = opt(3);
    return q;
  });
}

Status PostgresIdentityStore::SetQuotaOverrides(const std::string& user_id, const QuotaOverrides& q) {
  for (const auto& [name, v] : {std::pair{"collections", q.collections},
                                std::pair{"files_per_collection", q.files_per_collection},
                                std::pair{"storage_bytes", q.storage_bytes},
                                std::pair{"llm_tokens_per_day", q.llm_tokens_per_day}}) {
    if (v && *v < 0) return Fail(Error::InvalidArgument(std::string("quota ") + name + " must not be negative"));
  }
  return db_.WithTransaction([&](Connection& c) -> Status {
    if (auto st = RequireUser(c, user_id); !st) return st;
    auto r = c.Exec(
        "INSERT INTO quota_overrides (user_id, collections, files_per_collection, storage_bytes, llm_tokens_per_day) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO UPDATE SET collections = excluded.collections, "
        "files_per_collection = excluded.files_per_collection, storage_bytes = excluded.storage_bytes, "
        "llm_tokens_per_day = excluded.llm_tokens_per_day",
        Params().Add(user_id).Add(q.collections).Add(q.files_per_collection).Add(q.storage_bytes).Add(
            q.llm_tokens_per_day));
    if (!r) {
      if (r.error().code() == ErrorCode::kNotFound) return Fail(Error::NotFound("user " + user_id + " not found"));
      return Fail(r.error());
    }
    return {};
  });
}

Result<Usage> PostgresIdentityStore::GetUsage(const std::string& user_id, const std::string& day) {
  if (auto st = ValidateDay(day); !st) return Fail(st.error());
  return db_.WithRead([&](Connection& c) -> Result<Usage> {
    // One statement, so the three numbers come from one snapshot.
    auto r = c.Exec(
        "SELECT "
        "(SELECT count(*) FROM collections c WHERE c.owner_type = 'user' AND c.owner_id = u.id), "
        "(SELECT COALESCE(SUM(f.size_bytes), 0) FROM files f JOIN collections c ON c.id = f.collection_id "
        " WHERE c.owner_type = 'user' AND c.owner_id = u.id), "
        "(SELECT COALESCE(SUM(t.tokens), 0) FROM llm_token_usage t WHERE t.user_id = u.id AND t.day = $2) "
        "FROM users u WHERE u.id = $1",
        Params().Add(user_id).Add(day));
    if (!r) return Fail(r.error());
    if (r->empty()) return Fail(Error::NotFound("user " + user_id + " not found"));
    Usage u;
    u.collections = r->Int(0, 0);
    u.storage_bytes = r->Int(0, 1);
    u.llm_tokens_today = r->Int(0, 2);
    return u;
  });
}

Result<std::int64_t> PostgresIdentityStore::AddLlmTokens(const std::string& user_id, const std::string& day,
                                                         std::int64_t tokens, std::int64_t limit) {
  if (auto st = ValidateDay(day); !st) return Fail(st.error());
  if (tokens < 0) return Fail(Error::InvalidArgument("tokens must not be negative"));
  if (limit < 0) return Fail(Error::InvalidArgument("the token limit must not be negative"));
  return db_.WithTransaction([&](Connection& c) -> Result<std::int64_t> {
    if (auto st = Require(c, "SELECT 1 FROM users WHERE id = $1 FOR SHARE", user_id, "user"); !st) {
      return Fail(st.error());
    }
    // Make sure the counter row exists, then lock it: the check and the add see no other writer.
    if (auto st = Done(c.Exec("INSERT INTO llm_token_usage (user_id, day, tokens) VALUES ($1, $2, 0) "
                              "ON CONFLICT (user_id, day) DO NOTHING",
                              Params().Add(user_id).Add(day)));
        !st) {
      return Fail(st.error());
    }
    auto q = c.Exec("SELECT tokens FROM llm_token_usage WHERE user_id = $1 AND day = $2 FOR UPDATE",
                    Params().Add(user_id).Add(day));
    if (!q) return Fail(q.error());
    const std::int64_t used = q->empty() ? 0 : q->Int(0, 0);
    if (tokens > std::numeric_limits<std::int64_t>::max() - used) {
      return Fail(Error::InvalidArgument("token count overflows"));
    }
    const std::int64_t total = used + tokens;
    if (limit > 0 && total > limit) {
      return Fail(Error::QuotaExceeded("Quota exceeded for llm_tokens_per_day: " + std::to_string(used) + " used of " +
                                       std::to_string(limit) + " on " + day + ", " + std::to_string(tokens) +
                                       " more asked")
                      .WithDetails(
                          nlohmann::json{{"resource", "llm_tokens_per_day"}, {"usage", used}, {"limit", limit}}.dump()));
    }
    if (auto st = Done(c.Exec("UPDATE llm_token_usage SET tokens = $3 WHERE user_id = $1 AND day = $2",
                              Params().Add(user_id).Add(day).Add(total)));
        !st) {
      return Fail(st.error());
    }
    return total;
  });
}

// ---------------------------------------------------------------------------------------------
// Audit

Status PostgresIdentityStore::AppendAudit(const AuditEntry& e) {
  if (e.action.empty()) return Fail(Error::InvalidArgument("audit action must not be empty"));
  if (!IsOneOf(e.outcome, {"ok", "denied", "failed"})) {
    return Fail(Error::InvalidArgument("audit outcome must be ok, denied or failed, not '" + e.outcome + "'"));
  }
  return db_.WithWrite([&](Connection& c) -> Status {
    return Done(c.Exec(
        "INSERT INTO audit_log (at, principal_id, action, resource, outcome, detail, remote_address) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        Params()
            .Add(e.at_ms != 0 ? e.at_ms : NowMs())
            .Add(e.principal_id)
            .Add(e.action)
            .Add(e.resource)
            .Add(e.outcome)
            .Add(e.detail.empty() ? std::string("{}") : e.detail)
            .Add(e.remote_address)));
  });
}

Result<std::vector<AuditEntry>> PostgresIdentityStore::ListAudit(std::int64_t after_seq, std::size_t limit) {
  if (limit == 0) return std::vector<AuditEntry>{};
  return db_.WithRead([&](Connection& c) -> Result<std::vector<AuditEntry>> {
    auto r = c.Exec(std::string("SELECT ") + kAuditColumns + " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                    Params().Add(after_seq).Add(ClampLimit(limit)));
    if (!r) return Fail(r.error());
    std::vector<AuditEntry> out;
    for (int i = 0; i < r->rows(); ++i) out.push_back(ReadAudit(*r, i));
    return out;
  });
}

Status PostgresIdentityStore::Ping() {
  return db_.WithPrimary([](Connection& c) { return Done(c.Exec("SELECT 1")); });
}

}  // namespace modulo::store::postgres
