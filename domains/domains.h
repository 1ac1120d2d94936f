// The sample domains compiled into `rill`, and the examples users copy.
// Registration is explicit (no static initializers), so linking the static
// library never drops a domain.
#pragma once

#include <memory>

#include "core/domain_registry.h"
#include "core/process_manager.h"

namespace rill::domains {

// bank: `account` (OpenAccount, Deposit, Withdraw, CloseAccount) and
// `transfer` (StartTransfer) with the transfer process manager.
void RegisterBank(DomainRegistry& registry);
// inventory: `sku` (CreateSku, Purchase, Restock).
void RegisterInventory(DomainRegistry& registry);
// Every sample domain.
void RegisterAll(DomainRegistry& registry);

// The transfer saga: debit the source, credit the target, complete; when the
// credit is rejected, refund the source and fail the transfer. Exposed so
// tests can wrap it (crash injection).
std::shared_ptr<ProcessManager> MakeTransferProcessManager();

}  // namespace rill::domains
