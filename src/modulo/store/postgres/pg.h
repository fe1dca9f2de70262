// A thin RAII layer over libpq: a connection with prepared statements cached by SQL text,
// parameters bound by value (text, integers, bytea in binary, NULL), result access, transactions
// that roll back unless committed, and the one mapping from SQLSTATE to modulo::ErrorCode.
//
// Error mapping (ToError):
//   23505 unique_violation                  -> kAlreadyExists (message names the constraint)
//   23503 foreign_key_violation             -> kNotFound
//   23502, 23514, 22xxx (bad data)          -> kInvalidArgument
//   40001 serialization, 40P01 deadlock     -> kUnavailable, IsRetryable() true (retry the transaction)
//   55P03 lock_not_available, 57014 timeout -> kDeadlineExceeded
//   08xxx, 57P0x, 53xxx, a dropped socket   -> kUnavailable (the connection is then Broken())
//   anything else                           -> kInternal
//
// Query accounting: every statement a Connection executes (including BEGIN and COMMIT; not the
// one-time PQprepare of a statement on a connection, nor pool pings) increments a per-thread
// counter that QueryCounter reads, so tests can assert how many statements an operation costs
// ("a collection with its files in at most 2 queries").
//
// Thread-safety: a Connection (and its results) is used by one thread at a time; the pool
// (pool.h) hands connections out. PgResult is a value owned by its reader.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "modulo/core/error.h"

namespace modulo::store::postgres {

// Positional parameters $1..$n. Text values may be any UTF-8 without NUL bytes (PostgreSQL text
// cannot hold NUL: such a value fails the query with kInvalidArgument, it is never truncated);
// bytes are sent in binary format, so any byte sequence round-trips.
class Params {
 public:
  Params() = default;

  Params& Add(std::string_view v);
  Params& Add(const std::string& v) { return Add(std::string_view(v)); }
  Params& Add(const char* v) { return Add(std::string_view(v)); }
  Params& Add(std::int64_t v);
  Params& Add(int v) { return Add(static_cast<std::int64_t>(v)); }
  Params& Add(bool v);
  Params& Add(double v);
  template <typename T>
  Params& Add(const std::optional<T>& v) {
    return v ? Add(*v) : AddNull();
  }
  Params& AddBytes(std::span<const std::byte> v);
  Params& AddNull();
  // A PostgreSQL array literal ({"a","b"}) of text values, for `= ANY($n::text[])`.
  Params& AddTextArray(const std::vector<std::string>& values);
  // {1,2,3}, for `= ANY($n::bigint[])`.
  Params& AddIntArray(std::span<const std::int64_t> values);
  Params& AddIntArray(std::span<const std::int32_t> values);

  [[nodiscard]] std::size_t size() const noexcept { return values_.size(); }
  // Why the parameters cannot be sent (e.g. a NUL byte in a text value), or empty.
  [[nodiscard]] const std::string& invalid() const noexcept { return invalid_; }

 private:
  friend class Connection;
  std::vector<std::string> values_;
  std::vector<bool> nulls_;
  std::vector<int> formats_;  // 0 text, 1 binary
  std::string invalid_;
};

// Builds a PostgreSQL array literal element by element (for `unnest($n::text[], ...)` batch
// writes): text is quoted and escaped, bytes become bytea hex, NULL is NULL.
class ArrayLiteral {
 public:
  ArrayLiteral& Text(std::string_view v);
  ArrayLiteral& Int(std::int64_t v);
  ArrayLiteral& Bool(bool v) { return Raw(v ? "t" : "f"); }
  ArrayLiteral& Bytes(std::span<const std::byte> v);
  ArrayLiteral& Null() { return Raw("NULL"); }
  [[nodiscard]] std::string str() const { return "{" + body_ + "}"; }

 private:
  ArrayLiteral& Raw(std::string_view v);
  std::string body_;
  bool first_ = true;
};

// The rows of one statement, read as text (bytea decoded from its hex form).
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* r) : res_(r, &PQclear) {}

  [[nodiscard]] int rows() const noexcept { return res_ ? PQntuples(res_.get()) : 0; }
  [[nodiscard]] bool empty() const noexcept { return rows() == 0; }
  [[nodiscard]] bool IsNull(int row, int col) const { return PQgetisnull(res_.get(), row, col) != 0; }
  [[nodiscard]] std::string_view View(int row, int col) const;
  [[nodiscard]] std::string Text(int row, int col) const { return std::string(View(row, col)); }
  [[nodiscard]] std::int64_t Int(int row, int col) const;  // 0 for NULL
  [[nodiscard]] double Double(int row, int col) const;     // 0 for NULL
  [[nodiscard]] bool Bool(int row, int col) const { return View(row, col) == "t"; }
  // A bytea column's bytes (empty for NULL).
  [[nodiscard]] std::vector<std::byte> Bytes(int row, int col) const;
  // Rows affected by INSERT/UPDATE/DELETE.
  [[nodiscard]] std::int64_t affected() const;

 private:
  std::shared_ptr<PGresult> res_;
};

// The error a failed result or connection means (see the table at the top).
[[nodiscard]] Error ToError(const PGresult* res, PGconn* conn, std::string_view what);
// True for SQLSTATEs after which the whole transaction should simply be run again.
[[nodiscard]] bool IsRetryableState(std::string_view sqlstate) noexcept;

class Connection {
 public:
  struct Options {
    std::chrono::seconds connect_timeout{5};
    std::string application_name = "modulo";
    // statement_timeout for every statement on this connection (0: the server's default).
    std::chrono::milliseconds statement_timeout{0};
  };

  // Connects to a libpq URL or keyword/value string ("postgresql://user@host:5432/db").
  [[nodiscard]] static Result<std::unique_ptr<Connection>> Open(const std::string& url, const Options& options);
  [[nodiscard]] static Result<std::unique_ptr<Connection>> Open(const std::string& url) { return Open(url, Options{}); }
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one statement with parameters. The statement is prepared once per connection (named
  // by a counter, cached by its SQL text) and executed with PQexecPrepared.
  [[nodiscard]] Result<PgResult> Exec(std::string_view sql, const Params& params = {});
  // Runs SQL without parameters through the simple protocol (may hold several statements).
  [[nodiscard]] Status ExecScript(std::string_view sql);

  // A round trip that proves the server answers (an empty query). Not counted as a query.
  [[nodiscard]] bool Ping();
  // The connection cannot be used again (socket gone, protocol out of step).
  [[nodiscard]] bool Broken() const noexcept { return broken_ || PQstatus(conn_) != CONNECTION_OK; }
  // Inside a transaction block (or a failed one) right now.
  [[nodiscard]] bool InTransaction() const noexcept;
  // The SQLSTATE of the last failed statement ("" after a success).
  [[nodiscard]] const std::string& last_sqlstate() const noexcept { return last_sqlstate_; }
  // The backend's process id (for pg_terminate_backend in tests and logs).
  [[nodiscard]] int backend_pid() const noexcept { return PQbackendPID(conn_); }

  [[nodiscard]] std::chrono::steady_clock::time_point opened_at() const noexcept { return opened_at_; }
  [[nodiscard]] std::chrono::steady_clock::time_point last_used() const noexcept { return last_used_; }
  [[nodiscard]] PGconn* raw() const noexcept { return conn_; }

 private:
  explicit Connection(PGconn* c);
  Result<PgResult> Check(PGresult* r, std::string_view what);

  PGconn* conn_;
  bool broken_ = false;
  std::string last_sqlstate_;
  std::unordered_map<std::string, std::string> prepared_;  // SQL text -> statement name
  std::chrono::steady_clock::time_point opened_at_;
  std::chrono::steady_clock::time_point last_used_;
};

// BEGIN ... COMMIT on one connection; rolled back when destroyed without a successful Commit().
class Transaction {
 public:
  enum class Isolation { kReadCommitted, kRepeatableRead, kSerializable };
  [[nodiscard]] static Result<Transaction> Begin(Connection& c, Isolation isolation = Isolation::kReadCommitted);
  Transaction(Transaction&& o) noexcept : conn_(o.conn_) { o.conn_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  [[nodiscard]] Status Commit();

 private:
  explicit Transaction(Connection* c) : conn_(c) {}
  Connection* conn_;
};

// Counts the statements this thread sends while it lives (nested counters each see their own
// share). Not thread-safe by design: it measures the calling thread only.
class QueryCounter {
 public:
  QueryCounter() noexcept;
  [[nodiscard]] std::int64_t count() const noexcept;

 private:
  std::int64_t start_;
};

// The thread's running count of statements (what QueryCounter differences).
[[nodiscard]] std::int64_t ThreadQueryCount() noexcept;

// Replaces invalid UTF-8 (including surrogates and overlong forms) with U+FFFD and NUL bytes
// with spaces, so any input can be stored as text or searched for.
[[nodiscard]] std::string SanitizeUtf8(std::string_view in);

}  // namespace modulo::store::postgres
