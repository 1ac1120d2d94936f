// Migrations against domains: a migration step must not change what a
// registered aggregate reads. Domains declare the schema they write (and so
// read) per event type (an event struct's kSchema, default 1; core/aggregate.h).
// A step is refused when
//   - it produces a domain's event type at a schema above the one the domain
//     declares (a `convert` 1 -> 2 of Deposited while bank declares Deposited
//     at 1: the domain would read schema-2 data as if it were schema 1), or
//   - it retypes a domain's event into a type that domain does not declare at
//     the step's `to` schema or above (the domain would stop seeing it).
// A split or merge of a domain's event is allowed only at a schema the domain
// declares (the first rule), so the domain was written for it.
// Run by rill::OpenStore (core/open_store.h) at every open.
#pragma once

#include "core/domain_registry.h"
#include "core/upcaster.h"
#include "store/status.h"

namespace rill {

// InvalidArgument, one line, naming for each refused step its source (file),
// the event and the domain. OK when every step agrees with `domains`. The
// only error; pure (reads both arguments, any thread).
Status CheckMigrationsAgainstDomains(const Upcaster& upcaster, const DomainRegistry& domains);

}  // namespace rill
