#include "modulo/jobs/sqlite/sqlite_job_queue.h"

#include <chrono>

#include "modulo/core/clock.h"

#include "modulo/core/request_id.h"
#include "modulo/store/sqlite/sqlite.h"

namespace modulo::jobs {

std::string_view ToString(JobState s) noexcept {
  switch (s) {
    case JobState::kQueued: return "queued";
    case JobState::kRunning: return "running";
    case JobState::kSucceeded: return "succeeded";
    case JobState::kFailed: return "failed";
    case JobState::kDead: return "dead";
  }
  return "failed";
}

std::optional<JobState> ParseJobState(std::string_view s) noexcept {
  for (auto v : {JobState::kQueued, JobState::kRunning, JobState::kSucceeded, JobState::kFailed, JobState::kDead}) {
    if (ToString(v) == s) return v;
  }
  return std::nullopt;
}

namespace {

using store::sqlite::Connection;
using store::sqlite::Statement;
using store::sqlite::Transaction;


constexpr const char* kColumns =
    "id, kind, COALESCE(collection_id, ''), COALESCE(file_id, ''), payload, state, stage, progress, attempts, "
    "max_attempts, run_after, lease_owner, lease_expires, error, created_at, updated_at";

Job ReadJob(const Statement& s) {
  Job j;
  j.id = s.Text(0);
  j.kind = s.Text(1);
  j.collection_id = s.Text(2);
  j.file_id = s.Text(3);
  j.payload_json = s.Text(4);
  j.state = ParseJobState(s.Text(5)).value_or(JobState::kFailed);
  j.stage = s.Text(6);
  j.progress = s.Double(7);
  j.attempts = static_cast<int>(s.Int(8));
  j.max_attempts = static_cast<int>(s.Int(9));
  j.run_after_ms = s.Int(10);
  j.lease_owner = s.Text(11);
  j.lease_expires_ms = s.Int(12);
  j.error = s.Text(13);
  j.created_at_ms = s.Int(14);
  j.updated_at_ms = s.Int(15);
  return j;
}

Result<Job> GetWith(Connection& c, const std::string& id) {
  auto s = c.Prepare(std::string("SELECT ") + kColumns + " FROM jobs WHERE id = ?");
  if (!s) return modulo::Fail(s.error());
  s->Bind(1, id);
  return s->One(ReadJob, Error::NotFound("task " + id + " not found"));
}

// Checks that `worker` holds the lease of a running job.
Status CheckLease(Connection& c, const std::string& id, const std::string& worker) {
  auto j = GetWith(c, id);
  if (!j) return modulo::Fail(j.error());
  if (j->state != JobState::kRunning || j->lease_owner != worker) {
    return modulo::Fail(Error::Conflict("task " + id + " is no longer leased to this worker"));
  }
  return {};
}

}  // namespace

Result<Job> SqliteJobQueue::Enqueue(const NewJob& in) {
  if (in.kind.empty()) return modulo::Fail(Error::InvalidArgument("job kind must not be empty"));
  auto c = db_.Acquire();
  Job j;
  j.id = in.id.empty() ? NewUuid() : in.id;
  j.kind = in.kind;
  j.collection_id = in.collection_id;
  j.file_id = in.file_id;
  j.payload_json = in.payload_json;
  j.max_attempts = std::max(1, in.max_attempts);
  j.created_at_ms = j.updated_at_ms = j.run_after_ms = NowMs();
  auto s = c->Prepare(
      "INSERT INTO jobs (id, kind, collection_id, file_id, payload, state, max_attempts, run_after, created_at, "
      "updated_at) VALUES (?, ?, NULLIF(?, ''), NULLIF(?, ''), ?, 'queued', ?, ?, ?, ?)");
  if (!s) return modulo::Fail(s.error());
  if (auto st = s->Bind(1, j.id)
                    .Bind(2, j.kind)
                    .Bind(3, j.collection_id)
                    .Bind(4, j.file_id)
                    .Bind(5, j.payload_json)
                    .Bind(6, j.max_attempts)
                    .Bind(7, j.run_after_ms)
                    .Bind(8, j.created_at_ms)
                    .Bind(9, j.updated_at_ms)
                    .Run();
      !st) {
    return modulo::Fail(st.error());
  }
  return j;
}

Result<std::optional<Job>> SqliteJobQueue::Lease(const std::string& worker, std::chrono::milliseconds lease) {
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return modulo::Fail(tx.error());
  const auto now = NowMs();
  while (true) {
    auto pick = c->Prepare(std::string("SELECT ") + kColumns +
                           " FROM jobs WHERE (state = 'queued' AND run_after <= ?1) OR (state = 'running' AND "
                           "lease_expires < ?1) ORDER BY run_after, created_at LIMIT 1");
    if (!pick) return modulo::Fail(pick.error());
    pick->Bind(1, now);
    auto row = pick->Step();
    if (!row) return modulo::Fail(row.error());
    if (!*row) {
      if (auto st = tx->Commit(); !st) return modulo::Fail(st.error());
      return std::optional<Job>{};
    }
    Job j = ReadJob(*pick);
    pick->Reset();
    if (j.state == JobState::kRunning && j.attempts >= j.max_attempts) {
      // Its worker died on the last allowed attempt: dead-letter it rather than run it again.
      auto dead = c->Prepare(
          "UPDATE jobs SET state = 'dead', error = CASE WHEN error = '' THEN ? ELSE error END, lease_owner = '', "
          "updated_at = ? WHERE id = ?");
      if (!dead) return modulo::Fail(dead.error());
      if (auto st = dead->Bind(1, "the worker running this task stopped " + std::to_string(j.attempts) +
                                      " times before finishing")
                        .Bind(2, now)
                        .Bind(3, j.id)
                        .Run();
          !st) {
        return modulo::Fail(st.error());
      }
      continue;
    }
    auto up = c->Prepare(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = ?, lease_expires = ?, "
        "updated_at = ? WHERE id = ?");
    if (!up) return modulo::Fail(up.error());
    if (auto st = up->Bind(1, worker).Bind(2, now + lease.count()).Bind(3, now).Bind(4, j.id).Run(); !st) {
      return modulo::Fail(st.error());
    }
    if (auto st = tx->Commit(); !st) return modulo::Fail(st.error());
    j.state = JobState::kRunning;
    j.attempts += 1;
    j.lease_owner = worker;
    j.lease_expires_ms = now + lease.count();
    return std::optional<Job>(std::move(j));
  }
}

Status SqliteJobQueue::Heartbeat(const std::string& job_id, const std::string& worker,
                                 std::chrono::milliseconds lease, const std::string& stage, double progress) {
  auto c = db_.Acquire();
  const auto now = NowMs();
  auto s = c->Prepare(
      "UPDATE jobs SET lease_expires = ?, stage = ?, progress = ?, updated_at = ? "
      "WHERE id = ? AND state = 'running' AND lease_owner = ?");
  if (!s) return modulo::Fail(s.error());
  if (auto st = s->Bind(1, now + lease.count()).Bind(2, stage).Bind(3, progress).Bind(4, now).Bind(5, job_id).Bind(6, worker).Run();
      !st) {
    return st;
  }
  if (c->Changes() == 0) return CheckLease(*c, job_id, worker);
  return {};
}

Status SqliteJobQueue::Complete(const std::string& job_id, const std::string& worker) {
  auto c = db_.Acquire();
  auto s = c->Prepare(
      "UPDATE jobs SET state = 'succeeded', stage = 'done', progress = 100, error = '', lease_owner = '', "
      "updated_at = ? WHERE id = ? AND state = 'running' AND lease_owner = ?");
  if (!s) return modulo::Fail(s.error());
  if (auto st = s->Bind(1, NowMs()).Bind(2, job_id).Bind(3, worker).Run(); !st) return st;
  if (c->Changes() == 0) return CheckLease(*c, job_id, worker);
  return {};
}

Result<JobState> SqliteJobQueue::Fail(const std::string& job_id, const std::string& worker, const std::string& error,
                                      bool permanent, std::chrono::milliseconds retry_delay) {
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return modulo::Fail(tx.error());
  auto j = GetWith(*c, job_id);
  if (!j) return modulo::Fail(j.error());
  if (j->state != JobState::kRunning || j->lease_owner != worker) {
    return modulo::Fail(Error::Conflict("task " + job_id + " is no longer leased to this worker"));
  }
  const auto now = NowMs();
  JobState next = permanent                          ? JobState::kFailed
                  : j->attempts >= j->max_attempts ? JobState::kDead
                                                     : JobState::kQueued;
  auto s = c->Prepare(
      "UPDATE jobs SET state = ?, error = ?, run_after = ?, lease_owner = '', lease_expires = 0, updated_at = ? "
      "WHERE id = ?");
  if (!s) return modulo::Fail(s.error());
  if (auto st = s->Bind(1, ToString(next))
                    .Bind(2, error)
                    .Bind(3, next == JobState::kQueued ? now + retry_delay.count() : now)
                    .Bind(4, now)
                    .Bind(5, job_id)
                    .Run();
      !st) {
    return modulo::Fail(st.error());
  }
  if (auto st = tx->Commit(); !st) return modulo::Fail(st.error());
  return next;
}

Result<int> SqliteJobQueue::ReleaseLeases(const std::function<bool(const std::string&)>& is_dead_owner) {
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return modulo::Fail(tx.error());
  std::vector<std::string> ids;
  {
    auto s = c->Prepare("SELECT id, lease_owner FROM jobs WHERE state = 'running'");
    if (!s) return modulo::Fail(s.error());
    while (true) {
      auto row = s->Step();
      if (!row) return modulo::Fail(row.error());
      if (!*row) break;
      if (is_dead_owner(s->Text(1))) ids.push_back(s->Text(0));
    }
  }
  auto up = c->Prepare("UPDATE jobs SET lease_expires = 0, updated_at = ? WHERE id = ?");
  if (!up) return modulo::Fail(up.error());
  for (const auto& id : ids) {
    up->Reset();
    if (auto st = up->Bind(1, NowMs()).Bind(2, id).Run(); !st) return modulo::Fail(st.error());
  }
  if (auto st = tx->Commit(); !st) return modulo::Fail(st.error());
  return static_cast<int>(ids.size());
}

Result<Job> SqliteJobQueue::Get(const std::string& job_id) {
  auto c = db_.Acquire();
  return GetWith(*c, job_id);
}

Result<std::vector<Job>> SqliteJobQueue::ListForCollection(const std::string& collection_id) {
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kColumns + " FROM jobs WHERE collection_id = ? ORDER BY created_at, id");
  if (!s) return modulo::Fail(s.error());
  s->Bind(1, collection_id);
  std::vector<Job> out;
  if (auto st = s->ForEachRow([&](const Statement& row) { out.push_back(ReadJob(row)); }); !st) {
    return modulo::Fail(st.error());
  }
  return out;
}

Result<JobCounts> SqliteJobQueue::Counts() {
  auto c = db_.Acquire();
  auto s = c->Prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state");
  if (!s) return modulo::Fail(s.error());
  JobCounts out;
  while (true) {
    auto row = s->Step();
    if (!row) return modulo::Fail(row.error());
    if (!*row) break;
    const auto state = ParseJobState(s->Text(0));
    const auto n = s->Int(1);
    if (!state) continue;
    switch (*state) {
      case JobState::kQueued: out.queued = n; break;
      case JobState::kRunning: out.running = n; break;
      case JobState::kSucceeded: out.succeeded = n; break;
      case JobState::kFailed: out.failed = n; break;
      case JobState::kDead: out.dead = n; break;
    }
  }
  return out;
}

}  // namespace modulo::jobs
