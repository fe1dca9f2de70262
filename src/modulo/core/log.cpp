#include "modulo/core/log.h"

#include "modulo/core/clock.h"

#include <spdlog/async.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include <nlohmann/json.hpp>

namespace modulo::log {
namespace {

// Appends formatted lines to a buffer and writes it to fd 2 when it grows or on flush. Runs on
// spdlog's single async worker, so it needs no lock of its own.
class BufferedStderrSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    buffer_.append(msg.payload.data(), msg.payload.size());
    buffer_.push_back('\n');
    if (buffer_.size() >= 64 * 1024 || msg.level >= spdlog::level::warn) flush_();
  }
  void flush_() override {
    const char* p = buffer_.data();
    std::size_t left = buffer_.size();
    while (left > 0) {
      ssize_t n = ::write(STDERR_FILENO, p, left);
      if (n <= 0) break;
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    buffer_.clear();
  }

 private:
  std::string buffer_;
};

std::atomic<Level> g_level{Level::kInfo};
std::atomic<Format> g_format{Format::kText};
std::mutex g_init_mu;
std::shared_ptr<spdlog::logger> g_logger;  // guarded by g_init_mu for replacement; read via atomic load

std::shared_ptr<spdlog::logger> Logger() { return std::atomic_load(&g_logger); }

const char* LevelName(Level l) {
  switch (l) {
    case Level::kTrace: return "trace";
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

spdlog::level::level_enum ToSpd(Level l) {
  switch (l) {
    case Level::kTrace: return spdlog::level::trace;
    case Level::kDebug: return spdlog::level::debug;
    case Level::kInfo: return spdlog::level::info;
    case Level::kWarn: return spdlog::level::warn;
    case Level::kError: return spdlog::level::err;
  }
  return spdlog::level::info;
}

void AppendTimestamp(std::string& out) { out += FormatTimestamp(NowMs()); }

// Text values are quoted when they contain spaces, quotes, '=' or control characters.
void AppendTextValue(std::string& out, std::string_view v) {
  bool quote = v.empty();
  for (unsigned char c : v) quote = quote || c <= ' ' || c == '"' || c == '=' || c == 0x7f;
  if (!quote) {
    out += v;
    return;
  }
  out += nlohmann::json(std::string(v)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void AppendField(std::string& out, Format format, const Field& f) {
  if (format == Format::kJson) {
    out += ',';
    out += nlohmann::json(std::string(f.key)).dump();
    out += ':';
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string_view>) {
            out += nlohmann::json(std::string(v)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
          } else {
            out += nlohmann::json(v).dump();
          }
        },
        f.value);
  } else {
    out += ' ';
    out += f.key;
    out += '=';
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string_view>) {
            AppendTextValue(out, v);
          } else if constexpr (std::is_same_v<T, bool>) {
            out += v ? "true" : "false";
          } else if constexpr (std::is_same_v<T, double>) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.6g", v);
            out += buf;
          } else {
            out += std::to_string(v);
          }
        },
        f.value);
  }
}

}  // namespace

Level ParseLevel(std::string_view name) {
  if (name == "trace") return Level::kTrace;
  if (name == "debug") return Level::kDebug;
  if (name == "warn") return Level::kWarn;
  if (name == "error") return Level::kError;
  return Level::kInfo;
}

std::string FormatLine(Format format, Level level, std::string_view message, Fields fields, Fields more) {
  std::string out;
  out.reserve(160);
  if (format == Format::kJson) {
    out += "{\"ts\":\"";
    AppendTimestamp(out);
    out += "\",\"level\":\"";
    out += LevelName(level);
    out += "\",\"msg\":";
    out += nlohmann::json(std::string(message)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    for (const auto& f : fields) AppendField(out, format, f);
    for (const auto& f : more) AppendField(out, format, f);
    out += '}';
  } else {
    AppendTimestamp(out);
    out += ' ';
    std::string lvl = LevelName(level);
    for (auto& c : lvl) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    out += lvl;
    out += ' ';
    // Keep one line per record whatever the message holds.
    for (char c : message) out += (c == '\n' || c == '\r') ? ' ' : c;
    for (const auto& f : fields) AppendField(out, format, f);
    for (const auto& f : more) AppendField(out, format, f);
  }
  return out;
}

void Init(Level level, Format format) {
  std::lock_guard lock(g_init_mu);
  g_level = level;
  g_format = format;
  if (Logger() == nullptr) {
    spdlog::init_thread_pool(8192, 1);
    auto sink = std::make_shared<BufferedStderrSink>();
    auto logger = std::make_shared<spdlog::async_logger>("modulo", sink, spdlog::thread_pool(),
                                                         spdlog::async_overflow_policy::block);
    logger->set_pattern("%v");
    logger->set_level(spdlog::level::trace);
    logger->flush_on(spdlog::level::warn);
    std::atomic_store(&g_logger, std::shared_ptr<spdlog::logger>(logger));
    spdlog::flush_every(std::chrono::seconds(1));
    spdlog::register_logger(logger);
  }
}

void Flush() {
  if (auto l = Logger()) l->flush();
}

bool Enabled(Level level) { return level >= g_level.load(std::memory_order_relaxed); }

void Write(Level level, std::string_view message, Fields fields, Fields more) {
  if (!Enabled(level)) return;
  std::string line = FormatLine(g_format.load(std::memory_order_relaxed), level, message, fields, more);
  if (auto l = Logger()) {
    l->log(ToSpd(level), "{}", line);
  } else {
    line.push_back('\n');
    (void)!::write(STDERR_FILENO, line.data(), line.size());
  }
}

}  // namespace modulo::log
