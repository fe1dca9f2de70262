// RedisJobQueue: the JobQueue for scale-out (several servers and workers sharing one Redis),
// on Redis Streams with a consumer group. It passes job_queue_contract.h like SqliteJobQueue.
//
// Keys (P = the client's key prefix, e.g. "modulo:"):
//   P jobs:job:<id>            hash: the job record (every Job field, plus `msg`, the stream
//                              entry that carries it while it is queued in the stream or running)
//   P jobs:stream              stream of ready jobs; consumer group `group`, one consumer per worker
//   P jobs:delayed             sorted set: retries waiting for their backoff (score = run_after ms)
//   P jobs:dead                stream of dead letters (id, error), capped at ~100k entries
//   P jobs:counts              hash: jobs per state, changed in the same script as the state
//   P jobs:collection:<cid>    set of the collection's job ids
//
// How the states map:
//   Enqueue   XADD to the stream (state queued).
//   Lease     one Lua script: moves due retries from the delayed set back to the stream; claims
//             an entry whose lease ran out with XAUTOCLAIM (dead-lettering it when that was the
//             last attempt); else reads a new entry with XREADGROUP. The job becomes running,
//             attempts + 1, lease_owner = worker.
//   Heartbeat / Complete / Fail check, in their script, that the job is running and leased to
//             this worker (else kConflict; kNotFound for an unknown id), so a worker that lost
//             its lease to another can neither extend nor finish it: a job completes once.
//             Complete and Fail XACK and XDEL the entry; a retry goes to the delayed set (or
//             straight back to the stream when due now), a dead job to the dead-letter stream.
//   ReleaseLeases marks the entries of consumers that `is_dead_owner` names as expired at once,
//             and removes dead consumers that hold nothing.
//
// Lease expiry is encoded in the pending entry's idle time: leasing for L ms sets the entry's
// idle time to H - L (XCLAIM ... IDLE), where H is `lease_horizon`, so the entry becomes idle
// for H — what XAUTOCLAIM's min-idle-time asks for — exactly when the lease ends; a heartbeat
// sets it again. That gives every lease its own duration while XAUTOCLAIM finds expired ones.
// The job hash is the authority on who holds a lease; the stream's pending list follows it.
// Times come from the Redis server's clock (TIME), so workers' clocks do not matter.
//
// Ordering: roughly oldest first (expired leases, then the stream in arrival order; a retry
// rejoins the stream when it comes due). Requirements: Redis >= 6.2 (XAUTOCLAIM); one Redis
// (not Cluster: the scripts touch job keys they compute). With appendonly + appendfsync, jobs
// survive a Redis restart: every state change is one script, replayed atomically.
//
// Thread-safety: all methods are thread-safe and block on the network: call them off the I/O
// threads. The RedisClient must outlive the queue.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "modulo/jobs/job_queue.h"
#include "modulo/redis/client.h"

namespace modulo::jobs {

struct RedisJobQueueOptions {
  std::string group = "workers";  // the consumer group
  // Longest lease a Lease or Heartbeat may ask for (see above); longer ones are kInvalidArgument.
  std::chrono::milliseconds lease_horizon = std::chrono::hours(24 * 7);
  int move_batch = 100;  // due retries moved back to the stream per Lease
};

struct DeadLetter {
  std::string job_id;
  std::string error;
};

class RedisJobQueue final : public JobQueue {
 public:
  explicit RedisJobQueue(redis::RedisClient& client, RedisJobQueueOptions options = {});

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

  // The most recent dead letters, newest first.
  [[nodiscard]] Result<std::vector<DeadLetter>> DeadLetters(std::size_t limit);

 private:
  [[nodiscard]] std::string JobKey(const std::string& id) const { return job_prefix_ + id; }
  [[nodiscard]] Status CheckLease(std::chrono::milliseconds lease) const;

  redis::RedisClient& client_;
  RedisJobQueueOptions options_;
  std::string job_prefix_;  // P jobs:job:
  std::string stream_, delayed_, dead_, counts_, collection_prefix_;
};

}  // namespace modulo::jobs
