#pragma once

// Node: one member's protocol cores as one sans-IO unit: membership, and (optionally) the
// replicator of the shared map. Drivers (libuv, the simulator) run a Node; it routes between its
// parts so that layers talk by data, one way:
//  - membership's live set becomes the replicator's peers (a peer is "name#creation", so a
//    restarted member is a new peer and what its old life acknowledged is forgotten);
//  - replicator messages travel as membership user messages on channel 1 (datagrams) or as user
//    streams (larger ones); other channels pass through to the caller as UserMessage effects.
//
// Inputs carry the time; after calling the parts' API directly (membership().join(...),
// replicator()->put(...)), call settle(now) so that their effects are routed. Not thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "cluster/life.h"
#include "cluster/membership.h"
#include "cluster/replicator.h"

namespace shoal::cluster {

// Channel bytes that prefix user payloads (only append).
enum class Channel : std::uint8_t { replication = 1, application = 2 };

using NodeEffect = std::variant<SendPacket, StreamRequest, MemberEvent, UserMessage>;

class Node {
 public:
  // Without a replicator config, the node runs membership only.
  Node(MembershipConfig membership, std::optional<ReplicatorConfig> replication, NodeIdentity self,
       std::uint64_t seed, std::uint64_t now_ms);

  // --- Inputs (as Membership's) ---
  void on_packet(std::uint64_t now_ms, const Address& from, std::string_view bytes);
  void on_unreachable(std::uint64_t now_ms, const Address& to);
  std::string on_stream_request(std::uint64_t now_ms, const Address& from, std::string_view bytes);
  void on_stream_reply(std::uint64_t now_ms, std::uint64_t id, std::string_view bytes);
  void on_stream_failed(std::uint64_t now_ms, std::uint64_t id);
  void on_timer(std::uint64_t now_ms);
  // Routes the effects of API calls made on the parts directly.
  void settle(std::uint64_t now_ms);

  // --- Parts ---
  Membership& membership() { return membership_; }
  const Membership& membership() const { return membership_; }
  // Null when the node runs without replication.
  Replicator* replicator() { return replicator_ ? &*replicator_ : nullptr; }
  const Replicator* replicator() const { return replicator_ ? &*replicator_ : nullptr; }

  // --- Outputs ---
  std::uint64_t next_deadline() const;
  void take_effects(std::vector<NodeEffect>& out);
  // The replicated map's changes since the last call (none without replication).
  void take_changes(std::vector<ReplicaChange>& out);

 private:
  void update_peers(std::uint64_t now);

  Membership membership_;
  std::optional<Replicator> replicator_;
  std::vector<NodeEffect> effects_;
  bool peers_dirty_ = true;
};

}  // namespace shoal::cluster
