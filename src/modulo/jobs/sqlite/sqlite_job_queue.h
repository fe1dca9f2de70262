// SqliteJobQueue: the embedded JobQueue, a `jobs` table in the data directory's SQLite database.
// Leasing is one IMMEDIATE transaction (select the oldest ready job, mark it running), so two
// workers — threads or processes sharing the data directory — never run the same attempt.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include "modulo/jobs/job_queue.h"
#include "modulo/store/sqlite/database.h"

namespace modulo::jobs {

class SqliteJobQueue final : public JobQueue {
 public:
  explicit SqliteJobQueue(store::sqlite::Database& db) : db_(db) {}

  Result<Job> Enqueue(const NewJob& job) override;
  Result<std::optional<Job>> Lease(const std::string& worker, std::chrono::milliseconds lease) override;
  Status Heartbeat(const std::string& job_id, const std::string& worker, std::chrono::milliseconds lease,
                   const std::string& stage, double progress) override;
  Status Complete(const std::string& job_id, const std::string& worker) override;
  Result<JobState> Fail(const std::string& job_id, const std::string& worker, const std::string& error,
                        bool permanent, std::chrono::milliseconds retry_delay) override;
  Result<int> ReleaseLeases(const std::function<bool(const std::string&)>& is_dead_owner) override;
  Result<Job> Get(const std::string& job_id) override;
  Result<std::vector<Job>> ListForCollection(const std::string& collection_id) override;
  Result<JobCounts> Counts() override;

 private:
  store::sqlite::Database& db_;
};

}  // namespace modulo::jobs
