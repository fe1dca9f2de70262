#include "modulo/jobs/redis/redis_job_queue.h"

#include <algorithm>
#include <charconv>
#include <map>

#include "modulo/core/request_id.h"

namespace modulo::jobs {
namespace {

using redis::RedisReply;
using redis::Script;

// Shared by every script: the server's clock in ms, and a field of a stream entry.
#define MODULO_LUA_PRELUDE                                                         \
  "local function now_ms()\n"                                                      \
  "  local t = redis.call('TIME')\n"                                               \
  "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"           \
  "end\n"                                                                          \
  "local function entry_field(entry, name)\n"                                      \
  "  local f = entry[2]\n"                                                         \
  "  if not f then return nil end\n"                                               \
  "  for i = 1, #f, 2 do if f[i] == name then return f[i + 1] end end\n"           \
  "  return nil\n"                                                                 \
  "end\n"

// KEYS: job, stream, counts, collection set. ARGV: id, kind, collection, file, payload,
// max_attempts, group. Returns {1, now} or {0} when the id is taken.
const Script kEnqueue(MODULO_LUA_PRELUDE R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end
local now = now_ms()
redis.pcall('XGROUP', 'CREATE', KEYS[2], ARGV[7], '0', 'MKSTREAM')
local msg = redis.call('XADD', KEYS[2], '*', 'id', ARGV[1])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'kind', ARGV[2], 'collection_id', ARGV[3], 'file_id', ARGV[4],
  'payload', ARGV[5], 'state', 'queued', 'stage', '', 'progress', '0', 'attempts', '0',
  'max_attempts', ARGV[6], 'run_after', now, 'lease_owner', '', 'lease_expires', '0', 'error', '',
  'created_at', now, 'updated_at', now, 'msg', msg)
if ARGV[3] ~= '' then redis.call('SADD', KEYS[4], ARGV[1]) end
redis.call('HINCRBY', KEYS[3], 'queued', 1)
return {1, now}
)lua");

// KEYS: stream, delayed, counts, dead. ARGV: group, worker, lease ms, horizon ms, job key
// prefix, move batch. Returns the leased job's hash (HGETALL) or nil.
const Script kLease(MODULO_LUA_PRELUDE R"lua(
local stream, delayed, counts, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, worker, jp = ARGV[1], ARGV[2], ARGV[5]
local lease, horizon = tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
redis.pcall('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')

-- Retries whose backoff is over rejoin the stream.
for _, id in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, tonumber(ARGV[6]))) do
  redis.call('ZREM', delayed, id)
  if redis.call('HGET', jp .. id, 'state') == 'queued' then
    redis.call('HSET', jp .. id, 'msg', redis.call('XADD', stream, '*', 'id', id))
  end
end

local function drop(msg)
  redis.call('XACK', stream, group, msg)
  redis.call('XDEL', stream, msg)
end

local function take(key, msg)
  redis.call('HINCRBY', key, 'attempts', 1)
  redis.call('HSET', key, 'state', 'running', 'lease_owner', worker, 'lease_expires', now + lease,
    'updated_at', now, 'msg', msg)
  -- The entry's idle time encodes the lease: it reaches the horizon when the lease ends.
  redis.call('XCLAIM', stream, group, worker, 0, msg, 'IDLE', horizon - lease, 'JUSTID')
  return redis.call('HGETALL', key)
end

-- Entries whose lease ran out: their worker stopped renewing it.
local cursor = '0-0'
repeat
  local r = redis.call('XAUTOCLAIM', stream, group, worker, horizon, cursor, 'COUNT', 1)
  cursor = r[1]
  local entries = r[2]
  for i = 1, #entries do
    local e = entries[i]
    if e and e[1] then
      local msg = e[1]
      local id = entry_field(e, 'id')
      local key = jp .. (id or '')
      local h = redis.call('HMGET', key, 'state', 'attempts', 'max_attempts', 'msg', 'lease_owner', 'lease_expires')
      if id == nil or h[1] ~= 'running' or h[4] ~= msg then
        drop(msg)  -- an entry nothing refers to any more
      elseif tonumber(h[6]) > now then
        -- Not expired after all by the job's record: give it back to its owner unchanged.
        redis.call('XCLAIM', stream, group, h[5], 0, msg, 'IDLE', horizon - (tonumber(h[6]) - now), 'JUSTID')
      elseif tonumber(h[2]) >= tonumber(h[3]) then
        -- Its worker stopped on the last allowed attempt: dead-letter it rather than run it again.
        local err = redis.call('HGET', key, 'error')
        if not err or err == '' then
          err = 'the worker running this task stopped ' .. h[2] .. ' times before finishing'
        end
        redis.call('HSET', key, 'state', 'dead', 'error', err, 'lease_owner', '', 'lease_expires', 0,
          'updated_at', now, 'msg', '')
        redis.call('HINCRBY', counts, 'running', -1)
        redis.call('HINCRBY', counts, 'dead', 1)
        drop(msg)
        redis.call('XADD', dead, 'MAXLEN', '~', 100000, '*', 'id', id, 'error', err)
      else
        return take(key, msg)
      end
    end
  end
until cursor == '0-0'

-- New entries.
while true do
  local r = redis.call('XREADGROUP', 'GROUP', group, worker, 'COUNT', 1, 'STREAMS', stream, '>')
  if not r then return false end
  local e = r[1][2][1]
  local msg = e[1]
  local id = entry_field(e, 'id')
  local key = jp .. (id or '')
  local h = redis.call('HMGET', key, 'state', 'msg')
  if id ~= nil and h[1] == 'queued' and h[2] == msg then
    redis.call('HINCRBY', counts, 'queued', -1)
    redis.call('HINCRBY', counts, 'running', 1)
    return take(key, msg)
  end
  drop(msg)
end
)lua");

// KEYS: job, stream. ARGV: group, worker, lease ms, horizon ms, stage, progress.
// Returns 1, 0 (no such job) or -1 (not leased to this worker).
const Script kHeartbeat(MODULO_LUA_PRELUDE R"lua(
local h = redis.call('HMGET', KEYS[1], 'state', 'lease_owner', 'msg')
if not h[1] then return 0 end
if h[1] ~= 'running' or h[2] ~= ARGV[2] then return -1 end
local now = now_ms()
local lease, horizon = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'lease_expires', now + lease, 'stage', ARGV[5], 'progress', ARGV[6], 'updated_at', now)
redis.call('XCLAIM', KEYS[2], ARGV[1], ARGV[2], 0, h[3], 'IDLE', horizon - lease, 'JUSTID')
return 1
)lua");

// KEYS: job, stream, counts. ARGV: group, worker. Returns 1, 0 or -1 as Heartbeat.
const Script kComplete(MODULO_LUA_PRELUDE R"lua(
local h = redis.call('HMGET', KEYS[1], 'state', 'lease_owner', 'msg')
if not h[1] then return 0 end
if h[1] ~= 'running' or h[2] ~= ARGV[2] then return -1 end
local now = now_ms()
redis.call('HSET', KEYS[1], 'state', 'succeeded', 'stage', 'done', 'progress', '100', 'error', '',
  'lease_owner', '', 'lease_expires', 0, 'updated_at', now, 'msg', '')
redis.call('HINCRBY', KEYS[3], 'running', -1)
redis.call('HINCRBY', KEYS[3], 'succeeded', 1)
redis.call('XACK', KEYS[2], ARGV[1], h[3])
redis.call('XDEL', KEYS[2], h[3])
return 1
)lua");

// KEYS: job, stream, counts, delayed, dead. ARGV: group, worker, id, error, permanent (0/1),
// retry delay ms. Returns {1, new state}, {0} or {-1}.
const Script kFail(MODULO_LUA_PRELUDE R"lua(
local h = redis.call('HMGET', KEYS[1], 'state', 'lease_owner', 'msg', 'attempts', 'max_attempts')
if not h[1] then return {0} end
if h[1] ~= 'running' or h[2] ~= ARGV[2] then return {-1} end
local now = now_ms()
local delay = tonumber(ARGV[6])
local next
if ARGV[5] == '1' then next = 'failed'
elseif tonumber(h[4]) >= tonumber(h[5]) then next = 'dead'
else next = 'queued' end
local run_after = now
if next == 'queued' then run_after = now + delay end
redis.call('HSET', KEYS[1], 'state', next, 'error', ARGV[4], 'run_after', run_after, 'lease_owner', '',
  'lease_expires', 0, 'updated_at', now, 'msg', '')
redis.call('XACK', KEYS[2], ARGV[1], h[3])
redis.call('XDEL', KEYS[2], h[3])
redis.call('HINCRBY', KEYS[3], 'running', -1)
redis.call('HINCRBY', KEYS[3], next, 1)
if next == 'queued' then
  if delay > 0 then
    redis.call('ZADD', KEYS[4], run_after, ARGV[3])
  else
    redis.call('HSET', KEYS[1], 'msg', redis.call('XADD', KEYS[2], '*', 'id', ARGV[3]))
  end
elseif next == 'dead' then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', 100000, '*', 'id', ARGV[3], 'error', ARGV[4])
end
return {1, next}
)lua");

// KEYS: stream. ARGV: group, consumer, entry id, job key prefix, horizon ms. Makes the entry's
// lease expire now if it is still the consumer's running job. Returns 1 when released.
const Script kRelease(MODULO_LUA_PRELUDE R"lua(
local e = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])
if #e == 0 then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
  return 0
end
local id = entry_field(e[1], 'id')
if not id then return 0 end
local key = ARGV[4] .. id
local h = redis.call('HMGET', key, 'state', 'lease_owner', 'msg')
if h[1] ~= 'running' or h[2] ~= ARGV[2] or h[3] ~= ARGV[3] then return 0 end
local now = now_ms()
redis.call('HSET', key, 'lease_expires', now, 'updated_at', now)
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', tonumber(ARGV[5]), 'JUSTID')
return 1
)lua");

#undef MODULO_LUA_PRELUDE

std::int64_t ToInt(const std::string& s) {
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

double ToDouble(const std::string& s) {
  double v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::string FormatDouble(double v) {
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, p) : std::string("0");
}

// A job from HGETALL's flat field/value array; nullopt when the hash is empty or malformed.
std::optional<Job> ParseJob(const RedisReply& r) {
  if (r.type != RedisReply::Type::kArray || r.elements.empty() || r.elements.size() % 2 != 0) return std::nullopt;
  std::map<std::string_view, const std::string*> f;
  for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2) f[r.elements[i].str] = &r.elements[i + 1].str;
  auto get = [&](std::string_view name) -> std::string {
    auto it = f.find(name);
    return it == f.end() ? std::string() : *it->second;
  };
  Job j;
  j.id = get("id");
  if (j.id.empty()) return std::nullopt;
  j.kind = get("kind");
  j.collection_id = get("collection_id");
  j.file_id = get("file_id");
  j.payload_json = get("payload");
  j.state = ParseJobState(get("state")).value_or(JobState::kFailed);
  j.stage = get("stage");
  j.progress = ToDouble(get("progress"));
  j.attempts = static_cast<int>(ToInt(get("attempts")));
  j.max_attempts = static_cast<int>(ToInt(get("max_attempts")));
  j.run_after_ms = ToInt(get("run_after"));
  j.lease_owner = get("lease_owner");
  j.lease_expires_ms = ToInt(get("lease_expires"));
  j.error = get("error");
  j.created_at_ms = ToInt(get("created_at"));
  j.updated_at_ms = ToInt(get("updated_at"));
  return j;
}

Error NotFound(const std::string& id) { return Error::NotFound("task " + id + " not found"); }
Error NotLeased(const std::string& id) {
  return Error::Conflict("task " + id + " is no longer leased to this worker");
}

// The outcome code of Heartbeat/Complete (an integer) or Fail (the first element).
Status Outcome(const RedisReply& r, const std::string& id) {
  const RedisReply& code = r.type == RedisReply::Type::kArray && !r.elements.empty() ? r.elements[0] : r;
  auto v = code.AsInteger();
  if (!v) return modulo::Fail(Error::Internal("redis job queue: unexpected script reply"));
  if (*v == 0) return modulo::Fail(NotFound(id));
  if (*v < 0) return modulo::Fail(NotLeased(id));
  return {};
}

}  // namespace

RedisJobQueue::RedisJobQueue(redis::RedisClient& client, RedisJobQueueOptions options)
    : client_(client),
      options_(std::move(options)),
      job_prefix_(client.Key("jobs:job:")),
      stream_(client.Key("jobs:stream")),
      delayed_(client.Key("jobs:delayed")),
      dead_(client.Key("jobs:dead")),
      counts_(client.Key("jobs:counts")),
      collection_prefix_(client.Key("jobs:collection:")) {
  if (options_.group.empty()) options_.group = "workers";
  if (options_.lease_horizon.count() <= 0) options_.lease_horizon = std::chrono::hours(24 * 7);
  options_.move_batch = std::max(1, options_.move_batch);
}

Status RedisJobQueue::CheckLease(std::chrono::milliseconds lease) const {
  if (lease.count() < 0 || lease > options_.lease_horizon) {
    return modulo::Fail(Error::InvalidArgument("lease must be between 0 and " +
                                               std::to_string(options_.lease_horizon.count()) + " ms"));
  }
  return {};
}

Result<Job> RedisJobQueue::Enqueue(const NewJob& in) {
  if (in.kind.empty()) return modulo::Fail(Error::InvalidArgument("job kind must not be empty"));
  Job j;
  j.id = in.id.empty() ? NewUuid() : in.id;
  j.kind = in.kind;
  j.collection_id = in.collection_id;
  j.file_id = in.file_id;
  j.payload_json = in.payload_json;
  j.max_attempts = std::max(1, in.max_attempts);
  auto r = client_.Eval(kEnqueue, {JobKey(j.id), stream_, counts_, collection_prefix_ + j.collection_id},
                        {j.id, j.kind, j.collection_id, j.file_id, j.payload_json, std::to_string(j.max_attempts),
                         options_.group});
  if (!r) return modulo::Fail(std::move(r.error()).Wrap("enqueueing a job"));
  if (r->type != RedisReply::Type::kArray || r->elements.empty()) {
    return modulo::Fail(Error::Internal("redis job queue: unexpected enqueue reply"));
  }
  if (r->elements[0].AsInteger() == 0) return modulo::Fail(Error::AlreadyExists("task " + j.id + " already exists"));
  if (r->elements.size() < 2) return modulo::Fail(Error::Internal("redis job queue: unexpected enqueue reply"));
  j.created_at_ms = j.updated_at_ms = j.run_after_ms = r->elements[1].AsInteger().value_or(0);
  return j;
}

Result<std::optional<Job>> RedisJobQueue::Lease(const std::string& worker, std::chrono::milliseconds lease) {
  if (worker.empty()) return modulo::Fail(Error::InvalidArgument("worker id must not be empty"));
  if (auto st = CheckLease(lease); !st) return modulo::Fail(st.error());
  auto r = client_.Eval(kLease, {stream_, delayed_, counts_, dead_},
                        {options_.group, worker, std::to_string(lease.count()),
                         std::to_string(options_.lease_horizon.count()), job_prefix_,
                         std::to_string(options_.move_batch)});
  if (!r) return modulo::Fail(std::move(r.error()).Wrap("leasing a job"));
  if (r->is_nil()) return std::optional<Job>{};
  auto j = ParseJob(*r);
  if (!j) return modulo::Fail(Error::Internal("redis job queue: malformed job record"));
  return j;
}

Status RedisJobQueue::Heartbeat(const std::string& job_id, const std::string& worker, std::chrono::milliseconds lease,
                                const std::string& stage, double progress) {
  if (auto st = CheckLease(lease); !st) return st;
  auto r = client_.Eval(kHeartbeat, {JobKey(job_id), stream_},
                        {options_.group, worker, std::to_string(lease.count()),
                         std::to_string(options_.lease_horizon.count()), stage, FormatDouble(progress)});
  if (!r) return modulo::Fail(std::move(r.error()).Wrap("renewing a lease"));
  return Outcome(*r, job_id);
}

Status RedisJobQueue::Complete(const std::string& job_id, const std::string& worker) {
  auto r = client_.Eval(kComplete, {JobKey(job_id), stream_, counts_}, {options_.group, worker});
  if (!r) return modulo::Fail(std::move(r.error()).Wrap("completing a job"));
  return Outcome(*r, job_id);
}

Result<JobState> RedisJobQueue::Fail(const std::string& job_id, const std::string& worker, const std::string& error,
                                     bool permanent, std::chrono::milliseconds retry_delay) {
  auto r = client_.Eval(kFail, {JobKey(job_id), stream_, counts_, delayed_, dead_},
                        {options_.group, worker, job_id, error, permanent ? "1" : "0",
                         std::to_string(std::max<std::int64_t>(0, retry_delay.count()))});
  if (!r) return modulo::Fail(std::move(r.error()).Wrap("recording a job failure"));
  if (auto st = Outcome(*r, job_id); !st) return modulo::Fail(st.error());
  auto state = r->elements.size() == 2 ? ParseJobState(r->elements[1].str) : std::nullopt;
  if (!state) return modulo::Fail(Error::Internal("redis job queue: unexpected fail reply"));
  return *state;
}

Result<int> RedisJobQueue::ReleaseLeases(const std::function<bool(const std::string&)>& is_dead_owner) {
  if (auto g = client_.Command({"XGROUP", "CREATE", stream_, options_.group, "0", "MKSTREAM"});
      !g && g.error().message().find("BUSYGROUP") == std::string::npos) {
    return modulo::Fail(std::move(g.error()).Wrap("releasing leases"));
  }
  auto consumers = client_.Command({"XINFO", "CONSUMERS", stream_, options_.group});
  if (!consumers) return modulo::Fail(std::move(consumers.error()).Wrap("releasing leases"));
  int released = 0;
  for (const auto& c : consumers->elements) {
    std::string name;
    long long pending = 0;
    for (std::size_t i = 0; i + 1 < c.elements.size(); i += 2) {
      if (c.elements[i].str == "name") name = c.elements[i + 1].str;
      if (c.elements[i].str == "pending") pending = c.elements[i + 1].AsInteger().value_or(0);
    }
    if (name.empty() || !is_dead_owner(name)) continue;
    if (pending == 0) {  // nothing left: forget the consumer
      if (auto d = client_.Command({"XGROUP", "DELCONSUMER", stream_, options_.group, name}); !d) {
        return modulo::Fail(std::move(d.error()).Wrap("removing a dead consumer"));
      }
      continue;
    }
    std::string start = "-";
    while (true) {
      auto p = client_.Command({"XPENDING", stream_, options_.group, start, "+", "100", name});
      if (!p) return modulo::Fail(std::move(p.error()).Wrap("listing pending jobs"));
      if (p->elements.empty()) break;
      for (const auto& entry : p->elements) {
        if (entry.elements.empty()) continue;
        const std::string& msg = entry.elements[0].str;
        auto r = client_.Eval(kRelease, {stream_},
                              {options_.group, name, msg, job_prefix_,
                               std::to_string(options_.lease_horizon.count())});
        if (!r) return modulo::Fail(std::move(r.error()).Wrap("releasing a lease"));
        released += static_cast<int>(r->AsInteger().value_or(0));
      }
      if (p->elements.size() < 100) break;
      start = "(" + p->elements.back().elements[0].str;  // exclusive: after the last one seen
    }
  }
  return released;
}

Result<Job> RedisJobQueue::Get(const std::string& job_id) {
  auto r = client_.Command({"HGETALL", JobKey(job_id)});
  if (!r) return modulo::Fail(std::move(r.error()).Wrap("reading a job"));
  auto j = ParseJob(*r);
  if (!j) return modulo::Fail(NotFound(job_id));
  return *j;
}

Result<std::vector<Job>> RedisJobQueue::ListForCollection(const std::string& collection_id) {
  auto ids = client_.Command({"SMEMBERS", collection_prefix_ + collection_id});
  if (!ids) return modulo::Fail(std::move(ids.error()).Wrap("listing jobs"));
  std::vector<std::vector<std::string>> commands;
  commands.reserve(ids->elements.size());
  for (const auto& id : ids->elements) commands.push_back({"HGETALL", JobKey(id.str)});
  std::vector<Job> out;
  for (std::size_t begin = 0; begin < commands.size(); begin += 500) {  // bounded round trips
    const std::size_t end = std::min(commands.size(), begin + 500);
    std::vector<std::vector<std::string>> batch(commands.begin() + static_cast<std::ptrdiff_t>(begin),
                                                commands.begin() + static_cast<std::ptrdiff_t>(end));
    auto replies = client_.Pipeline(batch);
    if (!replies) return modulo::Fail(std::move(replies.error()).Wrap("listing jobs"));
    for (const auto& r : *replies) {
      if (r.is_error()) return modulo::Fail(redis::ReplyError(r.str));
      if (auto j = ParseJob(r)) out.push_back(std::move(*j));
    }
  }
  std::sort(out.begin(), out.end(), [](const Job& a, const Job& b) {
    return a.created_at_ms != b.created_at_ms ? a.created_at_ms < b.created_at_ms : a.id < b.id;
  });
  return out;
}

Result<JobCounts> RedisJobQueue::Counts() {
  auto r = client_.Command({"HMGET", counts_, "queued", "running", "succeeded", "failed", "dead"});
  if (!r) return modulo::Fail(std::move(r.error()).Wrap("counting jobs"));
  if (r->elements.size() != 5) return modulo::Fail(Error::Internal("redis job queue: unexpected counts reply"));
  auto n = [&](std::size_t i) { return r->elements[i].AsInteger().value_or(0); };
  return JobCounts{.queued = n(0), .running = n(1), .succeeded = n(2), .failed = n(3), .dead = n(4)};
}

Result<std::vector<DeadLetter>> RedisJobQueue::DeadLetters(std::size_t limit) {
  auto r = client_.Command({"XREVRANGE", dead_, "+", "-", "COUNT", std::to_string(std::max<std::size_t>(1, limit))});
  if (!r) return modulo::Fail(std::move(r.error()).Wrap("reading dead letters"));
  std::vector<DeadLetter> out;
  for (const auto& e : r->elements) {
    if (e.elements.size() < 2) continue;
    DeadLetter d;
    const auto& f = e.elements[1].elements;
    for (std::size_t i = 0; i + 1 < f.size(); i += 2) {
      if (f[i].str == "id") d.job_id = f[i + 1].str;
      if (f[i].str == "error") d.error = f[i + 1].str;
    }
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace modulo::jobs
