#include "domains/domains.h"

namespace rill::domains {

void RegisterAll(DomainRegistry& registry) {
  RegisterBank(registry);
  RegisterInventory(registry);
}

}  // namespace rill::domains
