// Helpers for store tests: real LMDB environments in fresh temp directories.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <future>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>

#include "store/env.h"
#include "store/event_store.h"

namespace rill {
inline std::ostream& operator<<(std::ostream& o, Code c) { return o << static_cast<int>(c); }
inline std::ostream& operator<<(std::ostream& o, const Uuid& u) { return o << u.ToString(); }
}  // namespace rill

namespace rill::testing {

// An Env whose fault points call on_fault (set it before the store opens: it
// is called from the store's threads) and whose clock a test moves with
// Advance instead of sleeping.
class FaultEnv : public EnvWrapper {
 public:
  FaultEnv() : EnvWrapper(Env::Default()) {}
  std::function<Status(FaultPoint)> on_fault;
  Status AtFault(FaultPoint point) override { return on_fault ? on_fault(point) : Status::OK(); }
  int64_t NowMicros() override { return target()->NowMicros() + offset_us_.load(); }
  void Advance(std::chrono::microseconds by) { offset_us_ += by.count(); }

 private:
  std::atomic<int64_t> offset_us_{0};
};

// A temp directory removed at scope exit.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/rill-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::unique_ptr<EventStore> OpenOrDie(const std::string& dir, StoreOptions o = {}) {
  o.create_if_missing = true;
  auto r = EventStore::Open(dir, o);
  if (!r.ok()) throw std::runtime_error(r.status().ToString());
  return std::move(r).value();
}

inline AppendRequest MakeAppend(std::string stream, std::string type, std::string data = "{}",
                                ExpectedVersion expected = ExpectedVersion::Any(), std::string id = "") {
  AppendRequest r;
  r.stream = std::move(stream);
  r.expected = expected;
  r.request_id = std::move(id);
  NewEvent e;
  e.type = std::move(type);
  e.data = std::move(data);
  r.events.push_back(std::move(e));
  return r;
}

// AppendAsync, with a future for the outcome: many appends in flight at once.
inline std::future<Result<AppendResult>> AppendLater(EventStore* s, AppendRequest r) {
  auto promise = std::make_shared<std::promise<Result<AppendResult>>>();
  auto f = promise->get_future();
  s->AppendAsync(std::move(r), [promise](Result<AppendResult> out) { promise->set_value(std::move(out)); });
  return f;
}

}  // namespace rill::testing
