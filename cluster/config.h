#pragma once

// MembershipConfig: every tunable of the membership protocol, with its unit and why. Defaults are
// tuned for fast failure detection on a LAN or loopback without false positives under load;
// bench/membership shows the trade-off. validate() says what is wrong, if
// anything.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "cluster/wire.h"

namespace shoal::cluster {

struct MembershipConfig {
  // ms between two probes by this node (one member per probe, round robin over a shuffled list).
  // Stretched by the local health multiplier when this node itself is slow.
  std::uint64_t probe_interval_ms = 200;
  // ms a direct ping waits for its ack before the indirect probes go out. Also stretched by the
  // local health multiplier. Must be below probe_interval_ms.
  std::uint64_t probe_timeout_ms = 80;
  // Members asked to probe a silent target indirectly (ping-req).
  std::size_t indirect_checks = 3;
  // Suspicion timeout, Lifeguard style: it starts at max and shrinks towards min as independent
  // suspicions of the same member arrive. min = suspicion_mult * max(1, log10(N)) * probe_interval;
  // max = suspicion_max_mult * min. Expected confirmations: suspicion_mult - 2.
  double suspicion_mult = 4;
  double suspicion_max_mult = 3;
  // Each update is piggybacked at most retransmit_mult * ceil(log10(N + 1)) times.
  std::size_t retransmit_mult = 4;
  // ms between gossip rounds: pending updates go to gossip_fanout random members, so news does
  // not wait for the next probe.
  std::uint64_t gossip_interval_ms = 50;
  std::size_t gossip_fanout = 3;
  // ms during which a member declared dead still receives gossip, so that a live node declared
  // dead by mistake hears it and refutes.
  std::uint64_t gossip_to_dead_ms = 10'000;
  // ms between full state exchanges (push-pull over TCP) with one random member; scaled up
  // logarithmically beyond 32 members.
  std::uint64_t push_pull_interval_ms = 15'000;
  // ms between attempts to reach one random dead member again, so that the halves of a healed
  // partition find each other. 0 disables.
  std::uint64_t reconnect_interval_ms = 2'000;
  // Pings and acks carry a digest of the sender's view of live members. When every digest this
  // node hears differs from its own for view_sync_holdoff_ms (longer than gossip takes to spread
  // news), and its own view stood still that long, it starts a push-pull with the peer it heard,
  // at most one per view_sync_min_interval_ms: no node is left blind to a member that joined
  // while its news was being spread.
  std::uint64_t view_sync_holdoff_ms = 300;
  std::uint64_t view_sync_min_interval_ms = 1'000;
  // ms before a member that failed / left is forgotten.
  std::uint64_t reap_dead_ms = 10 * 60'000;
  std::uint64_t reap_left_ms = 60'000;
  // ms between join attempts while this node sees no peer: doubles from min to max.
  std::uint64_t join_retry_min_ms = 250;
  std::uint64_t join_retry_max_ms = 30'000;
  // ms a stream request (push-pull) may take before it is considered failed.
  std::uint64_t stream_timeout_ms = 2'000;
  // Highest local health multiplier score; timeouts are multiplied by (score + 1).
  int awareness_max = 8;
  // Share of a packet's message bytes membership updates may take while upper-layer payloads
  // wait (0..1): at 1,000 nodes gossip must not crowd out the layers above.
  double gossip_share = 0.5;
  // Upper bound of one UDP packet, bytes.
  std::size_t max_packet_bytes = kMaxPacketBytes;
  // Most updates of members queued for gossip; the oldest are dropped beyond it.
  std::size_t max_queued_updates = 4096;
  // Most upper-layer broadcasts queued; the oldest are dropped beyond it.
  std::size_t max_queued_user = 1024;

  // Returns a one-line reason if the configuration cannot work.
  std::optional<std::string> validate() const;
};

}  // namespace shoal::cluster
