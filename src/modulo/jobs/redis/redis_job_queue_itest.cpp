// The JobQueue contract and the scale-out behaviour of RedisJobQueue, against a real redis-server.
#include "modulo/jobs/redis/redis_job_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "modulo/jobs/job_queue_contract.h"
#include "modulo/redis/test_server.h"

namespace modulo::jobs {
namespace {

using namespace std::chrono_literals;

redis::RedisOptions OptionsOrFail() {
  auto server = redis::SharedTestServer();
  if (!server) {
    ADD_FAILURE() << server.error().message();
    redis::RedisOptions unreachable;
    unreachable.port = 1;  // nothing listens: every call fails, so the contract fails too
    unreachable.connect_timeout = 100ms;
    return unreachable;
  }
  return (*server)->Options(redis::UniqueTestPrefix());
}

// A queue with its own client, as a separate process would have.
struct Process {
  explicit Process(const redis::RedisOptions& o) : client(std::make_unique<redis::RedisClient>(o)), queue(*client) {}
  std::unique_ptr<redis::RedisClient> client;
  RedisJobQueue queue;
};

std::shared_ptr<JobQueue> MakeRedisQueue() {
  auto p = std::make_shared<Process>(OptionsOrFail());
  return std::shared_ptr<JobQueue>(p, &p->queue);
}

INSTANTIATE_TEST_SUITE_P(Redis, JobQueueContract, ::testing::Values(&MakeRedisQueue));

NewJob J(const std::string& file, int max_attempts = 3) {
  NewJob j;
  j.kind = "ingest_file";
  j.collection_id = "c1";
  j.file_id = file;
  j.payload_json = "{\"path\":\"a b\\u0000\"}";
  j.max_attempts = max_attempts;
  return j;
}

class RedisJobQueueTest : public ::testing::Test {
 protected:
  void SetUp() override { options_ = OptionsOrFail(); }
  redis::RedisOptions options_;
};

TEST_F(RedisJobQueueTest, RecordsRoundTripAndInputIsChecked) {
  Process p(options_);
  NewJob n = J("f1");
  n.id = "caller-chosen-id";
  auto j = p.queue.Enqueue(n);
  ASSERT_TRUE(j) << j.error().ToString();
  EXPECT_EQ(j->id, "caller-chosen-id");
  EXPECT_GT(j->created_at_ms, 0);
  auto got = p.queue.Get("caller-chosen-id");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->kind, "ingest_file");
  EXPECT_EQ(got->collection_id, "c1");
  EXPECT_EQ(got->file_id, "f1");
  EXPECT_EQ(got->payload_json, n.payload_json);
  EXPECT_EQ(got->max_attempts, 3);
  EXPECT_EQ(got->state, JobState::kQueued);
  EXPECT_EQ(got->created_at_ms, j->created_at_ms);

  EXPECT_EQ(p.queue.Enqueue(n).error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(p.queue.Enqueue(NewJob{}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(p.queue.Lease("w", std::chrono::hours(24 * 8)).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(p.queue.Lease("", 1s).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(p.queue.Heartbeat("nope", "w", 1s, "x", 1).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(p.queue.Complete("nope", "w").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(p.queue.Fail("nope", "w", "e", false, 0ms).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(p.queue.Counts()->queued, 1);
}

TEST_F(RedisJobQueueTest, AJobOfADeadConsumerIsClaimedAfterItsLeaseAndCompletesOnce) {
  Process a(options_), b(options_);
  auto j = a.queue.Enqueue(J("f1"));
  ASSERT_TRUE(j);
  auto first = a.queue.Lease("worker-a", 300ms);
  ASSERT_TRUE(first && *first);
  EXPECT_EQ((*first)->lease_owner, "worker-a");
  ASSERT_TRUE(a.queue.Heartbeat(j->id, "worker-a", 300ms, "parse", 10));
  // worker-a dies here: no more heartbeats.
  EXPECT_FALSE(*b.queue.Lease("worker-b", 10s)) << "the lease still runs";
  std::this_thread::sleep_for(400ms);
  auto taken = b.queue.Lease("worker-b", 10s);
  ASSERT_TRUE(taken && *taken);
  EXPECT_EQ((*taken)->id, j->id);
  EXPECT_EQ((*taken)->attempts, 2);
  EXPECT_EQ((*taken)->lease_owner, "worker-b");
  EXPECT_EQ((*taken)->stage, "parse") << "the record carries over";
  // The dead worker, should it wake up, cannot extend or finish the job any more.
  EXPECT_EQ(a.queue.Heartbeat(j->id, "worker-a", 10s, "x", 50).error().code(), ErrorCode::kConflict);
  EXPECT_EQ(a.queue.Complete(j->id, "worker-a").error().code(), ErrorCode::kConflict);
  EXPECT_EQ(a.queue.Fail(j->id, "worker-a", "late", false, 0ms).error().code(), ErrorCode::kConflict);
  ASSERT_TRUE(b.queue.Complete(j->id, "worker-b"));
  EXPECT_EQ(b.queue.Complete(j->id, "worker-b").error().code(), ErrorCode::kConflict);
  auto counts = b.queue.Counts();
  EXPECT_EQ(counts->succeeded, 1);
  EXPECT_EQ(counts->running, 0);
  EXPECT_EQ(counts->queued, 0);
  EXPECT_FALSE(*a.queue.Lease("worker-c", 10s));
  auto len = b.client->Command({"XLEN", b.client->Key("jobs:stream")});
  EXPECT_EQ(len->AsInteger(), 0) << "finished entries leave the stream";
}

TEST_F(RedisJobQueueTest, TwoProcessesRacingOn200JobsNeverHoldTheSameJob) {
  constexpr int kJobs = 200;
  Process p1(options_), p2(options_);
  for (int i = 0; i < kJobs; ++i) ASSERT_TRUE(p1.queue.Enqueue(J("f" + std::to_string(i))));
  std::mutex mu;
  std::set<std::string> held;              // leased and not yet completed
  std::map<std::string, int> completions;  // job → successful Complete calls
  std::atomic<int> overlaps{0}, errors{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      RedisJobQueue& q = w % 2 == 0 ? p1.queue : p2.queue;
      const std::string me = "proc" + std::to_string(w % 2) + ":w" + std::to_string(w);
      while (true) {
        auto l = q.Lease(me, 10s);
        if (!l) {
          if (++errors > 100) break;  // Redis is gone: fail below rather than spin
          continue;
        }
        if (!*l) break;
        const std::string id = (*l)->id;
        {
          std::lock_guard lock(mu);
          if (!held.insert(id).second) ++overlaps;
        }
        auto done = q.Complete(id, me);
        std::lock_guard lock(mu);
        held.erase(id);
        if (done) ++completions[id];
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(completions.size(), static_cast<std::size_t>(kJobs));
  for (const auto& [id, n] : completions) EXPECT_EQ(n, 1) << id;
  auto counts = p2.queue.Counts();
  EXPECT_EQ(counts->succeeded, kJobs);
  EXPECT_EQ(counts->queued + counts->running + counts->failed + counts->dead, 0);
  auto list = p2.queue.ListForCollection("c1");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), static_cast<std::size_t>(kJobs));
  for (std::size_t i = 1; i < list->size(); ++i) EXPECT_LE((*list)[i - 1].created_at_ms, (*list)[i].created_at_ms);
  auto pending = p1.client->Command({"XPENDING", p1.client->Key("jobs:stream"), "workers"});
  ASSERT_TRUE(pending);
  EXPECT_EQ(pending->elements[0].AsInteger(), 0) << "every entry acknowledged";
}

TEST_F(RedisJobQueueTest, DelayedRetriesComeBackAfterTheirDelay) {
  Process p(options_);
  auto j = p.queue.Enqueue(J("f1"));
  ASSERT_TRUE(*p.queue.Lease("w", 10s));
  auto next = p.queue.Fail(j->id, "w", "try later", false, 400ms);
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, JobState::kQueued);
  auto waiting = p.queue.Get(j->id);
  EXPECT_EQ(waiting->state, JobState::kQueued);
  EXPECT_EQ(waiting->error, "try later");
  EXPECT_GE(waiting->run_after_ms, waiting->updated_at_ms + 400);
  auto score = p.client->Command({"ZSCORE", p.client->Key("jobs:delayed"), j->id});
  ASSERT_TRUE(score);
  EXPECT_EQ(score->AsInteger(), waiting->run_after_ms) << "waits in the delayed set";
  EXPECT_FALSE(*p.queue.Lease("w", 10s)) << "not due yet";
  std::this_thread::sleep_for(450ms);
  auto again = p.queue.Lease("w", 10s);
  ASSERT_TRUE(again && *again);
  EXPECT_EQ((*again)->id, j->id);
  EXPECT_EQ((*again)->attempts, 2);
  auto gone = p.client->Command({"ZSCORE", p.client->Key("jobs:delayed"), j->id});
  EXPECT_TRUE(gone->is_nil()) << "moved back to the stream";
}

TEST_F(RedisJobQueueTest, DeadLettersAfterMaxAttempts) {
  Process p(options_);
  auto j = p.queue.Enqueue(J("f1", 2));
  for (int attempt = 1; attempt <= 2; ++attempt) {
    auto l = p.queue.Lease("w", 10s);
    ASSERT_TRUE(l && *l);
    auto next = p.queue.Fail(j->id, "w", "boom " + std::to_string(attempt), false, 0ms);
    ASSERT_TRUE(next);
    EXPECT_EQ(*next, attempt < 2 ? JobState::kQueued : JobState::kDead);
  }
  // A job whose worker vanished on its last attempt is dead-lettered too.
  auto lost = p.queue.Enqueue(J("f2", 1));
  ASSERT_TRUE(*p.queue.Lease("crashed", 20ms));
  std::this_thread::sleep_for(60ms);
  EXPECT_FALSE(*p.queue.Lease("w", 10s));
  auto letters = p.queue.DeadLetters(10);
  ASSERT_TRUE(letters);
  ASSERT_EQ(letters->size(), 2u);
  EXPECT_EQ((*letters)[0].job_id, lost->id);
  EXPECT_EQ((*letters)[0].error, "the worker running this task stopped 1 times before finishing");
  EXPECT_EQ((*letters)[1].job_id, j->id);
  EXPECT_EQ((*letters)[1].error, "boom 2");
  auto counts = p.queue.Counts();
  EXPECT_EQ(counts->dead, 2);
  EXPECT_EQ(counts->running + counts->queued, 0);
  EXPECT_FALSE(*p.queue.Lease("w", 10s));
}

TEST_F(RedisJobQueueTest, ReleaseLeasesFreesDeadOwnersAndForgetsEmptyConsumers) {
  Process p(options_);
  auto j1 = p.queue.Enqueue(J("f1"));
  auto j2 = p.queue.Enqueue(J("f2"));
  ASSERT_TRUE(*p.queue.Lease("host:111:a", 60s));
  ASSERT_TRUE(*p.queue.Lease("host:222:b", 60s));
  ASSERT_TRUE(p.queue.Complete(j2->id, "host:222:b"));  // b holds nothing now
  auto dead = [](const std::string& o) { return o.starts_with("host:111:") || o.starts_with("host:222:"); };
  EXPECT_EQ(*p.queue.ReleaseLeases(dead), 1);
  auto consumers = p.client->Command({"XINFO", "CONSUMERS", p.client->Key("jobs:stream"), "workers"});
  ASSERT_TRUE(consumers);
  EXPECT_EQ(consumers->elements.size(), 1u) << "host:222:b removed; host:111:a still lists the released entry";
  auto l = p.queue.Lease("host:333:c", 60s);
  ASSERT_TRUE(l && *l);
  EXPECT_EQ((*l)->id, j1->id);
  EXPECT_EQ(*p.queue.ReleaseLeases(dead), 0) << "nothing left to release";
  EXPECT_EQ(p.queue.Complete(j1->id, "host:111:a").error().code(), ErrorCode::kConflict);
  ASSERT_TRUE(p.queue.Complete(j1->id, "host:333:c"));
}

TEST_F(RedisJobQueueTest, PrefixesSeparateDeployments) {
  Process blue(options_);
  auto other = options_;
  other.key_prefix = redis::UniqueTestPrefix();
  Process green(other);
  ASSERT_TRUE(blue.queue.Enqueue(J("f1")));
  EXPECT_FALSE(*green.queue.Lease("w", 10s));
  EXPECT_EQ(green.queue.Counts()->queued, 0);
  EXPECT_TRUE(*blue.queue.Lease("w", 10s));
}

TEST(RedisJobQueueRestartTest, TheQueueSurvivesARedisRestart) {
  auto server = redis::RedisTestServer::Start({.fsync_always = true});
  ASSERT_TRUE(server) << server.error().message();
  Process p((*server)->Options("restart:"));
  auto a = p.queue.Enqueue(J("a"));
  auto b = p.queue.Enqueue(J("b"));
  auto c = p.queue.Enqueue(J("c"));
  ASSERT_TRUE(a && b && c);
  auto la = p.queue.Lease("w1", 60s);
  auto lb = p.queue.Lease("w1", 300ms);
  ASSERT_TRUE(la && *la && lb && *lb);
  ASSERT_EQ((*la)->id, a->id);
  ASSERT_EQ((*lb)->id, b->id);

  ASSERT_TRUE((*server)->Kill());
  const auto start = std::chrono::steady_clock::now();
  auto during = p.queue.Enqueue(J("d"));
  ASSERT_FALSE(during);
  EXPECT_EQ(during.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(p.queue.Lease("w2", 10s).error().code(), ErrorCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << "fails fast during the outage";

  ASSERT_TRUE((*server)->Restart());
  std::this_thread::sleep_for(std::max(p.client->options().reconnect_backoff_max, 300ms) + 50ms);
  auto counts = p.queue.Counts();
  ASSERT_TRUE(counts) << counts.error().ToString();
  EXPECT_EQ(counts->queued, 1);
  EXPECT_EQ(counts->running, 2);
  EXPECT_EQ(p.queue.Get(c->id)->file_id, "c");
  // b's 300 ms lease ran out across the restart: it is claimed first, then c; a is still held.
  auto next = p.queue.Lease("w2", 10s);
  ASSERT_TRUE(next && *next) << (next ? "none" : next.error().ToString());
  EXPECT_EQ((*next)->id, b->id);
  EXPECT_EQ((*next)->attempts, 2);
  auto then = p.queue.Lease("w2", 10s);
  ASSERT_TRUE(then && *then);
  EXPECT_EQ((*then)->id, c->id);
  EXPECT_FALSE(*p.queue.Lease("w2", 10s));
  EXPECT_TRUE(p.queue.Complete(a->id, "w1")) << "w1's lease on a survived";
  EXPECT_EQ(p.queue.Complete(b->id, "w1").error().code(), ErrorCode::kConflict);
}

}  // namespace
}  // namespace modulo::jobs
