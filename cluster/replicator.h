#pragma once

// Replicator: anti-entropy of the replicated map between cluster members, as a sans-IO core (it
// knows nothing of names or pids).
//
// It owns the node's crdt::Replica, whose batches are named by origin and number, and whose
// digests say which batches a replica has (crdt/replica.h). Local mutations go into the replica's
// open batch; flush(), once per loop turn, ships the sealed batches at once to every peer (in
// clusters up to eager_all_peers; beyond, to eager_fanout random ones): a registration is seen
// cluster-wide within a round trip. Each receiver answers with its digest, which acknowledges the
// batches, lets the sender ship the next ones (ack-clocked, within a window of entries: a slow peer
// gets backpressure, not a growing queue), and tells it what not to send again.
//
// Every round, a few random peers are asked for their digests; each answer is diffed against the
// log and the peer gets what it lacks: batches lost on the way, batches of other origins it could
// not get from them (after ReplicaConfig::forward_delay_ms), or the full state if it lacks batches
// the log no longer holds (a new or long-partitioned member). A digest equal to this replica's
// own, byte for byte (a quiet cluster's every round), is taken without decoding it. Membership
// hands down the live peers (set_peers): a peer that disappears is forgotten, so it no longer holds
// the log.
//
// Messages that fit a datagram go as datagrams; larger ones (big batches, full states) as streams;
// the driver chooses the transport.
//
// Wire (msgpack, versioned; the maps inside are crdt/codec.h's):
//   batches := [1, 1, [[origin, seq, map], ...]]
//   digest  := [1, 2, reply_wanted (0|1), [[origin, seq], ...]]   also acknowledges batches
//   state   := [1, 3, [[origin, seq], ...], map]               the full state and what it covers
//
// Sans-IO: the time comes with every input; effects are drained with take_effects(); the RNG is
// seeded at construction. Not thread-safe.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "crdt/replica.h"

namespace shoal::cluster {

struct ReplicatorConfig {
  // ms between anti-entropy rounds.
  std::uint64_t round_ms = 100;
  // Peers asked for their digest each round.
  std::size_t fanout = 2;
  // New local batches go at once to every peer while there are at most this many (a batch is
  // one datagram per peer: at 20 agents, sending to only a few and leaving the rest to the
  // rounds made the last survivor hear of a failover's restarts some 400 ms later)...
  std::size_t eager_all_peers = 128;
  // ... and to this many random peers in larger clusters (the rounds carry them further).
  std::size_t eager_fanout = 4;
  // Messages up to this many bytes go as datagrams, larger ones as streams. 1,200 leaves room for
  // the membership packet around them.
  std::size_t max_datagram_bytes = 1200;
  crdt::ReplicaConfig replica;
};

// Send `bytes` to peer `to`, as a datagram or (stream) over a reliable connection.
struct ReplicaSend {
  std::string to;
  std::string bytes;
  bool stream;
};
// A key whose winning value changed (or that gained or lost concurrent versions). Copies.
struct ReplicaChange {
  std::string key;
  std::optional<std::string> before;
  std::optional<std::string> after;
  std::size_t versions;
};
using ReplicaEffect = std::variant<ReplicaSend>;

struct ReplicatorStats {
  std::uint64_t batches_sent = 0;  // batches in batch messages
  std::uint64_t batch_messages_sent = 0;
  std::uint64_t full_states_sent = 0;
  std::uint64_t full_states_encoded =
      0;  // encodings: states sent at once to several peers share one
  std::uint64_t digests_sent = 0;
  std::uint64_t streams_sent = 0;
  std::uint64_t batches_in = 0;
  std::uint64_t digests_in = 0;
  std::uint64_t digests_in_same = 0;  // of digests_in: this replica's own, byte for byte
  std::uint64_t states_in = 0;
  std::uint64_t rejected = 0;  // undecodable messages
  std::uint64_t bytes_out = 0;
};

class Replicator {
 public:
  Replicator(std::string replica_id, ReplicatorConfig config, std::uint64_t seed,
             std::uint64_t now_ms);

  // --- Inputs ---
  // The live peers. A peer missing from the new list is forgotten (its acknowledgements no longer
  // hold the delta log, nothing is in flight to it). A peer that restarted must drop out and come
  // back (membership reports its old life failed and the new one joined), so that what its old life
  // acknowledged is not taken for what the new one has.
  void set_peers(std::uint64_t now_ms, std::vector<std::string> peers);
  void put(std::uint64_t now_ms, std::string_view key, std::string_view value);
  // A put stamped `ts` rather than now (crdt::Replica::put_at).
  void put_at(std::uint64_t now_ms, crdt::Timestamp ts, std::string_view key,
              std::string_view value);
  bool remove(std::uint64_t now_ms, std::string_view key);
  // Removes only the versions of `key` that match (crdt::Replica::remove_if).
  bool remove_if(std::uint64_t now_ms, std::string_view key, const crdt::VersionPredicate& pred);
  std::size_t remove_where(std::uint64_t now_ms, const crdt::VersionPredicate& pred);
  // Ships the local mutations made since the last flush. Call once per loop turn.
  void flush(std::uint64_t now_ms);
  // Local mutations wait for flush().
  bool pending() const { return replica_.has_unflushed(); }
  void on_message(std::uint64_t now_ms, const std::string& from, std::string_view bytes);
  // Every encoded map the replica takes in from now on (each local batch as it is sealed, each
  // batch and full state joined from a peer), for a durable log (cluster/map_store.h).
  using JournalFn = std::function<void(std::string_view encoded_map)>;
  void set_journal(JournalFn journal) { journal_ = std::move(journal); }
  // Joins a map read back from disk (a state or delta of earlier lives): its changes are reported
  // as usual; it claims no batch, so peers still send theirs (joins are idempotent).
  void restore(std::uint64_t now_ms, const crdt::AwLwwMap& map);
  void on_timer(std::uint64_t now_ms);

  // --- Outputs ---
  std::uint64_t next_deadline() const { return next_round_; }
  void take_effects(std::vector<ReplicaEffect>& out);
  // The changes of the map since the last call, in order (kept apart from the sends: a bulk
  // write makes many, and they are handed over without copying).
  void take_changes(std::vector<ReplicaChange>& out);

  const crdt::AwLwwMap& state() const { return replica_.state(); }
  const crdt::Replica& replica() const { return replica_; }
  // True once this replica has had everything `peer` had at some moment since it became a peer
  // (since set_peers last added it): a full digest of its (a round's request) or a full state of
  // its was covered by this replica. Callers that must not act on a stale map (the supervisor's
  // quorum mode, after a partition heals or a restart) wait for it.
  bool synced_with(std::string_view peer) const { return synced_.contains(peer); }
  // `life` is one of the peers set_peers() gave.
  bool is_peer(std::string_view life) const {
    return std::binary_search(peers_.begin(), peers_.end(), life);
  }
  const ReplicatorStats& stats() const { return stats_; }

 private:
  // Sends `peer` what it lacks, if anything.
  void push(std::uint64_t now_ms, const std::string& peer);
  void send_digest(const std::string& to, bool reply_wanted, const crdt::Digest& digest);
  // send_digest() of this replica's whole digest.
  void send_full_digest(const std::string& to, bool reply_wanted);
  void emit(const std::string& to, std::string bytes);
  crdt::ChangeFn recorder();
  // This replica has every batch `theirs` names.
  bool covered(const crdt::Digest& theirs);
  // This replica's whole digest, and its encoding, rebuilt only when it changed.
  struct FullDigest {
    crdt::Digest digest;
    std::string packed;  // as pack_digest() writes it
  };
  const FullDigest& full_digest();
  void mark_synced(const std::string& peer);
  std::vector<std::string> pick(std::size_t k);

  const ReplicatorConfig config_;
  crdt::Replica replica_;
  JournalFn journal_;
  // The last full state encoded, and the digest it covers (see push()).
  std::shared_ptr<const std::string> state_cache_;
  crdt::Digest state_cache_covers_;
  // A quiet cluster's rounds send and receive the same digest over and over: it is built and
  // encoded once, and an incoming one that matches it byte for byte is not decoded.
  std::optional<FullDigest> full_digest_;
  std::mt19937_64 rng_;
  std::vector<std::string> peers_;             // sorted
  std::set<std::string, std::less<>> synced_;  // peers whose map this replica has caught up with
  std::uint64_t next_round_;
  std::vector<ReplicaEffect> effects_;
  std::vector<ReplicaChange> changes_;
  ReplicatorStats stats_;
};

}  // namespace shoal::cluster
