#pragma once

// Replica: one node's copy of the replicated map plus what delta-interval anti-entropy needs
// (Almeida, Shoker and Baquero, "Delta State Replicated Data Types", 2018, Algorithm 2).
//
// Every received delta that taught this replica something is appended to a delta log under a
// sequence number. Local mutations are batched: they accumulate in one open delta at the log's
// tail, sealed by flush() (the driver calls it once per loop turn and ships the batch eagerly to
// a few peers), by outgoing(), by a remote join, or when it reaches max_interval_entries. A batch
// costs one delta per loop turn instead of one per mutation. For each neighbour the replica
// remembers the sequence number up to which that neighbour acknowledged; outgoing(n) joins the
// logged deltas n has not acknowledged into one delta interval (bounded in entries, so a far-behind
// neighbour catches up in several bounded rounds), or, when the log no longer reaches back that
// far, says "send the full state". Deltas that came from n itself are not sent back to it.
//
// Deviations from the paper, and why:
//  - The log is bounded (ReplicaConfig::max_log_entries). The oldest deltas are dropped when it
//    is full; a neighbour that had not acknowledged them gets the full state instead. Memory stays
//    bounded whatever a slow or silent neighbour does.
//  - A received full state that changed this replica is logged as a complete delta, so its removals
//    reach the neighbours that never saw the removed entries' whole history.
//
// The replica never learns membership: the caller names neighbours when it asks outgoing() and
// when acks arrive, and calls forget() for a neighbour that is gone. The log is trimmed up to the
// lowest acknowledgement among the neighbours it knows.
//
// Invariants:
//  1. log_start() <= every logged delta's sequence number < next_seq(); numbers are consecutive.
//  2. log_entries() <= max(max_log_entries, entries of the newest delta).
//  3. If a batch is open, it is the last logged delta and no neighbour has acknowledged it.
//
// Pure logic: the caller passes physical time into every mutation; not thread-safe.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crdt/aw_lww_map.h"
#include "crdt/hlc.h"

namespace shoal::crdt {

using Seq = std::uint64_t;

struct ReplicaConfig {
  // Most entries (keys, summed over logged deltas) the delta log keeps. Beyond it the oldest
  // deltas are dropped; a neighbour behind them gets the full state. 256 Ki entries of a typical
  // registry delta are a few tens of MiB.
  std::size_t max_log_entries = 256 * 1024;
  // Most entries one delta interval carries. A neighbour that lacks more catches up over several
  // rounds; this bounds the work and the message size of one round.
  std::size_t max_interval_entries = 4096;
  // How far (ms) ahead of local physical time a remote timestamp may be and still advance the
  // hybrid logical clock.
  std::uint64_t max_clock_drift_ms = 60'000;
};

// What a neighbour lacks, as outgoing() answers it.
struct Outgoing {
  enum class Kind { delta_interval, full_state };
  Kind kind;
  // The payload: the delta interval, or the full state. For full_state it is the replica's own
  // state, which later mutations change in place: encode it before the next input (content added
  // meanwhile is harmless, the neighbour then merely receives it twice).
  std::shared_ptr<const AwLwwMap> payload;
  // The neighbour acknowledges with this number (on_ack) once it has joined the payload.
  Seq upto;
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
  // Removes `key`. Returns false (and changes nothing) if it had no value.
  bool remove(std::string_view key, const ChangeFn& on_change = {});
  // Removes every version that matches. Returns the number of keys touched.
  std::size_t remove_where(const VersionPredicate& pred, const ChangeFn& on_change = {});

  // Seals the open batch and returns every batch of local mutations sealed since the last flush,
  // oldest first (none if nothing happened), so the caller can ship them eagerly. They stay in the
  // log for anti-entropy. Batches the log dropped meanwhile are not returned.
  std::vector<std::shared_ptr<const AwLwwMap>> flush();
  // Local mutations were made (or sealed) since the last flush().
  bool has_unflushed() const { return open_ != nullptr || !unflushed_.empty(); }

  // --- Remote input ---

  // Joins a delta, a delta interval or a full state received from neighbour `from` at physical
  // time now_ms. Returns true iff it changed this replica; what was received is then logged, so it
  // reaches the other neighbours (a full state as a complete delta).
  bool join(std::string_view from, std::shared_ptr<const AwLwwMap> received, std::uint64_t now_ms,
            const ChangeFn& on_change = {});

  // --- Anti-entropy ---

  // What `neighbour` lacks: a delta interval of at most max_interval_entries entries (more when a
  // single logged delta is larger), the full state if the log was trimmed past its
  // acknowledgement, or nothing if it is up to date.
  std::optional<Outgoing> outgoing(std::string_view neighbour);
  // `neighbour` has joined everything before sequence number `upto`. Acks for numbers this replica
  // never gave out are ignored.
  void on_ack(std::string_view neighbour, Seq upto);
  // Stops tracking `neighbour` (it left or died); its acknowledgement no longer holds the log.
  void forget(std::string_view neighbour);
  // Acknowledgement of `neighbour`, if it is tracked.
  std::optional<Seq> acked(std::string_view neighbour) const;

  Seq next_seq() const { return next_seq_; }
  Seq log_start() const { return log_start_; }
  std::size_t log_size() const { return log_.size(); }
  std::size_t log_entries() const { return log_entries_; }

 private:
  struct Logged {
    Seq seq;
    std::shared_ptr<const AwLwwMap> delta;
    std::string origin;  // the neighbour it came from; empty for local mutations
    std::size_t entries;
  };

  // The open batch, created on first use.
  AwLwwMap& batch();
  // Seals the open batch, if any, keeping it for the next flush().
  void seal();
  // Counts one mutation in the open batch; seals it when it is full.
  void grew(std::size_t entries);
  void append(std::shared_ptr<const AwLwwMap> delta, std::string_view origin);
  // Drops logged deltas every tracked neighbour acknowledged, and the oldest beyond the bound.
  void trim();

  // Fixed after construction.
  const std::string id_;
  const ReplicaConfig config_;
  // Changed by inputs.
  std::shared_ptr<AwLwwMap> state_;
  Hlc clock_;
  std::deque<Logged> log_;
  // The open batch of local mutations (already the log's last item), or null.
  std::shared_ptr<AwLwwMap> open_;
  // Sealed local batches not yet returned by flush(), oldest first, each with its seq.
  std::deque<std::pair<Seq, std::shared_ptr<const AwLwwMap>>> unflushed_;
  Seq log_start_ = 0;
  Seq next_seq_ = 0;
  std::size_t log_entries_ = 0;
  std::map<std::string, Seq, std::less<>> acks_;
};

}  // namespace shoal::crdt
