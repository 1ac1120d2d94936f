#include "store/status.h"

namespace rill {

const char* Status::CodeName() const {
  switch (code_) {
    case Code::kOk: return "ok";
    case Code::kNotFound: return "not_found";
    case Code::kConflict: return "conflict";
    case Code::kRejected: return "rejected";
    case Code::kInvalidArgument: return "invalid_argument";
    case Code::kCorruption: return "corruption";
    case Code::kIOError: return "io_error";
    case Code::kBusy: return "busy";
    case Code::kInterrupted: return "interrupted";
    case Code::kFailedPrecondition: return "failed_precondition";
    case Code::kDeadlineExceeded: return "deadline_exceeded";
  }
  return "error";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(CodeName()) + ": " + message_;
}

}  // namespace rill
