// bank: the `account` aggregate. No overdraft; a closed account rejects
// everything.
#include <cstdint>

#include "core/aggregate.h"
#include "domains/domains.h"

namespace rill::domains {
namespace {

struct Account {
  std::string owner;
  int64_t balance = 0;
  std::string status;  // "open" | "closed" ("" before OpenAccount)
  template <class F> void fields(F& f) { f("owner", owner); f("balance", balance); f("status", status); }
};

struct OpenAccount {
  static constexpr const char* kType = "OpenAccount";
  std::string owner;
  template <class F> void fields(F& f) { f("owner", owner); }
};
struct Deposit {
  static constexpr const char* kType = "Deposit";
  int64_t amount = 0;
  template <class F> void fields(F& f) { f("amount", amount); }
};
struct Withdraw {
  static constexpr const char* kType = "Withdraw";
  int64_t amount = 0;
  template <class F> void fields(F& f) { f("amount", amount); }
};
struct CloseAccount {
  static constexpr const char* kType = "CloseAccount";
  template <class F> void fields(F&) {}
};

// AccountOpened is at schema 3: v1 {"owner":"Ann"} -> v2 {"owner":{"name":
// "Ann"},"currency":"EUR"} -> v3 "owner" renamed "holder"
// (migrations/bank/). Older stored events reach evolve already upcast.
struct Holder {
  static constexpr bool kJsonObject = true;
  std::string name;
  template <class F> void fields(F& f) { f("name", name); }
};
struct AccountOpened {
  static constexpr const char* kType = "AccountOpened";
  static constexpr uint32_t kSchema = 3;
  Holder holder;
  std::string currency = "EUR";
  template <class F> void fields(F& f) { f("holder", holder); f("currency", currency); }
};
struct Deposited {
  static constexpr const char* kType = "Deposited";
  int64_t amount = 0;
  template <class F> void fields(F& f) { f("amount", amount); }
};
struct Withdrawn {
  static constexpr const char* kType = "Withdrawn";
  int64_t amount = 0;
  template <class F> void fields(F& f) { f("amount", amount); }
};
struct AccountClosed {
  static constexpr const char* kType = "AccountClosed";
  template <class F> void fields(F&) {}
};

// The rule every command but OpenAccount shares; "" when the account is usable.
std::string Unusable(const Account& s) {
  if (s.status.empty()) return "account does not exist";
  if (s.status == "closed") return "account is closed";
  return "";
}

}  // namespace

void RegisterAccount(DomainRegistry& registry) {
  registry.Add(Aggregate<Account>("account")
      .Decide<OpenAccount>([](const Account& s, const OpenAccount& c) -> Decision {
        if (s.status == "closed") return Reject("account is closed");
        if (!s.status.empty()) return Reject("account already open");
        if (c.owner.empty()) return Reject("owner must not be empty");
        return Accept(AccountOpened{Holder{c.owner}, "EUR"});
      })
      .Decide<Deposit>([](const Account& s, const Deposit& c) -> Decision {
        if (auto why = Unusable(s); !why.empty()) return Reject(why);
        if (c.amount <= 0) return Reject("amount must be a positive integer");
        if (c.amount > INT64_MAX - s.balance) return Reject("balance would overflow");
        return Accept(Deposited{c.amount});
      })
      .Decide<Withdraw>([](const Account& s, const Withdraw& c) -> Decision {
        if (auto why = Unusable(s); !why.empty()) return Reject(why);
        if (c.amount <= 0) return Reject("amount must be a positive integer");
        if (c.amount > s.balance)
          return Reject("insufficient funds: balance " + std::to_string(s.balance) + ", withdrawal " +
                        std::to_string(c.amount));
        return Accept(Withdrawn{c.amount});
      })
      .Decide<CloseAccount>([](const Account& s, const CloseAccount&) -> Decision {
        if (auto why = Unusable(s); !why.empty()) return Reject(why);
        return Accept(AccountClosed{});
      })
      .Evolve<AccountOpened>([](Account& s, const AccountOpened& e) { s.owner = e.holder.name; s.status = "open"; })
      .Evolve<Deposited>([](Account& s, const Deposited& e) { s.balance += e.amount; })
      .Evolve<Withdrawn>([](Account& s, const Withdrawn& e) { s.balance -= e.amount; })
      .Evolve<AccountClosed>([](Account& s, const AccountClosed&) { s.status = "closed"; })
      .SnapshotEvery(1000));
}

}  // namespace rill::domains
