// The sample domains' read models, built into rill:
//   balances   (SQL, domains/bank/projections/balances.sql)   account, owner, balance, status
//   transfers  (C++, domains/bank/projections/transfers.cpp)  id, from_account, to_account, amount, state, reason
//   stock      (SQL, domains/inventory/projections/stock.sql) sku, remaining, sold
// Keys are stream names ("account-42", "transfer-7", "sku-3"), so the models
// join with each other and with `rill show`.
#pragma once

#include <memory>

#include "core/projection.h"

namespace rill {

// Adds the three as built-ins. Explicit (not static registration) so that
// linking rill_domains as a static library never drops them.
Status RegisterSampleProjections(ProjectionRegistry* registry);
// One domain's read models (the sample domains built as plugins: plugins/).
Status RegisterBankProjections(ProjectionRegistry* registry);       // balances, transfers
Status RegisterInventoryProjections(ProjectionRegistry* registry);  // stock

// The C++ one, for tests and embedders.
std::shared_ptr<const Projection> TransfersProjection();

}  // namespace rill
