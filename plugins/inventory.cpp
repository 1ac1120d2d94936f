// The inventory sample domain (domains/inventory/) built as a plugin,
// librill_inventory.so (see plugins/bank.cpp).
#include "core/plugin.h"
#include "domains/domains.h"
#include "domains/sample_projections.h"

RILL_PLUGIN_WITH_PROJECTIONS("inventory", rill::domains::RegisterInventory, rill::RegisterInventoryProjections)
