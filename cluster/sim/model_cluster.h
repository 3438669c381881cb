#pragma once

// A cluster of N simulated nodes in which a sample runs the real core (cluster::Node) and the
// rest run a compact model of it, so that 10,000 nodes fit one process (bench/membership_model).
//
// The full simulator (SimCluster with real cores only) holds every member in every node: about
// 470 bytes per (node, member) pair while a cluster forms, so 10,000 nodes would need about 48 GB.
// A modelled node runs the same protocol on the same wire (every packet is encoded and decoded by
// cluster/wire.h, piggybacked gossip comes from the real BroadcastQueue), but keeps its view as
// the differences from one table every node shares: the cluster as it starts, every member alive
// at incarnation 0. It costs a few hundred bytes instead of a few megabytes.
//
// The model follows Membership (cluster/membership.cpp) for what a clean run (no loss, no pauses)
// exercises: probing in a shuffled round with newcomers placed at random in it, ping-req with
// nacks, the crash fast path (a port unreachable confirmed by a helper), suspicion with
// Lifeguard's confirmations and reminders, gossip rounds and piggybacking within the retransmit
// limit, dead members' gossip, periodic push-pull, view digests and view syncs, and the direct
// death notices of small clusters. It leaves out what such a run never needs: refutation and
// corrections of an older view, the health multiplier and round-trip stretching (at 1-3 ms the
// configured timings hold), reconnects, reaping, leaving and the upper layers' payloads. A
// modelled node that meets one of those (suspected itself, say) counts it as unmodelled: a run
// with any is not a measurement.
//
// How close the model is to the real core is measured, not assumed: run_hybrid with real = 0
// runs every node real, over the same seeds (tests/sim/membership_sim_test.cpp,
// bench/membership_model.cpp --validate).

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "cluster/config.h"

namespace shoal::cluster::sim {

struct HybridOptions {
  std::size_t n = 1000;
  // Nodes that run the real core, spread evenly (0 or >= n: all of them); the newcomer is real
  // besides.
  std::size_t real = 32;
  std::uint64_t seed = 1;
  MembershipConfig config;
};

// One run: n nodes that start formed, all alive, and wait until every gossip queue is empty;
// then 10 s in which packets are counted; then a newcomer (node n, real) joins through node 0,
// and the run waits until every node sees it alive and every queue is empty again; then node
// n / 2 is killed, and the run waits until some node, then every node, sees it dead.
struct HybridRun {
  std::size_t real_nodes = 0;  // of the n (the newcomer not counted)
  bool drained = false;
  std::uint64_t drained_ms = 0;  // when the queues were first empty, virtual ms
  double idle_msgs = 0;          // packets sent per node per second, once drained
  bool newcomer_seen = false;
  std::uint64_t newcomer_ms = 0;  // join -> every node sees it alive
  bool kill_seen = false;
  // kill -> the first node sees it dead (when some probe or gossip first reaches the dead node:
  // much the same for the model and the real core, but varying widely from run to run)...
  std::uint64_t kill_first_ms = 0;
  std::uint64_t kill_ms = 0;  // ... and -> every node sees it dead
  std::uint64_t unmodelled = 0;
  std::map<std::string, std::uint64_t> unmodelled_by_kind;
};

HybridRun run_hybrid(const HybridOptions& options);

}  // namespace shoal::cluster::sim
