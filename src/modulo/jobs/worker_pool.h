// WorkerPool: runs jobs from a JobQueue with N worker threads (`modulo serve` embeds one;
// `modulo worker` runs one on its own).
//
// Each worker leases a job, runs the handler for its kind while a heartbeat extends the lease,
// then completes it, or records the failure: a handler's Error with code kInvalidArgument,
// kUnsupportedMediaType, kPayloadTooLarge, kNotFound or kPermissionDenied is permanent (the
// file itself is the problem: retrying cannot help); anything else is retried after
// retry_base × 2^(attempt-1) until max attempts, then dead-lettered. Enqueue paths call Wake()
// so a new job starts without waiting for the next poll.
//
// Thread-safety: Start/Stop from one thread; Wake() from any.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/jobs/job_queue.h"
#include "modulo/metrics/registry.h"

namespace modulo::jobs {

// What a handler can do while it runs.
class JobContext {
 public:
  virtual ~JobContext() = default;
  // Records the stage and progress (0..100) and publishes them; cheap to call often.
  virtual void Progress(const std::string& stage, double percent) = 0;
  // True once the pool is stopping or the lease was lost: the handler should return soon.
  [[nodiscard]] virtual bool cancelled() const = 0;
};

using JobHandler = std::function<Status(const Job& job, JobContext& ctx)>;

struct WorkerPoolOptions {
  int concurrency = 4;
  std::chrono::milliseconds lease{30000};
  std::chrono::milliseconds heartbeat{5000};
  std::chrono::milliseconds poll{500};
  std::chrono::milliseconds retry_base{60000};  // the seed's countdown: 60 s × 2^retries
  int max_starts_per_minute = 0;                // task rate limit; 0 = unlimited
  std::string worker_id;                        // default: host:pid:random
};

class WorkerPool {
 public:
  // Called on every progress or state change: (job, event json). Used to publish events.
  using Listener = std::function<void(const Job& job, const std::string& event_json)>;

  WorkerPool(JobQueue& queue, WorkerPoolOptions options, metrics::Registry* registry = nullptr);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void AddHandler(std::string kind, JobHandler handler);
  void SetListener(Listener listener) { listener_ = std::move(listener); }
  // Called after each attempt with the job's new state (succeeded, queued for retry, failed,
  // dead) and the error, if any.
  using Finished = std::function<void(const Job& job, JobState state, const std::string& error)>;
  void SetOnFinished(Finished fn) { on_finished_ = std::move(fn); }
  void Start();
  // Stops leasing; waits up to `grace` for running jobs, then abandons them (their leases
  // expire and another worker runs them again).
  void Stop(std::chrono::milliseconds grace);
  void Wake();

  [[nodiscard]] const std::string& worker_id() const noexcept { return options_.worker_id; }
  // A worker id names a process of this host that is no longer running.
  [[nodiscard]] static bool IsDeadLocalOwner(const std::string& owner);

  [[nodiscard]] static bool IsPermanent(const Error& e) noexcept;
  [[nodiscard]] std::chrono::milliseconds RetryDelay(int attempt) const noexcept;

 private:
  void Loop(int index);
  bool TakeStartToken();
  void RunOne(const Job& job);

  JobQueue& queue_;
  WorkerPoolOptions options_;
  std::map<std::string, JobHandler> handlers_;
  Listener listener_;
  Finished on_finished_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> running_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t wakeups_ = 0;  // guarded by mu_
  // Start-rate limiting (token bucket refilled per minute).
  std::mutex rate_mu_;
  double tokens_ = 0;
  std::chrono::steady_clock::time_point refilled_;
  // Metrics (optional).
  metrics::CounterFamily* finished_ = nullptr;  // {state}
  metrics::Counter* retried_ = nullptr;
  metrics::Gauge* running_gauge_ = nullptr;
  metrics::HistogramFamily* stage_seconds_ = nullptr;
};

}  // namespace modulo::jobs
