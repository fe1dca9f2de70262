// Error: the one error type of Modulo.
//
// An Error carries a meaning-based code (never an HTTP status: the http module maps codes to
// statuses in exactly one table), a human-readable message, and optional context such as the
// name of the offending field. Functions that can fail return Result<T> = std::expected<T, Error>.
//
// Thread-safety: value type; distinct objects may be used from distinct threads freely.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace modulo {

enum class ErrorCode {
  kInvalidArgument,     // the caller sent something malformed or out of range
  kNotFound,            // the named object does not exist (or the caller may not know it exists)
  kAlreadyExists,       // creating something whose identity is taken
  kConflict,            // the object's current state forbids the operation
  kUnauthenticated,     // no valid credentials
  kPermissionDenied,    // valid credentials, not allowed
  kQuotaExceeded,       // a per-user quota is used up
  kRateLimited,         // too many requests in a short time
  kPayloadTooLarge,     // a body, file or field beyond its limit
  kHeaderTooLarge,      // request headers beyond their limit
  kUnsupportedMediaType,// a body in a content type the route does not take
  kMethodNotAllowed,    // the path exists, the method does not
  kDeadlineExceeded,    // an operation ran out of time
  kUnavailable,         // a dependency cannot be reached right now; retrying may help
  kCancelled,           // the operation was cancelled (client went away, shutdown)
  kUnimplemented,       // the operation is not supported by this configuration
  kInternal,            // a bug or an unexpected failure
};

// The stable, machine-readable name of a code, e.g. "not_found". Used in JSON error bodies.
[[nodiscard]] std::string_view ErrorCodeName(ErrorCode code) noexcept;

class [[nodiscard]] Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Error InvalidArgument(std::string m) { return {ErrorCode::kInvalidArgument, std::move(m)}; }
  static Error NotFound(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
  static Error AlreadyExists(std::string m) { return {ErrorCode::kAlreadyExists, std::move(m)}; }
  static Error Conflict(std::string m) { return {ErrorCode::kConflict, std::move(m)}; }
  static Error Unauthenticated(std::string m) { return {ErrorCode::kUnauthenticated, std::move(m)}; }
  static Error PermissionDenied(std::string m) { return {ErrorCode::kPermissionDenied, std::move(m)}; }
  static Error QuotaExceeded(std::string m) { return {ErrorCode::kQuotaExceeded, std::move(m)}; }
  static Error RateLimited(std::string m) { return {ErrorCode::kRateLimited, std::move(m)}; }
  static Error PayloadTooLarge(std::string m) { return {ErrorCode::kPayloadTooLarge, std::move(m)}; }
  static Error UnsupportedMediaType(std::string m) { return {ErrorCode::kUnsupportedMediaType, std::move(m)}; }
  static Error DeadlineExceeded(std::string m) { return {ErrorCode::kDeadlineExceeded, std::move(m)}; }
  static Error Unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
  static Error Cancelled(std::string m) { return {ErrorCode::kCancelled, std::move(m)}; }
  static Error Unimplemented(std::string m) { return {ErrorCode::kUnimplemented, std::move(m)}; }
  static Error Internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }

  [[nodiscard]] ErrorCode code() const noexcept { return code_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }

  // Prefixes the message with context, e.g. Wrap("loading model") -> "loading model: <message>".
  [[nodiscard]] Error Wrap(std::string_view context) && {
    message_ = std::string(context) + ": " + message_;
    return std::move(*this);
  }

  // "<code name>: <message>", for logs.
  [[nodiscard]] std::string ToString() const;

  // Machine-readable context as a JSON object text (e.g. {"resource":"collections","usage":10,
  // "limit":10}); merged into the HTTP error body beside "detail" and "code". Never secrets.
  [[nodiscard]] const std::string& details() const noexcept { return details_; }
  [[nodiscard]] Error WithDetails(std::string json_object) && {
    details_ = std::move(json_object);
    return std::move(*this);
  }

 private:
  ErrorCode code_;
  std::string message_;
  std::string details_;
};

template <typename T>
using Result = std::expected<T, Error>;

// For functions that return nothing on success.
using Status = std::expected<void, Error>;

inline std::unexpected<Error> Fail(Error e) { return std::unexpected<Error>(std::move(e)); }

}  // namespace modulo
