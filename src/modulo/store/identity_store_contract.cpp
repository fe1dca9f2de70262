#include "modulo/store/identity_store_contract.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>

namespace modulo::store {

User IdentityStoreContract::NewUser(const std::string& name, const std::string& role, const std::string& subject) {
  User u;
  u.name = name;
  u.email = name + "@example.com";
  u.role = role;
  u.external_subject = subject;
  auto created = store_->CreateUser(u);
  EXPECT_TRUE(created) << created.error().ToString();
  return created ? *created : User{};
}

std::string IdentityStoreContract::NewCollectionOf(const std::string& name, const std::string& owner_id,
                                                   const std::string& owner_type) {
  NewCollection nc;
  nc.name = name;
  nc.owner_id = owner_id;
  nc.owner_type = owner_type;
  nc.embedding_model = "all-MiniLM-L6-v2";
  auto c = meta_->CreateCollection(nc);
  EXPECT_TRUE(c) << c.error().ToString();
  if (!c) return "";
  auto back = meta_->GetCollection(c->id);
  EXPECT_TRUE(back) << back.error().ToString();
  if (back && back->owner_type != owner_type) {
    EXPECT_TRUE(fixture_.set_owner_type) << "the metadata store did not keep owner_type and there is no hook";
    if (fixture_.set_owner_type) fixture_.set_owner_type(c->id, owner_type);
  }
  return c->id;
}

std::vector<std::string> IdentityStoreContract::TeamsOf(const std::string& user_id) {
  std::vector<std::string> out;
  auto m = store_->MembershipsOf(user_id);
  EXPECT_TRUE(m) << m.error().ToString();
  if (m) {
    for (const auto& x : *m) out.push_back(x.team_id);
  }
  return out;
}

AccessLevel IdentityStoreContract::LevelOf(const std::string& user_id, const std::string& collection_id) {
  auto l = store_->AccessLevelFor(user_id, TeamsOf(user_id), collection_id);
  EXPECT_TRUE(l) << l.error().ToString();
  return l ? *l : AccessLevel::kNone;
}

namespace {

constexpr const char* kDay = "2026-03-14";

FileRecord FileOf(const std::string& collection_id, const std::string& hash, std::int64_t size) {
  FileRecord f;
  f.collection_id = collection_id;
  f.filename = hash + ".txt";
  f.size_bytes = size;
  f.content_hash = hash;
  f.mime_type = "text/plain";
  f.storage_key = "blobs/" + hash;
  return f;
}

ApiKeyRecord KeyOf(const std::string& key_id, const std::string& user_id, std::int64_t created_at = 0) {
  ApiKeyRecord k;
  k.key_id = key_id;
  k.user_id = user_id;
  k.name = "laptop";
  k.prefix = "mdk_" + key_id;
  k.hash = std::string(64, 'a');
  k.created_at_ms = created_at;
  return k;
}

Grant GrantOf(const std::string& collection_id, const std::string& type, const std::string& id, AccessLevel level) {
  Grant g;
  g.collection_id = collection_id;
  g.grantee_type = type;
  g.grantee_id = id;
  g.level = level;
  return g;
}

ErrorCode CodeOf(const Status& s) { return s ? ErrorCode::kInternal : s.error().code(); }

TEST(AccessLevelTest, NamesRoundTrip) {
  for (auto l : {AccessLevel::kNone, AccessLevel::kRead, AccessLevel::kWrite, AccessLevel::kAdmin}) {
    EXPECT_EQ(ParseAccessLevel(ToString(l)), l);
  }
  EXPECT_EQ(ToString(AccessLevel::kWrite), "write");
  EXPECT_FALSE(ParseAccessLevel("owner"));
  EXPECT_FALSE(ParseAccessLevel(""));
}

TEST_P(IdentityStoreContract, UsersCanBeCreatedFoundUpdatedAndDeleted) {
  const User alice = NewUser("alice", "admin", "https://idp.example|sub-1");
  EXPECT_EQ(alice.id.size(), 36u);
  EXPECT_GT(alice.created_at_ms, 0);
  EXPECT_EQ(alice.created_at_ms, alice.updated_at_ms);
  User svc;
  svc.name = "ci-bot";
  svc.kind = "service";
  auto bot = store_->CreateUser(svc);
  ASSERT_TRUE(bot) << bot.error().ToString();
  NewUser("bob");  // no subject: users without one do not collide

  auto got = store_->GetUser(alice.id);
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(got->name, "alice");
  EXPECT_EQ(got->email, "alice@example.com");
  EXPECT_EQ(got->role, "admin");
  EXPECT_EQ(got->kind, "user");
  EXPECT_EQ(got->external_subject, "https://idp.example|sub-1");
  EXPECT_FALSE(got->disabled);
  EXPECT_EQ(store_->GetUser(bot->id)->kind, "service");
  EXPECT_EQ(store_->FindUserByName("alice")->id, alice.id);
  EXPECT_EQ(store_->FindUserBySubject("https://idp.example|sub-1")->id, alice.id);
  EXPECT_EQ(store_->FindUserBySubject("https://idp.example|sub-2").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_->FindUserBySubject("").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_->FindUserByName("nobody").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_->GetUser("no-such-user").error().code(), ErrorCode::kNotFound);
  auto all = store_->ListUsers();
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 3u);

  // Duplicates and malformed input.
  User dup;
  dup.name = "alice";
  EXPECT_EQ(store_->CreateUser(dup).error().code(), ErrorCode::kAlreadyExists);
  User same_subject;
  same_subject.name = "alice2";
  same_subject.external_subject = "https://idp.example|sub-1";
  EXPECT_EQ(store_->CreateUser(same_subject).error().code(), ErrorCode::kAlreadyExists);
  User bad;
  EXPECT_EQ(store_->CreateUser(bad).error().code(), ErrorCode::kInvalidArgument);  // empty name
  bad.name = "carol";
  bad.role = "superuser";
  EXPECT_EQ(store_->CreateUser(bad).error().code(), ErrorCode::kInvalidArgument);
  bad.role = "user";
  bad.kind = "robot";
  EXPECT_EQ(store_->CreateUser(bad).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->ListUsers()->size(), 3u);

  // Update.
  User changed = *got;
  changed.name = "alice.b";
  changed.email = "ab@example.com";
  changed.role = "user";
  changed.disabled = true;
  auto updated = store_->UpdateUser(changed);
  ASSERT_TRUE(updated) << updated.error().ToString();
  EXPECT_EQ(updated->name, "alice.b");
  EXPECT_EQ(updated->created_at_ms, alice.created_at_ms);
  EXPECT_GE(updated->updated_at_ms, alice.updated_at_ms);
  auto reread = store_->GetUser(alice.id);
  EXPECT_EQ(reread->email, "ab@example.com");
  EXPECT_EQ(reread->role, "user");
  EXPECT_TRUE(reread->disabled);
  EXPECT_EQ(reread->external_subject, "https://idp.example|sub-1");
  EXPECT_EQ(store_->FindUserByName("alice").error().code(), ErrorCode::kNotFound);
  changed.name = "bob";
  EXPECT_EQ(store_->UpdateUser(changed).error().code(), ErrorCode::kAlreadyExists);
  changed.name = "";
  EXPECT_EQ(store_->UpdateUser(changed).error().code(), ErrorCode::kInvalidArgument);
  changed.name = "x";
  changed.role = "root";
  EXPECT_EQ(store_->UpdateUser(changed).error().code(), ErrorCode::kInvalidArgument);
  changed.role = "user";
  changed.id = "no-such-user";
  EXPECT_EQ(store_->UpdateUser(changed).error().code(), ErrorCode::kNotFound);

  // Delete.
  ASSERT_TRUE(store_->DeleteUser(alice.id));
  EXPECT_EQ(store_->GetUser(alice.id).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_->FindUserBySubject("https://idp.example|sub-1").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->DeleteUser(alice.id)), ErrorCode::kNotFound);
  EXPECT_EQ(store_->ListUsers()->size(), 2u);
  // The name and the subject are free again.
  EXPECT_TRUE(store_->CreateUser(same_subject));
}

TEST_P(IdentityStoreContract, TeamsStartWithTheirCreatorAsAdmin) {
  const User alice = NewUser("alice");
  const User bob = NewUser("bob");
  Team t;
  t.name = "search";
  t.description = "the search team";
  auto team = store_->CreateTeam(t, alice.id);
  ASSERT_TRUE(team) << team.error().ToString();
  EXPECT_EQ(team->id.size(), 36u);
  EXPECT_GT(team->created_at_ms, 0);
  auto members = store_->ListTeamMembers(team->id);
  ASSERT_TRUE(members) << members.error().ToString();
  ASSERT_EQ(members->size(), 1u);
  EXPECT_EQ((*members)[0].user_id, alice.id);
  EXPECT_EQ((*members)[0].team_id, team->id);
  EXPECT_EQ((*members)[0].role, "admin");

  auto got = store_->GetTeam(team->id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->name, "search");
  EXPECT_EQ(got->description, "the search team");
  EXPECT_EQ(store_->GetTeam("no-such-team").error().code(), ErrorCode::kNotFound);

  // Duplicates, malformed input and unknown creators leave nothing behind.
  EXPECT_EQ(store_->CreateTeam(t, bob.id).error().code(), ErrorCode::kAlreadyExists);
  Team unnamed;
  EXPECT_EQ(store_->CreateTeam(unnamed, alice.id).error().code(), ErrorCode::kInvalidArgument);
  Team orphan;
  orphan.name = "orphan";
  EXPECT_EQ(store_->CreateTeam(orphan, "no-such-user").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_->ListTeams("")->size(), 1u);
  EXPECT_EQ(store_->MembershipsOf(bob.id)->size(), 0u);

  Team t2;
  t2.name = "ingest";
  auto team2 = store_->CreateTeam(t2, bob.id);
  ASSERT_TRUE(team2);
  auto every = store_->ListTeams("");
  ASSERT_TRUE(every);
  EXPECT_EQ(every->size(), 2u);
  auto of_alice = store_->ListTeams(alice.id);
  ASSERT_TRUE(of_alice);
  ASSERT_EQ(of_alice->size(), 1u);
  EXPECT_EQ((*of_alice)[0].id, team->id);
  EXPECT_EQ(store_->ListTeams("no-such-user").error().code(), ErrorCode::kNotFound);

  // Update.
  Team renamed = *team;
  renamed.name = "retrieval";
  renamed.description = "renamed";
  auto updated = store_->UpdateTeam(renamed);
  ASSERT_TRUE(updated) << updated.error().ToString();
  EXPECT_EQ(store_->GetTeam(team->id)->name, "retrieval");
  EXPECT_EQ(store_->GetTeam(team->id)->description, "renamed");
  renamed.name = "ingest";
  EXPECT_EQ(store_->UpdateTeam(renamed).error().code(), ErrorCode::kAlreadyExists);
  renamed.name = "";
  EXPECT_EQ(store_->UpdateTeam(renamed).error().code(), ErrorCode::kInvalidArgument);
  renamed.name = "x";
  renamed.id = "no-such-team";
  EXPECT_EQ(store_->UpdateTeam(renamed).error().code(), ErrorCode::kNotFound);

  // Delete: memberships go with the team.
  ASSERT_TRUE(store_->DeleteTeam(team->id));
  EXPECT_EQ(store_->GetTeam(team->id).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_->ListTeamMembers(team->id).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_->MembershipsOf(alice.id)->size(), 0u);
  EXPECT_EQ(CodeOf(store_->DeleteTeam(team->id)), ErrorCode::kNotFound);
  EXPECT_EQ(store_->ListTeams("")->size(), 1u);
}

TEST_P(IdentityStoreContract, MembersCanBeAddedChangedListedAndRemoved) {
  const User alice = NewUser("alice");
  const User bob = NewUser("bob");
  const User carol = NewUser("carol");
  Team t;
  t.name = "docs";
  auto team = store_->CreateTeam(t, alice.id);
  ASSERT_TRUE(team);
  Team t2;
  t2.name = "ops";
  auto team2 = store_->CreateTeam(t2, carol.id);
  ASSERT_TRUE(team2);

  ASSERT_TRUE(store_->SetTeamMember({team->id, bob.id, "member"}));
  ASSERT_TRUE(store_->SetTeamMember({team2->id, bob.id, "member"}));
  auto of_bob = store_->MembershipsOf(bob.id);
  ASSERT_TRUE(of_bob) << of_bob.error().ToString();
  ASSERT_EQ(of_bob->size(), 2u);
  for (const auto& m : *of_bob) {
    EXPECT_EQ(m.user_id, bob.id);
    EXPECT_EQ(m.role, "member");
    EXPECT_TRUE(m.team_id == team->id || m.team_id == team2->id);
  }
  EXPECT_EQ(store_->ListTeams(bob.id)->size(), 2u);

  // Changing the role of an existing member.
  ASSERT_TRUE(store_->SetTeamMember({team->id, bob.id, "admin"}));
  auto members = store_->ListTeamMembers(team->id);
  ASSERT_TRUE(members);
  ASSERT_EQ(members->size(), 2u);
  for (const auto& m : *members) EXPECT_EQ(m.role, "admin") << m.user_id;
  ASSERT_TRUE(store_->SetTeamMember({team->id, bob.id, "member"}));
  auto again = store_->MembershipsOf(bob.id);
  ASSERT_TRUE(again);
  for (const auto& m : *again) EXPECT_EQ(m.role, "member");

  // Malformed and unknown.
  EXPECT_EQ(CodeOf(store_->SetTeamMember({team->id, carol.id, "owner"})), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(store_->SetTeamMember({"no-such-team", carol.id, "member"})), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->SetTeamMember({team->id, "no-such-user", "member"})), ErrorCode::kNotFound);
  EXPECT_EQ(store_->MembershipsOf("no-such-user").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_->ListTeamMembers("no-such-team").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_->MembershipsOf(carol.id)->size(), 1u);

  // Removal.
  ASSERT_TRUE(store_->RemoveTeamMember(team->id, bob.id));
  EXPECT_EQ(CodeOf(store_->RemoveTeamMember(team->id, bob.id)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->RemoveTeamMember(team->id, carol.id)), ErrorCode::kNotFound);
  EXPECT_EQ(store_->ListTeamMembers(team->id)->size(), 1u);
  auto left = store_->MembershipsOf(bob.id);
  ASSERT_TRUE(left);
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].team_id, team2->id);

  // Deleting a user removes the user's memberships.
  ASSERT_TRUE(store_->DeleteUser(bob.id));
  EXPECT_EQ(store_->ListTeamMembers(team2->id)->size(), 1u);
}

TEST_P(IdentityStoreContract, ApiKeysAreStoredListedRevokedAndTouched) {
  const User alice = NewUser("alice");
  const User bob = NewUser("bob");
  ASSERT_TRUE(store_->CreateApiKey(KeyOf("k1", alice.id, 1000)));
  ASSERT_TRUE(store_->CreateApiKey(KeyOf("k2", alice.id, 2000)));
  ASSERT_TRUE(store_->CreateApiKey(KeyOf("k3", bob.id)));
  EXPECT_EQ(CodeOf(store_->CreateApiKey(KeyOf("k1", bob.id))), ErrorCode::kAlreadyExists);
  EXPECT_EQ(CodeOf(store_->CreateApiKey(KeyOf("k9", "no-such-user"))), ErrorCode::kNotFound);

  auto k1 = store_->GetApiKey("k1");
  ASSERT_TRUE(k1) << k1.error().ToString();
  EXPECT_EQ(k1->user_id, alice.id);
  EXPECT_EQ(k1->name, "laptop");
  EXPECT_EQ(k1->prefix, "mdk_k1");
  EXPECT_EQ(k1->hash, std::string(64, 'a'));
  EXPECT_EQ(k1->created_at_ms, 1000);
  EXPECT_EQ(k1->expires_at_ms, 0);
  EXPECT_EQ(k1->last_used_at_ms, 0);
  EXPECT_EQ(k1->revoked_at_ms, 0);
  EXPECT_GT(store_->GetApiKey("k3")->created_at_ms, 0) << "created_at is assigned when 0";
  EXPECT_EQ(store_->GetApiKey("nope").error().code(), ErrorCode::kNotFound);

  auto listed = store_->ListApiKeys(alice.id);
  ASSERT_TRUE(listed) << listed.error().ToString();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].key_id, "k2") << "newest first";
  EXPECT_EQ((*listed)[1].key_id, "k1");
  EXPECT_EQ(store_->ListApiKeys(bob.id)->size(), 1u);
  EXPECT_EQ(store_->ListApiKeys("no-such-user").error().code(), ErrorCode::kNotFound);
  const User carol = NewUser("carol");
  EXPECT_EQ(store_->ListApiKeys(carol.id)->size(), 0u);

  // Revoking: only by the key's user; twice is fine and keeps the first time.
  EXPECT_EQ(CodeOf(store_->RevokeApiKey(bob.id, "k1")), ErrorCode::kNotFound);
  EXPECT_EQ(store_->GetApiKey("k1")->revoked_at_ms, 0);
  EXPECT_EQ(CodeOf(store_->RevokeApiKey(alice.id, "nope")), ErrorCode::kNotFound);
  ASSERT_TRUE(store_->RevokeApiKey(alice.id, "k1"));
  const auto revoked_at = store_->GetApiKey("k1")->revoked_at_ms;
  EXPECT_GT(revoked_at, 0);
  ASSERT_TRUE(store_->RevokeApiKey(alice.id, "k1"));
  EXPECT_EQ(store_->GetApiKey("k1")->revoked_at_ms, revoked_at);
  EXPECT_EQ(store_->GetApiKey("k2")->revoked_at_ms, 0);

  // Touching only moves last_used_at forward.
  ASSERT_TRUE(store_->TouchApiKey("k2", 5000));
  EXPECT_EQ(store_->GetApiKey("k2")->last_used_at_ms, 5000);
  ASSERT_TRUE(store_->TouchApiKey("k2", 4000));
  EXPECT_EQ(store_->GetApiKey("k2")->last_used_at_ms, 5000);
  ASSERT_TRUE(store_->TouchApiKey("k2", 6000));
  EXPECT_EQ(store_->GetApiKey("k2")->last_used_at_ms, 6000);
  EXPECT_EQ(CodeOf(store_->TouchApiKey("nope", 1)), ErrorCode::kNotFound);

  // Deleting the user deletes the keys.
  ASSERT_TRUE(store_->DeleteUser(alice.id));
  EXPECT_EQ(store_->GetApiKey("k2").error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(store_->GetApiKey("k3"));
}

TEST_P(IdentityStoreContract, GrantsCanBeSetChangedListedAndRemoved) {
  const User alice = NewUser("alice");
  const User bob = NewUser("bob");
  Team t;
  t.name = "readers";
  auto team = store_->CreateTeam(t, bob.id);
  ASSERT_TRUE(team);
  const auto col = NewCollectionOf("docs", alice.id);
  ASSERT_FALSE(col.empty());

  ASSERT_TRUE(store_->SetGrant(GrantOf(col, "user", bob.id, AccessLevel::kRead)));
  ASSERT_TRUE(store_->SetGrant(GrantOf(col, "team", team->id, AccessLevel::kWrite)));
  auto grants = store_->ListGrants(col);
  ASSERT_TRUE(grants) << grants.error().ToString();
  ASSERT_EQ(grants->size(), 2u);
  std::map<std::string, AccessLevel> by_grantee;
  for (const auto& g : *grants) {
    EXPECT_EQ(g.collection_id, col);
    by_grantee[g.grantee_type + ":" + g.grantee_id] = g.level;
  }
  EXPECT_EQ(by_grantee["user:" + bob.id], AccessLevel::kRead);
  EXPECT_EQ(by_grantee["team:" + team->id], AccessLevel::kWrite);

  // Setting again changes the level (no second grant).
  ASSERT_TRUE(store_->SetGrant(GrantOf(col, "user", bob.id, AccessLevel::kAdmin)));
  grants = store_->ListGrants(col);
  ASSERT_TRUE(grants);
  ASSERT_EQ(grants->size(), 2u);
  for (const auto& g : *grants) {
    if (g.grantee_type == "user") {
      EXPECT_EQ(g.level, AccessLevel::kAdmin);
    }
  }

  // Unknown grantees and collections, malformed grants.
  EXPECT_EQ(CodeOf(store_->SetGrant(GrantOf(col, "user", "no-such-user", AccessLevel::kRead))), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->SetGrant(GrantOf(col, "team", "no-such-team", AccessLevel::kRead))), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->SetGrant(GrantOf(col, "team", bob.id, AccessLevel::kRead))), ErrorCode::kNotFound)
      << "a user id is not a team id";
  EXPECT_EQ(CodeOf(store_->SetGrant(GrantOf("no-such-collection", "user", bob.id, AccessLevel::kRead))),
            ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->SetGrant(GrantOf(col, "group", bob.id, AccessLevel::kRead))),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(store_->SetGrant(GrantOf(col, "user", bob.id, AccessLevel::kNone))), ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->ListGrants(col)->size(), 2u);
  EXPECT_EQ(store_->ListGrants("no-such-collection").error().code(), ErrorCode::kNotFound);
  const auto empty = NewCollectionOf("empty", alice.id);
  EXPECT_EQ(store_->ListGrants(empty)->size(), 0u);

  // Removal.
  ASSERT_TRUE(store_->RemoveGrant(col, "user", bob.id));
  EXPECT_EQ(CodeOf(store_->RemoveGrant(col, "user", bob.id)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->RemoveGrant(col, "user", team->id)), ErrorCode::kNotFound);
  grants = store_->ListGrants(col);
  ASSERT_EQ(grants->size(), 1u);
  EXPECT_EQ((*grants)[0].grantee_type, "team");

  // Deleting the collection deletes its grants.
  ASSERT_TRUE(meta_->DeleteCollection(col));
  EXPECT_EQ(store_->ListGrants(col).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(LevelOf(bob.id, col), AccessLevel::kNone);
}

TEST_P(IdentityStoreContract, AccessLevelFollowsEveryRule) {
  const User owner = NewUser("owner");
  const User stranger = NewUser("stranger");
  const User reader = NewUser("reader");
  const User team_admin = NewUser("team-admin");
  const User team_member = NewUser("team-member");
  const User other_member = NewUser("other-member");
  Team t;
  t.name = "owners";
  auto owning = store_->CreateTeam(t, team_admin.id);
  ASSERT_TRUE(owning);
  ASSERT_TRUE(store_->SetTeamMember({owning->id, team_member.id, "member"}));
  Team t2;
  t2.name = "others";
  auto others = store_->CreateTeam(t2, other_member.id);
  ASSERT_TRUE(others);

  const auto mine = NewCollectionOf("mine", owner.id);
  const auto theirs = NewCollectionOf("theirs", owning->id, "team");

  // Ownership.
  EXPECT_EQ(LevelOf(owner.id, mine), AccessLevel::kAdmin);
  EXPECT_EQ(LevelOf(stranger.id, mine), AccessLevel::kNone);
  EXPECT_EQ(LevelOf(team_admin.id, mine), AccessLevel::kNone);
  EXPECT_EQ(LevelOf(team_admin.id, theirs), AccessLevel::kAdmin);
  EXPECT_EQ(LevelOf(team_member.id, theirs), AccessLevel::kWrite);
  EXPECT_EQ(LevelOf(other_member.id, theirs), AccessLevel::kNone);
  EXPECT_EQ(LevelOf(owner.id, theirs), AccessLevel::kNone);
  // A team id that happens to be passed as a user id owns nothing.
  EXPECT_EQ(store_->AccessLevelFor(owning->id, {}, theirs).value_or(AccessLevel::kAdmin), AccessLevel::kNone);

  // A missing collection, an unknown user.
  EXPECT_EQ(LevelOf(owner.id, "no-such-collection"), AccessLevel::kNone);
  EXPECT_EQ(store_->AccessLevelFor("no-such-user", {}, mine).value_or(AccessLevel::kAdmin), AccessLevel::kNone);
  EXPECT_EQ(store_->AccessLevelFor("", {}, mine).value_or(AccessLevel::kAdmin), AccessLevel::kNone);

  // A grant to the user.
  ASSERT_TRUE(store_->SetGrant(GrantOf(mine, "user", reader.id, AccessLevel::kRead)));
  EXPECT_EQ(LevelOf(reader.id, mine), AccessLevel::kRead);
  // A grant to a team reaches every member, admins included.
  ASSERT_TRUE(store_->SetGrant(GrantOf(mine, "team", others->id, AccessLevel::kWrite)));
  EXPECT_EQ(LevelOf(other_member.id, mine), AccessLevel::kWrite);
  EXPECT_EQ(LevelOf(stranger.id, mine), AccessLevel::kNone);

  // The highest level wins.
  ASSERT_TRUE(store_->SetTeamMember({others->id, reader.id, "member"}));
  EXPECT_EQ(LevelOf(reader.id, mine), AccessLevel::kWrite) << "read (own grant) < write (team grant)";
  ASSERT_TRUE(store_->SetGrant(GrantOf(mine, "user", reader.id, AccessLevel::kAdmin)));
  EXPECT_EQ(LevelOf(reader.id, mine), AccessLevel::kAdmin) << "admin (own grant) > write (team grant)";
  ASSERT_TRUE(store_->SetGrant(GrantOf(mine, "user", owner.id, AccessLevel::kRead)));
  EXPECT_EQ(LevelOf(owner.id, mine), AccessLevel::kAdmin) << "owning beats a read grant";
  ASSERT_TRUE(store_->SetGrant(GrantOf(theirs, "user", team_member.id, AccessLevel::kRead)));
  EXPECT_EQ(LevelOf(team_member.id, theirs), AccessLevel::kWrite) << "membership beats a read grant";
  ASSERT_TRUE(store_->SetGrant(GrantOf(theirs, "team", owning->id, AccessLevel::kAdmin)));
  EXPECT_EQ(LevelOf(team_member.id, theirs), AccessLevel::kAdmin) << "an admin grant to the team beats membership";
  ASSERT_TRUE(store_->RemoveGrant(theirs, "team", owning->id));

  // Membership is authoritative: a stale team list neither keeps nor gives access.
  const auto stale = TeamsOf(other_member.id);
  ASSERT_TRUE(store_->RemoveTeamMember(others->id, other_member.id));
  EXPECT_EQ(store_->AccessLevelFor(other_member.id, stale, mine).value_or(AccessLevel::kAdmin), AccessLevel::kNone);
  EXPECT_EQ(store_->AccessLevelFor(stranger.id, {owning->id, others->id}, theirs).value_or(AccessLevel::kAdmin),
            AccessLevel::kNone);
  EXPECT_EQ(store_->AccessLevelFor(stranger.id, {owning->id, others->id}, mine).value_or(AccessLevel::kAdmin),
            AccessLevel::kNone);

  // Role changes in the owning team apply at once.
  ASSERT_TRUE(store_->SetTeamMember({owning->id, team_member.id, "admin"}));
  EXPECT_EQ(LevelOf(team_member.id, theirs), AccessLevel::kAdmin);
  ASSERT_TRUE(store_->RemoveTeamMember(owning->id, team_member.id));
  EXPECT_EQ(LevelOf(team_member.id, theirs), AccessLevel::kRead) << "only the user's own read grant is left";
}

TEST_P(IdentityStoreContract, ReadableCollectionsMatchAccessLevelsOverARandomSetup) {
  std::mt19937 rng(20260314);
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
  const AccessLevel levels[] = {AccessLevel::kRead, AccessLevel::kWrite, AccessLevel::kAdmin};

  std::vector<std::string> users;
  for (int i = 0; i < 8; ++i) users.push_back(NewUser("user" + std::to_string(i)).id);
  std::vector<std::string> teams;
  std::map<std::pair<std::string, std::string>, std::string> role;  // (team, user) -> role
  for (int i = 0; i < 3; ++i) {
    Team t;
    t.name = "team" + std::to_string(i);
    const auto& creator = users[pick(users.size())];
    auto team = store_->CreateTeam(t, creator);
    ASSERT_TRUE(team) << team.error().ToString();
    teams.push_back(team->id);
    role[{team->id, creator}] = "admin";
  }
  for (const auto& t : teams) {
    for (const auto& u : users) {
      const double r = std::uniform_real_distribution<double>(0, 1)(rng);
      if (r < 0.25) {
        ASSERT_TRUE(store_->SetTeamMember({t, u, "member"}));
        role[{t, u}] = "member";
      } else if (r < 0.4) {
        ASSERT_TRUE(store_->SetTeamMember({t, u, "admin"}));
        role[{t, u}] = "admin";
      } else if (r < 0.5 && role.count({t, u}) > 0) {
        ASSERT_TRUE(store_->RemoveTeamMember(t, u));
        role.erase({t, u});
      }
    }
  }
  struct Col {
    std::string id, owner_id, owner_type;
  };
  std::vector<Col> cols;
  for (int i = 0; i < 20; ++i) {
    Col c;
    if (chance(0.3)) {
      c.owner_type = "team";
      c.owner_id = teams[pick(teams.size())];
    } else {
      c.owner_type = "user";
      c.owner_id = users[pick(users.size())];
    }
    c.id = NewCollectionOf("col" + std::to_string(i), c.owner_id, c.owner_type);
    ASSERT_FALSE(c.id.empty());
    cols.push_back(c);
  }
  std::map<std::tuple<std::string, std::string, std::string>, AccessLevel> grants;  // (col, type, id)
  for (const auto& c : cols) {
    for (const auto& u : users) {
      if (!chance(0.15)) continue;
      const auto level = levels[pick(3)];
      ASSERT_TRUE(store_->SetGrant(GrantOf(c.id, "user", u, level)));
      grants[{c.id, "user", u}] = level;
    }
    for (const auto& t : teams) {
      if (!chance(0.2)) continue;
      const auto level = levels[pick(3)];
      ASSERT_TRUE(store_->SetGrant(GrantOf(c.id, "team", t, level)));
      grants[{c.id, "team", t}] = level;
    }
  }
  // Change and remove a few.
  for (auto it = grants.begin(); it != grants.end();) {
    const auto& [col, type, id] = it->first;
    if (chance(0.2)) {
      ASSERT_TRUE(store_->RemoveGrant(col, type, id));
      it = grants.erase(it);
      continue;
    }
    if (chance(0.2)) {
      it->second = levels[pick(3)];
      ASSERT_TRUE(store_->SetGrant(GrantOf(col, type, id, it->second)));
    }
    ++it;
  }

  auto model = [&](const std::string& u, const Col& c) {
    AccessLevel best = AccessLevel::kNone;
    auto raise = [&](AccessLevel l) { best = std::max(best, l); };
    if (c.owner_type == "user" && c.owner_id == u) raise(AccessLevel::kAdmin);
    if (c.owner_type == "team") {
      if (auto it = role.find({c.owner_id, u}); it != role.end()) {
        raise(it->second == "admin" ? AccessLevel::kAdmin : AccessLevel::kWrite);
      }
    }
    if (auto it = grants.find({c.id, "user", u}); it != grants.end()) raise(it->second);
    for (const auto& t : teams) {
      if (role.count({t, u}) == 0) continue;
      if (auto it = grants.find({c.id, "team", t}); it != grants.end()) raise(it->second);
    }
    return best;
  };

  std::map<std::string, std::int64_t> created_at;
  for (const auto& c : cols) {
    auto got = meta_->GetCollection(c.id);
    ASSERT_TRUE(got);
    created_at[c.id] = got->created_at_ms;
  }
  std::size_t readable_pairs = 0;
  for (const auto& u : users) {
    std::set<std::string> expected;
    for (const auto& c : cols) {
      const auto want = model(u, c);
      EXPECT_EQ(LevelOf(u, c.id), want) << "user " << u << ", collection " << c.id;
      if (want >= AccessLevel::kRead) expected.insert(c.id);
    }
    readable_pairs += expected.size();
    auto readable = store_->ReadableCollectionIds(u, TeamsOf(u));
    ASSERT_TRUE(readable) << readable.error().ToString();
    EXPECT_EQ(std::set<std::string>(readable->begin(), readable->end()), expected) << "user " << u;
    EXPECT_EQ(readable->size(), expected.size()) << "no duplicates";
    for (std::size_t i = 1; i < readable->size(); ++i) {
      EXPECT_GE(created_at[(*readable)[i - 1]], created_at[(*readable)[i]]) << "newest first";
    }
  }
  EXPECT_GT(readable_pairs, 10u) << "the random setup should share something";
  EXPECT_LT(readable_pairs, users.size() * cols.size()) << "... but not everything";
  auto none = store_->ReadableCollectionIds("no-such-user", {});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST_P(IdentityStoreContract, QuotaOverridesStayUnsetUntilSet) {
  const User alice = NewUser("alice");
  auto q = store_->GetQuotaOverrides(alice.id);
  ASSERT_TRUE(q) << q.error().ToString();
  EXPECT_FALSE(q->collections);
  EXPECT_FALSE(q->files_per_collection);
  EXPECT_FALSE(q->storage_bytes);
  EXPECT_FALSE(q->llm_tokens_per_day);

  QuotaOverrides some;
  some.collections = 5;
  some.llm_tokens_per_day = 0;  // an explicit zero is a value, not "unset"
  ASSERT_TRUE(store_->SetQuotaOverrides(alice.id, some));
  q = store_->GetQuotaOverrides(alice.id);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->collections, 5);
  EXPECT_FALSE(q->files_per_collection);
  EXPECT_FALSE(q->storage_bytes);
  EXPECT_EQ(q->llm_tokens_per_day, 0);

  // Setting replaces all four.
  QuotaOverrides other;
  other.storage_bytes = std::int64_t{10} << 30;
  ASSERT_TRUE(store_->SetQuotaOverrides(alice.id, other));
  q = store_->GetQuotaOverrides(alice.id);
  EXPECT_FALSE(q->collections);
  EXPECT_EQ(q->storage_bytes, std::int64_t{10} << 30);
  EXPECT_FALSE(q->llm_tokens_per_day);

  QuotaOverrides negative;
  negative.files_per_collection = -1;
  EXPECT_EQ(CodeOf(store_->SetQuotaOverrides(alice.id, negative)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(store_->SetQuotaOverrides("no-such-user", some)), ErrorCode::kNotFound);
  EXPECT_EQ(store_->GetQuotaOverrides("no-such-user").error().code(), ErrorCode::kNotFound);

  // They go with the user.
  ASSERT_TRUE(store_->DeleteUser(alice.id));
  const User again = NewUser("alice");
  EXPECT_FALSE(store_->GetQuotaOverrides(again.id)->storage_bytes);
}

TEST_P(IdentityStoreContract, UsageCountsOwnedCollectionsBytesAndTokens) {
  const User alice = NewUser("alice");
  const User bob = NewUser("bob");
  Team t;
  t.name = "shared";
  auto team = store_->CreateTeam(t, alice.id);
  ASSERT_TRUE(team);

  auto empty = store_->GetUsage(alice.id, kDay);
  ASSERT_TRUE(empty) << empty.error().ToString();
  EXPECT_EQ(empty->collections, 0);
  EXPECT_EQ(empty->storage_bytes, 0);
  EXPECT_EQ(empty->llm_tokens_today, 0);

  const auto a1 = NewCollectionOf("a1", alice.id);
  const auto a2 = NewCollectionOf("a2", alice.id);
  const auto shared = NewCollectionOf("shared", team->id, "team");
  const auto b1 = NewCollectionOf("b1", bob.id);
  ASSERT_TRUE(meta_->AddFile(FileOf(a1, "h1", 100)));
  ASSERT_TRUE(meta_->AddFile(FileOf(a1, "h2", 200)));
  ASSERT_TRUE(meta_->AddFile(FileOf(a2, "h3", 50)));
  ASSERT_TRUE(meta_->AddFile(FileOf(shared, "h4", 1000)));  // the team's, not alice's
  ASSERT_TRUE(meta_->AddFile(FileOf(b1, "h5", 7000)));
  ASSERT_TRUE(store_->AddLlmTokens(alice.id, kDay, 42, 0));
  ASSERT_TRUE(store_->AddLlmTokens(alice.id, "2026-03-13", 1000, 0));  // another day
  ASSERT_TRUE(store_->AddLlmTokens(bob.id, kDay, 9, 0));

  auto usage = store_->GetUsage(alice.id, kDay);
  ASSERT_TRUE(usage) << usage.error().ToString();
  EXPECT_EQ(usage->collections, 2);
  EXPECT_EQ(usage->storage_bytes, 350);
  EXPECT_EQ(usage->llm_tokens_today, 42);
  EXPECT_EQ(store_->GetUsage(alice.id, "2026-03-13")->llm_tokens_today, 1000);
  EXPECT_EQ(store_->GetUsage(alice.id, "2026-03-15")->llm_tokens_today, 0);
  auto of_bob = store_->GetUsage(bob.id, kDay);
  ASSERT_TRUE(of_bob);
  EXPECT_EQ(of_bob->collections, 1);
  EXPECT_EQ(of_bob->storage_bytes, 7000);
  EXPECT_EQ(of_bob->llm_tokens_today, 9);
  EXPECT_EQ(store_->GetUsage("no-such-user", kDay).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_->GetUsage(alice.id, "14/03/2026").error().code(), ErrorCode::kInvalidArgument);

  ASSERT_TRUE(meta_->DeleteCollection(a1));
  usage = store_->GetUsage(alice.id, kDay);
  EXPECT_EQ(usage->collections, 1);
  EXPECT_EQ(usage->storage_bytes, 50);
}

TEST_P(IdentityStoreContract, LlmTokensStopAtTheLimit) {
  const User alice = NewUser("alice");
  auto first = store_->AddLlmTokens(alice.id, kDay, 600, 1000);
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(*first, 600);
  auto over = store_->AddLlmTokens(alice.id, kDay, 500, 1000);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code(), ErrorCode::kQuotaExceeded);
  EXPECT_NE(over.error().message().find("600"), std::string::npos) << over.error().message();
  EXPECT_NE(over.error().message().find("1000"), std::string::npos) << over.error().message();
  EXPECT_EQ(store_->GetUsage(alice.id, kDay)->llm_tokens_today, 600) << "a refused add adds nothing";
  auto exact = store_->AddLlmTokens(alice.id, kDay, 400, 1000);
  ASSERT_TRUE(exact);
  EXPECT_EQ(*exact, 1000) << "reaching the limit exactly is allowed";
  EXPECT_EQ(store_->AddLlmTokens(alice.id, kDay, 1, 1000).error().code(), ErrorCode::kQuotaExceeded);
  auto unlimited = store_->AddLlmTokens(alice.id, kDay, 5000, 0);
  ASSERT_TRUE(unlimited);
  EXPECT_EQ(*unlimited, 6000);
  EXPECT_EQ(*store_->AddLlmTokens(alice.id, "2026-03-15", 10, 1000), 10) << "a new day starts at zero";
  EXPECT_EQ(store_->AddLlmTokens(alice.id, kDay, -5, 0).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->AddLlmTokens(alice.id, "today", 5, 0).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->AddLlmTokens("no-such-user", kDay, 5, 0).error().code(), ErrorCode::kNotFound);
}

TEST_P(IdentityStoreContract, ConcurrentLlmTokenAddsNeverPassTheLimit) {
  const User alice = NewUser("alice");
  constexpr int kThreads = 8, kAddsPerThread = 50, kTokens = 10, kLimit = 1000;
  std::atomic<int> ok{0}, refused{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < kAddsPerThread; ++j) {
        auto r = store_->AddLlmTokens(alice.id, kDay, kTokens, kLimit);
        if (r) {
          ++ok;
        } else if (r.error().code() == ErrorCode::kQuotaExceeded) {
          ++refused;
        } else {
          ++other;
          ADD_FAILURE() << r.error().ToString();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kLimit / kTokens);
  EXPECT_EQ(refused.load(), kThreads * kAddsPerThread - kLimit / kTokens);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(store_->GetUsage(alice.id, kDay)->llm_tokens_today, kLimit);
}

TEST_P(IdentityStoreContract, DeletingAUserOrTeamRemovesTheirGrants) {
  const User alice = NewUser("alice");
  const User bob = NewUser("bob");
  const User carol = NewUser("carol");
  Team t;
  t.name = "team";
  auto team = store_->CreateTeam(t, carol.id);
  ASSERT_TRUE(team);
  const auto col = NewCollectionOf("docs", alice.id);
  const auto team_col = NewCollectionOf("team-docs", team->id, "team");
  ASSERT_TRUE(store_->SetGrant(GrantOf(col, "user", bob.id, AccessLevel::kWrite)));
  ASSERT_TRUE(store_->SetGrant(GrantOf(col, "team", team->id, AccessLevel::kRead)));
  ASSERT_TRUE(store_->SetGrant(GrantOf(team_col, "user", bob.id, AccessLevel::kRead)));
  ASSERT_TRUE(store_->AddLlmTokens(bob.id, kDay, 10, 0));

  ASSERT_TRUE(store_->DeleteUser(bob.id));
  auto grants = store_->ListGrants(col);
  ASSERT_TRUE(grants);
  ASSERT_EQ(grants->size(), 1u);
  EXPECT_EQ((*grants)[0].grantee_type, "team");
  EXPECT_EQ(store_->ListGrants(team_col)->size(), 0u);

  // A new user never inherits anything from a deleted one.
  const User bob2 = NewUser("bob");
  EXPECT_EQ(store_->GetUsage(bob2.id, kDay)->llm_tokens_today, 0);
  EXPECT_EQ(LevelOf(bob2.id, col), AccessLevel::kNone);

  EXPECT_EQ(LevelOf(carol.id, col), AccessLevel::kRead);
  EXPECT_EQ(LevelOf(carol.id, team_col), AccessLevel::kAdmin);
  ASSERT_TRUE(store_->DeleteTeam(team->id));
  EXPECT_EQ(store_->ListGrants(col)->size(), 0u);
  EXPECT_EQ(LevelOf(carol.id, col), AccessLevel::kNone);
  // The team's collections stay (the caller decides what becomes of them), reachable by no one.
  EXPECT_TRUE(meta_->GetCollection(team_col));
  EXPECT_EQ(LevelOf(carol.id, team_col), AccessLevel::kNone);
  EXPECT_EQ(LevelOf(alice.id, col), AccessLevel::kAdmin);
}

TEST_P(IdentityStoreContract, AuditEntriesAreListedInOrderAndPaged) {
  for (int i = 0; i < 5; ++i) {
    AuditEntry e;
    e.principal_id = "u" + std::to_string(i);
    e.action = "api_key.create";
    e.resource = "user:u" + std::to_string(i);
    e.outcome = i % 2 == 0 ? "ok" : "denied";
    e.detail = R"({"i":)" + std::to_string(i) + "}";
    e.remote_address = "10.0.0." + std::to_string(i);
    if (i == 3) e.at_ms = 1234;
    ASSERT_TRUE(store_->AppendAudit(e));
  }
  AuditEntry bad;
  bad.action = "login";
  bad.outcome = "maybe";
  EXPECT_EQ(CodeOf(store_->AppendAudit(bad)), ErrorCode::kInvalidArgument);
  bad.action = "";
  bad.outcome = "ok";
  EXPECT_EQ(CodeOf(store_->AppendAudit(bad)), ErrorCode::kInvalidArgument);

  auto all = store_->ListAudit(0, 100);
  ASSERT_TRUE(all) << all.error().ToString();
  ASSERT_EQ(all->size(), 5u);
  for (std::size_t i = 0; i < all->size(); ++i) {
    const auto& e = (*all)[i];
    if (i > 0) {
      EXPECT_GT(e.seq, (*all)[i - 1].seq);
    }
    EXPECT_EQ(e.principal_id, "u" + std::to_string(i));
    EXPECT_EQ(e.action, "api_key.create");
    EXPECT_EQ(e.resource, "user:u" + std::to_string(i));
    EXPECT_EQ(e.outcome, i % 2 == 0 ? "ok" : "denied");
    EXPECT_EQ(e.detail, R"({"i":)" + std::to_string(i) + "}");
    EXPECT_EQ(e.remote_address, "10.0.0." + std::to_string(i));
    if (i == 3) {
      EXPECT_EQ(e.at_ms, 1234) << "a given time is kept";
    } else {
      EXPECT_GT(e.at_ms, 1'000'000'000'000) << "the time is assigned when 0";
    }
  }

  // Paging.
  std::vector<std::int64_t> seen;
  std::int64_t after = 0;
  for (int page = 0; page < 10; ++page) {
    auto batch = store_->ListAudit(after, 2);
    ASSERT_TRUE(batch);
    if (batch->empty()) break;
    EXPECT_LE(batch->size(), 2u);
    for (const auto& e : *batch) seen.push_back(e.seq);
    after = batch->back().seq;
  }
  ASSERT_EQ(seen.size(), 5u);
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], (*all)[i].seq);
  EXPECT_TRUE(store_->ListAudit(all->back().seq, 10)->empty());
  EXPECT_TRUE(store_->ListAudit(0, 0)->empty());
  EXPECT_EQ(store_->ListAudit((*all)[2].seq, 100)->size(), 2u);
}

TEST_P(IdentityStoreContract, PingAnswers) { EXPECT_TRUE(store_->Ping()); }

}  // namespace
}  // namespace modulo::store
