#include "core/migration_check.h"

#include <fmt/format.h>

#include <map>

namespace rill {

Status CheckMigrationsAgainstDomains(const Upcaster& upcaster, const DomainRegistry& domains) {
  // event type -> (domain, declared schema) for every aggregate declaring it.
  std::map<std::string, std::vector<std::pair<std::string, uint32_t>>, std::less<>> declared;
  for (const AggregateType* a : domains.aggregates())
    for (const MessageInfo& e : a->events()) declared[e.type].emplace_back(a->name(), e.schema);
  auto schema_in = [&](const std::string& domain, const std::string& type) -> uint32_t {
    auto it = declared.find(type);
    if (it == declared.end()) return 0;
    for (const auto& [d, s] : it->second)
      if (d == domain) return s;
    return 0;
  };
  std::string problems;
  auto refuse = [&](std::string what) { problems += (problems.empty() ? "" : "; ") + what; };
  for (const MigrationInfo& m : upcaster.Migrations()) {
    const std::string& produced = m.retype.empty() ? m.event : m.retype;
    if (auto it = declared.find(produced); it != declared.end()) {
      for (const auto& [domain, schema] : it->second)
        if (m.to > schema)
          refuse(fmt::format("{}: upcasts {} to schema {} but domain {} declares {} at schema {}", m.source, produced,
                             m.to, domain, produced, schema));
    }
    if (m.retype.empty()) continue;
    if (auto it = declared.find(m.event); it != declared.end()) {
      for (const auto& [domain, schema] : it->second) {
        (void)schema;
        if (schema_in(domain, m.retype) < m.to)
          refuse(fmt::format("{}: retypes {} (schema {}) to {}, which domain {} does not declare at schema {}",
                             m.source, m.event, m.from, m.retype, domain, m.to));
      }
    }
  }
  if (problems.empty()) return Status::OK();
  return Status::InvalidArgument(
      "migration changes what a domain reads (declare the new schema in the domain, or remove the file): " + problems);
}

}  // namespace rill
