#include "modulo/store/postgres/pg.h"

#include <charconv>
#include <cstring>

namespace modulo::store::postgres {
namespace {

thread_local std::int64_t t_queries = 0;

std::string ArrayElement(std::string_view v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Params

Params& Params::Add(std::string_view v) {
  if (v.find('\0') != std::string_view::npos && invalid_.empty()) {
    invalid_ = "parameter $" + std::to_string(values_.size() + 1) + " holds a NUL byte, which text cannot store";
  }
  values_.emplace_back(v);
  nulls_.push_back(false);
  formats_.push_back(0);
  return *this;
}

Params& Params::Add(std::int64_t v) {
  values_.push_back(std::to_string(v));
  nulls_.push_back(false);
  formats_.push_back(0);
  return *this;
}

Params& Params::Add(bool v) {
  values_.emplace_back(v ? "true" : "false");
  nulls_.push_back(false);
  formats_.push_back(0);
  return *this;
}

Params& Params::Add(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  values_.emplace_back(buf, ec == std::errc() ? end : buf);
  nulls_.push_back(false);
  formats_.push_back(0);
  return *this;
}

Params& Params::AddBytes(std::span<const std::byte> v) {
  values_.emplace_back(reinterpret_cast<const char*>(v.data()), v.size());
  nulls_.push_back(false);
  formats_.push_back(1);
  return *this;
}

Params& Params::AddNull() {
  values_.emplace_back();
  nulls_.push_back(true);
  formats_.push_back(0);
  return *this;
}

Params& Params::AddTextArray(const std::vector<std::string>& values) {
  std::string lit = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) lit += ',';
    lit += ArrayElement(values[i]);
  }
  lit += '}';
  return Add(std::string_view(lit));
}

Params& Params::AddIntArray(std::span<const std::int64_t> values) {
  std::string lit = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) lit += ',';
    lit += std::to_string(values[i]);
  }
  lit += '}';
  return Add(std::string_view(lit));
}

Params& Params::AddIntArray(std::span<const std::int32_t> values) {
  std::vector<std::int64_t> wide(values.begin(), values.end());
  return AddIntArray(std::span<const std::int64_t>(wide));
}

// ---------------------------------------------------------------------------------------------
// ArrayLiteral

ArrayLiteral& ArrayLiteral::Raw(std::string_view v) {
  if (!first_) body_ += ',';
  first_ = false;
  body_ += v;
  return *this;
}

ArrayLiteral& ArrayLiteral::Text(std::string_view v) { return Raw(ArrayElement(v)); }

ArrayLiteral& ArrayLiteral::Int(std::int64_t v) { return Raw(std::to_string(v)); }

ArrayLiteral& ArrayLiteral::Bytes(std::span<const std::byte> v) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string e = "\"\\\\x";  // "\\x: an escaped backslash, then x
  e.reserve(e.size() + v.size() * 2 + 1);
  for (std::byte b : v) {
    const auto u = static_cast<unsigned char>(b);
    e += kHex[u >> 4];
    e += kHex[u & 15];
  }
  e += '"';
  return Raw(e);
}

// ---------------------------------------------------------------------------------------------
// PgResult

std::string_view PgResult::View(int row, int col) const {
  return {PQgetvalue(res_.get(), row, col), static_cast<std::size_t>(PQgetlength(res_.get(), row, col))};
}

std::int64_t PgResult::Int(int row, int col) const {
  if (IsNull(row, col)) return 0;
  auto v = View(row, col);
  std::int64_t out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

double PgResult::Double(int row, int col) const {
  if (IsNull(row, col)) return 0;
  auto v = View(row, col);
  double out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

std::vector<std::byte> PgResult::Bytes(int row, int col) const {
  std::vector<std::byte> out;
  if (IsNull(row, col)) return out;
  auto v = View(row, col);
  // bytea_output = hex (the default since 9.0, and set by Connection::Open): "\x0a1b...".
  if (v.size() >= 2 && v[0] == '\\' && v[1] == 'x') {
    out.reserve((v.size() - 2) / 2);
    for (std::size_t i = 2; i + 1 < v.size(); i += 2) {
      const int hi = HexValue(v[i]), lo = HexValue(v[i + 1]);
      if (hi < 0 || lo < 0) return {};
      out.push_back(static_cast<std::byte>(hi * 16 + lo));
    }
  }
  return out;
}

std::int64_t PgResult::affected() const {
  if (!res_) return 0;
  const char* n = PQcmdTuples(res_.get());
  std::int64_t out = 0;
  if (n != nullptr) std::from_chars(n, n + std::strlen(n), out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Errors

bool IsRetryableState(std::string_view s) noexcept { return s == "40001" || s == "40P01"; }

Error ToError(const PGresult* res, PGconn* conn, std::string_view what) {
  std::string state, message;
  if (res != nullptr) {
    if (const char* s = PQresultErrorField(res, PG_DIAG_SQLSTATE)) state = s;
    if (const char* m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)) message = m;
  }
  if (message.empty() && conn != nullptr) {
    message = PQerrorMessage(conn);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  }
  if (message.empty()) message = "unknown PostgreSQL error";
  std::string text = std::string(what) + ": " + message;
  if (!state.empty()) text += " (SQLSTATE " + state + ")";
  const bool lost = conn != nullptr && PQstatus(conn) != CONNECTION_OK;
  if (lost || state.starts_with("08") || state.starts_with("57P") || state.starts_with("53")) {
    return Error::Unavailable(std::move(text));
  }
  if (state == "23505") {
    if (res != nullptr) {
      if (const char* c = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME)) text += " [constraint " + std::string(c) + "]";
    }
    return Error::AlreadyExists(std::move(text));
  }
  if (state == "23503") return Error::NotFound(std::move(text));
  if (state == "23502" || state == "23514" || state.starts_with("22")) return Error::InvalidArgument(std::move(text));
  if (IsRetryableState(state)) return Error::Unavailable(std::move(text));
  if (state == "55P03" || state == "57014") return Error::DeadlineExceeded(std::move(text));
  return Error::Internal(std::move(text));
}

// ---------------------------------------------------------------------------------------------
// Connection

Connection::Connection(PGconn* c)
    : conn_(c), opened_at_(std::chrono::steady_clock::now()), last_used_(opened_at_) {}

Connection::~Connection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& url, const Options& options) {
  if (url.empty()) return Fail(Error::InvalidArgument("database URL is empty"));
  const std::string timeout = std::to_string(std::max<std::int64_t>(options.connect_timeout.count(), 1));
  std::string pg_options = "-c bytea_output=hex -c client_min_messages=warning";
  if (options.statement_timeout.count() > 0) {
    pg_options += " -c statement_timeout=" + std::to_string(options.statement_timeout.count());
  }
  // Our defaults first; the URL (expanded from "dbname") comes last and wins.
  const char* keys[] = {"connect_timeout", "application_name", "options", "client_encoding", "dbname", nullptr};
  const char* values[] = {timeout.c_str(), options.application_name.c_str(), pg_options.c_str(), "UTF8",
                          url.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (c == nullptr) return Fail(Error::Internal("libpq could not allocate a connection"));
  if (PQstatus(c) != CONNECTION_OK) {
    std::string message = PQerrorMessage(c);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    PQfinish(c);
    // Never echo the URL: it may hold a password.
    return Fail(Error::Unavailable("cannot connect to PostgreSQL: " + message));
  }
  return std::unique_ptr<Connection>(new Connection(c));
}

Result<PgResult> Connection::Check(PGresult* r, std::string_view what) {
  last_used_ = std::chrono::steady_clock::now();
  const auto status = r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) {
    last_sqlstate_.clear();
    return PgResult(r);
  }
  last_sqlstate_.clear();
  if (r != nullptr) {
    if (const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE)) last_sqlstate_ = s;
  }
  Error e = ToError(r, conn_, what);
  if (r != nullptr) PQclear(r);
  if (PQstatus(conn_) != CONNECTION_OK || last_sqlstate_.starts_with("08") || last_sqlstate_.starts_with("57P")) {
    broken_ = true;
  }
  return Fail(std::move(e));
}

Result<PgResult> Connection::Exec(std::string_view sql, const Params& params) {
  if (!params.invalid().empty()) return Fail(Error::InvalidArgument(params.invalid()));
  if (broken_) return Fail(Error::Unavailable("the database connection was lost"));
  auto it = prepared_.find(std::string(sql));
  if (it == prepared_.end()) {
    std::string name = "m" + std::to_string(prepared_.size() + 1);
    auto prepared = Check(PQprepare(conn_, name.c_str(), std::string(sql).c_str(), 0, nullptr), "preparing a statement");
    if (!prepared) return Fail(prepared.error());
    it = prepared_.emplace(std::string(sql), std::move(name)).first;
  }
  const int n = static_cast<int>(params.size());
  std::vector<const char*> values(static_cast<std::size_t>(n));
  std::vector<int> lengths(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const auto idx = static_cast<std::size_t>(i);
    values[idx] = params.nulls_[idx] ? nullptr : params.values_[idx].c_str();
    lengths[idx] = static_cast<int>(params.values_[idx].size());
  }
  ++t_queries;
  return Check(PQexecPrepared(conn_, it->second.c_str(), n, values.data(), lengths.data(), params.formats_.data(), 0),
               "running a statement");
}

Status Connection::ExecScript(std::string_view sql) {
  if (broken_) return Fail(Error::Unavailable("the database connection was lost"));
  ++t_queries;
  auto r = Check(PQexec(conn_, std::string(sql).c_str()), "running SQL");
  if (!r) return Fail(r.error());
  return {};
}

bool Connection::Ping() {
  if (Broken()) return false;
  PGresult* r = PQexec(conn_, "");
  const bool ok = r != nullptr && PQresultStatus(r) == PGRES_EMPTY_QUERY;
  if (r != nullptr) PQclear(r);
  if (!ok) broken_ = true;
  last_used_ = std::chrono::steady_clock::now();
  return ok && PQstatus(conn_) == CONNECTION_OK;
}

bool Connection::InTransaction() const noexcept {
  const auto s = PQtransactionStatus(conn_);
  return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE;
}

// ---------------------------------------------------------------------------------------------
// Transaction

Result<Transaction> Transaction::Begin(Connection& c, Isolation isolation) {
  const char* sql = isolation == Isolation::kSerializable     ? "BEGIN ISOLATION LEVEL SERIALIZABLE"
                    : isolation == Isolation::kRepeatableRead ? "BEGIN ISOLATION LEVEL REPEATABLE READ"
                                                              : "BEGIN";
  if (auto st = c.ExecScript(sql); !st) return Fail(st.error());
  return Transaction(&c);
}

Transaction::~Transaction() {
  if (conn_ != nullptr && !conn_->Broken() && conn_->InTransaction()) {
    (void)conn_->ExecScript("ROLLBACK");
  }
}

Status Transaction::Commit() {
  if (conn_ == nullptr) return Fail(Error::Internal("transaction already finished"));
  Connection* c = conn_;
  auto st = c->ExecScript("COMMIT");
  conn_ = nullptr;
  if (!st) return st;
  return {};
}

// ---------------------------------------------------------------------------------------------
// Query accounting

std::int64_t ThreadQueryCount() noexcept { return t_queries; }
QueryCounter::QueryCounter() noexcept : start_(t_queries) {}
std::int64_t QueryCounter::count() const noexcept { return t_queries - start_; }

// ---------------------------------------------------------------------------------------------
// UTF-8

std::string SanitizeUtf8(std::string_view in) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(in.size());
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  const std::size_t n = in.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c == 0) {
      out += ' ';
      ++i;
      continue;
    }
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07;
    }
    bool ok = len > 0 && i + len <= n;
    for (std::size_t k = 1; ok && k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) ok = false;
      else cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (ok) {
      // Overlong forms, surrogates and code points past U+10FFFF are invalid.
      if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) {
        ok = false;
      }
    }
    if (ok) {
      out.append(in.data() + i, len);
      i += len;
    } else {
      out += kReplacement;
      ++i;
    }
  }
  return out;
}

}  // namespace modulo::store::postgres
