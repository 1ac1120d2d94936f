// Loading steps into an Upcaster (files through core/migration_file.cpp, C++
// through Register), the questions about them, and installing an Upcaster as
// a store's read hook. The ops are core/upcast_ops.cpp; reading an event
// through its chain is core/upcast_chain.cpp.
#include "core/upcaster.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <tuple>

#include "core/internal/migration_file.h"
#include "core/internal/upcast_steps.h"

namespace rill {

using upcast::Step;

namespace {

struct CodeUpcaster {
  std::string event;
  uint32_t from, to;
  UpcastFn fn;
  std::string name;
  bool splits;
};
std::vector<CodeUpcaster>& CodeUpcasters() {
  static std::vector<CodeUpcaster> v;
  return v;
}

}  // namespace

// ---- Upcaster ------------------------------------------------------------------

Status upcast::StepIndex::Add(Step step) {
  auto key = [](const Step& s) { return std::tie(s.event, s.from); };
  auto pos = std::lower_bound(steps.begin(), steps.end(), step, [&](const Step& a, const Step& b) { return key(a) < key(b); });
  if (pos != steps.end() && pos->event == step.event && pos->from == step.from)
    return Status::InvalidArgument(fmt::format("{}: duplicate upcaster for {} schema {} (already defined by {})",
                                               step.source, step.event, step.from, pos->source));
  steps.insert(pos, std::move(step));
  by_type.clear();
  current.clear();
  partners.clear();
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    by_type[s.event][s.from] = i;
    uint32_t& c = current[s.event];
    c = std::max({c, s.to, 1u});
    if (!s.retype.empty()) {
      uint32_t& r = current[s.retype];
      r = std::max({r, s.to, 1u});
    }
    for (const auto& [type, schema] : s.produces) {
      uint32_t& p = current[type];
      p = std::max({p, schema, 1u});
    }
    if (!s.merge_into.empty()) partners.insert(s.merge_into);
  }
  return Status::OK();
}

Upcaster::Upcaster() : impl_(std::make_unique<Impl>()) {}
Upcaster::~Upcaster() = default;

Status Upcaster::LoadJson(std::string_view text, const std::string& source) {
  Step step;
  RILL_RETURN_IF_ERROR(upcast::ParseMigrationFile(text, source, &step));
  return impl_->Add(std::move(step));
}

Status Upcaster::LoadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::IOError(fmt::format("{}: cannot read", path));
  return LoadJson(ss.str(), path);
}

Status Upcaster::LoadDirectory(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return Status::OK();
  if (!fs::is_directory(dir, ec)) return Status::InvalidArgument(fmt::format("{}: not a directory", dir));
  std::vector<std::string> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".json" && it->is_regular_file(ec)) files.push_back(it->path().string());
  }
  if (ec) return Status::IOError(fmt::format("{}: cannot list: {}", dir, ec.message()));
  std::sort(files.begin(), files.end());
  for (const auto& f : files) RILL_RETURN_IF_ERROR(LoadFile(f));
  return Status::OK();
}

Status Upcaster::LoadShipped() {
  for (const auto& m : ShippedMigrations()) RILL_RETURN_IF_ERROR(LoadJson(m.text, m.path));
  return Status::OK();
}

Status Upcaster::Register(const std::string& event, uint32_t from, uint32_t to, UpcastFn fn, const std::string& name,
                          bool splits) {
  std::string source = "c++:" + name;
  if (Status s = ValidateTypeName(event); !s.ok()) return s.WithContext(source);
  if (from < 1 || to != from + 1)
    return Status::InvalidArgument(fmt::format("{}: \"to\" must be \"from\" + 1 with from >= 1", source));
  if (!fn) return Status::InvalidArgument(source + ": no function");
  Step step;
  step.event = event;
  step.from = from;
  step.to = to;
  step.fn = std::move(fn);
  step.splits = splits;
  step.source = std::move(source);
  return impl_->Add(std::move(step));
}

bool Upcaster::empty() const { return impl_->steps.empty(); }

uint32_t Upcaster::CurrentSchema(std::string_view type) const {
  auto it = impl_->current.find(type);
  return it == impl_->current.end() ? 1 : it->second;
}

bool Upcaster::NeedsUpcast(std::string_view type, uint32_t schema) const {
  return impl_->FindStep(type, schema) != nullptr;
}

std::vector<MigrationInfo> Upcaster::Migrations() const {
  std::vector<MigrationInfo> out;
  for (const Step& s : impl_->steps) out.push_back({s.event, s.from, s.to, s.retype, s.source, s.splits, s.merge_into});
  return out;
}

std::vector<size_t> Upcaster::ChainOf(std::string_view type, uint32_t schema) const {
  std::vector<size_t> chain;
  size_t index = 0;
  std::string t(type);
  const Step* step = impl_->FindStep(t, schema, &index);
  while (step) {
    chain.push_back(index);
    if (step->splits || !step->merge_into.empty()) break;  // what follows depends on the data / the partner
    if (!step->retype.empty()) t = step->retype;
    step = impl_->FindStep(t, step->to, &index);
  }
  return chain;
}

bool Upcaster::ExpandsOnRead() const {
  for (const Step& s : impl_->steps)
    if (s.splits || !s.merge_into.empty()) return true;
  return false;
}

// ---- Installation ------------------------------------------------------------------

void AddCodeUpcaster(const std::string& event, uint32_t from, uint32_t to, UpcastFn fn, const std::string& name,
                     bool splits) {
  CodeUpcasters().push_back({event, from, to, std::move(fn), name, splits});
}

Result<std::shared_ptr<const Upcaster>> LoadUpcasters(const std::string& store_dir, const std::string& extra_migrations_dir) {
  auto upcaster = std::make_shared<Upcaster>();
  RILL_RETURN_IF_ERROR(upcaster->LoadShipped());
  for (const auto& c : CodeUpcasters())
    RILL_RETURN_IF_ERROR(upcaster->Register(c.event, c.from, c.to, c.fn, c.name, c.splits));
  if (!store_dir.empty()) RILL_RETURN_IF_ERROR(upcaster->LoadDirectory(MigrationsDir(store_dir)));
  if (!extra_migrations_dir.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(extra_migrations_dir, ec))
      return Status::NotFound(fmt::format("{}: no such migrations directory", extra_migrations_dir));
    RILL_RETURN_IF_ERROR(upcaster->LoadDirectory(extra_migrations_dir));
  }
  return std::shared_ptr<const Upcaster>(std::move(upcaster));
}

Status CheckDeclaredSchemas(const Upcaster& upcaster, const std::vector<std::pair<std::string, uint32_t>>& declared) {
  std::string problems;
  for (const auto& [type, schema] : declared) {
    uint32_t current = upcaster.CurrentSchema(type);
    if (current == schema) continue;
    if (!problems.empty()) problems += "; ";
    problems += current > schema
                    ? fmt::format("{}: migrations upcast it to schema {} but the domain declares {}", type, current, schema)
                    : fmt::format("{}: the domain declares schema {} but migrations stop at {} (add a step {} -> {})",
                                  type, schema, current, current, current + 1);
  }
  if (problems.empty()) return Status::OK();
  return Status::InvalidArgument("event schemas disagree with migrations: " + problems);
}

void InstallUpcaster(StoreOptions* options, std::shared_ptr<const Upcaster> upcaster) {
  if (!upcaster || upcaster->empty()) return;
  if (upcaster->ExpandsOnRead()) {
    // Splits and merges change how many events one stored event reads as.
    options->read_expand = [upcaster](Event&& e, const StoreOptions::StoredEventReader& read_stored,
                                      std::vector<Event>* out) { return upcaster->Expand(std::move(e), read_stored, out); };
    return;
  }
  options->read_transform = [upcaster](Event& e) { return upcaster->UpcastInPlace(e); };
}

Status InstallUpcasters(StoreOptions* options, const std::string& store_dir, const std::string& extra_migrations_dir) {
  auto loaded = LoadUpcasters(store_dir, extra_migrations_dir);
  if (!loaded.ok()) return loaded.status();
  InstallUpcaster(options, std::move(loaded).value());
  return Status::OK();
}

}  // namespace rill
