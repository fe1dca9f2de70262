#include "modulo/jobs/job_queue_contract.h"

#include <atomic>
#include <set>
#include <thread>

namespace modulo::jobs {
namespace {

using namespace std::chrono_literals;

NewJob J(const std::string& file = "f1") {
  NewJob j;
  j.kind = "ingest_file";
  j.collection_id = "c1";
  j.file_id = file;
  j.max_attempts = 3;
  return j;
}

TEST_P(JobQueueContract, LeaseCompleteLifecycle) {
  auto j = queue_->Enqueue(J());
  ASSERT_TRUE(j) << j.error().ToString();
  EXPECT_EQ(j->state, JobState::kQueued);
  auto l = queue_->Lease("w1", 10s);
  ASSERT_TRUE(l && *l);
  EXPECT_EQ((*l)->id, j->id);
  EXPECT_EQ((*l)->attempts, 1);
  EXPECT_FALSE(*queue_->Lease("w2", 10s)) << "a leased job is not handed out twice";
  ASSERT_TRUE(queue_->Heartbeat(j->id, "w1", 10s, "embed", 50));
  auto mid = queue_->Get(j->id);
  EXPECT_EQ(mid->stage, "embed");
  EXPECT_DOUBLE_EQ(mid->progress, 50);
  EXPECT_EQ(queue_->Heartbeat(j->id, "w2", 10s, "x", 1).error().code(), ErrorCode::kConflict);
  ASSERT_TRUE(queue_->Complete(j->id, "w1"));
  EXPECT_EQ(queue_->Get(j->id)->state, JobState::kSucceeded);
  EXPECT_EQ(queue_->Complete(j->id, "w1").error().code(), ErrorCode::kConflict);
  EXPECT_EQ(queue_->Get("nope").error().code(), ErrorCode::kNotFound);
}

TEST_P(JobQueueContract, RetriesWithBackoffThenDeadLetters) {
  auto j = queue_->Enqueue(J());
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto l = queue_->Lease("w", 10s);
    ASSERT_TRUE(l && *l) << "attempt " << attempt;
    EXPECT_EQ((*l)->attempts, attempt);
    auto next = queue_->Fail(j->id, "w", "boom", false, 0ms);
    ASSERT_TRUE(next);
    EXPECT_EQ(*next, attempt < 3 ? JobState::kQueued : JobState::kDead);
  }
  auto dead = queue_->Get(j->id);
  EXPECT_EQ(dead->state, JobState::kDead);
  EXPECT_EQ(dead->error, "boom");
  EXPECT_FALSE(*queue_->Lease("w", 10s));
}

TEST_P(JobQueueContract, BackoffDelaysTheNextAttempt) {
  auto j = queue_->Enqueue(J());
  auto l = queue_->Lease("w", 10s);
  ASSERT_TRUE(queue_->Fail(j->id, "w", "later", false, 60s));
  EXPECT_FALSE(*queue_->Lease("w", 10s)) << "not due for a minute";
  EXPECT_EQ(queue_->Get(j->id)->state, JobState::kQueued);
}

TEST_P(JobQueueContract, PermanentFailuresAreNotRetried) {
  auto j = queue_->Enqueue(J());
  ASSERT_TRUE(*queue_->Lease("w", 10s));
  EXPECT_EQ(*queue_->Fail(j->id, "w", "not a PDF", true, 0ms), JobState::kFailed);
  EXPECT_FALSE(*queue_->Lease("w", 10s));
}

TEST_P(JobQueueContract, ExpiredLeasesAreTakenOverAndReleasedLeasesAtOnce) {
  auto j = queue_->Enqueue(J());
  ASSERT_TRUE(*queue_->Lease("crashed-worker", 50ms));
  std::this_thread::sleep_for(120ms);
  auto l = queue_->Lease("w2", 10s);
  ASSERT_TRUE(l && *l);
  EXPECT_EQ((*l)->attempts, 2);
  EXPECT_EQ(queue_->Complete(j->id, "crashed-worker").error().code(), ErrorCode::kConflict);
  // Crash recovery: a dead owner's lease is released without waiting for it to expire.
  auto k = queue_->Enqueue(J("f2"));
  ASSERT_TRUE(*queue_->Lease("dead-pid", 60s));
  EXPECT_EQ(*queue_->ReleaseLeases([](const std::string& o) { return o == "dead-pid"; }), 1);
  auto again = queue_->Lease("w3", 10s);
  ASSERT_TRUE(again && *again);
  EXPECT_EQ((*again)->id, k->id);
}

TEST_P(JobQueueContract, ALostLastAttemptIsDeadLettered) {
  NewJob n = J();
  n.max_attempts = 1;
  auto j = queue_->Enqueue(n);
  ASSERT_TRUE(*queue_->Lease("crashed", 10ms));
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(*queue_->Lease("w", 10s));
  EXPECT_EQ(queue_->Get(j->id)->state, JobState::kDead);
}

TEST_P(JobQueueContract, ConcurrentWorkersNeverShareAnAttempt) {
  constexpr int kJobs = 60;
  for (int i = 0; i < kJobs; ++i) ASSERT_TRUE(queue_->Enqueue(J("f" + std::to_string(i))));
  std::mutex mu;
  std::multiset<std::string> done;
  std::vector<std::thread> ts;
  for (int w = 0; w < 4; ++w) {
    ts.emplace_back([&, w] {
      const std::string me = "w" + std::to_string(w);
      while (true) {
        auto l = queue_->Lease(me, 10s);
        if (!l) continue;  // busy: try again
        if (!*l) break;
        if (queue_->Complete((*l)->id, me)) {
          std::lock_guard lock(mu);
          done.insert((*l)->id);
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(done.size(), static_cast<std::size_t>(kJobs));
  for (const auto& id : done) EXPECT_EQ(done.count(id), 1u);
  auto counts = queue_->Counts();
  EXPECT_EQ(counts->succeeded, kJobs);
  EXPECT_EQ(queue_->ListForCollection("c1")->size(), static_cast<std::size_t>(kJobs));
}

}  // namespace
}  // namespace modulo::jobs
