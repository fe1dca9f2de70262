#include "modulo/generate/http_provider.h"

#include <algorithm>
#include <exception>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "modulo/core/log.h"

namespace modulo::generate::detail {
namespace {

// Retry-After beyond this is not waited for: the caller gets kRateLimited/kUnavailable at once.
constexpr std::chrono::seconds kMaxRetryAfter{60};

bool RetryableCode(ErrorCode c) { return c == ErrorCode::kUnavailable || c == ErrorCode::kRateLimited; }

std::string UsageDetails(const StreamDecoder* d) {
  if (d == nullptr || !d->usage_known) return {};
  nlohmann::json j = {{"usage",
                       {{"prompt_tokens", d->generation.usage.prompt_tokens},
                        {"completion_tokens", d->generation.usage.completion_tokens}}}};
  return j.dump();
}

}  // namespace

Error StatusError(long status, const std::string& provider, const std::string& message) {
  std::string text = provider + " answered HTTP " + std::to_string(status) + (message.empty() ? "" : ": " + message);
  if (status == 401 || status == 403) return Error::Unauthenticated(std::move(text));
  if (status == 429) return Error::RateLimited(std::move(text));
  if (status == 400 || status == 404 || status == 413 || status == 422) return Error::InvalidArgument(std::move(text));
  if (status == 408) return Error::DeadlineExceeded(std::move(text));
  return Error::Unavailable(std::move(text));
}

bool RetryableStatus(long status) { return status == 408 || status == 429 || (status >= 500 && status <= 599); }

HttpLlmProvider::HttpLlmProvider(std::string name, ProviderConfig config)
    : name_(std::move(name)), config_(std::move(config)), slots_(config_.max_concurrency) {}

TransferLimits HttpLlmProvider::Limits(bool stream) const {
  TransferLimits l;
  const std::chrono::milliseconds t = std::max<std::chrono::milliseconds>(config_.timeout, std::chrono::seconds(1));
  l.connect_timeout = std::min<std::chrono::milliseconds>(t, std::chrono::seconds(10));
  if (stream) {
    l.idle_timeout = t;
    l.total_timeout = t * 10;
  } else {
    l.total_timeout = t;
  }
  return l;
}

Result<Generation> HttpLlmProvider::Generate(const std::vector<ChatMessage>& messages, const GenerationParams& params,
                                             const CancelToken* cancel) {
  return Run(messages, params, nullptr, cancel);
}

Result<Generation> HttpLlmProvider::Stream(const std::vector<ChatMessage>& messages, const GenerationParams& params,
                                           const StreamCallback& on_delta, const CancelToken* cancel) {
  return Run(messages, params, &on_delta, cancel);
}

Result<Generation> HttpLlmProvider::Run(const std::vector<ChatMessage>& messages, const GenerationParams& params,
                                        const StreamCallback* on_delta, const CancelToken* cancel) {
  if (auto st = slots_.Acquire(cancel); !st) return Fail(st.error());
  struct Release {
    Semaphore& s;
    ~Release() { s.Release(); }
  } release{slots_};

  bool refreshed = false;
  const int max_attempts = 1 + std::max(0, config_.max_retries);
  for (int attempt = 1;; ++attempt) {
    Attempt a = Once(messages, params, on_delta, cancel);
    if (a.result) return std::move(a.result);
    if (a.status == 401 && !refreshed && !a.delivered && RefreshCredentials()) {
      refreshed = true;  // credentials were stale: one immediate retry, not counted
      --attempt;
      continue;
    }
    Error err = std::move(a.result.error());
    const long long retry_after = RetryAfterSeconds(a.retry_after);
    bool retry = a.retryable && !a.delivered && attempt < max_attempts;
    if (retry_after > kMaxRetryAfter.count()) retry = false;
    std::chrono::milliseconds delay{0};
    if (retry) delay = Backoff(attempt, config_.retry_base_delay, a.retry_after);
    if (!retry) {
      if (err.code() == ErrorCode::kRateLimited && err.details().empty()) {
        const long long s = retry_after >= 0 ? retry_after
                                             : std::max<long long>(1, (Backoff(attempt, config_.retry_base_delay, "")
                                                                           .count() + 999) / 1000);
        err = std::move(err).WithDetails(nlohmann::json{{"retry_after", s}}.dump());
      }
      if (attempt > 1) err = std::move(err).Wrap("after " + std::to_string(attempt) + " attempts");
      return Fail(std::move(err));
    }
    log::Warn("LLM request failed, retrying",
              {{"provider", name_}, {"model", config_.model}, {"attempt", attempt}, {"delay_ms", delay.count()},
               {"error", err.message()}});
    if (cancel ? cancel->WaitFor(delay) : (std::this_thread::sleep_for(delay), false)) {
      return Fail(Error::Cancelled("the " + name_ + " request was cancelled while waiting to retry"));
    }
  }
}

HttpLlmProvider::Attempt HttpLlmProvider::Once(const std::vector<ChatMessage>& messages,
                                               const GenerationParams& params, const StreamCallback* on_delta,
                                               const CancelToken* cancel) {
  Attempt a;
  const bool stream = on_delta != nullptr;
  auto request = BuildRequest(messages, params, stream, cancel);
  if (request) request->egress = config_.egress.get();
  if (!request) {
    a.retryable = RetryableCode(request.error().code());
    a.result = Fail(std::move(request.error()));
    return a;
  }
  auto fail_status = [&](const HttpReply& reply) {
    a.status = reply.status;
    a.retry_after = reply.retry_after;
    a.retryable = RetryableStatus(reply.status);
    const std::string message = ErrorMessage(reply.body);
    // The body itself goes to the log (with the request's id), never to the caller: a provider
    // URL could be aimed at a service whose pages are not the caller's to read.
    log::Warn("LLM provider answered with an error",
              {{"provider", name_}, {"status", reply.status},
               {"body", reply.body.substr(0, 1024)}});
    a.result = Fail(StatusError(reply.status, name_, message.substr(0, 300)));
  };

  if (!stream) {
    auto reply = Perform(*request, Limits(false), nullptr, cancel);
    if (!reply) {
      a.retryable = reply.error().code() == ErrorCode::kUnavailable;
      a.result = Fail(std::move(reply.error()));
    } else if (reply->status < 200 || reply->status >= 300) {
      fail_status(*reply);
    } else if (reply->truncated) {
      a.retryable = true;
      a.result = Fail(Error::Unavailable(name_ + " closed the connection before the response was complete"));
    } else {
      a.result = ParseResponse(reply->body);
      if (a.result && a.result->model.empty()) a.result->model = config_.model;
    }
    return a;
  }

  std::unique_ptr<StreamDecoder> decoder = NewDecoder();
  SseParser parser;
  std::string text;
  std::optional<Error> stream_error;
  bool stopped_by_callback = false;
  BodySink sink = [&](std::string_view bytes) {
    return parser.Feed(bytes, [&](const SseEvent& e) {
      if (decoder->finished()) return true;  // anything after the terminal event is ignored
      std::string delta;
      if (auto st = decoder->OnEvent(e, &delta); !st) {
        stream_error = std::move(st.error());
        return false;
      }
      if (!delta.empty()) {
        text += delta;
        a.delivered = true;
        bool go_on = false;
        try {  // an exception must not cross libcurl's C frames
          go_on = (*on_delta)(delta);
        } catch (const std::exception& ex) {
          stream_error = Error::Internal(std::string("the stream consumer threw: ") + ex.what());
          return false;
        } catch (...) {
          stream_error = Error::Internal("the stream consumer threw");
          return false;
        }
        if (!go_on) {
          stopped_by_callback = true;
          return false;
        }
      }
      return true;
    });
  };
  auto reply = Perform(*request, Limits(true), &sink, cancel);
  if (!reply) {
    Error err = std::move(reply.error());
    if (err.code() == ErrorCode::kCancelled) {
      if (auto d = UsageDetails(decoder.get()); !d.empty()) err = std::move(err).WithDetails(d);
    } else if (err.code() == ErrorCode::kDeadlineExceeded && a.delivered) {
      err = std::move(err).Wrap(name_ + " stalled mid-stream after " + std::to_string(text.size()) + " bytes of text");
    }
    a.retryable = err.code() == ErrorCode::kUnavailable;
    a.result = Fail(std::move(err));
    return a;
  }
  if (reply->status < 200 || reply->status >= 300) {
    fail_status(*reply);
    return a;
  }
  if (stopped_by_callback) {
    Error err = Error::Cancelled("the " + name_ + " stream was stopped by its consumer");
    if (auto d = UsageDetails(decoder.get()); !d.empty()) err = std::move(err).WithDetails(d);
    a.result = Fail(std::move(err));
    return a;
  }
  if (stream_error) {
    a.retryable = RetryableCode(stream_error->code());
    a.result = Fail(std::move(*stream_error));
    return a;
  }
  const bool complete = decoder->finished() || (!reply->truncated && decoder->complete_at_clean_eof());
  if (!complete) {
    a.retryable = true;  // only taken when nothing was delivered
    a.result = Fail(Error::Unavailable(name_ + " stream ended before its terminal event" +
                                       (reply->truncated ? " (connection broken)" : "") + " after " +
                                       std::to_string(text.size()) + " bytes of text"));
    return a;
  }
  Generation g = std::move(decoder->generation);
  g.text = std::move(text);
  if (g.model.empty()) g.model = config_.model;
  a.result = std::move(g);
  return a;
}

}  // namespace modulo::generate::detail
