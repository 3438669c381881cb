#pragma once

// Replica: one node's copy of the replicated map plus what anti-entropy needs.
//
// Every delta travels as a batch named by its origin (the replica that wrote it) and the origin's
// batch number (1, 2, 3...). Local mutations accumulate in one open batch, sealed by flush() (the
// driver calls it once per loop turn) or when it reaches max_batch_entries: a burst of writes
// costs one delta, not one per write. Batches are joined whole, as written, so a replica that has
// joined batches 1..n of an origin holds everything that origin wrote up to n, removals included.
//
// A replica's digest says, per origin, up to which number it has joined every batch. Neighbours
// exchange digests (with every acknowledgement, and in anti-entropy rounds), and outgoing(n) is a
// digest-driven diff: the logged batches n lacks according to its last digest, bounded in entries,
// never one that came from n itself, and never one already on its way (unless it has gone
// unacknowledged for resend_after_ms). So a batch crosses each link about once: its origin ships
// it to every neighbour at once, the neighbours acknowledge, and nobody forwards what the others
// already reported. Another origin's batch is forwarded only after forward_delay_ms, giving its
// origin the time to deliver it itself; forwarding is what carries it across a broken link or past
// a dead origin.
//
// Quiet origins are settled: an origin with nothing logged, unchanged for settle_after_ms, whose
// batches every tracked neighbour has reported, keeps no per-neighbour bookkeeping (what each
// neighbour has of it, what was sent of it). The neighbours tracked then are known to have it up to
// the origin's number; one tracked later is asked as before. In a cluster with churn every
// restarted life is a new origin: without this, each one left an entry per neighbour in three maps
// (about 300 bytes per neighbour per life, for as long as the node runs). A batch of a settled
// origin arriving unsettles it first, so nothing changes in what is sent. An origin settles only
// when every neighbour reported exactly this replica's number of it (none has more).
//
// Past origins are retired. An origin that is neither this replica nor a tracked neighbour (a
// node life that died, left or restarted: the replicator tracks the live peers) and has stayed
// settled and absent for retire_after_ms leaves the origin table. Its number is kept for
// retired_keep_ms: the digest still reports it, so a neighbour that has not retired it yet does
// not take this replica for one that lacks it, and a batch, a digest or a state showing more of
// it brings it back (a partition that outlasted retire_after_ms, for one). Then it is forgotten:
// a neighbour that still holds it and meets this replica anew sends the full state. A full state
// covers the origins held, not the retired ones, and an origin a state covers that is neither
// held nor a neighbour here is noted as retired at once (its batches are in the state):
// otherwise each new member would take past lives from its state as live origins and hand them
// on, and under steady churn (lives shorter than retire_after_ms) none would ever be forgotten.
// An origin brought back is taken to be had by every neighbour up to its retired number, until a
// neighbour reports less. Not covered: a batch of an origin arriving after this replica forgot it,
// from a neighbour that still holds the origin, is joined but never acknowledged (the origin is
// new here, with a gap below the batch), so that neighbour resends it until its log bound drops
// it and it sends the state; it takes a partition longer than retire_after_ms + retired_keep_ms
// across which only one side got the origin's last batches. Without retirement every life ever seen
// stayed in the table and in every digest: memory and digest size grew with the cluster's restarts.
//
// The log keeps each batch until every tracked neighbour's digest covers it, and at most
// max_log_entries entries: beyond that the oldest batches are dropped, and a neighbour that lacks
// a dropped batch gets the full state, with the digest the state covers.
//
// Why not one log sequence and per-neighbour acknowledgements of it (Almeida et al., "Delta State
// Replicated Data Types", Algorithm 2)? There every replica forwards everything it receives to
// every neighbour, since it cannot know what the others got from the origin: in a full mesh of n
// nodes each delta crosses the network about n times. Digests by origin make that knowable.
// Filtering deltas by a version vector of dots instead would be unsafe: having seen a dot does not
// mean having seen the removals that came with it.
//
// Invariants:
//  1. digest()[o] = n means every batch 1..n of origin o has been joined (or a state covering
//     them); the own origin's batches are all logged or trimmed.
//  2. log_entries() <= max(max_log_entries, entries of the newest batch).
//  3. A neighbour is sent nothing its known digest covers.
//
// Pure logic: the caller passes physical time into every input; not thread-safe.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "crdt/aw_lww_map.h"
#include "crdt/hlc.h"

namespace shoal::crdt {

using Seq = std::uint64_t;

// Per origin (a replica id): every batch numbered 1..n has been joined.
using Digest = std::map<std::string, Seq, std::less<>>;

struct ReplicaConfig {
  // Most entries (keys, summed over logged batches) the log keeps. Beyond it the oldest batches
  // are dropped; a neighbour that lacks one gets the full state.
  std::size_t max_log_entries = 256 * 1024;
  // A local batch is sealed when it holds this many entries.
  std::size_t max_batch_entries = 4096;
  // Most entries one outgoing() message carries (at least one batch, whatever its size).
  std::size_t max_message_entries = 16 * 1024;
  // Most entries on their way to one neighbour and not yet acknowledged (backpressure).
  std::size_t window_entries = 32 * 1024;
  // Batches sent to a neighbour that has not acknowledged anything for this long are sent again.
  std::uint64_t resend_after_ms = 500;
  // A full state sent to a neighbour is sent again (if its digests still show it lacking) only
  // after this long: a big state takes a loaded neighbour a while to decode and acknowledge, and
  // sending it again meanwhile only adds load.
  std::uint64_t state_resend_ms = 5'000;
  // A neighbour that lacks batches of another live origin (a tracked neighbour) which this
  // replica no longer logs (it got them in a full state, say) is sent the full state on that
  // origin's account only once the origin's latest batch here is this old: until then the origin
  // delivers its batches itself. Without this wait, every full state a replica joined made it send
  // full states to each neighbour a little behind on any origin, which did the same: at 50 nodes
  // during a failover, a storm of states (one node sent 1,350 in 4 minutes) that starved the CPU
  // and failed live members.
  std::uint64_t live_origin_grace_ms = 2'000;
  // Another origin's batch is forwarded to a neighbour only once it is this old.
  std::uint64_t forward_delay_ms = 200;
  // An origin with nothing logged that has not changed for this long is settled (see above).
  std::uint64_t settle_after_ms = 10'000;
  // An origin settled and absent from the neighbours (a past life) for this long is retired; its
  // number is remembered for retired_keep_ms more (see above).
  std::uint64_t retire_after_ms = 60'000;
  std::uint64_t retired_keep_ms = 300'000;
  // How far (ms) ahead of local physical time a remote timestamp may be and still advance the
  // hybrid logical clock.
  std::uint64_t max_clock_drift_ms = 60'000;
};

// A batch's delta as crdt/codec.h encodes it: the log keeps batches encoded (one allocation per
// batch, a third the size of the decoded map) and sends them as they are.
using Encoded = std::shared_ptr<const std::string>;

// One batch as it travels.
struct BatchRef {
  std::string origin;
  Seq seq;
  Encoded bytes;
};

// What a neighbour lacks, as outgoing() answers it: batches, or the full state.
struct Outgoing {
  std::vector<BatchRef> batches;
  // The full state, when the neighbour lacks batches no longer logged. It is the replica's own
  // state, which later mutations change in place: encode it before the next input.
  std::shared_ptr<const AwLwwMap> state;
  Digest covers;  // with a state: the digest it covers
  std::size_t entries = 0;
};

class Replica {
 public:
  explicit Replica(std::string id, ReplicaConfig config = {});

  const std::string& id() const { return id_; }
  const AwLwwMap& state() const { return *state_; }
  const Hlc& clock() const { return clock_; }
  const ReplicaConfig& config() const { return config_; }

  // --- Local mutations ---
  // Each applies itself and adds its delta to the open batch. `on_change` hears the change as a
  // join would report it.

  // Sets `key` to `value` at physical time now_ms.
  void put(std::uint64_t now_ms, std::string_view key, std::string_view value,
           const ChangeFn& on_change = {});
  // Sets `key` to `value` with timestamp `ts` instead of the clock's: a new version (a new dot,
  // so no earlier removal covers it) that is ordered among concurrent versions as the earlier
  // write stamped `ts` was. For putting back a write that another node's removal undid.
  void put_at(std::uint64_t now_ms, Timestamp ts, std::string_view key, std::string_view value,
              const ChangeFn& on_change = {});
  // Removes `key`. Returns false (and changes nothing) if it had no value.
  bool remove(std::string_view key, const ChangeFn& on_change = {});
  // Removes the versions of `key` that match (AwLwwMap::remove_if). Returns false (and changes
  // nothing) if none does.
  bool remove_if(std::string_view key, const VersionPredicate& pred,
                 const ChangeFn& on_change = {});
  // Removes every version that matches. Returns the number of keys touched.
  std::size_t remove_where(const VersionPredicate& pred, const ChangeFn& on_change = {});

  // Seals the open batch and returns every local batch sealed since the last flush, encoded,
  // oldest first (none if nothing happened). They stay in the log for outgoing().
  std::vector<Encoded> flush();
  // Local mutations were made (or sealed) since the last flush().
  bool has_unflushed() const { return open_ != nullptr || !unflushed_.empty(); }

  // --- Remote input ---

  // Joins batch `seq` of `origin` (received from any neighbour): `delta` decoded from `bytes`.
  // Returns true iff it changed this replica. A batch already joined is ignored.
  bool join_batch(std::string_view origin, Seq seq, const AwLwwMap& delta, Encoded bytes,
                  std::uint64_t now_ms, const ChangeFn& on_change = {});
  // Joins a full state that covers `covers`. Returns true iff it changed this replica.
  bool join_state(const AwLwwMap& state, const Digest& covers, std::uint64_t now_ms,
                  const ChangeFn& on_change = {});

  // --- Anti-entropy ---

  // This replica's digest, whole or only for `origins`.
  Digest digest() const;
  Digest digest(const std::vector<std::string>& origins) const;
  // True iff digest() would return `digest`; allocates nothing (callers keep a digest they
  // built and check it is still current).
  bool digest_is(const Digest& digest) const;
  // `neighbour` reports that it has what `digest` says (an acknowledgement, or an answer to a
  // round). Digests only grow: older news never lowers what is known.
  void on_digest(std::string_view neighbour, const Digest& digest, std::uint64_t now_ms);
  // What `neighbour` lacks and is not already on its way, or nothing. What it returns counts as
  // sent. Before the neighbour's first digest only this replica's own batches are sent.
  std::optional<Outgoing> outgoing(std::string_view neighbour, std::uint64_t now_ms);
  // Tracks `neighbour`: the log keeps what it lacks (within the bound).
  void track(std::string_view neighbour);
  // Stops tracking `neighbour` (it left or died); what it lacks no longer holds the log.
  void forget(std::string_view neighbour);
  // What `neighbour` reported, if it is tracked and has reported.
  const Digest* known(std::string_view neighbour) const;
  // Some batch of `origin` was joined while an earlier one is still missing: what came later may
  // have overtaken what came first (a removal, say, before the write it followed).
  bool gap(std::string_view origin) const;
  // Every local mutation is flushed and every tracked neighbour has acknowledged all of this
  // replica's batches (a node that is about to leave has handed on everything it wrote).
  bool acknowledged() const { return !has_unflushed() && unacknowledged().empty(); }
  // The tracked neighbours that have not acknowledged all of this replica's batches.
  std::vector<std::string> unacknowledged() const;

  // The bookkeeping sweep (see above): settles the quiet origins, retires the past ones, forgets
  // the retired ones past retired_keep_ms, and drops what neighbours reported of origins held
  // nowhere here (bounded, whatever they send). Runs at most every settle_after_ms / 4; the
  // replicator calls it every round.
  void settle(std::uint64_t now_ms);
  // Per-origin entries held for the tracked neighbours (what each has, what was sent to it, since
  // when it stalled), summed: it grows with origins only while they are active.
  std::size_t neighbour_entries() const;
  std::size_t origin_count() const { return origins_.size(); }
  // Origins retired and still remembered (see above).
  std::size_t retired_count() const { return retired_.size(); }

  std::size_t log_entries() const { return log_entries_; }
  std::size_t log_batches() const { return log_batches_; }

 private:
  struct Logged {
    Encoded bytes;
    std::size_t entries;
    std::uint64_t arrival;  // order of logging, for dropping the oldest
    std::uint64_t logged_ms;
  };
  struct Origin {
    std::map<Seq, Logged> log;
    Seq have = 0;                       // every batch 1..have joined
    std::set<Seq> beyond;               // joined batches above have+1 (bounded)
    Seq trimmed = 0;                    // batches 1..trimmed may be missing from the log
    std::uint64_t changed_ms = 0;       // the last batch logged or number raised
    std::uint64_t absent_since_ms = 0;  // not self nor a neighbour since (0: present)
    // Settled: the log is empty and every neighbour with epoch <= settled_epoch has batches
    // 1..have (unchanged while settled: anything that would change it unsettles first); those
    // neighbours hold no entry for this origin.
    bool settled = false;
    std::uint64_t settled_epoch = 0;
  };
  struct Neighbour {
    Digest known;
    bool heard = false;
    std::map<std::string, Seq, std::less<>> sent;  // highest batch sent, per origin
    // Per origin: the last progress of the neighbour's digest for it, or the first send after
    // it. Per origin, because other origins' progress says nothing of a batch of this one lost
    // on the way (under steady writes elsewhere, a lost batch was never sent again).
    std::map<std::string, std::uint64_t, std::less<>> stall_since;
    std::uint64_t state_sent_ms = 0;
    bool state_sent = false;
    std::uint64_t epoch = 0;  // when it was tracked (Replica::epochs_ then)
  };

  AwLwwMap& batch();
  void seal();
  void grew(std::size_t entries);
  void log_batch(Origin& origin, Seq seq, Encoded bytes, std::size_t entries, std::uint64_t now_ms);
  // Drops what every tracked neighbour has, for one origin.
  void trim_origin(const std::string& id, Origin& origin);
  // Drops the oldest batches beyond max_log_entries.
  void bound();
  std::size_t outstanding(const Neighbour& n) const;
  // Entries of `origin`'s batches sent to `n` and not acknowledged.
  std::size_t outstanding(const Neighbour& n, std::string_view origin, Seq sent) const;
  struct Retired {
    Seq have;
    std::uint64_t at_ms;
  };
  // The origins held, with their numbers (the digest without the retired ones).
  Digest held() const;
  // What `n` has of origin `id` (`o`), as far as this replica knows.
  static Seq known_of(const Neighbour& n, std::string_view id, const Origin& o);
  // A retired origin comes back, settled as it was retired.
  std::map<std::string, Origin, std::less<>>::iterator revive(
      std::map<std::string, Retired, std::less<>>::iterator r);
  // A settled origin is about to change: its neighbours' entries come back.
  void unsettle(std::string_view id, Origin& o);
  Neighbour& add_neighbour(std::string_view id);

  // Fixed after construction.
  const std::string id_;
  const ReplicaConfig config_;
  // Changed by inputs.
  std::shared_ptr<AwLwwMap> state_;
  Hlc clock_;
  std::map<std::string, Origin, std::less<>> origins_;
  std::unique_ptr<AwLwwMap> open_;
  std::size_t open_entries_ = 0;
  std::vector<Encoded> unflushed_;  // sealed since the last flush()
  std::map<std::string, Neighbour, std::less<>> neighbours_;
  std::map<std::string, Retired, std::less<>> retired_;
  std::size_t log_entries_ = 0;
  std::size_t log_batches_ = 0;
  std::uint64_t arrivals_ = 0;
  std::uint64_t last_ms_ = 0;  // the latest time any input carried
  std::uint64_t epochs_ = 0;   // neighbours tracked so far
  std::uint64_t next_settle_ms_ = 0;
};

}  // namespace shoal::crdt
