#pragma once

// Replicator: delta-interval anti-entropy of the replicated map between cluster members, as a
// sans-IO core (the first part of the registry issue; it knows nothing of names or pids).
//
// It owns the node's crdt::Replica. Local mutations go into the replica's open batch; flush(),
// once per loop turn, ships the new batches eagerly to a few peers (fast: a registration is seen
// cluster-wide in milliseconds). Every round it also sends each of a few random peers what that
// peer has not acknowledged (a bounded delta interval, or the full state when the log no longer
// reaches back far enough), and the peer acknowledges; that repairs whatever the eager path lost.
// A peer with an interval in flight gets no other until it acknowledges or the ack times out
// (backpressure: a slow peer costs one outstanding interval, not a growing queue).
//
// Membership hands down the live peers (set_peers): a peer that disappears is forgotten, so its
// acknowledgement stops holding the delta log. Messages that fit a datagram go as datagrams;
// larger ones (big intervals, full states) go as streams; the driver chooses the transport.
//
// Wire (msgpack, versioned; the map inside is crdt/codec.h's):
//   delta := [1, 1, upto, map]     upto 0: an eager batch, not acknowledged
//   ack   := [1, 2, upto]
//
// Sans-IO: the time comes with every input; effects are drained with take_effects(); the RNG is
// seeded at construction. Not thread-safe.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "crdt/replica.h"

namespace shoal::cluster {

struct ReplicatorConfig {
  // ms between anti-entropy rounds.
  std::uint64_t round_ms = 100;
  // Peers that get their missing interval each round.
  std::size_t fanout = 2;
  // Peers an eager batch goes to.
  std::size_t eager_fanout = 3;
  // Messages up to this many bytes go as datagrams, larger ones as streams. 1,200 leaves room for
  // the membership packet around them.
  std::size_t max_datagram_bytes = 1200;
  // ms after which an unacknowledged interval may be sent again.
  std::uint64_t ack_timeout_ms = 1000;
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
using ReplicaEffect = std::variant<ReplicaSend, ReplicaChange>;

struct ReplicatorStats {
  std::uint64_t eager_sent = 0;
  std::uint64_t intervals_sent = 0;
  std::uint64_t full_states_sent = 0;
  std::uint64_t streams_sent = 0;
  std::uint64_t acks_in = 0;
  std::uint64_t deltas_in = 0;
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
  bool remove(std::uint64_t now_ms, std::string_view key);
  std::size_t remove_where(std::uint64_t now_ms, const crdt::VersionPredicate& pred);
  // Ships the local mutations made since the last flush to a few peers. Call once per loop turn.
  void flush(std::uint64_t now_ms);
  // Local mutations wait for flush().
  bool pending() const { return replica_.has_unflushed(); }
  void on_message(std::uint64_t now_ms, const std::string& from, std::string_view bytes);
  void on_timer(std::uint64_t now_ms);

  // --- Outputs ---
  std::uint64_t next_deadline() const { return next_round_; }
  void take_effects(std::vector<ReplicaEffect>& out);

  const crdt::AwLwwMap& state() const { return replica_.state(); }
  const crdt::Replica& replica() const { return replica_; }
  const ReplicatorStats& stats() const { return stats_; }

 private:
  struct InFlight {
    crdt::Seq upto;
    std::uint64_t sent_ms;
  };

  void send(const std::string& to, std::uint64_t upto, const crdt::AwLwwMap& map);
  void send_ack(const std::string& to, std::uint64_t upto);
  crdt::ChangeFn recorder();
  std::vector<std::string> pick(std::size_t k);

  const ReplicatorConfig config_;
  crdt::Replica replica_;
  std::mt19937_64 rng_;
  std::vector<std::string> peers_;  // sorted
  std::map<std::string, InFlight, std::less<>> in_flight_;
  std::uint64_t next_round_;
  std::vector<ReplicaEffect> effects_;
  ReplicatorStats stats_;
};

}  // namespace shoal::cluster
