// AsyncQueue: a queue that any thread may push to and one coroutine awaits on its executor.
// Used to hand events (from the EventBus, from other threads) to SSE and WebSocket connections.
// Bounded: when full, the oldest item is dropped and counted, so a slow consumer cannot grow
// memory without limit.
//
// Thread-safety: Push() and Close() from any thread; Pop() from one coroutine on `executor`.
#pragma once

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>

namespace modulo::http {

template <typename T>
class AsyncQueue : public std::enable_shared_from_this<AsyncQueue<T>> {
 public:
  AsyncQueue(boost::asio::any_io_executor executor, std::size_t capacity)
      : executor_(std::move(executor)), timer_(executor_), capacity_(capacity) {}

  void Push(T item) {
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      if (items_.size() >= capacity_) {
        items_.pop_front();
        ++dropped_;
      }
      items_.push_back(std::move(item));
    }
    Wake();
  }

  void Close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    Wake();
  }

  [[nodiscard]] bool closed() const {
    std::lock_guard lock(mu_);
    return closed_;
  }
  [[nodiscard]] std::size_t dropped() const {
    std::lock_guard lock(mu_);
    return dropped_;
  }

  // The next item; nullopt when the queue is closed (and drained) or `timeout` passed first.
  boost::asio::awaitable<std::optional<T>> Pop(std::chrono::steady_clock::duration timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      {
        std::lock_guard lock(mu_);
        if (!items_.empty()) {
          T item = std::move(items_.front());
          items_.pop_front();
          co_return item;
        }
        if (closed_ || std::chrono::steady_clock::now() >= deadline) co_return std::nullopt;
        waiting_ = true;
      }
      timer_.expires_at(deadline);
      boost::system::error_code ec;
      co_await timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
      std::lock_guard lock(mu_);
      waiting_ = false;
    }
  }

 private:
  void Wake() {
    // Timers are not thread-safe: cancel on the consumer's executor.
    boost::asio::post(executor_, [self = this->shared_from_this()] { self->timer_.cancel(); });
  }

  boost::asio::any_io_executor executor_;
  boost::asio::steady_timer timer_;
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::deque<T> items_;  // guarded by mu_
  bool closed_ = false;  // guarded by mu_
  bool waiting_ = false; // guarded by mu_
  std::size_t dropped_ = 0;  // guarded by mu_
};

}  // namespace modulo::http
