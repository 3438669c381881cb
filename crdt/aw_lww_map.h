#pragma once

// AwLwwMap: the replicated map of shoal, an add-wins map of byte-string keys to byte-string
// values in which concurrent puts of one key resolve last-writer-wins. It is a delta-state CRDT
// (Almeida, Shoker and Baquero, "Delta State Replicated Data Types", 2018): every mutator applies
// itself and returns a delta, a small map of the same type, and join() merges a delta or a whole
// state into a replica. Join is commutative, associative and idempotent, so replicas that have
// joined the same deltas, in any order and any number of times, hold the same map.
//
// Semantics. Each put is a version tagged with a fresh dot (replica, counter) and a hybrid logical
// clock timestamp. A put or remove removes the versions it has seen (their dots enter the causal
// context) and nothing else, so:
//  - add wins: a put concurrent with a remove of the same key survives the remove;
//  - concurrent puts of one key are all kept, as sibling versions, until a later write that has
//    seen them replaces them; reads return the winner: the greatest timestamp, ties broken by the
//    greater replica id, then the greater counter. Every replica picks the same winner because the
//    order depends only on data carried by the versions, never on arrival order.
//
// Kinds. A state is a full replica: an absent key means "not present", and a key whose last
// version is removed is erased. A delta lists the keys it touches, possibly with no version
// ("the versions my context covers are removed"), and only those keys are visited when it is
// joined, so joining a small delta into a large state costs O(delta * log(state)). A delta may be
// marked complete (a full state relayed as a delta): then joining it also visits every key of the
// receiver, as a state join does.
//
// Storage. Keys are kept sorted (prefix scans) in an intrusive tree whose nodes are the entries:
// one heap block per key holds the tree links, the key, the version headers and the value bytes,
// winner first. A key costs one allocation. A state also indexes its blocks by a hash of the key
// (crdt/key_index.h), so that a point lookup does not walk the tree.
//
// Invariants:
//  1. Every dot of every version is in context().
//  2. The versions of a key have distinct dots and are sorted by precedence, winner first.
//  3. A state holds no key without versions.
//  4. A delta's context holds only dots of versions of its listed keys, present or removed
//     (mutators and joins keep this; it is what makes visiting listed keys enough).
//
// Pure data: no IO, no clock, no threads; not thread-safe.

#include <boost/intrusive/set.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crdt/block_pool.h"
#include "crdt/causal_context.h"
#include "crdt/hlc.h"
#include "crdt/key_index.h"

namespace shoal::crdt {

// One version of a key as seen by readers. The views point into the map: they stay valid until
// the map is next changed.
struct VersionView {
  std::string_view value;
  Timestamp ts;
  std::string_view replica;  // id of the replica that wrote it
  Counter counter;
};

// A version in the map's own terms (its replica is an index into the owning context's table).
struct RawVersion {
  Timestamp ts;
  Counter counter;
  ReplicaIx replica;
  std::string_view value;
};

// One key whose versions a join or mutation changed. `before` and `after` are the winners before
// and after (absent: the key had / has no value); `versions` counts the versions after (more than
// one: concurrent puts, a conflict the caller may want to report). The views are valid only
// during the callback.
struct Change {
  std::string_view key;
  std::optional<VersionView> before;
  std::optional<VersionView> after;
  std::size_t versions;
};
using ChangeFn = std::function<void(const Change&)>;

// Selects versions for remove_if() and remove_where().
using VersionPredicate = std::function<bool(std::string_view key, const VersionView&)>;

namespace detail {

// The heap block of one key, which is also its node in the ordered index (an intrusive red-black
// tree: the links live in the block, so a key costs one allocation):
//   [tree links][key_len u32][count u32][key bytes, padded to 8][VersionHead x count][values...]
// The key follows the links so that a lookup usually reads one cache line per node it visits.
struct VersionHead {
  Timestamp ts;
  Counter counter;
  ReplicaIx replica;
  std::uint32_t value_len;
};

using IndexHook =
    boost::intrusive::set_base_hook<boost::intrusive::optimize_size<true>,
                                    boost::intrusive::link_mode<boost::intrusive::normal_link>>;

class EntryBlock : public IndexHook {
 public:
  // Allocates a block for `key` with `versions` (already in precedence order), from `pool` or,
  // if null, from the heap.
  static EntryBlock* create(std::string_view key, std::span<const RawVersion> versions,
                            BlockPool* pool);
  // Frees a block created with the same `pool`.
  static void destroy(EntryBlock* block, BlockPool* pool) noexcept;
  // The size it was allocated with.
  std::size_t bytes() const;

  std::string_view key() const { return {key_data(), key_len_}; }
  std::uint32_t count() const { return count_; }
  RawVersion version(std::uint32_t i) const;

 private:
  EntryBlock() = default;
  const char* key_data() const { return reinterpret_cast<const char*>(this + 1); }
  const VersionHead* heads() const;

  std::uint32_t key_len_ = 0;
  std::uint32_t count_ = 0;
};

// Bytewise a < b, eight bytes at a time and inline: the index compares keys at every node of
// every lookup, and a call to memcmp per node is a measurable share of a put.
inline bool key_less(std::string_view a, std::string_view b) {
  const std::size_t n = a.size() < b.size() ? a.size() : b.size();
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t x;
    std::uint64_t y;
    std::memcpy(&x, a.data() + i, 8);
    std::memcpy(&y, b.data() + i, 8);
    if (x != y) return __builtin_bswap64(x) < __builtin_bswap64(y);
  }
  for (; i < n; ++i) {
    if (a[i] != b[i]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[i]);
  }
  return a.size() < b.size();
}

// Orders blocks by key; also compares a block with a bare key, for lookups.
struct KeyLess {
  bool operator()(const EntryBlock& a, const EntryBlock& b) const {
    return key_less(a.key(), b.key());
  }
  bool operator()(const EntryBlock& a, std::string_view b) const { return key_less(a.key(), b); }
  bool operator()(std::string_view a, const EntryBlock& b) const { return key_less(a, b.key()); }
};

struct Destroy {
  BlockPool* pool;
  void operator()(EntryBlock* block) const noexcept { EntryBlock::destroy(block, pool); }
};

}  // namespace detail

class AwLwwMap {
 public:
  enum class Kind : std::uint8_t { state = 0, delta = 1, complete_delta = 2 };

  // An empty state.
  AwLwwMap() : kind_(Kind::state) {}
  // An empty map of the given kind.
  explicit AwLwwMap(Kind kind) : kind_(kind) {}
  AwLwwMap(const AwLwwMap& other);
  AwLwwMap& operator=(const AwLwwMap& other);
  AwLwwMap(AwLwwMap&& other) noexcept;
  AwLwwMap& operator=(AwLwwMap&& other) noexcept;
  ~AwLwwMap();

  Kind kind() const { return kind_; }
  bool is_delta() const { return kind_ != Kind::state; }
  // True iff joining this map must visit every key of the receiver (a state or a complete delta).
  bool is_complete() const { return kind_ != Kind::delta; }

  // --- Reads ---

  // The winning version of `key`, if the key has a value.
  std::optional<VersionView> get(std::string_view key) const;
  // Calls fn(version) for each version of `key`, winner first. Returns the number of versions.
  std::size_t versions(std::string_view key,
                       const std::function<void(const VersionView&)>& fn = {}) const;
  // Calls fn(key, winner) for each key with a value that starts with `prefix`, in key order,
  // until fn returns false. Returns the number of keys visited.
  std::size_t scan(std::string_view prefix,
                   const std::function<bool(std::string_view, const VersionView&)>& fn) const;
  // Number of keys with a value.
  std::size_t size() const { return valued_keys_; }
  // Number of keys listed, including a delta's keys without versions.
  std::size_t entry_count() const { return entries_.size(); }
  bool empty() const { return entries_.empty() && context_.nonempty_replicas() == 0; }
  const CausalContext& context() const { return context_; }
  // The greatest timestamp of any version (0 if none).
  Timestamp max_timestamp() const;

  // --- Mutators (REQUIRES: kind() == state) ---
  // Each applies itself to this map, reports the change to `on_change` (if set) and adds what
  // carries it to other replicas to `delta`. `delta` is a delta-kind map that may already hold
  // earlier mutations of this map (a batch); it must not hold anything this map has not applied.
  // `self` is the id of the writing replica, `ts` a timestamp from its hybrid logical clock.

  // Sets `key` to `value`, replacing every version of it this replica has seen.
  void put(std::string_view self, Timestamp ts, std::string_view key, std::string_view value,
           AwLwwMap& delta, const ChangeFn& on_change = {});
  // Removes every version of `key` this replica has seen. Returns false (and changes nothing) if
  // the key has no value.
  bool remove(std::string_view key, AwLwwMap& delta, const ChangeFn& on_change = {});
  // Removes the versions of `key` for which pred(key, version) is true; the others stay, and the
  // greatest of them becomes the value. Returns false (and changes nothing) if none matches.
  bool remove_if(std::string_view key, const VersionPredicate& pred, AwLwwMap& delta,
                 const ChangeFn& on_change = {});
  // Removes every version for which pred(key, version) is true. Returns the number of keys touched.
  std::size_t remove_where(const VersionPredicate& pred, AwLwwMap& delta,
                           const ChangeFn& on_change = {});

  // The same, each returning its own fresh delta (empty when nothing changed).
  AwLwwMap put(std::string_view self, Timestamp ts, std::string_view key, std::string_view value,
               const ChangeFn& on_change = {});
  AwLwwMap remove(std::string_view key, const ChangeFn& on_change = {});
  AwLwwMap remove_where(const VersionPredicate& pred, const ChangeFn& on_change = {});

  // --- Join ---

  // Merges `other` (a delta or a state) into this map and reports each key whose versions
  // changed. Returns true iff this map changed (a version added or removed, or a dot learnt).
  // A delta that joins a complete map becomes a complete delta; a state stays a state.
  bool join(const AwLwwMap& other, const ChangeFn& on_change = {});

  // --- Building, for decoders ---

  // Appends `key` with `versions` (in any order; sorted here, in place) and adds their dots to the
  // context. Returns false, adding nothing, if `key` is not greater than every key present, if
  // two versions share a dot, or if a state is given no version.
  bool append(std::string_view key, std::vector<RawVersion>& versions);
  CausalContext& mutable_context() { return context_; }

  // Same kind, keys, versions (by replica id, counter, timestamp, value) and context.
  friend bool operator==(const AwLwwMap& a, const AwLwwMap& b);

  // Calls fn(key, versions) for every listed key in order (versions in precedence order, replica
  // indices into context()).
  void for_each_entry(
      const std::function<void(std::string_view, std::span<const RawVersion>)>& fn) const;

 private:
  // Owns its blocks: every block in it is destroyed by erase_and_dispose or the destructor.
  using Index =
      boost::intrusive::set<detail::EntryBlock, boost::intrusive::compare<detail::KeyLess>,
                            boost::intrusive::constant_time_size<true>>;

  // True iff version a takes precedence over b (ts, then replica id, then counter).
  bool precedes(const RawVersion& a, const RawVersion& b) const;
  void sort_versions(std::vector<RawVersion>& versions) const;
  VersionView view(const RawVersion& v) const;
  // Replaces the versions of the entry at `it` (or erases it: state with no version left) and
  // reports the change. Returns the iterator after the entry.
  Index::iterator replace(Index::iterator it, std::span<const RawVersion> versions,
                          const ChangeFn& on_change);
  // Inserts a new key before `hint` and reports it.
  // `hash`: the key's KeyIndex::hash() if known, else 0.
  void insert(Index::iterator hint, std::string_view key, std::span<const RawVersion> versions,
              const ChangeFn& on_change, std::uint64_t hash = 0);
  // Records in `delta` (a delta-kind map) that the versions `removed` of `key` (indices into this
  // map's context) are gone and `added` is new.
  void record(AwLwwMap& delta, std::string_view key, std::span<const RawVersion> removed,
              const RawVersion* added) const;
  // Merges the versions of one key: `mine` (may be end or another key) and `theirs` (may be
  // null), with the other side's context; uses to_mine_ and scratch_.
  bool merge_key(Index::iterator mine, const detail::EntryBlock* theirs, std::string_view key,
                 const AwLwwMap& other, const ChangeFn& on_change);

  // States keep a hash index beside the tree for point lookups; deltas, small and short-lived,
  // do not.
  bool indexed() const { return kind_ == Kind::state; }
  // The entry of `key`, or end().
  Index::iterator find(std::string_view key);
  Index::const_iterator find(std::string_view key) const;

  // Where new blocks come from: a state's own pool, the heap for deltas.
  detail::BlockPool* pool() {
    if (!indexed()) return nullptr;
    if (!pool_) pool_ = std::make_unique<detail::BlockPool>();
    return pool_.get();
  }
  detail::Destroy destroy() { return detail::Destroy{pool_.get()}; }

  Kind kind_;
  std::unique_ptr<detail::BlockPool> pool_;
  Index entries_;
  detail::KeyIndex hash_;
  CausalContext context_;
  // Number of entries with at least one version (== entries_.size() for a state).
  std::size_t valued_keys_ = 0;
  // Scratch space of join(), kept to spare an allocation per join; no state between calls.
  std::vector<ReplicaIx> to_mine_;
  std::vector<RawVersion> scratch_;
};

}  // namespace shoal::crdt
