// Errors are values at every module boundary (LevelDB style): a Status says
// what went wrong and which class of failure it is; the class decides the CLI
// exit code (ExitCodeFor and the kExit* constants in cli/cli.h), the message
// is the one line a person reads.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace rill {

enum class Code {
  kOk = 0,
  kNotFound,         // stream, event, projection, ... does not exist (exit 5)
  kConflict,         // wrong expected version, id reused for another request,
                     // stream deleted (exit 3)
  kRejected,         // the domain refused a command (exit 4)
  kInvalidArgument,  // malformed input: bad JSON, bad name, too large (exit 2)
  kCorruption,       // CRC mismatch, gap, damaged file (exit 1)
  kIOError,          // disk full, fsync failure, permissions (exit 1)
  kBusy,             // try again later (exit 1)
  kInterrupted,      // stopped by a signal (exit 130)
  kFailedPrecondition,  // the files are not in the state the operation needs:
                        // a read model built by another definition (exit 1)
  kDeadlineExceeded,  // ran past the time it was given: query --timeout (exit 1)
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status OK() { return {}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status Conflict(std::string m) { return {Code::kConflict, std::move(m)}; }
  static Status Rejected(std::string m) { return {Code::kRejected, std::move(m)}; }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status IOError(std::string m) { return {Code::kIOError, std::move(m)}; }
  static Status Busy(std::string m) { return {Code::kBusy, std::move(m)}; }
  static Status Interrupted(std::string m) { return {Code::kInterrupted, std::move(m)}; }
  static Status FailedPrecondition(std::string m) { return {Code::kFailedPrecondition, std::move(m)}; }
  static Status DeadlineExceeded(std::string m) { return {Code::kDeadlineExceeded, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsConflict() const { return code_ == Code::kConflict; }

  // Short machine name of the class: "conflict", "not_found", ... used as
  // the "error" field of --json output.
  const char* CodeName() const;
  // "conflict: stream account-1 expected version 3 but is at 5"
  std::string ToString() const;

  // Adds context in front of the message, keeping the code.
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return {code_, context + ": " + message_};
  }

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status saying why there is none.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status s) : status_(std::move(s)) {}    // NOLINT
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

#define RILL_RETURN_IF_ERROR(expr)         \
  do {                                     \
    ::rill::Status _s = (expr);            \
    if (!_s.ok()) return _s;               \
  } while (0)

}  // namespace rill
