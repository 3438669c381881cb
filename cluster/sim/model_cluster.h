#pragma once

// A cluster of N simulated nodes in which a sample runs the real core (cluster::Node) and the
// rest run a compact model of it, so that 10,000 nodes fit one process (bench/membership_model).
//
// The full simulator (SimCluster with real cores only) holds every member in every node: about
// 470 bytes per (node, member) pair at the peak of a forming cluster, so 10,000 nodes would need
// about 48 GB. A modelled node runs the same protocol on the same wire (every packet is encoded
// and decoded by cluster/wire.h, piggybacked gossip comes from the real BroadcastQueue), but keeps
// its view as the differences from one table every node shares: the cluster as it starts, every
// member alive at incarnation 0. Its state is a few KB whatever N (its RNG is most of it).
//
// The model follows Membership (cluster/membership.cpp) for what a clean run (no loss, no pauses)
// exercises: probing in rounds of a random order (an affine permutation of the starting members,
// newcomers placed at random in the round), ping-req with nacks, the crash fast path (a port
// unreachable confirmed by a helper), suspicion with Lifeguard's confirmations and reminders,
// gossip rounds and piggybacking within the retransmit limit, dead members' gossip, periodic
// push-pull, view digests and view syncs, and the direct death notices of small clusters. It
// leaves out the health multiplier, round-trip stretching (at 1-3 ms the configured timings
// hold), refutation, corrections of a stale suspicion, reconnects, reaping, leaving, tags and the
// upper layers' payloads. Being suspected or declared dead itself (which it would refute) is
// counted as unmodelled: a run with any is not a measurement.
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
  // Nodes that run the real core: every (n / real)-th, so about `real` of them (HybridRun says
  // how many); 0, or more than n / 2, makes every node real. The newcomer is real besides.
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
  std::uint64_t newcomer_ms = 0;   // join -> every node sees it alive
  bool quiet_before_kill = false;  // every queue empty again after the newcomer
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
