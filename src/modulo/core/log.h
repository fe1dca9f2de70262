// Structured logging.
//
// A log line is a message plus key/value fields, written as human-readable text or as one JSON
// object per line. Lines are formatted on the calling thread and written by a background thread in
// batches (spdlog's async logger over a buffered sink), so a request never waits on stdout.
// Request-scoped code logs through its RequestContext, which adds the request id to every line.
//
// This is the one process-wide facility: Init() once in main before other threads start;
// the functions below are thread-safe afterwards.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

namespace modulo::log {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError };
enum class Format { kText, kJson };

struct Field {
  using Value = std::variant<std::string_view, std::int64_t, double, bool>;
  std::string_view key;
  Value value;
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  template <typename I>
    requires std::is_integral_v<I> && (!std::is_same_v<I, bool>)
  Field(std::string_view k, I v) : key(k), value(static_cast<std::int64_t>(v)) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
};
using Fields = std::initializer_list<Field>;

// Parses "trace".."error"; unknown names give kInfo.
[[nodiscard]] Level ParseLevel(std::string_view name);

// Sets up the process logger (stderr). Safe to call again (e.g. tests); later calls replace it.
void Init(Level level, Format format);
// Writes out everything queued. Call before exit.
void Flush();

[[nodiscard]] bool Enabled(Level level);
void Write(Level level, std::string_view message, Fields fields = {}, Fields more = {});

// Formats one line (without trailing newline); exposed for tests.
[[nodiscard]] std::string FormatLine(Format format, Level level, std::string_view message, Fields fields,
                                     Fields more);

inline void Debug(std::string_view m, Fields f = {}) { Write(Level::kDebug, m, f); }
inline void Info(std::string_view m, Fields f = {}) { Write(Level::kInfo, m, f); }
inline void Warn(std::string_view m, Fields f = {}) { Write(Level::kWarn, m, f); }
inline void Error(std::string_view m, Fields f = {}) { Write(Level::kError, m, f); }

}  // namespace modulo::log
