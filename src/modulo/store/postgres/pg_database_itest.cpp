// The libpq layer, the pool, migrations and replica routing against real PostgreSQL servers.
#include "modulo/store/postgres/database.h"

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <stdexcept>
#include <thread>

#include "modulo/store/postgres/pg.h"
#include "modulo/store/postgres/pg_identity_store.h"
#include "modulo/store/postgres/pg_metadata_store.h"
#include "modulo/store/postgres/pg_test_server.h"
#include "modulo/store/postgres/pg_user_config_store.h"
#include "modulo/store/postgres/pool.h"

namespace modulo::store::postgres {
namespace {

using namespace std::chrono_literals;

std::string FreshUrl() {
  auto url = SharedPgTestServer().CreateDatabase();
  if (!url) throw std::runtime_error(url.error().ToString());
  return *url;
}

TEST(PgConnectionTest, ParametersAreBinarySafeAndErrorsHaveMeanings) {
  auto c = Connection::Open(FreshUrl());
  ASSERT_TRUE(c) << c.error().ToString();
  Connection& conn = **c;
  ASSERT_TRUE(conn.ExecScript("CREATE TABLE t (k text PRIMARY KEY, b bytea, n bigint)"));
  std::vector<std::byte> all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<std::byte>(i));
  ASSERT_TRUE(conn.Exec("INSERT INTO t VALUES ($1, $2, $3)", Params().Add("it's; DROP TABLE t; --").AddBytes(all).Add(
                                                                 std::int64_t{-9007199254740993})));
  auto r = conn.Exec("SELECT k, b, n FROM t");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->Text(0, 0), "it's; DROP TABLE t; --");
  EXPECT_EQ(r->Bytes(0, 1), all);
  EXPECT_EQ(r->Int(0, 2), -9007199254740993);

  auto dup = conn.Exec("INSERT INTO t VALUES ($1, NULL, 0)", Params().Add("it's; DROP TABLE t; --"));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(conn.last_sqlstate(), "23505");
  auto nul = conn.Exec("SELECT $1::text", Params().Add(std::string("a\0b", 3)));
  ASSERT_FALSE(nul);
  EXPECT_EQ(nul.error().code(), ErrorCode::kInvalidArgument);
  auto bad_utf8 = conn.Exec("SELECT $1::text", Params().Add("\xff\xfe"));
  ASSERT_FALSE(bad_utf8);
  EXPECT_EQ(bad_utf8.error().code(), ErrorCode::kInvalidArgument);
  auto syntax = conn.Exec("SELEKT 1");
  ASSERT_FALSE(syntax);
  EXPECT_EQ(syntax.error().code(), ErrorCode::kInternal);
  EXPECT_FALSE(conn.Broken()) << "a failed statement does not break the connection";

  // A transaction that is not committed rolls back.
  {
    auto tx = Transaction::Begin(conn);
    ASSERT_TRUE(tx);
    ASSERT_TRUE(conn.Exec("INSERT INTO t VALUES ('gone', NULL, 1)"));
  }
  EXPECT_EQ(conn.Exec("SELECT count(*) FROM t")->Int(0, 0), 1);
  EXPECT_FALSE(conn.InTransaction());

  auto refused = Connection::Open("postgresql://postgres@127.0.0.1:1/none");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnavailable);
}

TEST(PgMigrationTest, TwoServersStartingTogetherMigrateOnce) {
  const std::string url = FreshUrl();
  std::barrier sync(2);
  Result<MigrationOutcome> a = Fail(Error::Internal("not run")), b = Fail(Error::Internal("not run"));
  std::thread ta([&] {
    sync.arrive_and_wait();
    a = Migrate(url);
  });
  std::thread tb([&] {
    sync.arrive_and_wait();
    b = Migrate(url);
  });
  ta.join();
  tb.join();
  ASSERT_TRUE(a) << a.error().ToString();
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_EQ(a->version, Database::kLatestSchema);
  EXPECT_EQ(b->version, Database::kLatestSchema);
  EXPECT_EQ(a->applied + b->applied, Database::kLatestSchema) << "each step applied exactly once";
  auto c = Connection::Open(url);
  ASSERT_TRUE(c);
  auto rows = (*c)->Exec("SELECT count(*), count(DISTINCT version) FROM schema_migrations");
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->Int(0, 0), Database::kLatestSchema);
  EXPECT_EQ(rows->Int(0, 1), Database::kLatestSchema);
  auto again = Migrate(url);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->applied, 0);

  // A schema from a newer build is refused, by Migrate and by Open.
  ASSERT_TRUE((*c)->ExecScript("INSERT INTO schema_migrations VALUES (999, 0)"));
  auto newer = Migrate(url);
  ASSERT_FALSE(newer);
  EXPECT_EQ(newer.error().code(), ErrorCode::kConflict);
  EXPECT_NE(newer.error().message().find("newer"), std::string::npos);
  DatabaseOptions o;
  o.primary_url = url;
  o.migrate = false;
  auto db = Database::Open(o);
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code(), ErrorCode::kConflict);
}

TEST(PgPoolTest, ExhaustionWaitsThenTimesOutCleanly) {
  metrics::Registry registry;
  PoolMetrics pm(registry);
  PoolOptions o;
  o.size = 1;
  o.max_overflow = 1;
  o.acquire_timeout = 300ms;
  Pool pool("test", FreshUrl(), o, &pm);
  auto a = pool.Acquire();
  auto b = pool.Acquire();
  ASSERT_TRUE(a && b) << (a ? b.error().ToString() : a.error().ToString());
  EXPECT_EQ(pool.stats().in_use, 2u);

  const auto start = std::chrono::steady_clock::now();
  auto c = pool.Acquire();
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(c.error().message().find("exhausted"), std::string::npos) << c.error().message();
  EXPECT_GE(waited, 300ms);
  EXPECT_LT(waited, 5s);
  EXPECT_EQ(pool.stats().timeouts, 1u);

  // A waiter gets the connection another thread hands back.
  std::optional<Pool::Lease> held(std::move(*b));
  std::thread releaser([&] {
    std::this_thread::sleep_for(100ms);
    held.reset();
  });
  auto d = pool.Acquire();
  releaser.join();
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_EQ(pool.stats().waits, 2u);
  EXPECT_EQ(pool.stats().timeouts, 1u);
  EXPECT_EQ(pool.stats().in_use, 2u);

  const std::string text = registry.Expose();
  EXPECT_NE(text.find("modulo_db_pool_timeouts_total{pool=\"test\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("modulo_db_pool_waits_total{pool=\"test\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("modulo_db_pool_connections{pool=\"test\",state=\"in_use\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("modulo_db_pool_wait_seconds_count{pool=\"test\"} 2"), std::string::npos) << text;
}

TEST(PgPoolTest, AKilledConnectionIsReplacedByThePrePing) {
  const std::string url = FreshUrl();
  PoolOptions o;
  o.size = 1;
  o.max_overflow = 0;
  o.pre_ping_after_idle = 0ms;
  Pool pool("ping", url, o);
  int pid = 0;
  {
    auto l = pool.Acquire();
    ASSERT_TRUE(l);
    pid = (*l)->backend_pid();
  }
  auto admin = Connection::Open(url);
  ASSERT_TRUE(admin);
  ASSERT_TRUE((*admin)->Exec("SELECT pg_terminate_backend($1)", Params().Add(pid)));
  // Wait until the backend is gone.
  for (int i = 0; i < 100; ++i) {
    auto r = (*admin)->Exec("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", Params().Add(pid));
    ASSERT_TRUE(r);
    if (r->Int(0, 0) == 0) break;
    std::this_thread::sleep_for(20ms);
  }
  auto l = pool.Acquire();
  ASSERT_TRUE(l) << l.error().ToString();
  EXPECT_NE((*l)->backend_pid(), pid);
  auto r = (*l)->Exec("SELECT 1");
  EXPECT_TRUE(r) << "the caller never sees the dead connection";
  EXPECT_EQ(pool.stats().replaced_dead, 1u);
}

TEST(PgPoolTest, WithoutPrePingADeadConnectionFailsOnceAndIsDropped) {
  const std::string url = FreshUrl();
  PoolOptions o;
  o.size = 1;
  o.max_overflow = 0;
  o.pre_ping_after_idle = std::chrono::hours(1);
  Pool pool("noping", url, o);
  int pid = 0;
  {
    auto l = pool.Acquire();
    ASSERT_TRUE(l);
    pid = (*l)->backend_pid();
  }
  auto admin = Connection::Open(url);
  ASSERT_TRUE((*admin)->Exec("SELECT pg_terminate_backend($1)", Params().Add(pid)));
  std::this_thread::sleep_for(200ms);
  {
    auto l = pool.Acquire();
    ASSERT_TRUE(l);
    auto r = (*l)->Exec("SELECT 1");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable) << r.error().ToString();
    EXPECT_TRUE((*l)->Broken());
  }
  EXPECT_EQ(pool.stats().open, 0u) << "a broken connection is closed, not pooled";
  auto l = pool.Acquire();
  ASSERT_TRUE(l);
  EXPECT_TRUE((*l)->Exec("SELECT 1"));
}

TEST(PgPoolTest, OldConnectionsAreRecycledAndOverflowIsClosed) {
  const std::string url = FreshUrl();
  Pool recycling("recycle", url, PoolOptions{.size = 1, .max_overflow = 0, .recycle = std::chrono::seconds(0)});
  int pid = 0;
  {
    auto l = recycling.Acquire();
    ASSERT_TRUE(l);
    pid = (*l)->backend_pid();
  }
  auto l = recycling.Acquire();
  ASSERT_TRUE(l);
  EXPECT_NE((*l)->backend_pid(), pid);

  Pool bursty("burst", url, PoolOptions{.size = 1, .max_overflow = 2});
  {
    auto a = bursty.Acquire();
    auto b = bursty.Acquire();
    auto c = bursty.Acquire();
    ASSERT_TRUE(a && b && c);
    EXPECT_EQ(bursty.stats().open, 3u);
  }
  EXPECT_EQ(bursty.stats().open, 1u) << "overflow connections close when they come back";
  EXPECT_EQ(bursty.stats().idle, 1u);
}

// A primary with a streaming replica, both real servers.
class PgReplicaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto p = PgTestServer::Start();
    if (!p) throw std::runtime_error(p.error().ToString());
    primary_ = p->release();
    auto r = PgTestServer::StartReplicaOf(*primary_);
    if (!r) throw std::runtime_error(r.error().ToString());
    replica_ = r->release();
  }
  static void TearDownTestSuite() {
    delete replica_;
    delete primary_;
    replica_ = primary_ = nullptr;
  }

  // Waits until a check finds the replica usable.
  static bool WaitUsable(Database& db) {
    for (int i = 0; i < 200; ++i) {
      db.CheckReplicas();
      if (db.replicas().at(0).usable) return true;
      std::this_thread::sleep_for(25ms);
    }
    return false;
  }

  static PgTestServer* primary_;
  static PgTestServer* replica_;
};
PgTestServer* PgReplicaTest::primary_ = nullptr;
PgTestServer* PgReplicaTest::replica_ = nullptr;

TEST_F(PgReplicaTest, ReadsGoToTheReplicaFallBackWhenItIsDownAndSeeTheirOwnWrites) {
  DatabaseOptions o;
  o.primary_url = primary_->Url();
  o.replica_urls = {replica_->Url()};
  o.pool.size = 2;
  o.pool.max_overflow = 0;
  o.max_replica_lag = 300ms;
  o.replica_check_interval = std::chrono::hours(1);  // the test measures replicas itself
  auto opened = Database::Open(o);
  ASSERT_TRUE(opened) << opened.error().ToString();
  Database& db = **opened;
  PostgresMetadataStore store(db);
  Pool& primary = db.primary_pool();
  Pool& replica = *db.replica_pools().at(0);

  // Read-your-writes: right after a write, this process reads the primary.
  NewCollection nc;
  nc.name = "replicated";
  nc.owner_id = "u1";
  auto c = store.CreateCollection(nc);
  ASSERT_TRUE(c) << c.error().ToString();
  auto before = replica.stats().acquired;
  auto got = store.GetCollection(c->id);
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(replica.stats().acquired, before) << "the replica has not been seen to hold the write yet";

  // Once the replica is seen to hold it, reads go there and find the row.
  ASSERT_TRUE(WaitUsable(db));
  auto primary_before = primary.stats().acquired;
  before = replica.stats().acquired;
  got = store.GetCollection(c->id);
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(got->name, "replicated");
  EXPECT_EQ(replica.stats().acquired, before + 1);
  EXPECT_EQ(primary.stats().acquired, primary_before);
  // ... but the change feed and the search state always read the primary.
  ASSERT_TRUE(store.GetCollectionState(c->id));
  ASSERT_TRUE(store.ListChunks(c->id, 1, 0, 10, false));
  EXPECT_EQ(replica.stats().acquired, before + 1);

  // A write sends this process's reads back to the primary until the replica catches up.
  ASSERT_TRUE(store.SetCollectionStatus(c->id, CollectionStatus::kProcessing));
  before = replica.stats().acquired;
  EXPECT_EQ(store.GetCollection(c->id)->status, CollectionStatus::kProcessing);
  EXPECT_EQ(replica.stats().acquired, before);
  ASSERT_TRUE(WaitUsable(db));

  // A replica that lags past the bound is not read from.
  auto on_replica = Connection::Open(replica_->Url());
  ASSERT_TRUE(on_replica);
  ASSERT_TRUE((*on_replica)->ExecScript("SELECT pg_wal_replay_pause()"));
  {
    // Another server's write, which this process does not know about.
    auto other = Connection::Open(primary_->Url());
    ASSERT_TRUE(other);
    ASSERT_TRUE((*other)->Exec("UPDATE collections SET description = 'elsewhere' WHERE id = $1", Params().Add(c->id)));
  }
  std::this_thread::sleep_for(500ms);
  db.CheckReplicas();
  EXPECT_FALSE(db.replicas().at(0).usable);
  EXPECT_GT(db.replicas().at(0).lag_ms, 300);
  before = replica.stats().acquired;
  EXPECT_EQ(store.GetCollection(c->id)->description, "elsewhere") << "read from the primary";
  EXPECT_EQ(replica.stats().acquired, before);
  ASSERT_TRUE((*on_replica)->ExecScript("SELECT pg_wal_replay_resume()"));
  ASSERT_TRUE(WaitUsable(db));
  EXPECT_EQ(store.GetCollection(c->id)->description, "elsewhere");
  on_replica->reset();

  // The replica goes down: reads fall back to the primary and still answer.
  ASSERT_TRUE(replica_->Stop());
  primary_before = primary.stats().acquired;
  got = store.GetCollection(c->id);
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(got->name, "replicated");
  EXPECT_GT(primary.stats().acquired, primary_before);
  EXPECT_FALSE(db.replicas().at(0).up);
  auto listed = store.ListCollections("");
  ASSERT_TRUE(listed) << listed.error().ToString();
  EXPECT_EQ(listed->size(), 1u);
  db.CheckReplicas();
  EXPECT_FALSE(db.replicas().at(0).usable);

  // ... and return to it once it is back.
  ASSERT_TRUE(replica_->Restart());
  ASSERT_TRUE(WaitUsable(db));
  before = replica.stats().acquired;
  ASSERT_TRUE(store.GetCollection(c->id));
  EXPECT_EQ(replica.stats().acquired, before + 1);
}

TEST_F(PgReplicaTest, ARowAnotherProcessJustWroteIsFoundThroughThePrimary) {
  // Two processes (two Database objects): one creates a collection and adds a file while the
  // replica is paused; the other, which wrote nothing itself, reads them at once. Its replica
  // answers "not found", so it asks the primary (an upload on another server, a worker picking
  // up a file another server just added).
  auto open = [&] {
    DatabaseOptions o;
    o.primary_url = primary_->Url();
    o.replica_urls = {replica_->Url()};
    o.pool.size = 2;
    o.max_replica_lag = std::chrono::hours(1);  // usable however far behind: the test pauses replay
    o.replica_check_interval = std::chrono::hours(1);
    auto db = Database::Open(o);
    if (!db) throw std::runtime_error(db.error().ToString());
    return std::move(*db);
  };
  auto writer_db = open();
  auto reader_db = open();
  ASSERT_TRUE(WaitUsable(*reader_db));
  PostgresMetadataStore writer(*writer_db), reader(*reader_db);
  auto on_replica = Connection::Open(replica_->Url());
  ASSERT_TRUE(on_replica);
  ASSERT_TRUE((*on_replica)->ExecScript("SELECT pg_wal_replay_pause()"));
  NewCollection nc;
  nc.name = "fresh";
  nc.owner_id = "u2";
  auto c = writer.CreateCollection(nc);
  ASSERT_TRUE(c) << c.error().ToString();
  FileRecord f;
  f.collection_id = c->id;
  f.filename = "a.txt";
  f.content_hash = "h";
  f.storage_key = "h";
  auto file = writer.AddFile(f);
  ASSERT_TRUE(file) << file.error().ToString();
  Pool& replica = *reader_db->replica_pools().at(0);
  const auto before = replica.stats().acquired;
  auto got = reader.GetCollection(c->id);
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(got->name, "fresh");
  auto got_file = reader.GetFile(file->first.id);
  ASSERT_TRUE(got_file) << got_file.error().ToString();
  EXPECT_EQ(got_file->filename, "a.txt");
  EXPECT_GT(replica.stats().acquired, before) << "the replica was asked first";
  // A row that exists nowhere is still NotFound.
  auto missing = reader.GetFile("no-such-file");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE((*on_replica)->ExecScript("SELECT pg_wal_replay_resume()"));

  // A user adds a provider and a model (not the default) on one server and asks a question on
  // another: the reader looks for a default model (NotFound), then lists the provider's models.
  // The replica's empty list is asked again on the primary, which has the model.
  PostgresIdentityStore writer_identity(*writer_db);
  User u;
  u.name = "replica-reader";
  auto user = writer_identity.CreateUser(u);
  ASSERT_TRUE(user) << user.error().ToString();
  ASSERT_TRUE((*on_replica)->ExecScript("SELECT pg_wal_replay_pause()"));
  PostgresUserConfigStore writer_configs(*writer_db), reader_configs(*reader_db);
  ConfigRecord provider;
  provider.user_id = user->id;
  provider.kind = ConfigKind::kLlmProvider;
  provider.name = "closed";
  provider.is_default = true;
  auto p = writer_configs.Create(provider);
  ASSERT_TRUE(p) << p.error().ToString();
  ConfigRecord model;
  model.user_id = user->id;
  model.kind = ConfigKind::kLlmModel;
  model.parent_id = model.scope = p->id;
  model.name = "m";
  ASSERT_TRUE(writer_configs.Create(model));
  const auto before_list = replica.stats().acquired;
  auto found = reader_configs.GetDefault(user->id, ConfigKind::kLlmProvider, "");
  ASSERT_TRUE(found) << found.error().ToString();
  EXPECT_EQ(found->id, p->id);
  EXPECT_EQ(reader_configs.GetDefault(user->id, ConfigKind::kLlmModel, p->id).error().code(), ErrorCode::kNotFound);
  auto models = reader_configs.List(user->id, ConfigKind::kLlmModel, p->id);
  ASSERT_TRUE(models) << models.error().ToString();
  ASSERT_EQ(models->size(), 1u);
  EXPECT_EQ(models->at(0).name, "m");
  EXPECT_GE(replica.stats().acquired, before_list + 3) << "each read asked the replica first";
  // A list that is empty everywhere is still empty.
  auto none = reader_configs.List(user->id, ConfigKind::kPipeline);
  ASSERT_TRUE(none) << none.error().ToString();
  EXPECT_TRUE(none->empty());
  ASSERT_TRUE((*on_replica)->ExecScript("SELECT pg_wal_replay_resume()"));
}

}  // namespace
}  // namespace modulo::store::postgres
