#include "crdt/replica.h"

#include <algorithm>
#include <utility>

#include "crdt/codec.h"

namespace shoal::crdt {

namespace {

// Out-of-order batches remembered per origin; more are still joined, only not counted (a later
// resend is then joined again, harmlessly).
constexpr std::size_t kMaxBeyond = 4096;

}  // namespace

Replica::Replica(std::string id, ReplicaConfig config)
    : id_(std::move(id)),
      config_(config),
      state_(std::make_shared<AwLwwMap>()),
      clock_(config.max_clock_drift_ms) {}

AwLwwMap& Replica::batch() {
  if (!open_) {
    open_ = std::make_unique<AwLwwMap>(AwLwwMap::Kind::delta);
    open_entries_ = 0;
  }
  return *open_;
}

void Replica::grew(std::size_t entries) {
  open_entries_ += entries;
  if (open_entries_ >= config_.max_batch_entries) seal();
}

void Replica::put(std::uint64_t now_ms, std::string_view key, std::string_view value,
                  const ChangeFn& on_change) {
  put_at(now_ms, clock_.tick(now_ms), key, value, on_change);
}

void Replica::put_at(std::uint64_t now_ms, Timestamp ts, std::string_view key,
                     std::string_view value, const ChangeFn& on_change) {
  last_ms_ = std::max(last_ms_, now_ms);
  state_->put(id_, ts, key, value, batch(), on_change);
  grew(1);
}

bool Replica::remove(std::string_view key, const ChangeFn& on_change) {
  if (state_->versions(key) == 0) return false;  // opens no batch for nothing
  state_->remove(key, batch(), on_change);
  grew(1);
  return true;
}

bool Replica::remove_if(std::string_view key, const VersionPredicate& pred,
                        const ChangeFn& on_change) {
  AwLwwMap delta(AwLwwMap::Kind::delta);  // joined into the batch only if something matched
  if (!state_->remove_if(key, pred, delta, on_change)) return false;
  batch().join(delta);
  grew(1);
  return true;
}

std::size_t Replica::remove_where(const VersionPredicate& pred, const ChangeFn& on_change) {
  // A batch is opened only if something matches, so that removing nothing logs nothing.
  AwLwwMap delta(AwLwwMap::Kind::delta);
  const std::size_t touched = state_->remove_where(pred, delta, on_change);
  if (touched > 0) {
    batch().join(delta);
    grew(touched);
  }
  return touched;
}

void Replica::seal() {
  if (!open_) return;
  Origin& self = origins_[id_];
  if (self.settled) unsettle(id_, self);
  const Seq seq = ++self.have;
  Encoded bytes = std::make_shared<const std::string>(encode(*open_));
  unflushed_.push_back(bytes);
  log_batch(self, seq, std::move(bytes), std::max<std::size_t>(1, open_entries_), last_ms_);
  open_.reset();
  open_entries_ = 0;
  bound();
}

std::vector<Encoded> Replica::flush() {
  seal();
  return std::exchange(unflushed_, {});
}

void Replica::log_batch(Origin& origin, Seq seq, Encoded bytes, std::size_t entries,
                        std::uint64_t now_ms) {
  origin.changed_ms = std::max(origin.changed_ms, now_ms);
  if (origin.log.try_emplace(seq, Logged{std::move(bytes), entries, arrivals_++, now_ms}).second) {
    log_entries_ += entries;
    ++log_batches_;
  }
}

bool Replica::join_batch(std::string_view origin, Seq seq, const AwLwwMap& delta, Encoded bytes,
                         std::uint64_t now_ms, const ChangeFn& on_change) {
  if (origin == id_ || seq == 0) return false;  // our own batches are all here
  last_ms_ = std::max(last_ms_, now_ms);
  auto it = origins_.find(origin);
  if (it == origins_.end()) {
    auto r = retired_.find(origin);
    it = r != retired_.end() ? revive(r) : origins_.try_emplace(std::string(origin)).first;
  }
  Origin& o = it->second;
  if (seq <= o.have || o.beyond.contains(seq)) return false;
  if (o.settled) unsettle(it->first, o);
  clock_.observe(delta.max_timestamp(), now_ms);
  const bool changed = state_->join(delta, on_change);
  log_batch(o, seq, std::move(bytes), std::max<std::size_t>(1, delta.entry_count()), now_ms);
  if (seq == o.have + 1) {
    o.have = seq;
    while (!o.beyond.empty() && *o.beyond.begin() == o.have + 1) {
      o.have = *o.beyond.begin();
      o.beyond.erase(o.beyond.begin());
    }
  } else if (o.beyond.size() < kMaxBeyond) {
    o.beyond.insert(seq);
  }
  trim_origin(it->first, o);
  bound();
  return changed;
}

bool Replica::join_state(const AwLwwMap& state, const Digest& covers, std::uint64_t now_ms,
                         const ChangeFn& on_change) {
  last_ms_ = std::max(last_ms_, now_ms);
  clock_.observe(state.max_timestamp(), now_ms);
  const bool changed = state_->join(state, on_change);
  for (const auto& [id, seq] : covers) {
    if (id == id_) continue;  // nobody has more of our own batches than we do
    auto it = origins_.find(id);
    if (it == origins_.end()) {
      auto r = retired_.find(id);
      if (r != retired_.end() && seq <= r->second.have) continue;  // nothing it had not
      if (r == retired_.end() && !neighbours_.contains(id)) {
        // A past life, as far as this replica can tell (its batches are in the state): noted as
        // retired, so that the digest reports it while others may still hold it, but not passed
        // on in states, which would restart its retirement at every new member in turn.
        retired_.insert_or_assign(id, Retired{seq, now_ms});
        continue;
      }
      it = r != retired_.end() ? revive(r) : origins_.try_emplace(id).first;
    }
    Origin& o = it->second;
    if (seq <= o.have) continue;
    if (o.settled) unsettle(id, o);
    o.have = seq;
    o.changed_ms = std::max(o.changed_ms, now_ms);
    o.beyond.erase(o.beyond.begin(), o.beyond.upper_bound(seq));
    while (!o.beyond.empty() && *o.beyond.begin() == o.have + 1) {
      o.have = *o.beyond.begin();
      o.beyond.erase(o.beyond.begin());
    }
    // The batches the state covers are not in the log: a neighbour that lacks one gets the state.
    o.trimmed = std::max(o.trimmed, seq);
    for (auto l = o.log.begin(); l != o.log.end() && l->first <= seq;) {
      log_entries_ -= l->second.entries;
      --log_batches_;
      l = o.log.erase(l);
    }
  }
  return changed;
}

Digest Replica::held() const {
  Digest out;
  for (const auto& [id, o] : origins_) {
    if (o.have > 0) out.emplace_hint(out.end(), id, o.have);
  }
  return out;
}

Digest Replica::digest() const {
  Digest out = held();
  for (const auto& [id, r] : retired_)
    out.emplace(id, r.have);
  return out;
}

bool Replica::digest_is(const Digest& digest) const {
  // digest() in one merged walk: the held origins, and the retired ones not also held.
  auto o = origins_.begin();
  auto r = retired_.begin();
  auto d = digest.begin();
  for (;;) {
    while (o != origins_.end() && o->second.have == 0)
      ++o;
    const bool more_o = o != origins_.end();
    const bool more_r = r != retired_.end();
    if (!more_o && !more_r) return d == digest.end();
    if (d == digest.end()) return false;
    const bool take_o = more_o && (!more_r || o->first <= r->first);
    const std::string& id = take_o ? o->first : r->first;
    const Seq have = take_o ? o->second.have : r->second.have;
    if (d->first != id || d->second != have) return false;
    if (take_o && more_r && r->first == o->first) ++r;
    if (take_o) {
      ++o;
    } else {
      ++r;
    }
    ++d;
  }
}

Digest Replica::digest(const std::vector<std::string>& ids) const {
  Digest out;
  for (const std::string& id : ids) {
    auto it = origins_.find(id);
    if (it != origins_.end() && it->second.have > 0) {
      out.emplace(id, it->second.have);
    } else if (auto r = retired_.find(id); r != retired_.end()) {
      out.emplace(id, r->second.have);
    }
  }
  return out;
}

Seq Replica::known_of(const Neighbour& n, std::string_view origin, const Origin& o) {
  if (o.settled && n.epoch <= o.settled_epoch) return o.have;
  auto it = n.known.find(origin);
  return it == n.known.end() ? 0 : it->second;
}

bool Replica::gap(std::string_view origin) const {
  auto it = origins_.find(origin);
  return it != origins_.end() && !it->second.beyond.empty();
}

std::vector<std::string> Replica::unacknowledged() const {
  std::vector<std::string> out;
  auto self = origins_.find(id_);
  if (self == origins_.end()) return out;  // nothing written
  for (const auto& [name, n] : neighbours_) {
    if (known_of(n, id_, self->second) < self->second.have) out.push_back(name);
  }
  return out;
}

void Replica::on_digest(std::string_view neighbour, const Digest& digest, std::uint64_t now_ms) {
  last_ms_ = std::max(last_ms_, now_ms);
  auto nit = neighbours_.find(neighbour);
  if (nit == neighbours_.end()) return;  // not (or no longer) a neighbour
  Neighbour& n = nit->second;
  n.heard = true;
  bool progress = false;
  for (const auto& [id, seq] : digest) {
    auto o = origins_.find(id);
    if (o == origins_.end()) {
      auto r = retired_.find(id);
      if (r != retired_.end()) {
        if (seq <= r->second.have) continue;  // it has no more than was retired here
        o = revive(r);                        // it has more: the origin was not past after all
      }
    }
    if (o != origins_.end() && o->second.settled && n.epoch <= o->second.settled_epoch) {
      // This neighbour is taken to have exactly what this replica has of it. More or less
      // unsettles; less (it lacks some: an origin brought back from retirement) is believed.
      if (seq == o->second.have) continue;
      unsettle(o->first, o->second);
      if (seq < o->second.have) n.known[id] = seq;
    }
    Seq& k = n.known[id];
    if (seq <= k) continue;
    k = seq;
    progress = true;
    n.stall_since[id] = now_ms;
    auto s = n.sent.find(id);
    if (s != n.sent.end() && s->second < seq) s->second = seq;
    if (o != origins_.end()) trim_origin(o->first, o->second);
  }
  if (progress) n.state_sent = false;
}

void Replica::trim_origin(const std::string& id, Origin& origin) {
  if (origin.log.empty() || neighbours_.empty()) return;
  const Seq first = origin.log.begin()->first;
  Seq floor = origin.log.rbegin()->first;
  for (const auto& [name, n] : neighbours_) {
    if (name == id) continue;  // an origin has its own batches
    floor = std::min(floor, known_of(n, id, origin));
    if (floor < first) return;  // someone lacks the oldest batch: nothing to trim yet
  }
  for (auto l = origin.log.begin(); l != origin.log.end() && l->first <= floor;) {
    origin.trimmed = std::max(origin.trimmed, l->first);
    log_entries_ -= l->second.entries;
    --log_batches_;
    l = origin.log.erase(l);
  }
}

void Replica::bound() {
  // Keep at least the newest batch, so that a neighbour one step behind never needs the state.
  while (log_entries_ > config_.max_log_entries && log_batches_ > 1) {
    Origin* oldest = nullptr;
    for (auto& [id, o] : origins_) {
      if (!o.log.empty() && (oldest == nullptr ||
                             o.log.begin()->second.arrival < oldest->log.begin()->second.arrival))
        oldest = &o;
    }
    if (oldest == nullptr) return;  // unreachable: log_batches_ > 1
    auto first = oldest->log.begin();
    oldest->trimmed = std::max(oldest->trimmed, first->first);
    log_entries_ -= first->second.entries;
    --log_batches_;
    oldest->log.erase(first);
  }
}

std::size_t Replica::outstanding(const Neighbour& n, std::string_view origin, Seq sent) const {
  auto o = origins_.find(origin);
  if (o == origins_.end()) return 0;
  std::size_t entries = 0;
  const Seq k = known_of(n, origin, o->second);
  for (auto l = o->second.log.upper_bound(k); l != o->second.log.end() && l->first <= sent; ++l)
    entries += l->second.entries;
  return entries;
}

std::size_t Replica::outstanding(const Neighbour& n) const {
  std::size_t entries = 0;
  for (const auto& [id, sent] : n.sent)
    entries += outstanding(n, id, sent);
  return entries;
}

std::optional<Outgoing> Replica::outgoing(std::string_view neighbour, std::uint64_t now_ms) {
  last_ms_ = std::max(last_ms_, now_ms);
  auto nit = neighbours_.find(neighbour);
  Neighbour& n = nit == neighbours_.end() ? add_neighbour(neighbour) : nit->second;
  std::size_t in_flight = 0;
  for (auto& [id, sent] : n.sent) {
    std::size_t pending = outstanding(n, id, sent);
    if (pending > 0 && now_ms - n.stall_since[id] >= config_.resend_after_ms) {
      sent = 0;  // this origin's batches unacknowledged for too long: count them as lost
      pending = 0;
    }
    in_flight += pending;
  }
  if (n.heard) {
    for (const auto& [id, o] : origins_) {
      const Seq k = known_of(n, id, o);
      if (id == neighbour || k >= o.have || k >= o.trimmed) continue;
      if (id != id_ && neighbours_.contains(id) &&
          now_ms - o.changed_ms < config_.live_origin_grace_ms)
        continue;  // a live origin delivers its own batches first (see the config)
      // It lacks batches that are no longer logged: only the full state carries them.
      if (n.state_sent && now_ms - n.state_sent_ms < config_.state_resend_ms) return std::nullopt;
      n.state_sent = true;
      n.state_sent_ms = now_ms;
      Outgoing out;
      out.state = state_;
      out.covers = held();  // retired origins are not passed on (see above)
      out.entries = state_->entry_count();
      return out;
    }
  }
  if (in_flight >= config_.window_entries) return std::nullopt;
  const std::size_t budget =
      std::min(config_.max_message_entries, config_.window_entries - in_flight);
  Outgoing out;
  for (const auto& [id, o] : origins_) {
    if (id == neighbour) continue;  // it wrote them
    const bool foreign = id != id_;
    if (!n.heard && foreign) continue;  // before its first digest: our own batches only
    if (o.log.empty()) continue;        // nothing to send (and no entry made for nothing)
    Seq& sent = n.sent[id];
    const bool quiet = outstanding(n, id, sent) == 0;
    for (auto l = o.log.upper_bound(std::max(known_of(n, id, o), sent)); l != o.log.end(); ++l) {
      if (foreign && now_ms - l->second.logged_ms < config_.forward_delay_ms) break;
      if (!out.batches.empty() && out.entries + l->second.entries > budget) goto done;
      out.batches.push_back(BatchRef{id, l->first, l->second.bytes});
      out.entries += l->second.entries;
      if (quiet && sent < l->first) n.stall_since[id] = now_ms;  // the first send after quiet
      sent = l->first;
    }
  }
done:
  if (out.batches.empty()) return std::nullopt;
  return out;
}

void Replica::track(std::string_view neighbour) {
  if (neighbours_.find(neighbour) == neighbours_.end()) add_neighbour(neighbour);
}

Replica::Neighbour& Replica::add_neighbour(std::string_view id) {
  Neighbour n;
  n.epoch = ++epochs_;  // not covered by any origin settled before now
  return neighbours_.emplace(std::string(id), std::move(n)).first->second;
}

void Replica::settle(std::uint64_t now_ms) {
  if (now_ms < next_settle_ms_) return;
  next_settle_ms_ = now_ms + std::max<std::uint64_t>(1, config_.settle_after_ms / 4);
  std::erase_if(retired_,
                [&](const auto& r) { return now_ms >= r.second.at_ms + config_.retired_keep_ms; });
  // What neighbours reported of origins not held here: ones retired and forgotten here that a
  // neighbour still reports (until it forgets them too), or ones not received yet (then a batch
  // may be forwarded to a neighbour that has it: harmless).
  auto unknown = [&](const auto& entry) {
    return !origins_.contains(entry.first) && !retired_.contains(entry.first);
  };
  for (auto& [name, n] : neighbours_) {
    std::erase_if(n.known, unknown);
    std::erase_if(n.sent, unknown);
    std::erase_if(n.stall_since, unknown);
  }
  for (auto it = origins_.begin(); it != origins_.end();) {
    const std::string& id = it->first;
    Origin& o = it->second;
    if (id == id_ || neighbours_.contains(id)) {
      o.absent_since_ms = 0;
    } else if (o.absent_since_ms == 0) {
      o.absent_since_ms = now_ms;
    }
    const bool quiet = o.log.empty() && o.beyond.empty() && o.have > 0 &&
                       now_ms >= o.changed_ms + config_.settle_after_ms;
    if (quiet && !(o.settled && o.settled_epoch == epochs_)) {
      // Every neighbour (the origin itself aside: it has its own batches) has exactly this.
      const bool exact = std::ranges::all_of(neighbours_, [&](const auto& entry) {
        return entry.first == id || known_of(entry.second, id, o) == o.have;
      });
      if (exact) {
        o.settled = true;
        o.settled_epoch = epochs_;
        for (auto& [name, n] : neighbours_) {
          n.known.erase(id);
          n.sent.erase(id);
          n.stall_since.erase(id);
        }
      }
    }
    if (quiet && o.settled && o.settled_epoch == epochs_ && o.absent_since_ms != 0 &&
        now_ms >= o.absent_since_ms + config_.retire_after_ms) {
      retired_.insert_or_assign(id, Retired{o.have, now_ms});
      it = origins_.erase(it);
      continue;
    }
    ++it;
  }
}

std::map<std::string, Replica::Origin, std::less<>>::iterator Replica::revive(
    std::map<std::string, Retired, std::less<>>::iterator r) {
  Origin o;
  o.have = o.trimmed = r->second.have;
  o.changed_ms = last_ms_;
  // Every neighbour is taken to have what was retired: one that reports less gets it (on_digest).
  o.settled = true;
  o.settled_epoch = epochs_;
  auto it = origins_.insert_or_assign(r->first, std::move(o)).first;
  retired_.erase(r);
  return it;
}

void Replica::unsettle(std::string_view id, Origin& o) {
  for (auto& [name, n] : neighbours_) {
    if (n.epoch > o.settled_epoch) continue;
    Seq& k = n.known.try_emplace(std::string(id), 0).first->second;
    k = std::max(k, o.have);  // have is unchanged while settled
  }
  o.settled = false;
}

std::size_t Replica::neighbour_entries() const {
  std::size_t total = 0;
  for (const auto& [name, n] : neighbours_)
    total += n.known.size() + n.sent.size() + n.stall_since.size();
  return total;
}

void Replica::forget(std::string_view neighbour) {
  auto it = neighbours_.find(neighbour);
  if (it == neighbours_.end()) return;
  neighbours_.erase(it);
  for (auto& [id, o] : origins_)
    trim_origin(id, o);
}

const Digest* Replica::known(std::string_view neighbour) const {
  auto it = neighbours_.find(neighbour);
  if (it == neighbours_.end() || !it->second.heard) return nullptr;
  return &it->second.known;
}

}  // namespace shoal::crdt
