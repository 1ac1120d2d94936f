// Helpers for core tests: real LMDB stores in fresh temp directories, the
// sample domains, and a few one-liners for commands.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <ostream>
#include <stdexcept>
#include <string>

#include "core/actor_runtime.h"
#include "domains/domains.h"
#include "store/event_store.h"
#include "store/tests/test_util.h"

namespace rill::coretest {

// The store tests' temp directory and one-event request builder serve here too.
using testing::MakeAppend;
using testing::TempDir;

inline std::unique_ptr<EventStore> OpenStore(const std::string& dir, StoreOptions o = {}) {
  o.create_if_missing = true;
  auto r = EventStore::Open(dir, o);
  if (!r.ok()) throw std::runtime_error(r.status().ToString());
  return std::move(r).value();
}

inline std::unique_ptr<ActorRuntime> StartRuntime(EventStore* store, const DomainRegistry* registry,
                                                  RuntimeOptions o = {}) {
  auto r = ActorRuntime::Start(store, registry, o);
  if (!r.ok()) throw std::runtime_error(r.status().ToString());
  return std::move(r).value();
}

inline DomainRegistry SampleDomains() {
  DomainRegistry r;
  domains::RegisterAll(r);
  return r;
}

// A fresh store and the sample domains, where most runtime tests start
// (BOOST_FIXTURE_TEST_CASE(name, SampleStore)). Each test starts its own
// runtime: the runtime options are what it is about.
struct SampleStore {
  TempDir dir;
  std::unique_ptr<EventStore> store = OpenStore(dir.path());
  DomainRegistry registry = SampleDomains();
};

inline Command Cmd(std::string type, std::string stream, std::string data = "{}", std::string id = "") {
  Command c;
  c.type = std::move(type);
  c.stream = std::move(stream);
  c.data = std::move(data);
  c.id = std::move(id);
  return c;
}

// Executes and throws on anything but success (setup steps).
inline CommandResult MustExecute(ActorRuntime& rt, Command c) {
  auto r = rt.Execute(c);
  if (!r.ok()) throw std::runtime_error(c.type + " " + c.stream + ": " + r.status().ToString());
  return *r;
}

inline std::string Field(const std::string& json, const char* name) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  if (!d.IsObject() || !d.HasMember(name)) return "<missing>";
  return json::Canonical(d[name]);
}

inline int64_t IntField(const std::string& json, const char* name) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  if (!d.IsObject() || !d.HasMember(name) || !d[name].IsInt64()) throw std::runtime_error("no field");
  return d[name].GetInt64();
}

// Output of a shell command (a `rill` run, typically); its pclose status in
// *status when asked for.
inline std::string Capture(const std::string& cmd, int* status = nullptr) {
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) throw std::runtime_error("popen failed: " + cmd);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  if (status != nullptr) *status = rc;
  return out;
}

}  // namespace rill::coretest
