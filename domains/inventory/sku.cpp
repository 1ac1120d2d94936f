// inventory: the `sku` aggregate of the flash sale. Stock never goes below
// zero: a purchase beyond it is rejected, and since one actor runs one
// command at a time no two purchases can both take the last unit.
#include <cstdint>

#include "core/aggregate.h"
#include "domains/domains.h"

namespace rill::domains {
namespace {

struct Sku {
  int64_t stock = 0;
  int64_t sold = 0;
  template <class F> void fields(F& f) { f("stock", stock); f("sold", sold); }
};

// Commands
struct CreateSku {
  static constexpr const char* kType = "CreateSku";
  int64_t stock = 0;
  template <class F> void fields(F& f) { f("stock", stock); }
};
struct Purchase {
  static constexpr const char* kType = "Purchase";
  int64_t quantity = 0;
  std::string user;
  template <class F> void fields(F& f) { f("quantity", quantity); f("user", user); }
};
struct Restock {
  static constexpr const char* kType = "Restock";
  int64_t quantity = 0;
  template <class F> void fields(F& f) { f("quantity", quantity); }
};

// Events
struct SkuCreated {
  static constexpr const char* kType = "SkuCreated";
  int64_t stock = 0;
  template <class F> void fields(F& f) { f("stock", stock); }
};
struct Purchased {
  static constexpr const char* kType = "Purchased";
  int64_t quantity = 0;
  std::string user;
  template <class F> void fields(F& f) { f("quantity", quantity); f("user", user); }
};
struct Restocked {
  static constexpr const char* kType = "Restocked";
  int64_t quantity = 0;
  template <class F> void fields(F& f) { f("quantity", quantity); }
};

}  // namespace

void RegisterInventory(DomainRegistry& registry) {
  registry.Add(Aggregate<Sku>("sku")
      .Decide<CreateSku>([](const Sku&, const CreateSku& c, uint64_t version) -> Decision {
        if (version != 0) return Reject("sku already exists");
        if (c.stock < 0) return Reject("stock must not be negative");
        return Accept(SkuCreated{c.stock});
      })
      .Decide<Purchase>([](const Sku& s, const Purchase& c, uint64_t version) -> Decision {
        if (version == 0) return Reject("sku does not exist");
        if (c.quantity <= 0) return Reject("quantity must be a positive integer");
        if (c.quantity > s.stock)
          return Reject("out of stock: " + std::to_string(s.stock) + " left, " + std::to_string(c.quantity) +
                        " requested");
        return Accept(Purchased{c.quantity, c.user});
      })
      .Decide<Restock>([](const Sku& s, const Restock& c, uint64_t version) -> Decision {
        if (version == 0) return Reject("sku does not exist");
        if (c.quantity <= 0) return Reject("quantity must be a positive integer");
        if (c.quantity > INT64_MAX - s.stock) return Reject("stock would overflow");
        return Accept(Restocked{c.quantity});
      })
      .Evolve<SkuCreated>([](Sku& s, const SkuCreated& e) { s.stock = e.stock; })
      .Evolve<Purchased>([](Sku& s, const Purchased& e) { s.stock -= e.quantity; s.sold += e.quantity; })
      .Evolve<Restocked>([](Sku& s, const Restocked& e) { s.stock += e.quantity; })
      .SnapshotEvery(1000));
}

}  // namespace rill::domains
