// Thin RAII wrappers over the SQLite C API: a connection, prepared statements with typed binding
// and reading, and transactions. Errors become modulo::Error (kUnavailable for busy/locked,
// kAlreadyExists for constraint violations, kInternal otherwise) with SQLite's message.
//
// Thread-safety: a Connection is used by one thread at a time (the pool hands it out).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <type_traits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "modulo/core/error.h"

namespace modulo::store::sqlite {

class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}

  Statement& Bind(int index, std::int64_t v);
  Statement& Bind(int index, int v) { return Bind(index, static_cast<std::int64_t>(v)); }
  Statement& Bind(int index, double v);
  Statement& Bind(int index, std::string_view v);
  Statement& Bind(int index, const char* v) { return Bind(index, std::string_view(v)); }
  Statement& Bind(int index, const std::string& v) { return Bind(index, std::string_view(v)); }
  Statement& BindBlob(int index, std::span<const std::byte> v);
  Statement& BindNull(int index);
  template <typename T>
  Statement& Bind(int index, const std::optional<T>& v) {
    return v ? Bind(index, *v) : BindNull(index);
  }

  // Advances; true when a row is available, false when done.
  [[nodiscard]] Result<bool> Step();
  // Runs to completion (for statements that return no rows).
  [[nodiscard]] Status Run();

  [[nodiscard]] std::int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  [[nodiscard]] double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  [[nodiscard]] std::string Text(int col) const;
  [[nodiscard]] bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  [[nodiscard]] std::span<const std::byte> Blob(int col) const;

  void Reset();

  // Reads the first row with fn(*this); `not_found` when there is none.
  template <typename F>
  [[nodiscard]] auto One(F&& fn, Error not_found) -> Result<std::invoke_result_t<F, const Statement&>> {
    auto row = Step();
    if (!row) return Fail(row.error());
    if (!*row) return Fail(std::move(not_found));
    auto out = fn(static_cast<const Statement&>(*this));
    Reset();
    return out;
  }

  // Steps through every row, calling fn(*this) for each.
  template <typename F>
  [[nodiscard]] Status ForEachRow(F&& fn) {
    while (true) {
      auto row = Step();
      if (!row) return Fail(row.error());
      if (!*row) return {};
      fn(*this);
    }
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

class Connection {
 public:
  // Opens (creating if needed) with WAL, foreign keys, a busy timeout and synchronous=NORMAL
  // (durable across process crashes; a power loss may lose the last transactions).
  [[nodiscard]] static Result<std::unique_ptr<Connection>> Open(const std::string& path);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // A cached prepared statement, reset and with bindings cleared.
  [[nodiscard]] Result<Statement> Prepare(std::string_view sql);
  [[nodiscard]] Status Exec(std::string_view sql);  // one or more statements, no results
  [[nodiscard]] std::int64_t LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }
  [[nodiscard]] int Changes() const { return sqlite3_changes(db_); }
  [[nodiscard]] sqlite3* raw() const noexcept { return db_; }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back unless Commit() succeeded.
class Transaction {
 public:
  [[nodiscard]] static Result<Transaction> Begin(Connection& c);
  Transaction(Transaction&& o) noexcept : conn_(o.conn_) { o.conn_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  [[nodiscard]] Status Commit();

 private:
  explicit Transaction(Connection* c) : conn_(c) {}
  Connection* conn_;
};

// Maps an SQLite result code and message to an Error.
[[nodiscard]] Error ToError(int rc, std::string_view what);

}  // namespace modulo::store::sqlite
