// JobQueue: durable background jobs with leases, retries with exponential backoff and a
// dead-letter state. Implementations: SqliteJobQueue (embedded, in the data directory's
// database) and a Redis Streams one for scale-out; both pass job_queue_contract.h.
//
// Life of a job: queued → running (Lease; attempts + 1) → succeeded, or back to queued with a
// later run_after (retryable failure), or failed (permanent failure: not retried), or dead
// (retries exhausted). A running job whose lease expires (its worker crashed) is leased again by
// the next worker, so no job is ever stuck. Handlers must be idempotent.
//
// Thread-safety: all methods are thread-safe and block (disk or network): call them off the
// I/O threads.
#pragma once

#include <chrono>
#include <functional>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "modulo/core/error.h"

namespace modulo::jobs {

enum class JobState { kQueued, kRunning, kSucceeded, kFailed, kDead };
[[nodiscard]] std::string_view ToString(JobState s) noexcept;
[[nodiscard]] std::optional<JobState> ParseJobState(std::string_view s) noexcept;

struct Job {
  std::string id;
  std::string kind;  // which handler runs it, e.g. "ingest_file"
  std::string collection_id;
  std::string file_id;
  std::string payload_json = "{}";
  JobState state = JobState::kQueued;
  std::string stage;     // e.g. "parse", "chunk", "embed", "index"
  double progress = 0;   // 0..100
  int attempts = 0;      // leases so far
  int max_attempts = 4;  // 1 + retries
  std::int64_t run_after_ms = 0;
  std::string lease_owner;
  std::int64_t lease_expires_ms = 0;
  std::string error;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

struct NewJob {
  std::string kind;
  std::string collection_id;
  std::string file_id;
  std::string payload_json = "{}";
  int max_attempts = 4;
  std::string id;  // optional: a caller-chosen id (e.g. to return it before enqueueing)
};

struct JobCounts {
  std::int64_t queued = 0, running = 0, succeeded = 0, failed = 0, dead = 0;
};

class JobQueue {
 public:
  virtual ~JobQueue() = default;

  [[nodiscard]] virtual Result<Job> Enqueue(const NewJob& job) = 0;
  // The oldest job that is ready (queued and due, or running with an expired lease), now leased
  // to `worker` until now + lease; nullopt when none is ready.
  [[nodiscard]] virtual Result<std::optional<Job>> Lease(const std::string& worker,
                                                         std::chrono::milliseconds lease) = 0;
  // Extends the lease and records progress. Conflict when the worker no longer holds the lease.
  [[nodiscard]] virtual Status Heartbeat(const std::string& job_id, const std::string& worker,
                                         std::chrono::milliseconds lease, const std::string& stage,
                                         double progress) = 0;
  [[nodiscard]] virtual Status Complete(const std::string& job_id, const std::string& worker) = 0;
  // Records a failure: permanent → failed; else queued again after retry_delay, or dead when the
  // attempts are used up. Returns the job's new state.
  [[nodiscard]] virtual Result<JobState> Fail(const std::string& job_id, const std::string& worker,
                                              const std::string& error, bool permanent,
                                              std::chrono::milliseconds retry_delay) = 0;
  // Makes every running job whose owner matches `is_dead_owner` ready at once (crash recovery).
  [[nodiscard]] virtual Result<int> ReleaseLeases(const std::function<bool(const std::string& owner)>& is_dead_owner) = 0;

  [[nodiscard]] virtual Result<Job> Get(const std::string& job_id) = 0;
  [[nodiscard]] virtual Result<std::vector<Job>> ListForCollection(const std::string& collection_id) = 0;
  [[nodiscard]] virtual Result<JobCounts> Counts() = 0;
};

}  // namespace modulo::jobs
