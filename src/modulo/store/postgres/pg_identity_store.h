// PostgresIdentityStore: the scale-out IdentityStore over PostgreSQL (tables of schema step 2 in
// database.cpp). Same semantics as SqliteIdentityStore, and the same contract
// (identity_store_contract.h):
// - team_members is authoritative: AccessLevelFor and ReadableCollectionIds derive the user's
//   teams themselves and ignore `team_ids`; an empty user id owns nothing;
// - writes that name other objects check them in the same transaction (NotFound, never a
//   foreign-key failure);
// - DeleteUser removes the user's keys, memberships, quota overrides (cascades), grants to the
//   user and LLM token counters; DeleteTeam removes memberships and grants to the team;
//   collections of a deleted owner stay;
// - AddLlmTokens locks the user's counter row (SELECT ... FOR UPDATE) so concurrent adds never
//   pass the limit; SetQuotaOverrides replaces all four overrides;
// - listings: users and teams by name, members and memberships by id, keys newest first,
//   grants by (grantee_type, grantee_id), audit entries by seq.
//
// Reads and replicas (database.h): API key lookups (GetApiKey) and access levels
// (AccessLevelFor, MembershipsOf) read the primary, so a revoked key, a removed member or an
// unshared collection stops working at once on every server; other listings may read a replica.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include "modulo/store/identity_store.h"
#include "modulo/store/postgres/database.h"

namespace modulo::store::postgres {

class PostgresIdentityStore final : public IdentityStore {
 public:
  explicit PostgresIdentityStore(Database& db) : db_(db) {}

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

}  // namespace modulo::store::postgres
