// bank: the `transfer` aggregate and the saga that carries it out.
//
// The transfer stream records every decision the saga takes, so a crash at
// any point resumes on the recorded path and money is conserved:
//
//   TransferStarted ─► Withdraw(from) ─ok─► TransferDebited ─► Deposit(to) ─ok─► TransferCompleted
//                          │ rejected                            │ rejected
//                          ▼                                     ▼
//                    TransferFailed                     TransferCreditFailed ─► Deposit(from) ─► TransferFailed
//                    (refunded: false)                                          (refund)          (refunded: true)
//
// Each step's command id is derived from (saga, triggering event, step), so
// a step redone after a crash is answered from the store, not applied twice.
// Before acting, the saga checks the transfer is still at the step the event
// announced: a redelivered event whose step already moved on does nothing.
// Money that left `from` is in the transfer until it lands in `to` or back
// in `from` (a refund to an account closed meanwhile stays held: status
// "failed" with refunded false).
#include <fmt/format.h>

#include "core/aggregate.h"
#include "domains/domains.h"

namespace rill::domains {

void RegisterAccount(DomainRegistry& registry);  // account.cpp

namespace {

struct Transfer {
  std::string from, to;
  int64_t amount = 0;
  // "started" | "debited" | "credit_failed" | "completed" | "failed"
  std::string status;
  std::optional<std::string> reason;
  std::optional<bool> refunded;
  template <class F> void fields(F& f) {
    f("from", from); f("to", to); f("amount", amount); f("status", status);
    f("reason", reason); f("refunded", refunded);
  }
};

// Commands: StartTransfer is the user's; the others are the saga's.
struct StartTransfer {
  static constexpr const char* kType = "StartTransfer";
  std::string from, to;
  int64_t amount = 0;
  template <class F> void fields(F& f) { f("from", from); f("to", to); f("amount", amount); }
};
struct RecordDebit {
  static constexpr const char* kType = "RecordDebit";
  template <class F> void fields(F&) {}
};
struct RecordCreditFailure {
  static constexpr const char* kType = "RecordCreditFailure";
  std::string reason;
  template <class F> void fields(F& f) { f("reason", reason); }
};
struct CompleteTransfer {
  static constexpr const char* kType = "CompleteTransfer";
  template <class F> void fields(F&) {}
};
struct FailTransfer {
  static constexpr const char* kType = "FailTransfer";
  std::string reason;
  bool refunded = false;
  template <class F> void fields(F& f) { f("reason", reason); f("refunded", refunded); }
};

struct TransferStarted {
  static constexpr const char* kType = "TransferStarted";
  std::string from, to;
  int64_t amount = 0;
  template <class F> void fields(F& f) { f("from", from); f("to", to); f("amount", amount); }
};
struct TransferDebited {
  static constexpr const char* kType = "TransferDebited";
  template <class F> void fields(F&) {}
};
struct TransferCreditFailed {
  static constexpr const char* kType = "TransferCreditFailed";
  std::string reason;
  template <class F> void fields(F& f) { f("reason", reason); }
};
struct TransferCompleted {
  static constexpr const char* kType = "TransferCompleted";
  template <class F> void fields(F&) {}
};
struct TransferFailed {
  static constexpr const char* kType = "TransferFailed";
  std::string reason;
  bool refunded = false;
  template <class F> void fields(F& f) { f("reason", reason); f("refunded", refunded); }
};

Decision RequireStatus(const Transfer& s, const char* status) {
  if (s.status.empty()) return Reject("transfer does not exist");
  if (s.status != status) return Reject("transfer is " + s.status);
  return Accept();
}

// `event` when the transfer is at `status`; else why not.
template <class E>
Decision AcceptAt(const Transfer& s, const char* status, E event) {
  Decision d = RequireStatus(s, status);
  return d.rejected() ? d : Accept(std::move(event));
}

bool IsAccountStream(const std::string& stream) {
  return stream.size() > 8 && stream.compare(0, 8, "account-") == 0;
}

class TransferSaga final : public ProcessManager {
 public:
  std::string name() const override { return "transfer"; }
  std::vector<std::string> categories() const override { return {"transfer"}; }

  Status Handle(const Event& event, ProcessContext& context) override {
    const char* expected_status = nullptr;
    if (event.type == TransferStarted::kType) expected_status = "started";
    else if (event.type == TransferDebited::kType) expected_status = "debited";
    else if (event.type == TransferCreditFailed::kType) expected_status = "credit_failed";
    else return Status::OK();

    auto view = context.State(event.stream);
    RILL_RETURN_IF_ERROR(view.status());
    Transfer t;
    RILL_RETURN_IF_ERROR(json::ReadText(view->state, &t, "transfer state", false));
    if (t.status != expected_status) return Status::OK();  // this step is already behind us

    auto send = [&](int step, const std::string& stream, const std::string& type, std::string data) {
      Command c;
      c.type = type;
      c.stream = stream;
      c.data = std::move(data);
      return context.Send(step, std::move(c));
    };
    // Rejected: the transfer moved on by another path; nothing to record.
    auto record = [&](int step, const auto& command) -> Status {
      auto r = send(step, event.stream, command.kType, json::ToJson(command));
      if (!r.ok() && r.status().code() != Code::kRejected) return r.status();
      return Status::OK();
    };
    // Every step moves the amount with one command to an account (step 1),
    // then records on the transfer what came of it: `accepted` (step 2), or
    // what `rejected` makes of the refusal (step 3). Any other failure is
    // returned, so the step is redone on redelivery.
    auto move_money = [&](const std::string& account, const char* type, const auto& accepted,
                          auto rejected) -> Status {
      auto sent = send(1, account, type, fmt::format("{{\"amount\":{}}}", t.amount));
      if (sent.ok()) return record(2, accepted);
      if (sent.status().code() != Code::kRejected) return sent.status();
      return record(3, rejected(sent.status().message()));
    };

    if (t.status == "started")
      return move_money(t.from, "Withdraw", RecordDebit{}, [](const std::string& why) {
        return FailTransfer{"debit rejected: " + why, false};
      });
    if (t.status == "debited")
      return move_money(t.to, "Deposit", CompleteTransfer{}, [](const std::string& why) {
        return RecordCreditFailure{"credit rejected: " + why};
      });
    // credit_failed: give the money back.
    std::string reason = t.reason.value_or("credit rejected");
    return move_money(t.from, "Deposit", FailTransfer{reason, true}, [&](const std::string& why) {
      return FailTransfer{reason + "; refund rejected: " + why, false};
    });
  }

  // The default reading, plus where the money is: after a failed credit it
  // went back to `from`, or (refund rejected) the reason says it did not.
  std::optional<Outcome> Ended(const StateView& view) const override {
    std::optional<Outcome> out = ProcessManager::Ended(view);
    Transfer t;
    if (out && json::ReadText(view.state, &t, "transfer state", false).ok() && t.refunded.value_or(false))
      out->reason += "; refunded to " + t.from;
    return out;
  }
};

}  // namespace

std::shared_ptr<ProcessManager> MakeTransferProcessManager() { return std::make_shared<TransferSaga>(); }

void RegisterBank(DomainRegistry& registry) {
  RegisterAccount(registry);
  registry.Add(Aggregate<Transfer>("transfer")
      .Decide<StartTransfer>([](const Transfer&, const StartTransfer& c, uint64_t version) -> Decision {
        if (version != 0) return Reject("transfer already started");
        if (!IsAccountStream(c.from) || !IsAccountStream(c.to))
          return Reject("from and to must be account streams (account-<id>)");
        if (c.from == c.to) return Reject("from and to must differ");
        if (c.amount <= 0) return Reject("amount must be a positive integer");
        return Accept(TransferStarted{c.from, c.to, c.amount});
      })
      .Decide<RecordDebit>([](const Transfer& s, const RecordDebit&) {
        return AcceptAt(s, "started", TransferDebited{});
      })
      .Decide<CompleteTransfer>([](const Transfer& s, const CompleteTransfer&) {
        return AcceptAt(s, "debited", TransferCompleted{});
      })
      .Decide<RecordCreditFailure>([](const Transfer& s, const RecordCreditFailure& c) {
        return AcceptAt(s, "debited", TransferCreditFailed{c.reason});
      })
      .Decide<FailTransfer>([](const Transfer& s, const FailTransfer& c) -> Decision {
        // From "started" (debit rejected: nothing to give back) or
        // "credit_failed" (after the refund attempt).
        if (s.status != "started" && s.status != "credit_failed") return RequireStatus(s, "credit_failed");
        if (s.status == "started" && c.refunded) return Reject("nothing was debited, nothing to refund");
        return Accept(TransferFailed{c.reason, c.refunded});
      })
      .Evolve<TransferStarted>([](Transfer& s, const TransferStarted& e) {
        s.from = e.from; s.to = e.to; s.amount = e.amount; s.status = "started";
      })
      .Evolve<TransferDebited>([](Transfer& s, const TransferDebited&) { s.status = "debited"; })
      .Evolve<TransferCreditFailed>([](Transfer& s, const TransferCreditFailed& e) {
        s.status = "credit_failed"; s.reason = e.reason;
      })
      .Evolve<TransferCompleted>([](Transfer& s, const TransferCompleted&) { s.status = "completed"; })
      .Evolve<TransferFailed>([](Transfer& s, const TransferFailed& e) {
        s.status = "failed"; s.reason = e.reason; s.refunded = e.refunded;
      })
      .SnapshotEvery(0));  // a transfer has a handful of events
  registry.AddProcessManager(MakeTransferProcessManager());
}

}  // namespace rill::domains
