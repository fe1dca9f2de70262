// SqliteIdentityStore: the embedded IdentityStore over the data directory's SQLite database
// (tables of migration 5: users, teams, team_members, api_keys, collection_grants,
// quota_overrides, llm_token_usage, audit_log; collections.owner_type).
//
// Choices this implementation makes where identity_store.h leaves room:
// - Team membership is read from team_members, which is authoritative: AccessLevelFor and
//   ReadableCollectionIds derive the user's teams themselves (for team-owned collections and for
//   grants to teams) and ignore `team_ids`. A principal carrying a stale team list therefore
//   neither keeps access to a team it has left nor gains access to a team it was never in.
//   An empty `user_id` owns nothing (collections with owner_id '' are not "owned" by anyone).
// - Writes that name other objects check them first, in the same transaction, so a missing
//   user, team or collection is NotFound (never a foreign-key failure).
// - DeleteUser removes the user's API keys, memberships and quota overrides (cascades), grants
//   to the user and the user's LLM token counters. DeleteTeam removes its memberships and the
//   grants to it. Collections owned by the deleted user or team are left alone (the caller
//   decides: delete or hand over); they become reachable only through their remaining grants.
// - GetUsage, GetQuotaOverrides, SetQuotaOverrides and AddLlmTokens need an existing user.
//   SetQuotaOverrides replaces all four overrides (an unset member clears that override).
// - Listings: users and teams by name; members and memberships by id; keys newest first;
//   grants by (grantee_type, grantee_id). CreateApiKey sets created_at when it is 0.
//
// Thread-safety: all methods are thread-safe (connections come from the Database pool).
#pragma once

#include "modulo/store/identity_store.h"
#include "modulo/store/sqlite/database.h"

namespace modulo::store::sqlite {

class SqliteIdentityStore final : public IdentityStore {
 public:
  explicit SqliteIdentityStore(Database& db) : db_(db) {}

  Result<User> CreateUser(const User& u) override;
  Result<User> GetUser(const std::string& id) override;
  Result<User> FindUserByName(const std::string& name) override;
  Result<User> FindUserBySubject(const std::string& external_subject) override;
  Result<std::vector<User>> ListUsers() override;
  Result<User> UpdateUser(const User& u) override;
  Status DeleteUser(const std::string& id) override;

  Result<Team> CreateTeam(const Team& t, const std::string& creator_user_id) override;
  Result<Team> GetTeam(const std::string& id) override;
  Result<std::vector<Team>> ListTeams(const std::string& user_id) override;
  Result<Team> UpdateTeam(const Team& t) override;
  Status DeleteTeam(const std::string& id) override;
  Status SetTeamMember(const TeamMember& m) override;
  Status RemoveTeamMember(const std::string& team_id, const std::string& user_id) override;
  Result<std::vector<TeamMember>> ListTeamMembers(const std::string& team_id) override;
  Result<std::vector<TeamMember>> MembershipsOf(const std::string& user_id) override;

  Status CreateApiKey(const ApiKeyRecord& k) override;
  Result<ApiKeyRecord> GetApiKey(const std::string& key_id) override;
  Result<std::vector<ApiKeyRecord>> ListApiKeys(const std::string& user_id) override;
  Status RevokeApiKey(const std::string& user_id, const std::string& key_id) override;
  Status TouchApiKey(const std::string& key_id, std::int64_t used_at_ms) override;

  Status SetGrant(const Grant& g) override;
  Status RemoveGrant(const std::string& collection_id, const std::string& grantee_type,
                     const std::string& grantee_id) override;
  Result<std::vector<Grant>> ListGrants(const std::string& collection_id) override;
  Result<AccessLevel> AccessLevelFor(const std::string& user_id, const std::vector<std::string>& team_ids,
                                     const std::string& collection_id) override;
  Result<std::vector<std::string>> ReadableCollectionIds(const std::string& user_id,
                                                         const std::vector<std::string>& team_ids) override;

  Result<QuotaOverrides> GetQuotaOverrides(const std::string& user_id) override;
  Status SetQuotaOverrides(const std::string& user_id, const QuotaOverrides& q) override;
  Result<Usage> GetUsage(const std::string& user_id, const std::string& day) override;
  Result<std::int64_t> AddLlmTokens(const std::string& user_id, const std::string& day, std::int64_t tokens,
                                    std::int64_t limit) override;

  Status AppendAudit(const AuditEntry& e) override;
  Result<std::vector<AuditEntry>> ListAudit(std::int64_t after_seq, std::size_t limit) override;

  Status Ping() override;

 private:
  Database& db_;
};

}  // namespace modulo::store::sqlite
