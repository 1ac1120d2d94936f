// The bank sample domain (domains/bank/) built as a plugin, librill_bank.so:
// the same sources `rill` compiles in, loaded with
//   rill --no-builtin-domains --plugin librill_bank.so ...
// so CI proves a domain works as a plugin exactly as it does built in.
#include "core/plugin.h"
#include "domains/domains.h"
#include "domains/sample_projections.h"

RILL_PLUGIN_WITH_PROJECTIONS("bank", rill::domains::RegisterBank, rill::RegisterBankProjections)
