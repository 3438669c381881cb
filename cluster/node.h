#pragma once

// Node: one member's protocol cores as one sans-IO unit: membership, and (optionally) the
// replicator of the shared map. Drivers (libuv, the simulator) run a Node directly, or inside a
// supervisor::Stack. It routes between its parts so that layers talk by data, one way:
//  - membership's live set becomes the replicator's peers (a peer is a Life's key,
//    "name#creation", so a restarted member is a new peer and what its old life acknowledged is
//    forgotten);
//  - replicator messages travel as membership user messages on the replication channel
//    (datagrams) or as user streams (larger ones); payloads on the application channel pass
//    through to the caller as UserMessage effects.
//
// Inputs carry the time; after calling the parts' API directly (membership().join(...),
// replicator()->put(...)), call settle(now) so that their effects are routed. Not thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cluster/core.h"
#include "cluster/life.h"
#include "cluster/membership.h"
#include "cluster/replicator.h"

namespace shoal::cluster {

// Channel bytes that prefix user payloads (only append).
enum class Channel : std::uint8_t { replication = 1, application = 2 };

class Node final : public Core {
 public:
  // Without a replicator config, the node runs membership only.
  Node(MembershipConfig membership, std::optional<ReplicatorConfig> replication, NodeIdentity self,
       std::uint64_t seed, std::uint64_t now_ms);

  // --- Core ---
  void on_packet(std::uint64_t now_ms, const Address& from, std::string_view bytes) override;
  void on_unreachable(std::uint64_t now_ms, const Address& to) override;
  std::string on_stream_request(std::uint64_t now_ms, const Address& from,
                                std::string_view bytes) override;
  void on_stream_reply(std::uint64_t now_ms, std::uint64_t id, std::string_view bytes) override;
  void on_stream_failed(std::uint64_t now_ms, std::uint64_t id) override;
  void on_timer(std::uint64_t now_ms) override;
  // A Node runs no messaging: a connection a peer opens is closed at once.
  void on_conn_up(std::uint64_t, ConnId) override {}
  void on_conn_accepted(std::uint64_t, ConnId id, const Address&) override {
    effects_.emplace_back(ConnClose{id});
  }
  void on_conn_data(std::uint64_t, ConnId, std::string_view) override {}
  void on_conn_sent(std::uint64_t, ConnId, std::size_t) override {}
  void on_conn_down(std::uint64_t, ConnId) override {}
  void settle(std::uint64_t now_ms) override;
  bool pending() const override { return replicator_ && replicator_->pending(); }
  void flush(std::uint64_t now_ms) override;
  std::uint64_t next_deadline() const override;
  void take_effects(std::vector<Effect>& out) override;
  void take_changes(std::vector<ReplicaChange>& out) override;
  Membership& membership() override { return membership_; }
  const Membership& membership() const override { return membership_; }
  Replicator* replicator() override { return replicator_ ? &*replicator_ : nullptr; }
  const Replicator* replicator() const override { return replicator_ ? &*replicator_ : nullptr; }

 private:
  void update_peers(std::uint64_t now);

  Membership membership_;
  std::optional<Replicator> replicator_;
  std::vector<Effect> effects_;
  bool peers_dirty_ = true;
};

}  // namespace shoal::cluster
