// ThreadPool: a named pool of worker threads for CPU-heavy or blocking work.
//
// The HTTP I/O threads never run such work themselves: a handler hands it to a pool with
// `co_await RunOn(pool, fn)` and is resumed on its own executor when fn has returned (or thrown).
// The server owns two pools: `cpu` (one thread per core: embedding, index builds, parsing) and
// `blocking` (file and database I/O that blocks).
//
// Thread-safety: all members are thread-safe. The destructor stops and joins.
#pragma once

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <cstddef>
#include <future>
#include <memory>
#include <string>
#include <type_traits>

namespace modulo {

class ThreadPool {
 public:
  ThreadPool(std::string name, std::size_t threads)
      : name_(std::move(name)), threads_(threads == 0 ? 1 : threads), pool_(threads_) {}
  ~ThreadPool() { Join(); }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] std::size_t size() const noexcept { return threads_; }
  [[nodiscard]] boost::asio::thread_pool::executor_type executor() noexcept { return pool_.get_executor(); }

  // Runs fn on the pool; the future carries its result or exception. For non-coroutine callers.
  template <typename F>
  [[nodiscard]] auto Submit(F&& fn) -> std::future<std::invoke_result_t<std::decay_t<F>>> {
    using R = std::invoke_result_t<std::decay_t<F>>;
    // Asio treats a posted packaged_task as a completion token, so post a plain lambda instead.
    auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(fn));
    auto fut = task->get_future();
    boost::asio::post(pool_, [task] { (*task)(); });
    return fut;
  }

  // Stops accepting work once queued work is done, and waits for the threads.
  void Join() { pool_.join(); }

 private:
  std::string name_;
  std::size_t threads_;
  boost::asio::thread_pool pool_;
};

// Awaits fn() run on `pool`; resumes the caller on its own executor with the result.
template <typename F>
boost::asio::awaitable<std::invoke_result_t<std::decay_t<F>>> RunOn(ThreadPool& pool, F fn) {
  using R = std::invoke_result_t<std::decay_t<F>>;
  co_return co_await boost::asio::co_spawn(
      pool.executor(), [f = std::move(fn)]() mutable -> boost::asio::awaitable<R> { co_return f(); },
      boost::asio::use_awaitable);
}

}  // namespace modulo
