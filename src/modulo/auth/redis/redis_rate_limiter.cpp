#include "modulo/auth/redis/redis_rate_limiter.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "modulo/core/log.h"

namespace modulo::auth {
namespace {

// KEYS[1]: the bucket. ARGV: capacity, refill per second, cost, max idle ms.
// Returns {allowed (0/1), tokens after, retry after seconds (-1: never)}, numbers as text so no
// precision is lost to Redis's integer conversion.
const redis::Script kTake(R"lua(
local capacity = tonumber(ARGV[1])
local refill = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local max_idle = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
else
  if now > ts then
    tokens = tokens + (now - ts) / 1000000 * refill
    ts = now
  end
  if tokens > capacity then tokens = capacity end
end
local allowed = 0
local retry = 0
if tokens + 1e-9 >= cost then
  tokens = tokens - cost
  if tokens < 0 then tokens = 0 end
  allowed = 1
elseif cost > capacity or refill <= 0 then
  retry = -1
else
  retry = (cost - tokens) / refill
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', ts))
local idle = max_idle
if refill > 0 then
  local full = math.ceil((capacity - tokens) / refill * 1000) + 1000
  if full < idle then idle = full end
end
redis.call('PEXPIRE', KEYS[1], idle)
return {allowed, string.format('%.17g', tokens), string.format('%.17g', retry)}
)lua");

std::string Number(double v) {
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, p) : std::string("0");
}

std::optional<double> ParseNumber(const redis::RedisReply& r) {
  auto s = r.AsString();
  if (!s) return std::nullopt;
  double v = 0;
  auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  if (ec != std::errc() || p != s->data() + s->size()) return std::nullopt;
  return v;
}

// NaN and negatives count as zero; +inf stays (an unlimited bucket).
double Sanitize(double v) { return std::isnan(v) ? 0.0 : std::max(0.0, v); }

}  // namespace

RedisRateLimiter::RedisRateLimiter(redis::RedisClient& client, metrics::Registry* registry,
                                   RedisRateLimiterOptions options)
    : client_(client), options_(options), prefix_(client.Key("rl:")), fallback_(options.fallback) {
  if (options_.max_idle.count() <= 0) options_.max_idle = std::chrono::hours(24);
  if (registry != nullptr) {
    fallbacks_ = &registry->AddCounter("modulo_redis_rate_limiter_fallbacks_total",
                                       "Rate limit decisions made in process because Redis was unreachable")
                      .With({});
  }
}

Decision RedisRateLimiter::Take(std::string_view key, const BucketSpec& spec, double cost) {
  const double capacity = Sanitize(spec.capacity);
  const double refill = Sanitize(spec.refill_per_second);
  cost = Sanitize(cost);
  if (std::isinf(capacity) || std::isinf(refill) || std::isinf(cost)) {
    // Not representable in the bucket's arithmetic; the in-process limiter has the same answer.
    return fallback_.Take(key, {capacity, refill}, cost);
  }
  std::string k = prefix_;
  k.append(key);
  auto r = client_.Eval(kTake, {k}, {Number(capacity), Number(refill), Number(cost),
                                     std::to_string(options_.max_idle.count())});
  if (r && r->type == redis::RedisReply::Type::kArray && r->elements.size() == 3) {
    auto allowed = r->elements[0].AsInteger();
    auto tokens = ParseNumber(r->elements[1]);
    auto retry = ParseNumber(r->elements[2]);
    if (allowed && tokens && retry) {
      Decision d;
      d.allowed = *allowed == 1;
      d.remaining = *tokens;
      d.retry_after_seconds = d.allowed ? 0 : *retry < 0 ? std::numeric_limits<double>::infinity() : *retry;
      return d;
    }
  }
  if (fallbacks_ != nullptr) fallbacks_->Inc();
  std::int64_t suppressed = 0;
  if (log_.Allow(suppressed)) {
    log::Warn("redis rate limiter unavailable, limiting in process",
              {{"error", r ? std::string("unexpected script reply") : r.error().ToString()},
               {"suppressed", suppressed}});
  }
  return fallback_.Take(key, spec, cost);
}

}  // namespace modulo::auth
