#include "modulo/jobs/worker_pool.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "modulo/core/log.h"
#include "modulo/core/request_id.h"

namespace modulo::jobs {
namespace {

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

std::string EventJson(const Job& job, std::string_view state, const std::string& stage, double progress,
                      const std::string& error) {
  nlohmann::json j = {{"type", "task"},
                      {"task_id", job.id},
                      {"kind", job.kind},
                      {"collection_id", job.collection_id},
                      {"file_id", job.file_id},
                      {"state", state},
                      {"stage", stage},
                      {"progress", progress},
                      {"attempts", job.attempts},
                      {"error", error}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

class Context final : public JobContext {
 public:
  Context(const Job& job, const std::atomic<bool>& stopping, const WorkerPool::Listener& listener,
          metrics::HistogramFamily* stage_seconds)
      : job_(job), stopping_(stopping), listener_(listener), stage_seconds_(stage_seconds) {}

  void Progress(const std::string& stage, double percent) override {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    const bool changed = stage != stage_;
    if (changed) {
      if (!stage_.empty() && stage_seconds_ != nullptr) {
        stage_seconds_->With({stage_}).Observe(std::chrono::duration<double>(now - stage_started_).count());
      }
      stage_ = stage;
      stage_started_ = now;
    }
    progress_ = percent;
    // Events at most every 100 ms per job, plus every stage change.
    if (listener_ && (now - last_event_ > std::chrono::milliseconds(100) || percent >= 100 || changed)) {
      listener_(job_, EventJson(job_, "running", stage_, progress_, ""));
      last_event_ = now;
    }
  }
  bool cancelled() const override { return stopping_.load() || lost_.load(); }

  void FinishStage() {
    std::lock_guard lock(mu_);
    if (!stage_.empty() && stage_seconds_ != nullptr) {
      stage_seconds_->With({stage_})
          .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - stage_started_).count());
    }
    stage_.clear();
  }
  std::pair<std::string, double> Snapshot() {
    std::lock_guard lock(mu_);
    return {stage_, progress_};
  }
  void MarkLost() { lost_ = true; }

 private:
  const Job& job_;
  const std::atomic<bool>& stopping_;
  const WorkerPool::Listener& listener_;
  metrics::HistogramFamily* stage_seconds_;
  std::mutex mu_;
  std::string stage_;
  double progress_ = 0;
  std::chrono::steady_clock::time_point stage_started_{};
  std::chrono::steady_clock::time_point last_event_{};
  std::atomic<bool> lost_{false};
};

}  // namespace

WorkerPool::WorkerPool(JobQueue& queue, WorkerPoolOptions options, metrics::Registry* registry)
    : queue_(queue), options_(std::move(options)) {
  if (options_.worker_id.empty()) {
    options_.worker_id = HostName() + ":" + std::to_string(::getpid()) + ":" + NewRequestId().substr(0, 8);
  }
  tokens_ = options_.max_starts_per_minute;
  refilled_ = std::chrono::steady_clock::now();
  if (registry != nullptr) {
    finished_ = &registry->AddCounter("modulo_jobs_finished_total", "Jobs that reached a final or retry state",
                                      {"kind", "state"});
    retried_ = &registry->AddCounter("modulo_jobs_retried_total", "Job attempts that failed and were scheduled again")
                    .With({});
    running_gauge_ = &registry->AddGauge("modulo_jobs_running", "Jobs running in this process").With({});
    stage_seconds_ = &registry->AddHistogram("modulo_ingest_stage_duration_seconds",
                                             "Time spent in each processing stage", {"stage"});
  }
}

WorkerPool::~WorkerPool() { Stop(std::chrono::milliseconds(0)); }

void WorkerPool::AddHandler(std::string kind, JobHandler handler) { handlers_[std::move(kind)] = std::move(handler); }

bool WorkerPool::IsPermanent(const Error& e) noexcept {
  switch (e.code()) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kUnsupportedMediaType:
    case ErrorCode::kPayloadTooLarge:
    case ErrorCode::kNotFound:
    case ErrorCode::kPermissionDenied:
    case ErrorCode::kUnimplemented:
      return true;
    default:
      return false;
  }
}

std::chrono::milliseconds WorkerPool::RetryDelay(int attempt) const noexcept {
  const int shift = std::clamp(attempt - 1, 0, 20);
  return options_.retry_base * (1LL << shift);
}

bool WorkerPool::IsDeadLocalOwner(const std::string& owner) {
  // host:pid:random
  const auto a = owner.find(':');
  const auto b = a == std::string::npos ? std::string::npos : owner.find(':', a + 1);
  if (b == std::string::npos || owner.substr(0, a) != HostName()) return false;
  try {
    const int pid = std::stoi(owner.substr(a + 1, b - a - 1));
    if (pid <= 0) return false;
    if (pid == ::getpid()) return false;
    return ::kill(pid, 0) != 0 && errno == ESRCH;
  } catch (...) {
    return false;
  }
}

void WorkerPool::Start() {
  stopping_ = false;
  for (int i = 0; i < std::max(1, options_.concurrency); ++i) threads_.emplace_back([this, i] { Loop(i); });
}

void WorkerPool::Stop(std::chrono::milliseconds grace) {
  if (threads_.empty()) return;
  stopping_ = true;
  cv_.notify_all();
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (running_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (running_.load() > 0) {
    log::Warn("stopping with jobs still running; their leases will expire and they will run again",
              {{"running", running_.load()}});
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void WorkerPool::Wake() {
  {
    std::lock_guard lock(mu_);
    ++wakeups_;
  }
  cv_.notify_one();
}

bool WorkerPool::TakeStartToken() {
  if (options_.max_starts_per_minute <= 0) return true;
  std::lock_guard lock(rate_mu_);
  const auto now = std::chrono::steady_clock::now();
  const double minutes = std::chrono::duration<double>(now - refilled_).count() / 60.0;
  tokens_ = std::min<double>(options_.max_starts_per_minute, tokens_ + minutes * options_.max_starts_per_minute);
  refilled_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

void WorkerPool::Loop(int index) {
  (void)index;
  while (!stopping_) {
    if (!TakeStartToken()) {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_.load(); });
      continue;
    }
    std::uint64_t seen;
    {
      std::lock_guard lock(mu_);
      seen = wakeups_;
    }
    auto leased = queue_.Lease(options_.worker_id, options_.lease);
    if (!leased || !*leased) {
      if (!leased) log::Warn("leasing a job failed", {{"error", leased.error().message()}});
      if (options_.max_starts_per_minute > 0) {
        std::lock_guard lock(rate_mu_);
        tokens_ += 1;  // nothing was started
      }
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, options_.poll, [&] { return stopping_.load() || wakeups_ != seen; });
      continue;
    }
    RunOne(**leased);
  }
}

void WorkerPool::RunOne(const Job& job) {
  ++running_;
  if (running_gauge_) running_gauge_->Inc();
  Context ctx(job, stopping_, listener_, stage_seconds_);
  if (listener_) listener_(job, EventJson(job, "running", "started", 0, ""));

  // Heartbeat while the handler runs, so a long file keeps its lease.
  std::mutex hb_mu;
  std::condition_variable hb_cv;
  bool done = false;
  std::thread heartbeat([&] {
    std::unique_lock lock(hb_mu);
    while (!hb_cv.wait_for(lock, options_.heartbeat, [&] { return done; })) {
      auto [stage, progress] = ctx.Snapshot();
      if (auto st = queue_.Heartbeat(job.id, options_.worker_id, options_.lease, stage, progress); !st) {
        if (st.error().code() == ErrorCode::kConflict) ctx.MarkLost();
      }
    }
  });

  Status result;
  if (auto it = handlers_.find(job.kind); it == handlers_.end()) {
    result = Fail(Error::Unimplemented("no handler for task kind '" + job.kind + "'"));
  } else {
    try {
      result = it->second(job, ctx);
    } catch (const std::exception& e) {
      result = Fail(Error::Internal(std::string("task handler threw: ") + e.what()));
    }
  }
  {
    std::lock_guard lock(hb_mu);
    done = true;
  }
  hb_cv.notify_all();
  heartbeat.join();
  ctx.FinishStage();

  std::string state;
  if (result) {
    if (auto st = queue_.Complete(job.id, options_.worker_id); !st) {
      log::Warn("could not complete task", {{"task_id", job.id}, {"error", st.error().message()}});
      state = "lost";
    } else {
      state = "succeeded";
    }
    if (listener_) listener_(job, EventJson(job, state, "done", 100, ""));
    if (on_finished_ && state == "succeeded") on_finished_(job, JobState::kSucceeded, "");
  } else {
    const bool permanent = IsPermanent(result.error());
    auto next = queue_.Fail(job.id, options_.worker_id, result.error().message(), permanent,
                            RetryDelay(job.attempts));
    state = next ? std::string(ToString(*next)) : "lost";
    if (next && *next == JobState::kQueued && retried_) retried_->Inc();
    log::Write(permanent ? log::Level::kInfo : log::Level::kWarn, "task failed",
               {{"task_id", job.id}, {"kind", job.kind}, {"attempt", job.attempts}, {"state", state},
                {"error", result.error().message()}});
    if (listener_) listener_(job, EventJson(job, state, "failed", 0, result.error().message()));
    if (on_finished_ && next) on_finished_(job, *next, result.error().message());
  }
  if (finished_) finished_->With({job.kind, state}).Inc();
  if (running_gauge_) running_gauge_->Dec();
  --running_;
}

}  // namespace modulo::jobs
