#include "modulo/jobs/sqlite/sqlite_job_queue.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "modulo/core/request_id.h"
#include "modulo/jobs/job_queue_contract.h"

namespace modulo::jobs {
namespace {

std::shared_ptr<JobQueue> MakeSqliteQueue() {
  auto dir = std::filesystem::temp_directory_path() / ("modulo_jobs_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto db = store::sqlite::Database::Open((dir / (NewRequestId() + ".db")).string(), 4);
  EXPECT_TRUE(db) << db.error().ToString();
  std::shared_ptr<store::sqlite::Database> shared(std::move(*db));
  return std::shared_ptr<JobQueue>(new SqliteJobQueue(*shared), [shared](JobQueue* q) { delete q; });
}

INSTANTIATE_TEST_SUITE_P(Sqlite, JobQueueContract, ::testing::Values(&MakeSqliteQueue));

}  // namespace
}  // namespace modulo::jobs
