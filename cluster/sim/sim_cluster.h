#pragma once

// SimCluster: N node cores on a simulated network in virtual time (the FoundationDB habit: the
// same code as production, driven by a deterministic simulator). A core is a cluster::Node
// (membership, and replication when SimNetConfig::replication is set) or anything else that
// implements cluster::Core, made by a factory: a supervisor::Stack runs every layer of a node.
//
// Time is virtual: an event heap ordered by (time, sequence) holds packet deliveries, stream
// exchanges and timer wake-ups; nothing sleeps, so 1,000 nodes run minutes of protocol in seconds.
// The network has per-packet latency with jitter (which also reorders), loss, duplication,
// partitions, and per-node faults: kill (the process is gone, its host answers "port unreachable"),
// pause (SIGSTOP: silence, packets buffered until resume) and restart (a new process with a new
// creation under the same name and address). Persistent connections (cluster/effects.h) are TCP
// as far as a core can tell: bytes arrive in order, once; a connect to a node that is not running
// is refused after a round trip, one across a partition times out (connect_timeout_ms); data sent
// across a partition waits and arrives when it heals (retransmission), unless a side closes first;
// a killed or restarted node's connections are reset; a paused node's wait in its buffer.
//
// The simulator ends a loop turn after every input a core takes, as the libuv driver does: it calls
// the after-input hook (where the owner of a core drains what the core has for it), flushes the
// turn's local writes to the map, and schedules what the core queued.
//
// Deterministic: one seed drives the network and every node's RNG; trace_hash() digests every
// delivery, so a seed that replays differently is a bug.
//
// Not thread-safe; a test owns one.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "cluster/core.h"
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
  // A connect that gets no answer (across a partition) fails after this long, as a driver's would.
  std::uint64_t connect_timeout_ms = 5'000;
  // Whether every node also runs the replicator of the shared map (with this configuration; only
  // for the default cores, cluster::Node).
  std::optional<ReplicatorConfig> replication;
};

struct SimEvent {
  std::size_t node;
  MemberEvent event;
};

class SimCluster {
 public:
  // Makes the core of node `index` (each start and restart: a new life).
  using CoreFactory = std::function<std::unique_ptr<Core>(
      std::size_t index, const NodeIdentity& self, std::uint64_t seed, std::uint64_t now_ms)>;
  // Called after every input node `index` took, before its effects are drained.
  using AfterInput = std::function<void(std::size_t index)>;

  // N nodes named n0..n{N-1}, started at time 0, not yet joined; each runs a cluster::Node.
  SimCluster(std::size_t n, std::uint64_t seed, MembershipConfig config = {},
             SimNetConfig net = {});
  // The same with cores from `make`.
  SimCluster(std::size_t n, std::uint64_t seed, CoreFactory make, SimNetConfig net = {});

  std::size_t size() const { return nodes_.size(); }
  std::uint64_t now() const { return now_; }
  std::uint64_t seed() const { return seed_; }
  Core& core(std::size_t i) { return *nodes_[i].core; }
  Membership& membership(std::size_t i) { return nodes_[i].core->membership(); }
  const Membership& membership(std::size_t i) const { return nodes_[i].core->membership(); }
  // Node i's replicator (REQUIRES: its core replicates).
  Replicator& replicator(std::size_t i);
  // Routes the effects of API calls made on node i's parts (membership(i).leave(...),
  // replicator(i).put(...)), as an input would.
  void settle(std::size_t i);
  // Replicated-map changes node i's core handed out so far (a Stack's layers consume theirs).
  std::uint64_t changes(std::size_t i) const { return nodes_[i].changes; }
  void set_after_input(AfterInput hook) { after_input_hook_ = std::move(hook); }
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
  // Node i takes everything that reaches it (packets, streams, connection events; not its own
  // timers) `ms` late, as the agent of a loaded machine would: it learns of a death, and of
  // everything else, after the others. Set it while no connection of node i carries data (a
  // change in flight could reorder a connection's bytes).
  void set_lag(std::size_t i, std::uint64_t ms) { nodes_[i].lag = ms; }
  void heal();

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
  enum class Kind {
    packet,
    unreachable,
    stream_request,
    stream_reply,
    stream_failed,
    wake,
    conn_up,
    conn_accepted,
    conn_data,
    conn_down
  };
  struct Ev {
    std::uint64_t at;
    std::uint64_t seq;
    Kind kind;
    std::size_t to;      // node index
    std::uint64_t life;  // the life of `to` the event was meant for
    std::size_t from;    // node index of the sender (packets, streams)
    Address from_addr;
    std::uint64_t stream;  // stream id (requests: of the requester); connection id at `to`
    std::string bytes;
    friend bool operator>(const Ev& a, const Ev& b) {
      return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
  };
  struct Host {
    std::string name;
    Address addr;
    std::unique_ptr<Core> core;
    std::uint64_t changes = 0;
    std::uint64_t life = 0;  // bumped on every restart
    bool running = true;
    bool paused = false;
    int group = 0;
    std::uint64_t lag = 0;  // set_lag()
    std::uint64_t wake_at = UINT64_MAX;
    std::deque<Ev> buffered;  // packets that reached a paused node
  };

  // One simulated TCP connection: its two ends, and what waits in each direction.
  struct Link {
    std::size_t a = 0, b = 0;  // the dialer, the acceptor
    std::uint64_t life_a = 0, life_b = 0;
    ConnId id_a = 0, id_b = 0;  // each end's id for it
    bool open = true;
    std::uint64_t last_ab = 0, last_ba = 0;          // the last delivery time each way (order)
    std::deque<std::string> stalled_ab, stalled_ba;  // sent across a partition
  };
  void start(std::size_t i);
  void conn_effect(std::size_t i, Effect& effect);
  // Sends `bytes` from node `from` over link `l` (in order, or held while the link is cut).
  void link_send(std::size_t l, std::size_t from, std::string bytes);
  // The end of every open connection of node i: its peers hear the connection go down.
  void reset_links(std::size_t i);
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
  const CoreFactory make_;
  SimNetConfig net_;
  AfterInput after_input_hook_;
  std::mt19937_64 rng_;
  std::uint64_t now_ = 0;
  std::uint64_t next_seq_ = 0;
  std::vector<Host> nodes_;
  std::unordered_map<Address, std::size_t, AddressHash> by_addr_;
  std::priority_queue<Ev, std::vector<Ev>, std::greater<>> heap_;
  std::vector<SimEvent> events_;
  std::vector<Link> links_;
  std::map<std::pair<std::size_t, ConnId>, std::size_t> link_of_;  // (node, its conn id) -> link
  ConnId next_accept_id_ = ConnId{1} << 63;
  std::vector<std::vector<UserMessage>> user_;
  std::vector<Effect> scratch_;
  std::vector<ReplicaChange> changes_scratch_;
  crdt::Fnv1a trace_;
  std::uint64_t packets_sent_ = 0;
  std::uint64_t packets_dropped_ = 0;
};

}  // namespace shoal::cluster::sim
