// rill demo: a sandbox store with a small bank and a flash sale in it, so a
// newcomer sees rill work before reading anything, and learns which commands
// to look with next.
//
// Everything goes through the actor core, as `rill submit` does: commands to
// the account, transfer and sku aggregates, the transfer saga moving the
// money, then the projections (balances, transfers, stock) replayed from the
// log. The demo checks what an operator would: money is conserved in the
// balances model, no transfer is left half-way, no SKU is oversold.
//
// One shard, commands sent in a fixed order: the same seed writes the same
// events (ids and times aside). Many commands are in flight at once (the
// actors pipeline them into group commits), so the flash sale's purchases
// really race for the stock; the sku actor serialises them.
#include <fmt/format.h>
#include <stdlib.h>

#include <chrono>
#include <future>
#include <numeric>
#include <random>

#include "cli/cli.h"
#include "cli/project.h"
#include "core/process_manager.h"
#include "core/projection_runner.h"
#include "readmodel/read_model_store.h"

namespace rill::cli {
namespace {

struct DemoArgs {
  uint32_t accounts = 200;
  uint32_t rounds = 5;
  uint32_t skus = 20;
  uint32_t buyers = 40;  // purchase commands per SKU
  uint32_t seed = 42;
};

struct DemoCounts {
  uint64_t commands = 0;  // sent by the demo (not by the saga)
  uint64_t transfers = 0;
  uint64_t withdrawals_rejected = 0;
  uint64_t conflicts_refused = 0;
  uint64_t duplicates_answered = 0;
  uint64_t purchases = 0, purchases_rejected = 0, units_sold = 0;
  int64_t money_in = 0;  // deposits minus withdrawals made by the account holders
  int64_t stock = 0;     // units the SKUs were created with
};

Command Make(std::string type, std::string stream, std::string data) {
  Command c;
  c.type = std::move(type);
  c.stream = std::move(stream);
  c.data = std::move(data);
  return c;
}

std::string AccountStream(uint32_t i) { return fmt::format("account-{}", i + 1); }
std::string SkuStream(uint32_t i) { return fmt::format("sku-{}", i + 1); }

// Sends a batch of commands to the runtime at once (the actors pipeline them)
// and collects every outcome in order. A rejection is an outcome the scenario
// counts; anything else (I/O, corruption) ends the demo.
class Sender {
 public:
  Sender(ActorRuntime& rt, DemoCounts& counts, Progress& progress) : rt_(rt), counts_(counts), progress_(progress) {}

  Result<std::vector<Result<CommandResult>>> SendAll(std::vector<Command> commands) {
    if (InterruptRequested()) return Status::Interrupted("interrupted; the demo store holds what was written");
    std::vector<std::future<Result<CommandResult>>> pending;
    pending.reserve(commands.size());
    for (Command& c : commands) pending.push_back(rt_.Submit(std::move(c)));
    std::vector<Result<CommandResult>> results;
    results.reserve(pending.size());
    for (auto& f : pending) {
      results.push_back(f.get());
      if (!results.back().ok() && results.back().status().code() != Code::kRejected) return results.back().status();
      progress_.Update(++counts_.commands);
    }
    return results;
  }

 private:
  ActorRuntime& rt_;
  DemoCounts& counts_;
  Progress& progress_;
};

// The bank: accounts opened with a first deposit, then rounds of transfers
// (StartTransfer; the saga debits, credits, completes or fails and refunds)
// while every holder also pays in or takes out a little.
Status RunBank(EventStore& store, ActorRuntime& rt, const DemoArgs& a, DemoCounts& counts, Sender& sender) {
  std::mt19937 rng(a.seed);
  auto between = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const char* owners[] = {"Ann", "Bob", "Cy", "Dee", "Eli", "Fay", "Gus", "Hal", "Ida", "Jo"};
  const uint32_t n = a.accounts;

  std::vector<Command> open;
  std::vector<int64_t> opening(n);
  for (uint32_t i = 0; i < n; ++i) {
    opening[i] = between(1, 50) * 10;
    open.push_back(Make("OpenAccount", AccountStream(i), fmt::format(R"({{"owner":"{} {}"}})", owners[i % 10], i + 1)));
    open.push_back(Make("Deposit", AccountStream(i), fmt::format(R"({{"amount":{}}})", opening[i])));
  }
  auto opened = sender.SendAll(std::move(open));
  if (!opened.ok()) return opened.status();
  for (size_t k = 0; k < opened->size(); ++k) {
    if (!(*opened)[k].ok()) return (*opened)[k].status().WithContext(fmt::format("opening {}", AccountStream(k / 2)));
    if (k % 2 == 1) counts.money_in += opening[k / 2];
  }

  ProcessRunOptions saga;
  saga.stop = [] { return InterruptRequested(); };
  for (uint32_t round = 0; round < a.rounds; ++round) {
    // Half as many transfers as accounts, between random pairs; then each
    // holder's own deposit or withdrawal. Commands to one account run in the
    // order sent; the saga's debits and credits come after (RunProcessManagers).
    std::vector<Command> batch;
    for (uint32_t t = 0; t < n / 2; ++t) {
      uint32_t from = static_cast<uint32_t>(between(0, static_cast<int>(n) - 1));
      uint32_t to = (from + static_cast<uint32_t>(between(1, static_cast<int>(n) - 1))) % n;
      batch.push_back(Make("StartTransfer", fmt::format("transfer-{}", ++counts.transfers),
                           fmt::format(R"({{"from":"{}","to":"{}","amount":{}}})", AccountStream(from),
                                       AccountStream(to), between(1, 20) * 10)));
    }
    size_t own_from = batch.size();
    std::vector<int64_t> own(n);
    for (uint32_t i = 0; i < n; ++i) {
      int64_t amount = between(1, 10) * 5;
      bool withdraw = between(0, 2) == 0;
      own[i] = withdraw ? -amount : amount;
      batch.push_back(Make(withdraw ? "Withdraw" : "Deposit", AccountStream(i),
                           fmt::format(R"({{"amount":{}}})", amount)));
    }
    auto results = sender.SendAll(std::move(batch));
    if (!results.ok()) return results.status();
    for (size_t k = 0; k < results->size(); ++k) {
      const Result<CommandResult>& r = (*results)[k];
      if (k < own_from) {
        if (!r.ok()) return r.status().WithContext("StartTransfer");
      } else if (r.ok()) {
        counts.money_in += own[k - own_from];
      } else {
        counts.withdrawals_rejected++;  // insufficient funds: only a withdrawal can be rejected here
      }
    }
    RILL_RETURN_IF_ERROR(RunProcessManagers(store, rt, Domains(), saga).WithContext("the transfer saga"));
    if (InterruptRequested()) return Status::Interrupted("interrupted; the demo store holds what was written");
  }

  // A writer holding a stale expected version is refused: nothing interleaves.
  Command stale = Make("Deposit", AccountStream(0), R"({"amount":1000000})");
  stale.expected_version = 1;
  auto refused = rt.Execute(std::move(stale));
  if (refused.ok()) return Status::Corruption("a stale expected version was accepted");
  if (!refused.status().IsConflict()) return refused.status();
  counts.conflicts_refused++;
  // A retried command (same id) is answered from the first outcome.
  for (int attempt = 0; attempt < 2; ++attempt) {
    Command bonus = Make("Deposit", AccountStream(0), R"({"amount":5})");
    bonus.id = fmt::format("demo-bonus-{}", a.seed);
    auto r = rt.Execute(std::move(bonus));
    if (!r.ok()) return r.status();
    if (r->duplicate) {
      counts.duplicates_answered++;
    } else {
      counts.money_in += 5;
    }
  }
  counts.commands += 3;
  return Status::OK();
}

// The flash sale: SKUs with a small stock, then `buyers` purchase commands
// per SKU sent all at once. The sku actor takes them one at a time: a buyer
// asking for more than is left is rejected, so stock never goes below zero,
// without a lock.
Status RunFlashSale(const DemoArgs& a, DemoCounts& counts, Sender& sender) {
  std::mt19937 rng(a.seed + 1);
  auto between = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::vector<Command> create;
  for (uint32_t i = 0; i < a.skus; ++i) {
    int64_t stock = between(5, 30);
    counts.stock += stock;
    create.push_back(Make("CreateSku", SkuStream(i), fmt::format(R"({{"stock":{}}})", stock)));
  }
  auto created = sender.SendAll(std::move(create));
  if (!created.ok()) return created.status();
  for (const auto& r : *created)
    if (!r.ok()) return r.status().WithContext("CreateSku");

  std::vector<Command> purchases;
  std::vector<int64_t> quantity;
  for (uint64_t k = 0; k < uint64_t{a.skus} * a.buyers; ++k) {
    uint32_t sku = static_cast<uint32_t>(between(0, static_cast<int>(a.skus) - 1));
    quantity.push_back(between(1, 3));
    purchases.push_back(Make("Purchase", SkuStream(sku),
                             fmt::format(R"({{"quantity":{},"user":"user-{}"}})", quantity.back(), k + 1)));
  }
  auto bought = sender.SendAll(std::move(purchases));
  if (!bought.ok()) return bought.status();
  for (size_t k = 0; k < bought->size(); ++k) {
    if ((*bought)[k].ok()) {
      counts.purchases++;
      counts.units_sold += static_cast<uint64_t>(quantity[k]);
    } else {
      counts.purchases_rejected++;
    }
  }
  return Status::OK();
}

// What the replayed read models say.
struct Models {
  uint64_t accounts = 0, negative_balances = 0;
  int64_t total_balance = 0;
  uint64_t transfers_completed = 0, transfers_failed = 0, transfers_pending = 0;
  uint64_t skus = 0, oversold = 0;
  int64_t units_sold = 0, units_remaining = 0;
};

Status ReplayModels(const GlobalOptions& g, EventStore& store, Models* m) {
  ProjectionRegistry registry;
  RILL_RETURN_IF_ERROR(LoadProjections(store.dir(), &registry));
  for (const char* name : {"balances", "transfers", "stock"}) {
    const ProjectionRegistry::Entry* entry = registry.Find(name);
    if (!entry) return Status::NotFound(fmt::format("projection {} is not built in", name));
    Progress progress(g, fmt::format("replaying {}", name), store.LastPosition());
    ProjectionRunOptions o;
    o.should_stop = [] { return InterruptRequested(); };
    o.on_commit = [&progress](const ProjectionProgress& p) { progress.Update(p.position); };
    RILL_RETURN_IF_ERROR(ReplayProjection(store, *entry->projection, o).WithContext(name));
  }
  // One query per model; each returns a single row of integers.
  auto query = [&](const char* model, const char* sql, std::vector<int64_t*> out) -> Status {
    auto db = SqliteDb::Open(ReadModelPath(store.dir(), model), SqliteMode::kReadOnly);
    if (!db.ok()) return db.status();
    auto st = (*db)->Prepare(sql);
    if (!st.ok()) return st.status();
    auto row = st->Step();
    if (!row.ok()) return row.status();
    for (size_t c = 0; *row && c < out.size(); ++c) *out[c] = st->ColumnInt(static_cast<int>(c));
    return Status::OK();
  };
  int64_t accounts = 0, negative = 0, completed = 0, failed = 0, pending = 0, skus = 0, oversold = 0;
  RILL_RETURN_IF_ERROR(query("balances",
                             "SELECT COUNT(*), COALESCE(SUM(balance), 0), COALESCE(SUM(balance < 0), 0) FROM balances",
                             {&accounts, &m->total_balance, &negative}));
  RILL_RETURN_IF_ERROR(query("transfers",
                             "SELECT COALESCE(SUM(state = 'completed'), 0), COALESCE(SUM(state = 'failed'), 0), "
                             "COALESCE(SUM(state NOT IN ('completed', 'failed')), 0) FROM transfers",
                             {&completed, &failed, &pending}));
  RILL_RETURN_IF_ERROR(query("stock",
                             "SELECT COUNT(*), COALESCE(SUM(sold), 0), COALESCE(SUM(remaining), 0), "
                             "COALESCE(SUM(remaining < 0), 0) FROM stock",
                             {&skus, &m->units_sold, &m->units_remaining, &oversold}));
  m->accounts = static_cast<uint64_t>(accounts);
  m->negative_balances = static_cast<uint64_t>(negative);
  m->transfers_completed = static_cast<uint64_t>(completed);
  m->transfers_failed = static_cast<uint64_t>(failed);
  m->transfers_pending = static_cast<uint64_t>(pending);
  m->skus = static_cast<uint64_t>(skus);
  m->oversold = static_cast<uint64_t>(oversold);
  return Status::OK();
}

// The demo's promises, checked on the replayed models: money is conserved
// (transfers only move it), nothing is left half-way, nothing is oversold.
Status Verify(const DemoArgs& a, const DemoCounts& c, const Models& m) {
  if (m.accounts != a.accounts || m.total_balance != c.money_in || m.negative_balances != 0)
    return Status::Corruption(fmt::format("balances: {} accounts holding {} ({} negative); expected {} holding {}",
                                          m.accounts, m.total_balance, m.negative_balances, a.accounts, c.money_in));
  if (m.transfers_completed + m.transfers_failed != c.transfers || m.transfers_pending != 0)
    return Status::Corruption(fmt::format("transfers: {} completed, {} failed, {} pending of {}", m.transfers_completed,
                                          m.transfers_failed, m.transfers_pending, c.transfers));
  if (m.skus != a.skus || m.oversold != 0 || m.units_sold != static_cast<int64_t>(c.units_sold) ||
      m.units_sold + m.units_remaining != c.stock)
    return Status::Corruption(fmt::format("stock: {} SKUs, {} sold + {} remaining of {} ({} oversold); {} accepted",
                                          m.skus, m.units_sold, m.units_remaining, c.stock, m.oversold, c.units_sold));
  return Status::OK();
}

// What to run next, given the commands this build of rill has.
// `sandbox` is the temp dir the demo made, "" for --db.
std::vector<std::string> NextCommands(const CLI::App& root, const std::string& dir, const std::string& sandbox) {
  std::string db = fmt::format("rill --db {}", dir);
  auto has = [&root](const char* name) {
    return !root.get_subcommands([name](const CLI::App* sub) { return sub->get_name() == name; }).empty();
  };
  std::vector<std::string> next = {
      db + " stats",
      db + " streams --category account",
      db + " show transfer-1",
      db + " log --category transfer --count 8",
  };
  if (has("state")) next.push_back(db + " state account-1");
  if (has("query")) {
    next.push_back(db + " query balances \"SELECT * FROM balances ORDER BY balance DESC LIMIT 5\"");
    next.push_back(db + " query stock \"SELECT * FROM stock ORDER BY sold DESC LIMIT 5\"");
  }
  if (has("submit")) next.push_back(db + " submit Withdraw --to account-1 amount=1000000   # rejected: exit 4");
  if (has("project")) next.push_back(db + " project list");
  next.push_back(db + " check");
  if (!sandbox.empty()) next.push_back(fmt::format("rm -rf {}   # when done", sandbox));
  return next;
}

int RunDemo(const CLI::App& root, GlobalOptions& g, const DemoArgs& a) {
  if (a.accounts < 2) return Fail(g, kExitUsage, "--accounts must be at least 2");
  // Only an explicit --db is used; $RILL_DB and ./rill.db are never filled
  // with demo data. A fresh temp dir otherwise, kept so the next commands work.
  std::string dir = g.db, sandbox;
  if (dir.empty()) {
    const char* tmpdir = std::getenv("TMPDIR");
    std::string tmpl = fmt::format("{}/rill-demo-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (mkdtemp(tmpl.data()) == nullptr) return Fail(g, kExitError, fmt::format("cannot create {}", tmpl));
    sandbox = tmpl;
    dir = tmpl + "/bank.db";
  } else if (EventStore::Exists(dir)) {
    return Fail(g, kExitError, fmt::format("{} already holds a rill store; the demo needs a new directory", dir));
  }
  StoreOptions options;
  options.create_if_missing = true;
  // A sandbox: acknowledge before fsync (a power loss could drop its last
  // events, a crash cannot). The saga waits for each step, so this is what
  // keeps the demo to seconds.
  options.durability = Durability::kAsync;
  auto opened = EventStore::Open(dir, options);
  if (!opened.ok()) return Fail(g, opened.status().WithContext(fmt::format("cannot create a store at {}", dir)));
  EventStore& store = **opened;

  if (!g.json && !g.quiet) {
    std::printf("rill demo: a bank with %u accounts and %u rounds of transfers, and a flash sale of %u SKUs, in %s\n",
                a.accounts, a.rounds, a.skus, dir.c_str());
    std::fflush(stdout);
  }
  auto start = std::chrono::steady_clock::now();
  DemoCounts counts;
  Status s;
  {
    auto rt = StartRuntime(store, {.shards = 1});
    if (!rt.ok()) return Fail(g, rt.status());
    Progress progress(g, "commands");
    Sender sender(**rt, counts, progress);
    s = RunBank(store, **rt, a, counts, sender);
    if (s.ok()) s = RunFlashSale(a, counts, sender);
  }
  if (!s.ok()) return Fail(g, s.WithContext("demo"));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Models models;
  s = store.Flush();
  if (s.ok()) s = ReplayModels(g, store, &models);
  if (s.ok()) s = Verify(a, counts, models);
  if (!s.ok()) return Fail(g, s.WithContext("demo: checking the replayed read models"));
  double total_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  uint64_t events = store.LastPosition();
  std::vector<std::string> next = NextCommands(root, dir, sandbox);

  if (g.json) {
    PrintJsonLine([&](JsonWriter& w) {
      auto u = [&w](const char* key, uint64_t v) {
        w.Key(key);
        w.Uint64(v);
      };
      w.StartObject();
      w.Key("db");
      w.String(dir);
      u("events", events);
      u("commands", counts.commands);
      u("accounts", a.accounts);
      u("transfers", counts.transfers);
      u("transfers_completed", models.transfers_completed);
      u("transfers_failed", models.transfers_failed);
      u("withdrawals_rejected", counts.withdrawals_rejected);
      u("conflicts_refused", counts.conflicts_refused);
      u("duplicates_answered", counts.duplicates_answered);
      w.Key("total_balance");
      w.Int64(models.total_balance);
      w.Key("money_in");
      w.Int64(counts.money_in);
      u("skus", a.skus);
      w.Key("stock");
      w.Int64(counts.stock);
      u("purchases", counts.purchases);
      u("purchases_rejected", counts.purchases_rejected);
      u("units_sold", counts.units_sold);
      w.Key("units_remaining");
      w.Int64(models.units_remaining);
      u("oversold", models.oversold);
      w.Key("seconds");
      w.Double(total_seconds);
      w.Key("next");
      w.StartArray();
      for (const std::string& line : next) w.String(line);
      w.EndArray();
      w.EndObject();
    });
  } else if (!g.quiet) {
    bool color = ColorOn(STDOUT_FILENO);
    auto ok = [color](const char* text) { return Paint(text, Style::kGreen, color); };
    std::printf("%llu commands -> %llu events in %.2f s (%.0f commands/s)\n",
                static_cast<unsigned long long>(counts.commands), static_cast<unsigned long long>(events), seconds,
                seconds > 0 ? static_cast<double>(counts.commands) / seconds : 0.0);
    std::printf("bank: %u accounts; %llu transfers through the transfer saga: %llu completed, %llu failed\n"
                "  (the payer lacked the funds: nothing was taken); %llu withdrawals rejected for lack of funds;\n"
                "  a stale expected version was refused (conflict); a retried command id was answered once\n",
                a.accounts, static_cast<unsigned long long>(counts.transfers),
                static_cast<unsigned long long>(models.transfers_completed),
                static_cast<unsigned long long>(models.transfers_failed),
                static_cast<unsigned long long>(counts.withdrawals_rejected));
    std::printf("flash sale: %u SKUs, %llu purchase commands at once: %llu accepted (%llu units), %llu rejected\n"
                "  as sold out\n",
                a.skus, static_cast<unsigned long long>(counts.purchases + counts.purchases_rejected),
                static_cast<unsigned long long>(counts.purchases), static_cast<unsigned long long>(counts.units_sold),
                static_cast<unsigned long long>(counts.purchases_rejected));
    std::printf("replayed balances, transfers and stock from the log:\n");
    std::printf("  %s total balance %lld = what the holders paid in minus what they took out\n",
                ok("money conserved:").c_str(), static_cast<long long>(models.total_balance));
    std::printf("  %s %llu transfers completed or failed, none half-way\n", ok("saga done:").c_str(),
                static_cast<unsigned long long>(models.transfers_completed + models.transfers_failed));
    std::printf("  %s %lld of %lld units sold, none below zero\n", ok("never oversold:").c_str(),
                static_cast<long long>(models.units_sold), static_cast<long long>(counts.stock));
    std::printf("\nlook around:\n");
    for (const std::string& line : next) std::printf("  %s\n", line.c_str());
  }
  return kExitOk;
}

void SetupDemo(CLI::App& root, GlobalOptions& g) {
  auto a = std::make_shared<DemoArgs>();
  CLI::App* demo =
      root.add_subcommand("demo", "Build a sandbox store with a bank and a flash sale in it, then show what to run next");
  demo->add_option("--accounts", a->accounts, "Number of accounts")->capture_default_str()->check(CLI::Range(2u, 1000000u));
  demo->add_option("--rounds", a->rounds, "Rounds of transfers (accounts/2 each) and deposits")->capture_default_str();
  demo->add_option("--skus", a->skus, "SKUs in the flash sale (0: none)")->capture_default_str();
  demo->add_option("--buyers", a->buyers, "Purchase commands per SKU in the flash sale")->capture_default_str();
  demo->add_option("--seed", a->seed, "Random seed (the same seed writes the same events)")->capture_default_str();
  demo->callback([&root, a, &g] { g.exit_code = RunDemo(root, g, *a); });
}

}  // namespace

RILL_COMMANDS("demo", SetupDemo);

}  // namespace rill::cli
