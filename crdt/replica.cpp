#include "crdt/replica.h"

#include <algorithm>
#include <utility>

namespace shoal::crdt {

Replica::Replica(std::string id, ReplicaConfig config)
    : id_(std::move(id)),
      config_(config),
      state_(std::make_shared<AwLwwMap>()),
      clock_(config.max_clock_drift_ms) {}

AwLwwMap& Replica::batch() {
  if (!open_) {
    open_ = std::make_shared<AwLwwMap>(AwLwwMap::Kind::delta);
    log_.push_back(Logged{next_seq_++, open_, {}, 0});
  }
  return *open_;
}

void Replica::grew(std::size_t entries) {
  log_.back().entries += entries;
  log_entries_ += entries;
  if (log_.back().entries >= config_.max_interval_entries) seal();
  trim();
}

void Replica::put(std::uint64_t now_ms, std::string_view key, std::string_view value,
                  const ChangeFn& on_change) {
  const Timestamp ts = clock_.tick(now_ms);
  state_->put(id_, ts, key, value, batch(), on_change);
  grew(1);
}

bool Replica::remove(std::string_view key, const ChangeFn& on_change) {
  if (state_->versions(key) == 0) return false;  // opens no batch for nothing
  state_->remove(key, batch(), on_change);
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
  unflushed_.emplace_back(log_.back().seq, std::move(open_));
  open_.reset();
}

std::vector<std::shared_ptr<const AwLwwMap>> Replica::flush() {
  seal();
  std::vector<std::shared_ptr<const AwLwwMap>> out;
  out.reserve(unflushed_.size());
  for (auto& [seq, batch] : unflushed_)
    out.push_back(std::move(batch));
  unflushed_.clear();
  return out;
}

bool Replica::join(std::string_view from, std::shared_ptr<const AwLwwMap> received,
                   std::uint64_t now_ms, const ChangeFn& on_change) {
  seal();
  clock_.observe(received->max_timestamp(), now_ms);
  if (!state_->join(*received, on_change)) return false;
  append(std::move(received), from);
  return true;
}

void Replica::append(std::shared_ptr<const AwLwwMap> delta, std::string_view origin) {
  const std::size_t entries = std::max<std::size_t>(1, delta->entry_count());
  log_.push_back(Logged{next_seq_++, std::move(delta), std::string(origin), entries});
  log_entries_ += entries;
  trim();
}

void Replica::trim() {
  // An open batch is the last item and unacknowledged, so the loops below never reach it while
  // anything else is logged; when alone it is kept by the size loop's "at least one" rule.
  if (!acks_.empty()) {
    Seq lowest = next_seq_;
    for (const auto& [name, seq] : acks_)
      lowest = std::min(lowest, seq);
    while (!log_.empty() && log_.front().seq < lowest) {
      log_entries_ -= log_.front().entries;
      log_.pop_front();
    }
  }
  // Keep at least the newest delta, so a neighbour one step behind never needs the full state.
  while (log_entries_ > config_.max_log_entries && log_.size() > 1) {
    log_entries_ -= log_.front().entries;
    log_.pop_front();
  }
  log_start_ = log_.empty() ? next_seq_ : log_.front().seq;
  while (!unflushed_.empty() && unflushed_.front().first < log_start_)
    unflushed_.pop_front();
}

std::optional<Outgoing> Replica::outgoing(std::string_view neighbour) {
  seal();
  for (;;) {
    const Seq from = acked(neighbour).value_or(0);
    if (from >= next_seq_) return std::nullopt;
    if (from < log_start_) return Outgoing{Outgoing::Kind::full_state, state_, next_seq_};

    std::shared_ptr<const AwLwwMap> first;
    std::shared_ptr<AwLwwMap> joined;
    std::size_t entries = 0;
    Seq upto = from;
    for (std::size_t i = from - log_start_; i < log_.size(); ++i) {
      const Logged& item = log_[i];
      if (first && entries + item.entries > config_.max_interval_entries) break;
      upto = item.seq + 1;
      if (item.origin == neighbour) continue;  // it sent us this one
      if (!first) {
        first = item.delta;
      } else {
        if (!joined) {
          joined = std::make_shared<AwLwwMap>(AwLwwMap::Kind::delta);
          joined->join(*first);
        }
        joined->join(*item.delta);
      }
      entries += item.entries;
    }
    if (first) {
      std::shared_ptr<const AwLwwMap> payload = joined ? joined : first;
      return Outgoing{Outgoing::Kind::delta_interval, std::move(payload), upto};
    }
    // Everything in this window came from the neighbour itself: it has it already.
    on_ack(neighbour, upto);
  }
}

void Replica::on_ack(std::string_view neighbour, Seq upto) {
  // Nobody can have joined the open batch (invariant 3), nor anything never given out.
  if (upto > (open_ ? next_seq_ - 1 : next_seq_)) return;
  auto it = acks_.find(neighbour);
  if (it == acks_.end()) {
    acks_.emplace(std::string(neighbour), upto);
  } else {
    it->second = std::max(it->second, upto);
  }
  trim();
}

void Replica::forget(std::string_view neighbour) {
  auto it = acks_.find(neighbour);
  if (it == acks_.end()) return;
  acks_.erase(it);
  trim();
}

std::optional<Seq> Replica::acked(std::string_view neighbour) const {
  auto it = acks_.find(neighbour);
  if (it == acks_.end()) return std::nullopt;
  return it->second;
}

}  // namespace shoal::crdt
