#pragma once

// CausalContext: the set of dots (replica, counter) a replica has seen, i.e. every write it has
// either applied or seen superseded. It is what lets a delta CRDT tell "I never heard of this
// entry" from "I heard of it and it was removed" (Almeida, Shoker and Baquero, "Delta State
// Replicated Data Types", 2018, section 6: causal contexts).
//
// Representation: per replica, a version-vector entry `max` (every counter 1..max was seen) plus
// a dot cloud of the counters above it, kept as sorted disjoint ranges. A dot that closes the gap
// above `max` folds the ranges it touches into `max` (compaction), so a context that has seen
// every write of every replica holds one number per replica and an empty cloud.
//
// Replica ids are opaque byte strings (the upper layers use "node name + creation"). The context
// also serves as the replica table of the map that owns it: a Dot names its replica by a small
// index into that table (ReplicaIx), which keeps entries compact. Indices are local to one
// context; joining two contexts translates them by id.
//
// Invariants:
//  1. For every replica row, each cloud range [first, last] has first <= last, first > max + 1,
//     and first > previous range's last + 1 (sorted, disjoint, not adjacent).
//  2. Ids are unique; an index, once given out by intern(), names the same id forever.
//
// Pure data: no IO, no clock, not thread-safe.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace shoal::crdt {

using Counter = std::uint64_t;
using ReplicaIx = std::uint32_t;

// One write: the `counter`-th event of the replica at index `replica` of some context's table.
struct Dot {
  ReplicaIx replica;
  Counter counter;
  friend bool operator==(const Dot&, const Dot&) = default;
};

// An inclusive run of counters [first, last] of one replica.
struct CounterRange {
  Counter first;
  Counter last;
  friend bool operator==(const CounterRange&, const CounterRange&) = default;
};

class CausalContext {
 public:
  // --- The replica table ---

  // Returns the index of `id`, adding it to the table if it is new.
  ReplicaIx intern(std::string_view id);
  // Returns the index of `id`, if the table holds it.
  std::optional<ReplicaIx> find(std::string_view id) const;
  // The id at index `ix`. REQUIRES: ix < replica_count().
  const std::string& id(ReplicaIx ix) const { return rows_[ix].id; }
  // Number of ids in the table (including ids with no dots yet).
  std::size_t replica_count() const { return rows_.size(); }

  // --- Dots ---

  // True iff the context holds `dot`.
  bool contains(Dot dot) const;
  // Adds one dot. Returns true iff it was new.
  bool add(Dot dot);
  // Adds every counter in [first, last] (first >= 1, first <= last) of replica `ix`.
  // Returns true iff any of them was new.
  bool add_range(ReplicaIx ix, Counter first, Counter last);
  // The version-vector entry of `ix`: every counter 1..max is held.
  Counter max(ReplicaIx ix) const { return rows_[ix].max; }
  // The dot cloud of `ix`: counters held above max, as sorted disjoint ranges.
  const std::vector<CounterRange>& cloud(ReplicaIx ix) const { return rows_[ix].cloud; }
  // The counter a new write of replica `ix` gets: one past the highest counter held.
  Counter next_counter(ReplicaIx ix) const;

  // Adds every dot of `other`. Returns true iff any was new. If `translation` is given, it is
  // filled with the index in this table of each of other's indices.
  bool join(const CausalContext& other, std::vector<ReplicaIx>* translation = nullptr);
  // Fills `out` with the index in this table of each of other's indices, interning new ids.
  void translate(const CausalContext& other, std::vector<ReplicaIx>& out);

  // Total number of cloud ranges over all replicas (0 when fully compacted).
  std::size_t cloud_size() const;
  // Number of replicas with at least one dot.
  std::size_t nonempty_replicas() const;
  // True iff this context holds every dot of `other`.
  bool includes(const CausalContext& other) const;

  // Same dots per id (table order and ids without dots do not matter).
  friend bool operator==(const CausalContext& a, const CausalContext& b);

 private:
  struct Row {
    std::string id;
    Counter max = 0;
    std::vector<CounterRange> cloud;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  // Tables up to this size are searched linearly; larger ones get a hash index.
  static constexpr std::size_t kLinearLimit = 8;

  // Folds cloud ranges that touch max into max (invariant 1).
  static void compact(Row& row);

  std::vector<Row> rows_;
  std::unordered_map<std::string, ReplicaIx, Hash, std::equal_to<>> index_;
};

}  // namespace shoal::crdt
