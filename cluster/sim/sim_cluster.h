#pragma once

// SimCluster: N membership cores on a simulated network in virtual time (the FoundationDB habit:
// the same code as production, driven by a deterministic simulator).
//
// Time is virtual: an event heap ordered by (time, sequence) holds packet deliveries, stream
// exchanges and timer wake-ups; nothing sleeps, so 1,000 nodes run minutes of protocol in seconds.
// The network has per-packet latency with jitter (which also reorders), loss, duplication,
// partitions, and per-node faults: kill (the process is gone, its host answers "port unreachable"),
// pause (SIGSTOP: silence, packets buffered until resume) and restart (a new process with a new
// creation under the same name and address).
//
// Deterministic: one seed drives the network and every node's RNG; trace_hash() digests every
// delivery, so a seed that replays differently is a bug.
//
// Not thread-safe; a test owns one.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "cluster/membership.h"
#include "cluster/node.h"
#include "cluster/replicator.h"
#include "crdt/hash.h"

namespace shoal::cluster::sim {

struct SimNetConfig {
  // One-way latency of a packet, ms, uniform in [min, max]: the jitter also reorders packets.
  std::uint64_t latency_min_ms = 1;
  std::uint64_t latency_max_ms = 3;
  // Probability that a packet is lost, or delivered twice.
  double loss = 0;
  double duplicate = 0;
  // Packets a paused node's socket buffers before it drops the rest.
  std::size_t paused_buffer = 256;
  // Whether events() also keeps "joined" and "updated" events (N^2 of them while a large cluster
  // forms; the failure-related ones are always kept).
  bool record_joins = false;
  // Whether every node also runs the replicator of the shared map (with this configuration).
  std::optional<ReplicatorConfig> replication;
  // Whether replicated-map changes are kept per node (take_changes) rather than only counted.
  bool record_changes = false;
};

struct SimEvent {
  std::size_t node;
  MemberEvent event;
};

class SimCluster {
 public:
  // N nodes named n0..n{N-1}, started at time 0, not yet joined.
  SimCluster(std::size_t n, std::uint64_t seed, MembershipConfig config = {},
             SimNetConfig net = {});

  std::size_t size() const { return nodes_.size(); }
  std::uint64_t now() const { return now_; }
  std::uint64_t seed() const { return seed_; }
  Membership& node(std::size_t i) { return nodes_[i].core->membership(); }
  const Membership& node(std::size_t i) const { return nodes_[i].core->membership(); }
  // Node i's replicator (REQUIRES: SimNetConfig::replication).
  Replicator& replicator(std::size_t i);
  // Routes the effects of API calls made on node i's parts (node(i).leave(...),
  // replicator(i).put(...)).
  void settle(std::size_t i);
  // Replicated-map changes reported by node i so far.
  std::uint64_t changes(std::size_t i) const { return nodes_[i].changes; }
  // The changes node i reported since the last call (with SimNetConfig::record_changes).
  std::vector<ReplicaChange> take_changes(std::size_t i);
  const std::string& name(std::size_t i) const { return nodes_[i].name; }
  const Address& addr(std::size_t i) const { return nodes_[i].addr; }
  bool running(std::size_t i) const { return nodes_[i].running; }

  // Node i joins through the given seed nodes.
  void join(std::size_t i, const std::vector<std::size_t>& seeds);
  // Every node joins through node `seed`, all at once.
  void join_all(std::size_t seed = 0);

  // Runs the simulation for `ms` of virtual time.
  void run_for(std::uint64_t ms);
  // Runs until pred() holds (checked every `check_every_ms` of virtual time) or `timeout_ms`
  // passed. Returns pred().
  bool wait_until(const std::function<bool()>& pred, std::uint64_t timeout_ms,
                  std::uint64_t check_every_ms = 10);

  // --- Faults ---
  void kill(std::size_t i);
  void pause(std::size_t i);
  void resume(std::size_t i);
  // A new process under the same name and address, with a new creation; it joins through `seeds`.
  void restart(std::size_t i, const std::vector<std::size_t>& seeds);
  // Nodes in different groups cannot reach each other; nodes not listed form one more group.
  void partition(const std::vector<std::vector<std::size_t>>& groups);
  void heal();
  void set_loss(double p) { net_.loss = p; }
  void set_duplicate(double p) { net_.duplicate = p; }

  // --- Observations ---

  // True iff node i sees member `name` with `status`.
  bool sees(std::size_t i, const std::string& name, MemberStatus status) const;
  // True iff every running node sees every running node (itself included) alive, and nobody else.
  bool converged() const;
  // True iff every running node except `victim` sees `victim` with `status`.
  bool all_see(std::size_t victim, MemberStatus status) const;
  // Membership events, in order, with the node that emitted it ("joined" and "updated" only
  // with SimNetConfig::record_joins).
  const std::vector<SimEvent>& events() const { return events_; }
  // Payloads of the layers above, delivered per node.
  const std::vector<std::vector<UserMessage>>& user_messages() const { return user_; }
  // A digest of every delivery so far (time, endpoints, bytes).
  std::uint64_t trace_hash() const { return trace_.value(); }
  std::uint64_t packets_sent() const { return packets_sent_; }
  std::uint64_t packets_dropped() const { return packets_dropped_; }

 private:
  enum class Kind { packet, unreachable, stream_request, stream_reply, stream_failed, wake };
  struct Ev {
    std::uint64_t at;
    std::uint64_t seq;
    Kind kind;
    std::size_t to;      // node index
    std::uint64_t life;  // the life of `to` the event was meant for
    std::size_t from;    // node index of the sender (packets, streams)
    Address from_addr;
    std::uint64_t stream;  // stream id (requests: of the requester)
    std::string bytes;
    friend bool operator>(const Ev& a, const Ev& b) {
      return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
  };
  struct Host {
    std::string name;
    Address addr;
    std::unique_ptr<Node> core;
    std::uint64_t changes = 0;
    std::vector<ReplicaChange> recorded;
    std::uint64_t life = 0;  // bumped on every restart
    bool running = true;
    bool paused = false;
    int group = 0;
    std::uint64_t wake_at = UINT64_MAX;
    std::deque<Ev> buffered;  // packets that reached a paused node
  };

  void start(std::size_t i);
  void push(Ev ev);
  void step();
  void deliver(Ev& ev);
  // Drains node i's effects into the network and schedules its next wake-up.
  void after_input(std::size_t i);
  std::uint64_t latency();
  bool chance(double p);
  std::size_t node_at(const Address& a) const;
  bool linked(std::size_t a, std::size_t b) const { return nodes_[a].group == nodes_[b].group; }
  void mix(std::uint64_t v);

  const std::uint64_t seed_;
  const MembershipConfig config_;
  SimNetConfig net_;
  std::mt19937_64 rng_;
  std::uint64_t now_ = 0;
  std::uint64_t next_seq_ = 0;
  std::vector<Host> nodes_;
  std::unordered_map<Address, std::size_t, AddressHash> by_addr_;
  std::priority_queue<Ev, std::vector<Ev>, std::greater<>> heap_;
  std::vector<SimEvent> events_;
  std::vector<std::vector<UserMessage>> user_;
  std::vector<NodeEffect> scratch_;
  std::vector<ReplicaChange> changes_scratch_;
  crdt::Fnv1a trace_;
  std::uint64_t packets_sent_ = 0;
  std::uint64_t packets_dropped_ = 0;
};

}  // namespace shoal::cluster::sim
