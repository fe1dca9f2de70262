// QueryBatcher: coalesces concurrent single-text embedding requests into batches.
//
// Submit() never blocks and never embeds on the caller's thread: the request is queued; a small
// dispatcher thread posts one Embed() call for up to `max_batch` queued requests to the CPU
// ThreadPool as soon as fewer than `max_concurrent` batches are running (natural batching: a
// lone request leaves at once, and under load the requests that arrive while the slots are
// busy form the next batch). Each request's callback runs on the pool with its own vector.
// A `max_wait` above zero additionally holds a batch back until it is full or its oldest
// request has waited that long. So an HTTP handler can
// submit from an I/O thread and resume when its vector is ready (see AsyncEmbed for coroutines).
// With an EmbeddingCache, cached texts complete immediately, without waiting.
//
// Thread-safety: all members are thread-safe. The destructor fails requests still queued with
// kCancelled and waits for batches in flight; the pool must outlive the batcher.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "modulo/core/thread_pool.h"
#include "modulo/embed/embedder.h"
#include "modulo/embed/embedding_cache.h"

namespace modulo::embed {

struct QueryBatcherOptions {
  std::chrono::microseconds max_wait{0};  // longest a request may wait for company (0: none)
  std::size_t max_batch = 32;             // requests per batch
  std::size_t max_concurrent = 0;         // batches running at once (0: the pool's size)
};

class QueryBatcher {
 public:
  using Callback = std::function<void(Result<std::vector<float>>)>;

  // `cache` may be null. `embedder` and `pool` must outlive the batcher.
  QueryBatcher(std::shared_ptr<Embedder> embedder, ThreadPool& pool, QueryBatcherOptions options = {},
               std::shared_ptr<EmbeddingCache> cache = nullptr);
  ~QueryBatcher();
  QueryBatcher(const QueryBatcher&) = delete;
  QueryBatcher& operator=(const QueryBatcher&) = delete;

  // Queues text; `done` is called exactly once, on a pool thread (or on the caller's thread for
  // a cache hit or after shutdown).
  void Submit(std::string text, InputKind kind, Callback done);
  // Convenience for blocking callers (tests, tools).
  [[nodiscard]] std::future<Result<std::vector<float>>> Submit(std::string text, InputKind kind);

  // Asio-style asynchronous form: completes on the handler's associated executor, e.g.
  //   auto v = co_await batcher.AsyncEmbed(text, InputKind::kQuery, boost::asio::use_awaitable);
  template <typename CompletionToken>
  auto AsyncEmbed(std::string text, InputKind kind, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(Result<std::vector<float>>)>(
        [this](auto handler, std::string t, InputKind k) {
          auto ex = boost::asio::get_associated_executor(handler);
          auto shared = std::make_shared<decltype(handler)>(std::move(handler));
          Submit(std::move(t), k, [shared, ex](Result<std::vector<float>> r) {
            boost::asio::post(ex, [shared, r = std::move(r)]() mutable { (*shared)(std::move(r)); });
          });
        },
        token, std::move(text), kind);
  }

  [[nodiscard]] const ModelInfo& info() const noexcept { return embedder_->info(); }
  // Batches run so far and requests they carried (for metrics and tests).
  [[nodiscard]] std::pair<std::uint64_t, std::uint64_t> batch_stats() const;

 private:
  struct Request {
    std::string text;
    InputKind kind;
    Callback done;
    std::chrono::steady_clock::time_point arrived;
  };
  void DispatchLoop();
  void RunBatch(std::vector<Request> batch);

  std::shared_ptr<Embedder> embedder_;
  ThreadPool& pool_;
  QueryBatcherOptions options_;
  std::shared_ptr<EmbeddingCache> cache_;

  mutable std::mutex mu_;
  std::condition_variable cv_;          // new request or stop
  std::condition_variable idle_cv_;     // in_flight_ reached zero
  std::deque<Request> queue_;
  bool stop_ = false;
  std::size_t in_flight_ = 0;
  std::uint64_t batches_ = 0, batched_requests_ = 0;
  std::thread dispatcher_;
};

}  // namespace modulo::embed
