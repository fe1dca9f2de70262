#include "modulo/store/conversation_store_contract.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

namespace modulo::store {

std::string ConversationStoreContract::NewUser(const std::string& name) {
  User u;
  u.name = name;
  auto created = identity_->CreateUser(u);
  EXPECT_TRUE(created) << created.error().ToString();
  return created ? created->id : std::string();
}

std::string ConversationStoreContract::NewCollectionOf(const std::string& name, const std::string& owner_id) {
  NewCollection nc;
  nc.name = name;
  nc.owner_id = owner_id;
  nc.embedding_model = "all-MiniLM-L6-v2";
  auto c = meta_->CreateCollection(nc);
  EXPECT_TRUE(c) << c.error().ToString();
  return c ? c->id : std::string();
}

ConversationSession ConversationStoreContract::NewSession(const std::string& user_id,
                                                          const std::string& collection_id,
                                                          const std::string& name) {
  ConversationSession s;
  s.user_id = user_id;
  s.collection_id = collection_id;
  s.name = name;
  auto created = store_->CreateSession(s);
  EXPECT_TRUE(created) << created.error().ToString();
  return created ? *created : ConversationSession{};
}

ConversationMessage ConversationStoreContract::Say(const std::string& session_id, const std::string& content) {
  ConversationMessage m;
  m.session_id = session_id;
  m.role = "user";
  m.message_type = "question";
  m.content = content;
  auto appended = store_->AppendMessage(m);
  EXPECT_TRUE(appended) << appended.error().ToString();
  return appended ? *appended : ConversationMessage{};
}

namespace {

ErrorCode CodeOf(const Status& s) { return s ? ErrorCode::kInternal : s.error().code(); }

template <typename T>
ErrorCode CodeOf(const Result<T>& r) {
  return r ? ErrorCode::kInternal : r.error().code();
}

// Lets the millisecond clock move on, so updated_at orders what follows after what came before.
void Tick() { std::this_thread::sleep_for(std::chrono::milliseconds(3)); }

std::vector<std::int64_t> SeqsOf(const std::vector<ConversationMessage>& ms) {
  std::vector<std::int64_t> out;
  for (const auto& m : ms) out.push_back(m.seq);
  return out;
}

std::vector<std::int64_t> Range(std::int64_t first, std::int64_t last) {
  std::vector<std::int64_t> out;
  for (auto i = first; i <= last; ++i) out.push_back(i);
  return out;
}

ConversationSession ValidSession() {
  ConversationSession s;
  s.user_id = "u";
  s.collection_id = "c";
  s.name = "chat";
  return s;
}

ConversationMessage ValidMessage() {
  ConversationMessage m;
  m.session_id = "s";
  m.role = "assistant";
  m.message_type = "answer";
  m.content = "Paris.";
  return m;
}

TEST(ValidateSessionTest, ChecksEveryField) {
  EXPECT_TRUE(ValidateSession(ValidSession()));
  auto with = [](auto change) {
    ConversationSession s = ValidSession();
    change(s);
    return CodeOf(ValidateSession(s));
  };
  auto ok = [](auto change) {
    ConversationSession s = ValidSession();
    change(s);
    return static_cast<bool>(ValidateSession(s));
  };
  EXPECT_EQ(with([](auto& s) { s.user_id.clear(); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& s) { s.collection_id.clear(); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& s) { s.name.clear(); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& s) { s.name = std::string(256, 'n'); }), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(ok([](auto& s) { s.name = std::string(255, 'n'); }));
  EXPECT_EQ(with([](auto& s) { s.name = "bad\xff"; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& s) { s.status = "deleted"; }), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(ok([](auto& s) { s.status = "archived"; }));
  EXPECT_EQ(with([](auto& s) { s.context_window_size = 999; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& s) { s.context_window_size = 32769; }), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(ok([](auto& s) { s.context_window_size = 1000; }));
  EXPECT_TRUE(ok([](auto& s) { s.context_window_size = 32768; }));
  EXPECT_EQ(with([](auto& s) { s.max_messages = 9; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& s) { s.max_messages = 201; }), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(ok([](auto& s) { s.max_messages = 10; }));
  EXPECT_TRUE(ok([](auto& s) { s.max_messages = 200; }));
  EXPECT_EQ(with([](auto& s) { s.metadata = "[]"; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& s) { s.metadata = "{"; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& s) { s.metadata = "{\"x\":\"" + std::string(64 * 1024, 'x') + "\"}"; }),
            ErrorCode::kInvalidArgument);
  ConversationSession bad = ValidSession();
  bad.max_messages = 0;
  EXPECT_NE(ValidateSession(bad).error().message().find("max_messages"), std::string::npos);
}

TEST(ValidateMessageTest, ChecksEveryField) {
  EXPECT_TRUE(ValidateMessage(ValidMessage()));
  auto with = [](auto change) {
    ConversationMessage m = ValidMessage();
    change(m);
    return CodeOf(ValidateMessage(m));
  };
  EXPECT_EQ(with([](auto& m) { m.session_id.clear(); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& m) { m.role = "bot"; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& m) { m.role = ""; }), ErrorCode::kInvalidArgument);
  for (const char* role : {"user", "assistant", "system"}) {
    ConversationMessage m = ValidMessage();
    m.role = role;
    EXPECT_TRUE(ValidateMessage(m)) << role;
  }
  for (const char* type : {"question", "answer", "follow_up", "clarification", "error", "system"}) {
    ConversationMessage m = ValidMessage();
    m.message_type = type;
    EXPECT_TRUE(ValidateMessage(m)) << type;
  }
  EXPECT_EQ(with([](auto& m) { m.message_type = "chit_chat"; }), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(ValidateMessage([] {
    ConversationMessage m = ValidMessage();
    m.content = "";
    return m;
  }())) << "an empty content is allowed (an answer that failed)";
  EXPECT_TRUE(ValidateMessage([] {
    ConversationMessage m = ValidMessage();
    m.content = std::string(1 << 20, 'c');
    return m;
  }()));
  EXPECT_EQ(with([](auto& m) { m.content = std::string((1 << 20) + 1, 'c'); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& m) { m.content = std::string("a\0b", 3); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& m) { m.content = "\xc3"; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& m) { m.metadata = "null"; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& m) { m.metadata = "{\"x\":\"" + std::string(4 << 20, 'x') + "\"}"; }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& m) { m.prompt_tokens = -1; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& m) { m.completion_tokens = -1; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& m) { m.token_count = -1; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& m) { m.execution_time = -0.5; }), ErrorCode::kInvalidArgument);
  ConversationMessage bad = ValidMessage();
  bad.completion_tokens = -3;
  EXPECT_NE(ValidateMessage(bad).error().message().find("completion_tokens"), std::string::npos);
}

TEST_P(ConversationStoreContract, SessionsCanBeCreatedReadUpdatedAndDeleted) {
  const auto alice = NewUser("alice");
  const auto docs = NewCollectionOf("docs", alice);
  ConversationSession in;
  in.user_id = alice;
  in.collection_id = docs;
  in.name = "Questions about the manual";
  in.is_pinned = true;
  in.context_window_size = 8000;
  in.max_messages = 100;
  in.metadata = R"({"source":"ui"})";
  auto created = store_->CreateSession(in);
  ASSERT_TRUE(created) << created.error().ToString();
  EXPECT_EQ(created->id.size(), 36u);
  EXPECT_GT(created->created_at_ms, 0);
  EXPECT_EQ(created->created_at_ms, created->updated_at_ms);
  EXPECT_EQ(created->message_count, 0);

  auto got = store_->GetSession(created->id);
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(got->user_id, alice);
  EXPECT_EQ(got->collection_id, docs);
  EXPECT_EQ(got->name, "Questions about the manual");
  EXPECT_EQ(got->status, "active");
  EXPECT_TRUE(got->is_pinned);
  EXPECT_EQ(got->context_window_size, 8000);
  EXPECT_EQ(got->max_messages, 100);
  EXPECT_EQ(got->metadata, R"({"source":"ui"})");
  EXPECT_EQ(got->created_at_ms, created->created_at_ms);
  EXPECT_EQ(got->updated_at_ms, created->updated_at_ms);
  EXPECT_EQ(got->message_count, 0);
  EXPECT_EQ(CodeOf(store_->GetSession("no-such-session")), ErrorCode::kNotFound);

  // A given id is kept; a taken one is refused.
  ConversationSession with_id = in;
  with_id.id = "9a0c6c53-6d55-4b0b-8a6e-3f0a5d7e0b01";
  auto kept = store_->CreateSession(with_id);
  ASSERT_TRUE(kept) << kept.error().ToString();
  EXPECT_EQ(kept->id, with_id.id);
  EXPECT_EQ(CodeOf(store_->CreateSession(with_id)), ErrorCode::kAlreadyExists);

  // Update replaces the session's own fields; owner, collection and creation time stay.
  Tick();
  ConversationSession change = *got;
  change.name = "Manual, chapter 2";
  change.status = "archived";
  change.is_pinned = false;
  change.context_window_size = 2000;
  change.max_messages = 20;
  change.metadata = R"({"source":"api"})";
  change.user_id = "someone-else";
  change.collection_id = "another-collection";
  change.created_at_ms = 1;
  auto updated = store_->UpdateSession(change);
  ASSERT_TRUE(updated) << updated.error().ToString();
  EXPECT_EQ(updated->name, "Manual, chapter 2");
  EXPECT_EQ(updated->user_id, alice);
  EXPECT_EQ(updated->collection_id, docs);
  EXPECT_EQ(updated->created_at_ms, created->created_at_ms);
  EXPECT_GT(updated->updated_at_ms, created->updated_at_ms);
  auto reread = store_->GetSession(created->id);
  ASSERT_TRUE(reread);
  EXPECT_EQ(reread->name, "Manual, chapter 2");
  EXPECT_EQ(reread->status, "archived");
  EXPECT_FALSE(reread->is_pinned);
  EXPECT_EQ(reread->context_window_size, 2000);
  EXPECT_EQ(reread->max_messages, 20);
  EXPECT_EQ(reread->metadata, R"({"source":"api"})");
  EXPECT_EQ(reread->user_id, alice);
  EXPECT_EQ(reread->collection_id, docs);
  EXPECT_EQ(reread->updated_at_ms, updated->updated_at_ms);

  change.max_messages = 500;
  EXPECT_EQ(CodeOf(store_->UpdateSession(change)), ErrorCode::kInvalidArgument);
  change.max_messages = 20;
  change.status = "gone";
  EXPECT_EQ(CodeOf(store_->UpdateSession(change)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->GetSession(created->id)->status, "archived");
  change.status = "active";
  change.id = "no-such-session";
  EXPECT_EQ(CodeOf(store_->UpdateSession(change)), ErrorCode::kNotFound);

  ASSERT_TRUE(store_->DeleteSession(created->id));
  EXPECT_EQ(CodeOf(store_->GetSession(created->id)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->DeleteSession(created->id)), ErrorCode::kNotFound);
  EXPECT_TRUE(store_->GetSession(kept->id));
}

TEST_P(ConversationStoreContract, CreateSessionChecksItsUserCollectionAndFields) {
  const auto alice = NewUser("alice");
  const auto docs = NewCollectionOf("docs", alice);
  ConversationSession s;
  s.user_id = "no-such-user";
  s.collection_id = docs;
  s.name = "chat";
  EXPECT_EQ(CodeOf(store_->CreateSession(s)), ErrorCode::kNotFound);
  s.user_id = alice;
  s.collection_id = "no-such-collection";
  EXPECT_EQ(CodeOf(store_->CreateSession(s)), ErrorCode::kNotFound);
  s.collection_id = docs;
  s.name = "";
  EXPECT_EQ(CodeOf(store_->CreateSession(s)), ErrorCode::kInvalidArgument);
  s.name = "chat";
  s.context_window_size = 100;
  EXPECT_EQ(CodeOf(store_->CreateSession(s)), ErrorCode::kInvalidArgument);
  s.context_window_size = 4000;
  s.metadata = "[]";
  EXPECT_EQ(CodeOf(store_->CreateSession(s)), ErrorCode::kInvalidArgument);
  SessionFilter f;
  f.user_id = alice;
  f.include_archived = true;
  EXPECT_TRUE(store_->ListSessions(f)->empty()) << "nothing stored by refused creates";
  // Another user's collection is the caller's business (authorization is above the store).
  const auto bob = NewUser("bob");
  s.metadata = "{}";
  s.user_id = bob;
  EXPECT_TRUE(store_->CreateSession(s));
}

TEST_P(ConversationStoreContract, ListSessionsPutsPinnedFirstThenMostRecentlyUpdated) {
  const auto alice = NewUser("alice");
  const auto bob = NewUser("bob");
  const auto docs = NewCollectionOf("docs", alice);
  const auto notes = NewCollectionOf("notes", alice);
  const auto first = NewSession(alice, docs, "first");
  Tick();
  const auto second = NewSession(alice, notes, "second");
  Tick();
  const auto third = NewSession(alice, docs, "third");
  Tick();
  auto pinned = NewSession(alice, notes, "pinned");
  Tick();
  auto archived = NewSession(alice, docs, "archived");
  NewSession(bob, docs, "bob's");
  Tick();
  pinned.is_pinned = true;
  ASSERT_TRUE(store_->UpdateSession(pinned));
  Tick();
  archived.status = "archived";
  ASSERT_TRUE(store_->UpdateSession(archived));
  Tick();
  Say(first.id, "a new question moves the session up");

  auto names = [&](const SessionFilter& f) {
    std::vector<std::string> out;
    auto list = store_->ListSessions(f);
    EXPECT_TRUE(list) << list.error().ToString();
    if (list) {
      for (const auto& s : *list) out.push_back(s.name);
    }
    return out;
  };
  SessionFilter f;
  f.user_id = alice;
  EXPECT_EQ(names(f), (std::vector<std::string>{"pinned", "first", "third", "second"}));
  f.include_archived = true;
  EXPECT_EQ(names(f), (std::vector<std::string>{"pinned", "first", "archived", "third", "second"}));
  f.collection_id = docs;
  EXPECT_EQ(names(f), (std::vector<std::string>{"first", "archived", "third"}));
  f.include_archived = false;
  EXPECT_EQ(names(f), (std::vector<std::string>{"first", "third"}));

  // Paging.
  f.collection_id.reset();
  f.include_archived = true;
  f.limit = 2;
  EXPECT_EQ(names(f), (std::vector<std::string>{"pinned", "first"}));
  f.offset = 2;
  EXPECT_EQ(names(f), (std::vector<std::string>{"archived", "third"}));
  f.offset = 4;
  EXPECT_EQ(names(f), (std::vector<std::string>{"second"}));
  f.offset = 5;
  EXPECT_TRUE(names(f).empty());
  f.offset = 0;
  f.limit = 0;
  EXPECT_TRUE(names(f).empty());

  // Counts come with the listing.
  f.limit = 100;
  auto list = store_->ListSessions(f);
  ASSERT_TRUE(list);
  for (const auto& s : *list) EXPECT_EQ(s.message_count, s.id == first.id ? 1 : 0) << s.name;

  SessionFilter of_bob;
  of_bob.user_id = bob;
  EXPECT_EQ(names(of_bob), (std::vector<std::string>{"bob's"}));
  SessionFilter nobody;
  EXPECT_EQ(CodeOf(store_->ListSessions(nobody)), ErrorCode::kInvalidArgument);
  nobody.user_id = "no-such-user";
  EXPECT_TRUE(names(nobody).empty());
}

TEST_P(ConversationStoreContract, AppendMessageAssignsSeqAndMovesTheSession) {
  const auto alice = NewUser("alice");
  const auto docs = NewCollectionOf("docs", alice);
  const auto session = NewSession(alice, docs);
  Tick();
  ConversationMessage q;
  q.session_id = session.id;
  q.role = "user";
  q.message_type = "question";
  q.content = "Wie heißt die Hauptstadt? 日本語 🚀";
  auto first = store_->AppendMessage(q);
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(first->seq, 1);
  EXPECT_EQ(first->id.size(), 36u);
  EXPECT_GT(first->created_at_ms, session.updated_at_ms);
  auto moved = store_->GetSession(session.id);
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->updated_at_ms, first->created_at_ms) << "the session moves to the message's time";
  EXPECT_EQ(moved->message_count, 1);
  EXPECT_EQ(moved->created_at_ms, session.created_at_ms);

  ConversationMessage a;
  a.session_id = session.id;
  a.role = "assistant";
  a.message_type = "answer";
  a.content = "Berlin [1].";
  a.metadata = R"({"sources":[{"document_id":"d1","score":0.87}],"cot_output":null})";
  a.prompt_tokens = 812;
  a.completion_tokens = 44;
  a.token_count = 9;
  a.execution_time = 1.25;
  auto second = store_->AppendMessage(a);
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_EQ(second->seq, 2);
  EXPECT_GE(second->created_at_ms, first->created_at_ms);

  auto all = store_->ListMessages(session.id, 0, 100);
  ASSERT_TRUE(all) << all.error().ToString();
  ASSERT_EQ(all->size(), 2u);
  const auto& m1 = (*all)[0];
  EXPECT_EQ(m1.id, first->id);
  EXPECT_EQ(m1.session_id, session.id);
  EXPECT_EQ(m1.seq, 1);
  EXPECT_EQ(m1.role, "user");
  EXPECT_EQ(m1.message_type, "question");
  EXPECT_EQ(m1.content, q.content);
  EXPECT_EQ(m1.metadata, "{}");
  EXPECT_EQ(m1.created_at_ms, first->created_at_ms);
  const auto& m2 = (*all)[1];
  EXPECT_EQ(m2.seq, 2);
  EXPECT_EQ(m2.role, "assistant");
  EXPECT_EQ(m2.message_type, "answer");
  EXPECT_EQ(m2.content, "Berlin [1].");
  EXPECT_EQ(m2.metadata, a.metadata);
  EXPECT_EQ(m2.prompt_tokens, 812);
  EXPECT_EQ(m2.completion_tokens, 44);
  EXPECT_EQ(m2.token_count, 9);
  EXPECT_DOUBLE_EQ(m2.execution_time, 1.25);

  // Refused appends take no seq; unknown sessions are NotFound.
  ConversationMessage bad = q;
  bad.role = "robot";
  EXPECT_EQ(CodeOf(store_->AppendMessage(bad)), ErrorCode::kInvalidArgument);
  bad = q;
  bad.session_id = "no-such-session";
  EXPECT_EQ(CodeOf(store_->AppendMessage(bad)), ErrorCode::kNotFound);
  EXPECT_EQ(Say(session.id, "next").seq, 3);
  EXPECT_EQ(store_->GetSession(session.id)->message_count, 3);

  // Seqs are per session.
  const auto other = NewSession(alice, docs, "other");
  EXPECT_EQ(Say(other.id, "hello").seq, 1);
}

TEST_P(ConversationStoreContract, MessagesArePagedAndTheRecentOnesRead) {
  const auto alice = NewUser("alice");
  const auto docs = NewCollectionOf("docs", alice);
  const auto session = NewSession(alice, docs);
  const auto empty = NewSession(alice, docs, "empty");
  for (int i = 1; i <= 12; ++i) Say(session.id, "message " + std::to_string(i));

  EXPECT_EQ(SeqsOf(*store_->ListMessages(session.id, 0, 5)), Range(1, 5));
  EXPECT_EQ(SeqsOf(*store_->ListMessages(session.id, 5, 5)), Range(6, 10));
  EXPECT_EQ(SeqsOf(*store_->ListMessages(session.id, 10, 5)), Range(11, 12));
  EXPECT_TRUE(store_->ListMessages(session.id, 12, 5)->empty());
  EXPECT_TRUE(store_->ListMessages(session.id, 0, 0)->empty());
  EXPECT_EQ(SeqsOf(*store_->ListMessages(session.id, -3, 100)), Range(1, 12));
  EXPECT_EQ((*store_->ListMessages(session.id, 6, 1))[0].content, "message 7");

  EXPECT_EQ(SeqsOf(*store_->RecentMessages(session.id, 3)), Range(10, 12)) << "the last n, oldest first";
  EXPECT_EQ(SeqsOf(*store_->RecentMessages(session.id, 12)), Range(1, 12));
  EXPECT_EQ(SeqsOf(*store_->RecentMessages(session.id, 50)), Range(1, 12));
  EXPECT_TRUE(store_->RecentMessages(session.id, 0)->empty());
  EXPECT_EQ((*store_->RecentMessages(session.id, 1))[0].content, "message 12");

  auto none = store_->ListMessages(empty.id, 0, 10);
  ASSERT_TRUE(none) << none.error().ToString();
  EXPECT_TRUE(none->empty());
  auto no_recent = store_->RecentMessages(empty.id, 10);
  ASSERT_TRUE(no_recent) << no_recent.error().ToString();
  EXPECT_TRUE(no_recent->empty());
  EXPECT_EQ(CodeOf(store_->ListMessages("no-such-session", 0, 10)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->RecentMessages("no-such-session", 10)), ErrorCode::kNotFound);
}

TEST_P(ConversationStoreContract, ConcurrentAppendsGetEverySeqExactlyOnce) {
  const auto alice = NewUser("alice");
  const auto docs = NewCollectionOf("docs", alice);
  const auto session = NewSession(alice, docs);
  const auto other = NewSession(alice, docs, "other");
  constexpr int kThreads = 4, kPerThread = 25;
  std::atomic<int> failures{0};
  std::vector<std::vector<std::int64_t>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        ConversationMessage m;
        m.session_id = session.id;
        m.role = "user";
        m.message_type = "question";
        m.content = "thread " + std::to_string(t) + " message " + std::to_string(i);
        auto r = store_->AppendMessage(m);
        if (!r) {
          ++failures;
          ADD_FAILURE() << r.error().ToString();
          continue;
        }
        seen[t].push_back(r->seq);
        // Interleave appends to another session: seqs are per session.
        if (i % 5 == 0) {
          m.session_id = other.id;
          if (!store_->AppendMessage(m)) ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  std::vector<std::int64_t> returned;
  for (const auto& s : seen) {
    EXPECT_TRUE(std::ranges::is_sorted(s)) << "one thread's appends get increasing seqs";
    returned.insert(returned.end(), s.begin(), s.end());
  }
  std::ranges::sort(returned);
  EXPECT_EQ(returned, Range(1, kThreads * kPerThread)) << "every seq returned once";

  auto stored = store_->ListMessages(session.id, 0, 1000);
  ASSERT_TRUE(stored) << stored.error().ToString();
  EXPECT_EQ(SeqsOf(*stored), Range(1, kThreads * kPerThread)) << "no gaps, no repeats";
  std::set<std::string> contents;
  for (std::size_t i = 0; i < stored->size(); ++i) {
    contents.insert((*stored)[i].content);
    if (i > 0) {
      EXPECT_GE((*stored)[i].created_at_ms, (*stored)[i - 1].created_at_ms) << "times follow seqs";
    }
  }
  EXPECT_EQ(contents.size(), static_cast<std::size_t>(kThreads * kPerThread));
  auto s = store_->GetSession(session.id);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->message_count, kThreads * kPerThread);
  EXPECT_EQ(s->updated_at_ms, stored->back().created_at_ms);
  EXPECT_EQ(SeqsOf(*store_->ListMessages(other.id, 0, 1000)), Range(1, kThreads * (kPerThread / 5)));
}

TEST_P(ConversationStoreContract, SummariesAreKeptAndTheLatestFound) {
  const auto alice = NewUser("alice");
  const auto docs = NewCollectionOf("docs", alice);
  const auto session = NewSession(alice, docs);
  for (int i = 0; i < 10; ++i) Say(session.id, "m" + std::to_string(i));
  EXPECT_EQ(CodeOf(store_->LatestSummary(session.id)), ErrorCode::kNotFound);
  auto none = store_->ListSummaries(session.id);
  ASSERT_TRUE(none) << none.error().ToString();
  EXPECT_TRUE(none->empty());

  ConversationSummary s;
  s.session_id = session.id;
  s.summary_text = "The user asked about capitals.";
  s.up_to_seq = 8;
  s.summarized_message_count = 8;
  s.tokens_saved = 1200;
  s.metadata = R"({"key_topics":["capitals"]})";
  auto later = store_->AddSummary(s);
  ASSERT_TRUE(later) << later.error().ToString();
  EXPECT_EQ(later->id.size(), 36u);
  EXPECT_GT(later->created_at_ms, 0);
  Tick();
  s.summary_text = "An older, shorter summary.";
  s.up_to_seq = 4;
  s.summarized_message_count = 4;
  s.strategy = "summary_only";
  auto earlier = store_->AddSummary(s);
  ASSERT_TRUE(earlier) << earlier.error().ToString();

  auto latest = store_->LatestSummary(session.id);
  ASSERT_TRUE(latest) << latest.error().ToString();
  EXPECT_EQ(latest->id, later->id) << "the highest up_to_seq, not the newest";
  EXPECT_EQ(latest->session_id, session.id);
  EXPECT_EQ(latest->summary_text, "The user asked about capitals.");
  EXPECT_EQ(latest->up_to_seq, 8);
  EXPECT_EQ(latest->summarized_message_count, 8);
  EXPECT_EQ(latest->tokens_saved, 1200);
  EXPECT_EQ(latest->strategy, "recent_plus_summary");
  EXPECT_EQ(latest->metadata, R"({"key_topics":["capitals"]})");
  EXPECT_EQ(latest->created_at_ms, later->created_at_ms);

  auto all = store_->ListSummaries(session.id);
  ASSERT_TRUE(all) << all.error().ToString();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, earlier->id);
  EXPECT_EQ((*all)[0].strategy, "summary_only");
  EXPECT_EQ((*all)[1].id, later->id);

  // Malformed summaries and unknown sessions.
  ConversationSummary bad = s;
  bad.summary_text = "";
  EXPECT_EQ(CodeOf(store_->AddSummary(bad)), ErrorCode::kInvalidArgument);
  bad = s;
  bad.up_to_seq = 11;  // past the last message
  EXPECT_EQ(CodeOf(store_->AddSummary(bad)), ErrorCode::kInvalidArgument);
  bad.up_to_seq = -1;
  EXPECT_EQ(CodeOf(store_->AddSummary(bad)), ErrorCode::kInvalidArgument);
  bad = s;
  bad.metadata = "[]";
  EXPECT_EQ(CodeOf(store_->AddSummary(bad)), ErrorCode::kInvalidArgument);
  bad = s;
  bad.session_id = "no-such-session";
  EXPECT_EQ(CodeOf(store_->AddSummary(bad)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->LatestSummary("no-such-session")), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->ListSummaries("no-such-session")), ErrorCode::kNotFound);
  EXPECT_EQ(store_->ListSummaries(session.id)->size(), 2u);
  s.up_to_seq = 10;  // up to the last message is fine
  EXPECT_TRUE(store_->AddSummary(s));
}

TEST_P(ConversationStoreContract, SuggestedQuestionsAreReplacedWhole) {
  const auto alice = NewUser("alice");
  const auto docs = NewCollectionOf("docs", alice);
  const auto notes = NewCollectionOf("notes", alice);
  auto empty = store_->ListSuggestedQuestions(docs);
  ASSERT_TRUE(empty) << empty.error().ToString();
  EXPECT_TRUE(empty->empty());

  const std::vector<std::string> first = {"What is the warranty?", "How do I reset it?", "Wo ist das Handbuch?",
                                          "Why \"quotes\", {braces} and back\\slashes?"};
  ASSERT_TRUE(store_->ReplaceSuggestedQuestions(docs, first));
  ASSERT_TRUE(store_->ReplaceSuggestedQuestions(notes, {"Only one"}));
  auto got = store_->ListSuggestedQuestions(docs);
  ASSERT_TRUE(got) << got.error().ToString();
  ASSERT_EQ(got->size(), first.size());
  std::set<std::string> ids;
  for (std::size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ((*got)[i].question, first[i]) << "kept in the given order";
    EXPECT_EQ((*got)[i].collection_id, docs);
    EXPECT_EQ((*got)[i].id.size(), 36u);
    EXPECT_GT((*got)[i].created_at_ms, 0);
    ids.insert((*got)[i].id);
  }
  EXPECT_EQ(ids.size(), first.size());

  const std::vector<std::string> second = {"Z comes first", "A comes second"};
  ASSERT_TRUE(store_->ReplaceSuggestedQuestions(docs, second));
  got = store_->ListSuggestedQuestions(docs);
  ASSERT_TRUE(got);
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].question, "Z comes first");
  EXPECT_EQ((*got)[1].question, "A comes second");
  EXPECT_EQ(store_->ListSuggestedQuestions(notes)->size(), 1u) << "another collection's list stays";

  // A refused replacement changes nothing.
  EXPECT_EQ(CodeOf(store_->ReplaceSuggestedQuestions(docs, {"fine", ""})), ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->ListSuggestedQuestions(docs)->size(), 2u);
  EXPECT_EQ(CodeOf(store_->ReplaceSuggestedQuestions("no-such-collection", {"q"})), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->ListSuggestedQuestions("no-such-collection")), ErrorCode::kNotFound);

  ASSERT_TRUE(store_->ReplaceSuggestedQuestions(docs, {}));
  EXPECT_TRUE(store_->ListSuggestedQuestions(docs)->empty());
}

TEST_P(ConversationStoreContract, ConcurrentReplacementsLeaveOneWholeList) {
  const auto alice = NewUser("alice");
  const auto docs = NewCollectionOf("docs", alice);
  constexpr int kThreads = 4, kRounds = 10;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        std::vector<std::string> qs;
        for (int k = 0; k < 3 + t; ++k) qs.push_back("t" + std::to_string(t) + " q" + std::to_string(k));
        if (auto st = store_->ReplaceSuggestedQuestions(docs, qs); !st) {
          ++failures;
          ADD_FAILURE() << st.error().ToString();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto got = store_->ListSuggestedQuestions(docs);
  ASSERT_TRUE(got) << got.error().ToString();
  ASSERT_FALSE(got->empty());
  const std::string prefix = (*got)[0].question.substr(0, 3);
  EXPECT_EQ(got->size(), static_cast<std::size_t>(3 + (prefix[1] - '0'))) << "one writer's whole list";
  for (std::size_t k = 0; k < got->size(); ++k) EXPECT_EQ((*got)[k].question, prefix + "q" + std::to_string(k));
}

TEST_P(ConversationStoreContract, DeletingASessionDeletesItsMessagesAndSummaries) {
  const auto alice = NewUser("alice");
  const auto docs = NewCollectionOf("docs", alice);
  const auto session = NewSession(alice, docs);
  const auto kept = NewSession(alice, docs, "kept");
  for (int i = 0; i < 3; ++i) {
    Say(session.id, "q" + std::to_string(i));
    Say(kept.id, "q" + std::to_string(i));
  }
  ConversationSummary s;
  s.session_id = session.id;
  s.summary_text = "summary";
  s.up_to_seq = 2;
  ASSERT_TRUE(store_->AddSummary(s));
  ASSERT_TRUE(store_->DeleteSession(session.id));
  EXPECT_EQ(CodeOf(store_->ListMessages(session.id, 0, 10)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->LatestSummary(session.id)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->ListSummaries(session.id)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->AppendMessage([&] {
              ConversationMessage m;
              m.session_id = session.id;
              m.role = "user";
              m.message_type = "question";
              return m;
            }())),
            ErrorCode::kNotFound);
  EXPECT_EQ(store_->ListMessages(kept.id, 0, 10)->size(), 3u);
}

TEST_P(ConversationStoreContract, DeletingAUserDeletesTheirSessions) {
  const auto alice = NewUser("alice");
  const auto bob = NewUser("bob");
  const auto docs = NewCollectionOf("docs", alice);
  const auto mine = NewSession(alice, docs);
  const auto bobs = NewSession(bob, docs, "bob's");
  Say(mine.id, "hello");
  ConversationSummary s;
  s.session_id = mine.id;
  s.summary_text = "greeting";
  s.up_to_seq = 1;
  ASSERT_TRUE(store_->AddSummary(s));

  ASSERT_TRUE(identity_->DeleteUser(alice));
  EXPECT_EQ(CodeOf(store_->GetSession(mine.id)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->ListMessages(mine.id, 0, 10)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->ListSummaries(mine.id)), ErrorCode::kNotFound);
  SessionFilter f;
  f.user_id = alice;
  f.include_archived = true;
  EXPECT_TRUE(store_->ListSessions(f)->empty());
  EXPECT_TRUE(store_->GetSession(bobs.id)) << "other users' sessions stay, in the same collection too";
  ConversationSession late;
  late.user_id = alice;
  late.collection_id = docs;
  late.name = "late";
  EXPECT_EQ(CodeOf(store_->CreateSession(late)), ErrorCode::kNotFound);
}

TEST_P(ConversationStoreContract, DeletingACollectionDeletesItsSessionsAndQuestions) {
  const auto alice = NewUser("alice");
  const auto docs = NewCollectionOf("docs", alice);
  const auto notes = NewCollectionOf("notes", alice);
  const auto gone = NewSession(alice, docs);
  const auto kept = NewSession(alice, notes, "kept");
  Say(gone.id, "hello");
  ConversationSummary s;
  s.session_id = gone.id;
  s.summary_text = "greeting";
  s.up_to_seq = 1;
  ASSERT_TRUE(store_->AddSummary(s));
  ASSERT_TRUE(store_->ReplaceSuggestedQuestions(docs, {"q1", "q2"}));
  ASSERT_TRUE(store_->ReplaceSuggestedQuestions(notes, {"n1"}));

  ASSERT_TRUE(meta_->DeleteCollection(docs));
  EXPECT_EQ(CodeOf(store_->GetSession(gone.id)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->ListMessages(gone.id, 0, 10)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->LatestSummary(gone.id)), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store_->ListSuggestedQuestions(docs)), ErrorCode::kNotFound);
  SessionFilter f;
  f.user_id = alice;
  f.include_archived = true;
  auto left = store_->ListSessions(f);
  ASSERT_TRUE(left) << left.error().ToString();
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].id, kept.id);
  EXPECT_EQ(store_->ListSuggestedQuestions(notes)->size(), 1u);

  // A new collection of the same name starts empty.
  const auto docs2 = NewCollectionOf("docs", alice);
  EXPECT_TRUE(store_->ListSuggestedQuestions(docs2)->empty());
  f.collection_id = docs2;
  EXPECT_TRUE(store_->ListSessions(f)->empty());
}

}  // namespace
}  // namespace modulo::store
