// Starting a thread as an error value. std::thread's constructor throws
// std::system_error when the thread cannot be created (EAGAIN: no address
// space for its stack under ulimit -v, a pid or thread limit); thrown from
// inside another thread, or through a noexcept path, that is
// std::terminate and a core dump. Every thread rill starts goes through
// StartThread, so that running out of threads is one clear error.
#pragma once

#include <fmt/format.h>

#include <new>
#include <system_error>
#include <thread>
#include <utility>

#include "store/status.h"

namespace rill {

// Ends the process: one line on stderr naming `what`, exit status 1, via
// _exit (no destructors, no atexit handlers, no stdio flush). Allocates
// nothing, so it is safe after std::bad_alloc.
[[noreturn]] void DieOutOfMemory(const char* what);

// A std::thread running `f`, for a constructor's member initializer: throws
// std::system_error where StartThread returns IOError. Memory that runs out
// inside `f` (std::bad_alloc) ends the process with DieOutOfMemory instead
// of std::terminate: nothing a thread half did can be handed back, and exit 1
// with a line is what rill answers for every resource failure. What was
// committed (the log's transactions, a read model's checkpoint with its rows)
// stays; the rest was never acknowledged. Any other exception escaping `f`
// is std::terminate, as with std::thread. `what` must outlive the thread (a
// string literal).
template <class F>
std::thread MakeThread(const char* what, F&& f) {
  return std::thread([what, fn = std::forward<F>(f)]() mutable {
    try {
      fn();
    } catch (const std::bad_alloc&) {
      DieOutOfMemory(what);
    }
  });
}

// Starts `*thread` running `f`, as MakeThread. IOError naming `what` if it
// cannot be (EAGAIN); *thread is then left as it was. *thread must not be
// joinable (assigning over a running thread is std::terminate).
template <class F>
Status StartThread(std::thread* thread, const char* what, F&& f) {
  try {
    *thread = MakeThread(what, std::forward<F>(f));
    return Status::OK();
  } catch (const std::system_error& e) {
    return Status::IOError(fmt::format("cannot start the {} thread: {}", what, e.what()));
  }
}

}  // namespace rill
