#include "core/internal/actor_cache.h"

namespace rill::actors {

void ActorCache::Drop(Actor& actor, const Status& cause, bool completing) {
  if (actor.dropped) return;
  actor.dropped = true;
  auto it = actors_.find(*actor.stream);
  if (it == actors_.end() || &it->second != &actor) return;
  index_.Erase(actor.hash, &actor);
  if (Tracked(actor)) Untrack(actor);
  if (actor.in_flight > 0 || completing) {
    Zombie z;
    z.node = actors_.extract(it);
    z.cause = cause;
    std::string stream = z.node.key();
    zombies_.emplace(std::move(stream), std::move(z));
  } else {
    actors_.erase(it);
  }
}

void ActorCache::DropAll() {
  for (auto it = actors_.begin(); it != actors_.end();) {
    Actor& a = it->second;
    auto next = std::next(it);
    Drop(a, Status::OK(), false);
    it = next;
  }
  clock_.clear();
  hand_ = 0;
}

void ActorCache::Release(const std::string& stream, std::deque<Message>* ready) {
  auto it = zombies_.find(stream);
  if (it == zombies_.end()) return;
  for (auto& m : it->second.retry_held) ready->push_back(std::move(m));
  for (auto& m : it->second.parked) ready->push_back(std::move(m));
  zombies_.erase(it);
}

void ActorCache::Untrack(Actor& a) {
  size_t i = a.clock_index;
  Actor* last = clock_.back();
  clock_[i] = last;
  last->clock_index = static_cast<uint32_t>(i);
  clock_.pop_back();
}

void ActorCache::Passivate(const Actor* keep, const std::function<void(Actor&)>& before) {
  size_t scanned = 0;
  const size_t limit = std::min<size_t>(2 * clock_.size() + 1, 4096);
  while (actors_.size() > max_live_ && scanned < limit && !clock_.empty()) {
    ++scanned;
    if (hand_ >= clock_.size()) hand_ = 0;
    Actor* a = clock_[hand_];
    if (a == keep || a->in_flight > 0) {
      ++hand_;
      continue;
    }
    if (a->referenced) {
      a->referenced = false;
      ++hand_;
      continue;
    }
    before(*a);
    Untrack(*a);  // the last actor moves to hand_: look at it next
    index_.Erase(a->hash, a);
    auto it = actors_.find(*a->stream);
    actors_.erase(it);
  }
}

}  // namespace rill::actors
