#include "modulo/jobs/worker_pool.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "modulo/core/request_id.h"
#include "modulo/jobs/sqlite/sqlite_job_queue.h"

namespace modulo::jobs {
namespace {

using namespace std::chrono_literals;

class WorkerPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = std::filesystem::temp_directory_path() / ("modulo_pool_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    db_ = std::move(*store::sqlite::Database::Open((dir / (NewRequestId() + ".db")).string(), 4));
    queue_ = std::make_unique<SqliteJobQueue>(*db_);
  }
  WorkerPoolOptions Fast() {
    WorkerPoolOptions o;
    o.concurrency = 2;
    o.poll = 20ms;
    o.retry_base = 1ms;
    o.heartbeat = 20ms;
    o.lease = 200ms;
    return o;
  }
  bool WaitFor(const std::string& id, JobState state) {
    for (int i = 0; i < 300; ++i) {
      if (queue_->Get(id)->state == state) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  std::unique_ptr<store::sqlite::Database> db_;
  std::unique_ptr<SqliteJobQueue> queue_;
};

TEST_F(WorkerPoolTest, RunsRetriesAndClassifiesFailures) {
  metrics::Registry reg;
  WorkerPool pool(*queue_, Fast(), &reg);
  std::atomic<int> flaky_calls{0};
  pool.AddHandler("ok", [](const Job&, JobContext& ctx) -> Status {
    ctx.Progress("parse", 10);
    ctx.Progress("embed", 90);
    return {};
  });
  pool.AddHandler("flaky", [&](const Job&, JobContext&) -> Status {
    return ++flaky_calls < 3 ? Fail(Error::Unavailable("try later")) : Status{};
  });
  pool.AddHandler("bad", [](const Job&, JobContext&) -> Status { return Fail(Error::InvalidArgument("corrupt")); });
  std::vector<std::string> events;
  std::mutex mu;
  pool.SetListener([&](const Job&, const std::string& e) {
    std::lock_guard lock(mu);
    events.push_back(e);
  });
  pool.Start();
  auto ok = queue_->Enqueue({.kind = "ok"});
  auto flaky = queue_->Enqueue({.kind = "flaky"});
  auto bad = queue_->Enqueue({.kind = "bad"});
  auto unknown = queue_->Enqueue({.kind = "nobody-handles-this"});
  pool.Wake();
  EXPECT_TRUE(WaitFor(ok->id, JobState::kSucceeded));
  EXPECT_TRUE(WaitFor(flaky->id, JobState::kSucceeded));
  EXPECT_TRUE(WaitFor(bad->id, JobState::kFailed));
  EXPECT_TRUE(WaitFor(unknown->id, JobState::kFailed));
  pool.Stop(1s);
  EXPECT_EQ(flaky_calls.load(), 3);
  EXPECT_EQ(queue_->Get(flaky->id)->attempts, 3);
  EXPECT_EQ(queue_->Get(bad->id)->attempts, 1) << "permanent errors are not retried";
  const auto text = reg.Expose();
  EXPECT_NE(text.find("modulo_jobs_retried_total 2"), std::string::npos) << text;
  EXPECT_NE(text.find("modulo_ingest_stage_duration_seconds_count{stage=\"embed\"} 1"), std::string::npos) << text;
  std::lock_guard lock(mu);
  EXPECT_FALSE(events.empty());
}

TEST_F(WorkerPoolTest, HeartbeatsKeepLongJobsLeased) {
  WorkerPool pool(*queue_, Fast());
  std::atomic<int> runs{0};
  pool.AddHandler("slow", [&](const Job&, JobContext&) -> Status {
    ++runs;
    std::this_thread::sleep_for(600ms);  // three lease lengths
    return {};
  });
  pool.Start();
  auto j = queue_->Enqueue({.kind = "slow"});
  pool.Wake();
  EXPECT_TRUE(WaitFor(j->id, JobState::kSucceeded));
  pool.Stop(1s);
  EXPECT_EQ(runs.load(), 1) << "no second worker took the job while it was running";
}

TEST_F(WorkerPoolTest, RetryDelayDoublesFromTheBase) {
  WorkerPoolOptions o;
  o.retry_base = 60s;
  WorkerPool pool(*queue_, o);
  EXPECT_EQ(pool.RetryDelay(1), 60s);
  EXPECT_EQ(pool.RetryDelay(2), 120s);
  EXPECT_EQ(pool.RetryDelay(3), 240s);
}

TEST_F(WorkerPoolTest, DeadLocalOwnersAreRecognised) {
  WorkerPool pool(*queue_, WorkerPoolOptions{});
  EXPECT_FALSE(WorkerPool::IsDeadLocalOwner(pool.worker_id())) << "this process is alive";
  const auto host = pool.worker_id().substr(0, pool.worker_id().find(':'));
  EXPECT_TRUE(WorkerPool::IsDeadLocalOwner(host + ":999999:abc"));
  EXPECT_FALSE(WorkerPool::IsDeadLocalOwner("another-host:999999:abc"));
  EXPECT_FALSE(WorkerPool::IsDeadLocalOwner("garbage"));
}

}  // namespace
}  // namespace modulo::jobs
