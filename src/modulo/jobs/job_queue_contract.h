// The contract every JobQueue implementation must pass; instantiate with a factory:
//   INSTANTIATE_TEST_SUITE_P(Sqlite, JobQueueContract, ::testing::Values(&MakeSqliteQueue));
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "modulo/jobs/job_queue.h"

namespace modulo::jobs {

using JobQueueFactory = std::shared_ptr<JobQueue> (*)();

class JobQueueContract : public ::testing::TestWithParam<JobQueueFactory> {
 protected:
  void SetUp() override { queue_ = GetParam()(); }
  std::shared_ptr<JobQueue> queue_;
};

}  // namespace modulo::jobs
