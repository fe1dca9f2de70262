#include "modulo/core/thread_pool.h"

#include <gtest/gtest.h>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <stdexcept>
#include <thread>

namespace modulo {
namespace {

TEST(ThreadPoolTest, SubmitRunsOnAPoolThread) {
  ThreadPool pool("cpu", 2);
  auto caller = std::this_thread::get_id();
  auto fut = pool.Submit([] { return std::this_thread::get_id(); });
  EXPECT_NE(fut.get(), caller);
}

TEST(ThreadPoolTest, RunOnResumesOnTheCallersExecutorWithResultOrException) {
  ThreadPool pool("cpu", 1);
  boost::asio::io_context io;
  std::thread::id worker, resumed;
  int value = 0;
  bool threw = false;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        value = co_await RunOn(pool, [&] {
          worker = std::this_thread::get_id();
          return 42;
        });
        resumed = std::this_thread::get_id();
        try {
          co_await RunOn(pool, []() -> int { throw std::runtime_error("boom"); });
        } catch (const std::runtime_error&) {
          threw = true;
        }
      },
      boost::asio::detached);
  io.run();
  EXPECT_EQ(value, 42);
  EXPECT_NE(worker, std::this_thread::get_id());
  EXPECT_EQ(resumed, std::this_thread::get_id());
  EXPECT_TRUE(threw);
}

}  // namespace
}  // namespace modulo
