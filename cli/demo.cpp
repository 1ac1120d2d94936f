// rill demo: a sandbox store with a small bank and a flash sale in it, so a newcomer sees rill
// work before reading anything, and learns which commands to look with next.
//
// The scenario is appended raw through EventStore (the same events the bank
// domain's commands produce), in rounds: every round's appends go to the
// group-commit writer together, so the demo also shows batching at work. A
// stale writer is refused and a retried request id is answered without a
// second write. At the end every balance is replayed from the log and
// compared with what the scenario meant to write.
#include <fmt/format.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <numeric>
#include <random>

#include "cli/cli.h"

namespace rill::cli {
namespace {

struct DemoArgs {
  uint32_t skus = 20;
  uint32_t accounts = 200;
  uint32_t rounds = 10;
  uint32_t seed = 42;
};

struct DemoCounts {
  uint64_t appends = 0;  // acknowledged append requests
  uint64_t events = 0;
  uint64_t transfers = 0;
  uint64_t failed_transfers = 0;
  uint64_t conflicts_refused = 0;
  uint64_t duplicates_answered = 0;
  uint64_t purchases = 0;
  uint64_t units_sold = 0;
  uint64_t purchase_races_lost = 0;  // refused by expected version, retried
  uint64_t sold_out_refusals = 0;
};

NewEvent Make(std::string type, std::string data) {
  NewEvent event;
  event.type = std::move(type);
  event.data = std::move(data);
  return event;
}

std::string AccountStream(uint32_t i) { return fmt::format("account-{}", i + 1); }

// Sends every request to the writer at once and waits for all of them: one
// round becomes a handful of group-commit batches instead of one per request.
class RoundWriter {
 public:
  RoundWriter(EventStore& store, DemoCounts& counts, Progress& progress)
      : store_(store), counts_(counts), progress_(progress) {}

  // Every request's outcome, in request order.
  std::vector<Result<AppendResult>> WriteAll(std::vector<AppendRequest> requests) {
    std::vector<std::future<Result<AppendResult>>> pending;
    pending.reserve(requests.size());
    for (AppendRequest& request : requests) pending.push_back(store_.AppendAsync(std::move(request)));
    std::vector<Result<AppendResult>> results;
    results.reserve(pending.size());
    for (auto& f : pending) {
      results.push_back(f.get());
      if (!results.back().ok()) continue;
      counts_.appends++;
      counts_.events += results.back()->events;
    }
    progress_.Update(counts_.events);
    return results;
  }

  // OK if every request succeeded, else the first failure.
  Status Write(std::vector<AppendRequest> requests) {
    for (const Result<AppendResult>& r : WriteAll(std::move(requests))) {
      if (!r.ok()) return r.status();
    }
    return Status::OK();
  }

 private:
  EventStore& store_;
  DemoCounts& counts_;
  Progress& progress_;
};

// The bank, as the scenario wrote it: expected balances and stream versions.
struct Bank {
  std::vector<int64_t> balance;
  std::vector<uint64_t> version;
};

Status RunScenario(EventStore& store, const DemoArgs& a, Bank& bank, DemoCounts& counts, Progress& progress) {
  RoundWriter writer(store, counts, progress);
  std::mt19937 rng(a.seed);
  auto between = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const char* owners[] = {"Ann", "Bob", "Cy", "Dee", "Eli", "Fay", "Gus", "Hal", "Ida", "Jo"};
  const uint32_t n = a.accounts;
  bank.balance.assign(n, 0);
  bank.version.assign(n, 0);

  // Opening: each account is a new stream (no-stream) with a first deposit.
  std::vector<AppendRequest> round;
  for (uint32_t i = 0; i < n; ++i) {
    int64_t amount = between(1, 50) * 10;
    AppendRequest r;
    r.stream = AccountStream(i);
    r.expected = ExpectedVersion::NoStream();
    r.events.push_back(Make("AccountOpened", fmt::format(R"({{"owner":"{} {}"}})", owners[i % 10], i + 1)));
    r.events.push_back(Make("Deposited", fmt::format(R"({{"amount":{}}})", amount)));
    bank.balance[i] = amount;
    bank.version[i] = 2;
    round.push_back(std::move(r));
  }
  RILL_RETURN_IF_ERROR(writer.Write(std::move(round)));

  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  uint64_t next_transfer = 1;
  for (uint32_t round_no = 0; round_no < a.rounds; ++round_no) {
    if (InterruptRequested()) return Status::Interrupted("interrupted; the demo store holds what was written");
    // Transfers between disjoint pairs, so no account is written twice in
    // one phase: start, then debit (or fail for lack of funds), then credit.
    std::shuffle(order.begin(), order.end(), rng);
    struct Move {
      std::string stream;
      uint32_t from, to;
      int64_t amount;
    };
    std::vector<Move> moves;
    for (uint32_t p = 0; p + 1 < n; p += 2) {
      moves.push_back({fmt::format("transfer-{}", next_transfer++), order[p], order[p + 1], between(1, 40) * 10});
    }
    std::vector<AppendRequest> start, debit, credit;
    for (const Move& m : moves) {
      AppendRequest r;
      r.stream = m.stream;
      r.expected = ExpectedVersion::NoStream();
      r.events.push_back(Make("TransferStarted", fmt::format(R"({{"from":"{}","to":"{}","amount":{}}})",
                                                            AccountStream(m.from), AccountStream(m.to), m.amount)));
      start.push_back(std::move(r));
    }
    RILL_RETURN_IF_ERROR(writer.Write(std::move(start)));
    std::vector<bool> debited(moves.size(), false);
    for (size_t k = 0; k < moves.size(); ++k) {
      const Move& m = moves[k];
      AppendRequest r;
      if (bank.balance[m.from] >= m.amount) {
        r.stream = AccountStream(m.from);
        r.expected = ExpectedVersion::Exact(bank.version[m.from]++);
        r.events.push_back(Make("Withdrawn", fmt::format(R"({{"amount":{}}})", m.amount)));
        bank.balance[m.from] -= m.amount;
        debited[k] = true;
      } else {
        r.stream = m.stream;
        r.expected = ExpectedVersion::Exact(1);
        r.events.push_back(Make("TransferFailed", R"({"reason":"insufficient funds"})"));
        counts.failed_transfers++;
      }
      debit.push_back(std::move(r));
    }
    RILL_RETURN_IF_ERROR(writer.Write(std::move(debit)));
    for (size_t k = 0; k < moves.size(); ++k) {
      if (!debited[k]) continue;
      const Move& m = moves[k];
      AppendRequest to;
      to.stream = AccountStream(m.to);
      to.expected = ExpectedVersion::Exact(bank.version[m.to]++);
      to.events.push_back(Make("Deposited", fmt::format(R"({{"amount":{}}})", m.amount)));
      bank.balance[m.to] += m.amount;
      credit.push_back(std::move(to));
      AppendRequest done;
      done.stream = m.stream;
      done.expected = ExpectedVersion::Exact(1);
      done.events.push_back(Make("TransferDebited", "{}"));
      done.events.push_back(Make("TransferCompleted", "{}"));
      credit.push_back(std::move(done));
    }
    counts.transfers += moves.size();
    RILL_RETURN_IF_ERROR(writer.Write(std::move(credit)));

    // Everyone also pays in or takes out a little.
    std::vector<AppendRequest> own;
    for (uint32_t i = 0; i < n; ++i) {
      int64_t amount = between(1, 10) * 5;
      bool withdraw = between(0, 2) == 0 && bank.balance[i] >= amount;
      AppendRequest r;
      r.stream = AccountStream(i);
      r.expected = ExpectedVersion::Exact(bank.version[i]++);
      r.events.push_back(Make(withdraw ? "Withdrawn" : "Deposited", fmt::format(R"({{"amount":{}}})", amount)));
      bank.balance[i] += withdraw ? -amount : amount;
      own.push_back(std::move(r));
    }
    RILL_RETURN_IF_ERROR(writer.Write(std::move(own)));
  }

  // A writer holding a stale version is refused: nothing is interleaved.
  AppendRequest stale;
  stale.stream = AccountStream(0);
  stale.expected = ExpectedVersion::Exact(1);
  stale.events.push_back(Make("Deposited", R"({"amount":1000000})"));
  Result<AppendResult> refused = store.Append(stale);
  if (refused.ok()) return Status::Corruption("a stale expected version was accepted");
  if (!refused.status().IsConflict()) return refused.status();
  counts.conflicts_refused++;

  // A retried request (same id) is answered from the first outcome.
  AppendRequest once;
  once.stream = AccountStream(0);
  once.expected = ExpectedVersion::Exact(bank.version[0]);
  once.request_id = fmt::format("demo-bonus-{}", a.seed);
  once.events.push_back(Make("Deposited", R"({"amount":5})"));
  for (int attempt = 0; attempt < 2; ++attempt) {
    Result<AppendResult> r = store.Append(once);
    if (!r.ok()) return r.status();
    if (r->duplicate) {
      counts.duplicates_answered++;
    } else {
      counts.appends++;
      counts.events += r->events;
      bank.balance[0] += 5;
      bank.version[0]++;
    }
  }
  progress.Update(counts.events);
  return Status::OK();
}

// The flash sale, as the scenario wrote it.
struct Sale {
  std::vector<int64_t> stock;     // initial
  std::vector<int64_t> remaining;
  std::vector<uint64_t> version;
};

std::string SkuStream(uint32_t i) { return fmt::format("sku-{}", i + 1); }

// A flash sale: buyers race for scarce stock. Each round, three buyers per SKU
// read the same version and try to buy; the expected version lets exactly one
// through and the others retry on the next round with what they read anew.
// A buyer asking for more than is left is turned away. Stock never goes
// below zero, without a lock.
Status RunFlashSale(EventStore& store, const DemoArgs& a, Sale& sale, DemoCounts& counts, Progress& progress) {
  RoundWriter writer(store, counts, progress);
  std::mt19937 rng(a.seed + 1);
  auto between = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  sale.stock.assign(a.skus, 0);
  sale.version.assign(a.skus, 1);
  std::vector<AppendRequest> create;
  for (uint32_t i = 0; i < a.skus; ++i) {
    sale.stock[i] = between(5, 30);
    AppendRequest r;
    r.stream = SkuStream(i);
    r.expected = ExpectedVersion::NoStream();
    r.events.push_back(Make("SkuCreated", fmt::format(R"({{"stock":{}}})", sale.stock[i])));
    create.push_back(std::move(r));
  }
  sale.remaining = sale.stock;
  RILL_RETURN_IF_ERROR(writer.Write(std::move(create)));

  uint64_t next_user = 1;
  for (bool open = a.skus > 0; open;) {
    if (InterruptRequested()) return Status::Interrupted("interrupted; the demo store holds what was written");
    open = false;
    struct Attempt {
      uint32_t sku;
      int64_t quantity;
    };
    std::vector<Attempt> attempts;
    std::vector<AppendRequest> round;
    for (uint32_t i = 0; i < a.skus; ++i) {
      if (sale.remaining[i] == 0) continue;
      open = true;
      for (int buyer = 0; buyer < 3; ++buyer) {
        int64_t quantity = between(1, 3);
        if (quantity > sale.remaining[i]) {  // what this buyer read: not enough left
          counts.sold_out_refusals++;
          continue;
        }
        AppendRequest r;
        r.stream = SkuStream(i);
        r.expected = ExpectedVersion::Exact(sale.version[i]);
        r.events.push_back(
            Make("Purchased", fmt::format(R"({{"quantity":{},"user":"user-{}"}})", quantity, next_user++)));
        round.push_back(std::move(r));
        attempts.push_back({i, quantity});
      }
    }
    std::vector<Result<AppendResult>> results = writer.WriteAll(std::move(round));
    for (size_t k = 0; k < results.size(); ++k) {
      if (!results[k].ok()) {
        if (!results[k].status().IsConflict()) return results[k].status();
        counts.purchase_races_lost++;
        continue;
      }
      const Attempt& at = attempts[k];
      sale.version[at.sku]++;
      sale.remaining[at.sku] -= at.quantity;
      counts.purchases++;
      counts.units_sold += static_cast<uint64_t>(at.quantity);
    }
  }
  return Status::OK();
}

// Replays every SKU: what was sold never exceeds what was stocked.
Status VerifyStock(EventStore& store, const Sale& sale) {
  for (uint32_t i = 0; i < sale.stock.size(); ++i) {
    std::vector<Event> events;
    RILL_RETURN_IF_ERROR(store.ReadStream(SkuStream(i), Direction::kForward, 1, sale.version[i] + 1, &events));
    int64_t sold = 0;
    for (const Event& e : events) {
      auto at = e.data.find("\"quantity\":");
      if (e.type == "Purchased" && at != std::string::npos) sold += std::strtoll(e.data.c_str() + at + 11, nullptr, 10);
    }
    if (events.size() != sale.version[i] || sold != sale.stock[i] - sale.remaining[i] || sold > sale.stock[i]) {
      return Status::Corruption(fmt::format("{}: replayed {} events selling {} of {}; expected {} events selling {}",
                                            SkuStream(i), events.size(), sold, sale.stock[i], sale.version[i],
                                            sale.stock[i] - sale.remaining[i]));
    }
  }
  return Status::OK();
}

// Replays every account from the log and compares it with the scenario.
Status VerifyBalances(EventStore& store, const Bank& bank) {
  for (uint32_t i = 0; i < bank.balance.size(); ++i) {
    std::vector<Event> events;
    RILL_RETURN_IF_ERROR(store.ReadStream(AccountStream(i), Direction::kForward, 1, bank.version[i] + 1, &events));
    int64_t balance = 0;
    for (const Event& e : events) {
      auto at = e.data.find("\"amount\":");
      if (at == std::string::npos) continue;
      int64_t amount = std::strtoll(e.data.c_str() + at + 9, nullptr, 10);
      balance += e.type == "Withdrawn" ? -amount : amount;
    }
    if (events.size() != bank.version[i] || balance != bank.balance[i] || balance < 0) {
      return Status::Corruption(fmt::format("{}: replayed {} events, balance {}; expected {} events, balance {}",
                                            AccountStream(i), events.size(), balance, bank.version[i],
                                            bank.balance[i]));
    }
  }
  return Status::OK();
}

// What to run next, given the commands this build of rill has.
// `sandbox` is the temp dir the demo made (removed when done), "" for --db.
std::vector<std::string> NextCommands(const CLI::App& root, const std::string& dir, const std::string& sandbox) {
  std::string db = fmt::format("rill --db {}", dir);
  std::vector<std::string> next = {
      db + " streams --category account",
      db + " show account-1",
      db + " log --category transfer --count 8",
      db + " show sku-1",
      db + " stats",
      db + " check",
  };
  auto has = [&root](const char* name) {
    return !root.get_subcommands([name](const CLI::App* sub) { return sub->get_name() == name; }).empty();
  };
  if (has("state")) next.push_back(db + " state account-1");
  if (has("submit")) next.push_back(db + " submit Withdraw --to account-1 amount=1000000   # rejected: exit 4");
  if (has("project")) next.push_back(db + " project list");
  if (has("run")) next.push_back(db + " run");
  next.push_back(db + " --json export > bank.jsonl");
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
  auto opened = EventStore::Open(dir, options);
  if (!opened.ok()) return Fail(g, opened.status().WithContext(fmt::format("cannot create a store at {}", dir)));
  EventStore& store = **opened;

  if (!g.json && !g.quiet) {
    std::printf("rill demo: a bank with %u accounts, %u rounds of transfers, and a flash sale of %u SKUs, in %s\n",
                a.accounts, a.rounds, a.skus, dir.c_str());
    std::fflush(stdout);
  }
  auto start = std::chrono::steady_clock::now();
  DemoCounts counts;
  Bank bank;
  Sale sale;
  Status s;
  {
    Progress progress(g, "appending");
    s = RunScenario(store, a, bank, counts, progress);
    if (s.ok()) s = RunFlashSale(store, a, sale, counts, progress);
  }
  if (!s.ok()) return Fail(g, s.WithContext("demo"));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  s = store.Flush();
  if (s.ok()) s = VerifyBalances(store, bank);
  if (s.ok()) s = VerifyStock(store, sale);
  if (!s.ok()) return Fail(g, s.WithContext("demo: verifying the replayed balances and stock"));
  int64_t money = std::accumulate(bank.balance.begin(), bank.balance.end(), int64_t{0});
  std::vector<std::string> next = NextCommands(root, dir, sandbox);

  if (g.json) {
    PrintJsonLine([&](JsonWriter& w) {
      w.StartObject();
      w.Key("db");
      w.String(dir);
      w.Key("events");
      w.Uint64(counts.events);
      w.Key("appends");
      w.Uint64(counts.appends);
      w.Key("streams");
      w.Uint64(a.accounts + counts.transfers + a.skus);
      w.Key("accounts");
      w.Uint(a.accounts);
      w.Key("transfers");
      w.Uint64(counts.transfers);
      w.Key("failed_transfers");
      w.Uint64(counts.failed_transfers);
      w.Key("conflicts_refused");
      w.Uint64(counts.conflicts_refused);
      w.Key("duplicates_answered");
      w.Uint64(counts.duplicates_answered);
      w.Key("total_balance");
      w.Int64(money);
      w.Key("skus");
      w.Uint(a.skus);
      w.Key("purchases");
      w.Uint64(counts.purchases);
      w.Key("units_sold");
      w.Uint64(counts.units_sold);
      w.Key("purchase_races_lost");
      w.Uint64(counts.purchase_races_lost);
      w.Key("sold_out_refusals");
      w.Uint64(counts.sold_out_refusals);
      w.Key("last_position");
      w.Uint64(store.LastPosition());
      w.Key("seconds");
      w.Double(seconds);
      w.Key("next");
      w.StartArray();
      for (const std::string& line : next) w.String(line);
      w.EndArray();
      w.EndObject();
    });
  } else if (!g.quiet) {
    std::printf("appended %llu events in %llu appends (%.2f s, %.0f events/s)\n",
                static_cast<unsigned long long>(counts.events), static_cast<unsigned long long>(counts.appends),
                seconds, seconds > 0 ? static_cast<double>(counts.events) / seconds : 0.0);
    std::printf("  %u accounts, %llu transfers (%llu failed for lack of funds), total balance %lld\n", a.accounts,
                static_cast<unsigned long long>(counts.transfers),
                static_cast<unsigned long long>(counts.failed_transfers), static_cast<long long>(money));
    std::printf("  a stale expected version was refused (conflict); a retried request id was answered once\n");
    std::printf("  flash sale: %u SKUs sold out in %llu purchases (%llu units); %llu buyers lost a race (conflict on\n"
                "  the expected version: they retry), %llu were turned away for lack of stock; never oversold\n",
                a.skus, static_cast<unsigned long long>(counts.purchases),
                static_cast<unsigned long long>(counts.units_sold),
                static_cast<unsigned long long>(counts.purchase_races_lost),
                static_cast<unsigned long long>(counts.sold_out_refusals));
    std::printf("  every balance and every stock replayed from the log matches\n\nlook around:\n");
    for (const std::string& line : next) std::printf("  %s\n", line.c_str());
  }
  return kExitOk;
}

void SetupDemo(CLI::App& root, GlobalOptions& g) {
  auto a = std::make_shared<DemoArgs>();
  CLI::App* demo = root.add_subcommand("demo", "Build a sandbox store with a small bank in it, then show what to run next");
  demo->add_option("--accounts", a->accounts, "Number of accounts")->capture_default_str()->check(CLI::Range(2u, 1000000u));
  demo->add_option("--skus", a->skus, "SKUs in the flash sale (0: none)")->capture_default_str();
  demo->add_option("--rounds", a->rounds, "Rounds of transfers and deposits")->capture_default_str();
  demo->add_option("--seed", a->seed, "Random seed (the same seed writes the same events)")->capture_default_str();
  demo->callback([&root, a, &g] { g.exit_code = RunDemo(root, g, *a); });
}

}  // namespace

RILL_COMMANDS(5, SetupDemo);

}  // namespace rill::cli
