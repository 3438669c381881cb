#include "crdt/causal_context.h"

#include <algorithm>

namespace shoal::crdt {

ReplicaIx CausalContext::intern(std::string_view id) {
  if (auto found = find(id)) return *found;
  const auto ix = static_cast<ReplicaIx>(rows_.size());
  rows_.push_back(Row{std::string(id), 0, {}});
  if (rows_.size() > kLinearLimit) {
    if (index_.empty()) {
      for (ReplicaIx i = 0; i < rows_.size(); ++i)
        index_.emplace(rows_[i].id, i);
    } else {
      index_.emplace(rows_.back().id, ix);
    }
  }
  return ix;
}

std::optional<ReplicaIx> CausalContext::find(std::string_view id) const {
  if (rows_.size() <= kLinearLimit) {
    for (ReplicaIx i = 0; i < rows_.size(); ++i) {
      if (rows_[i].id == id) return i;
    }
    return std::nullopt;
  }
  auto it = index_.find(id);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

bool CausalContext::contains(Dot dot) const {
  const Row& row = rows_[dot.replica];
  if (dot.counter <= row.max) return true;
  // The first range whose last >= counter is the only one that can hold it.
  auto it = std::lower_bound(row.cloud.begin(), row.cloud.end(), dot.counter,
                             [](const CounterRange& r, Counter c) { return r.last < c; });
  return it != row.cloud.end() && it->first <= dot.counter;
}

bool CausalContext::add(Dot dot) {
  return add_range(dot.replica, dot.counter, dot.counter);
}

bool CausalContext::add_range(ReplicaIx ix, Counter first, Counter last) {
  if (first == 0 || first > last) return false;
  Row& row = rows_[ix];
  if (last <= row.max) return false;
  first = std::max(first, row.max + 1);
  auto& cloud = row.cloud;
  if (first == row.max + 1) {
    // Extends the version-vector entry (max + 1 was not held, by invariant 1); the ranges it
    // reaches are folded in by compact().
    row.max = last;
    compact(row);
    return true;
  }
  // Ranges that overlap or touch [first, last]: from the first with r.last + 1 >= first to the
  // last with r.first <= last + 1.
  auto lo = std::lower_bound(cloud.begin(), cloud.end(), first,
                             [](const CounterRange& r, Counter c) { return r.last + 1 < c; });
  auto hi = lo;
  while (hi != cloud.end() && hi->first <= last + 1)
    ++hi;
  if (lo == hi) {
    cloud.insert(lo, CounterRange{first, last});
    return true;
  }
  if (hi - lo == 1 && lo->first <= first && lo->last >= last) return false;
  const CounterRange merged{std::min(first, lo->first), std::max(last, (hi - 1)->last)};
  *lo = merged;
  cloud.erase(lo + 1, hi);
  return true;
}

void CausalContext::compact(Row& row) {
  auto& cloud = row.cloud;
  auto it = cloud.begin();
  while (it != cloud.end() && it->first <= row.max + 1) {
    row.max = std::max(row.max, it->last);
    ++it;
  }
  cloud.erase(cloud.begin(), it);
}

Counter CausalContext::next_counter(ReplicaIx ix) const {
  const Row& row = rows_[ix];
  return (row.cloud.empty() ? row.max : row.cloud.back().last) + 1;
}

void CausalContext::translate(const CausalContext& other, std::vector<ReplicaIx>& out) {
  out.resize(other.rows_.size());
  for (ReplicaIx i = 0; i < other.rows_.size(); ++i)
    out[i] = intern(other.rows_[i].id);
}

bool CausalContext::join(const CausalContext& other, std::vector<ReplicaIx>* translation) {
  std::vector<ReplicaIx> local;
  std::vector<ReplicaIx>& map = translation != nullptr ? *translation : local;
  translate(other, map);
  bool grew = false;
  for (ReplicaIx i = 0; i < other.rows_.size(); ++i) {
    const Row& theirs = other.rows_[i];
    if (theirs.max > 0) grew |= add_range(map[i], 1, theirs.max);
    for (const CounterRange& r : theirs.cloud)
      grew |= add_range(map[i], r.first, r.last);
  }
  return grew;
}

std::size_t CausalContext::cloud_size() const {
  std::size_t n = 0;
  for (const Row& row : rows_)
    n += row.cloud.size();
  return n;
}

std::size_t CausalContext::nonempty_replicas() const {
  return static_cast<std::size_t>(std::count_if(
      rows_.begin(), rows_.end(), [](const Row& r) { return r.max > 0 || !r.cloud.empty(); }));
}

bool CausalContext::includes(const CausalContext& other) const {
  for (const Row& theirs : other.rows_) {
    if (theirs.max == 0 && theirs.cloud.empty()) continue;
    auto mine = find(theirs.id);
    if (!mine) return false;
    const Row& row = rows_[*mine];
    auto covered = [&](Counter first, Counter last) {
      if (last <= row.max) return true;
      if (first <= row.max) first = row.max + 1;
      auto it = std::lower_bound(row.cloud.begin(), row.cloud.end(), first,
                                 [](const CounterRange& r, Counter c) { return r.last < c; });
      return it != row.cloud.end() && it->first <= first && it->last >= last;
    };
    if (theirs.max > 0 && !covered(1, theirs.max)) return false;
    for (const CounterRange& r : theirs.cloud) {
      if (!covered(r.first, r.last)) return false;
    }
  }
  return true;
}

bool operator==(const CausalContext& a, const CausalContext& b) {
  if (a.nonempty_replicas() != b.nonempty_replicas()) return false;
  for (const auto& row : a.rows_) {
    if (row.max == 0 && row.cloud.empty()) continue;
    auto other = b.find(row.id);
    if (!other) return false;
    const auto& theirs = b.rows_[*other];
    if (row.max != theirs.max || row.cloud != theirs.cloud) return false;
  }
  return true;
}

}  // namespace shoal::crdt
