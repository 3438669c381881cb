#include "cluster/node.h"

namespace shoal::cluster {

Node::Node(MembershipConfig membership, std::optional<ReplicatorConfig> replication,
           NodeIdentity self, std::uint64_t seed, std::uint64_t now_ms)
    : membership_(membership, self, seed, now_ms) {
  if (replication) {
    replicator_.emplace(Life{self.name, self.creation}.key(), *replication, seed ^ 0x5eedULL,
                        now_ms);
  }
  settle(now_ms);
}

void Node::on_packet(std::uint64_t now_ms, const Address& from, std::string_view bytes) {
  membership_.on_packet(now_ms, from, bytes);
  settle(now_ms);
}

void Node::on_unreachable(std::uint64_t now_ms, const Address& to) {
  membership_.on_unreachable(now_ms, to);
  settle(now_ms);
}

std::string Node::on_stream_request(std::uint64_t now_ms, const Address& from,
                                    std::string_view bytes) {
  std::string reply = membership_.on_stream_request(now_ms, from, bytes);
  settle(now_ms);
  return reply;
}

void Node::on_stream_reply(std::uint64_t now_ms, std::uint64_t id, std::string_view bytes) {
  membership_.on_stream_reply(now_ms, id, bytes);
  settle(now_ms);
}

void Node::on_stream_failed(std::uint64_t now_ms, std::uint64_t id) {
  membership_.on_stream_failed(now_ms, id);
  settle(now_ms);
}

void Node::on_timer(std::uint64_t now_ms) {
  membership_.on_timer(now_ms);
  if (replicator_) replicator_->on_timer(now_ms);
  settle(now_ms);
}

std::uint64_t Node::next_deadline() const {
  const std::uint64_t m = membership_.next_deadline();
  return replicator_ ? std::min(m, replicator_->next_deadline()) : m;
}

void Node::update_peers(std::uint64_t now) {
  if (!replicator_ || !peers_dirty_) return;
  peers_dirty_ = false;
  std::vector<std::string> peers;
  for (const auto& [name, m] : membership_.members()) {
    const bool live = m.status == MemberStatus::alive || m.status == MemberStatus::suspect;
    if (live && name != membership_.name()) peers.push_back(Life{name, m.creation}.key());
  }
  replicator_->set_peers(now, std::move(peers));
}

void Node::settle(std::uint64_t now) {
  // Routing can produce more effects on either side (a replicator send becomes a membership
  // packet); a few passes drain everything.
  for (int pass = 0; pass < 8; ++pass) {
    bool moved = false;
    std::vector<Effect> from_membership;
    membership_.take_effects(from_membership);
    for (Effect& e : from_membership) {
      moved = true;
      if (auto* user = std::get_if<UserMessage>(&e)) {
        const bool replication =
            !user->payload.empty() && static_cast<std::uint8_t>(user->payload[0]) ==
                                          static_cast<std::uint8_t>(Channel::replication);
        if (replication && replicator_ && user->creation != 0) {
          update_peers(now);
          replicator_->on_message(now, Life{user->from, user->creation}.key(),
                                  std::string_view(user->payload).substr(1));
          continue;
        }
        effects_.push_back(std::move(*user));
      } else if (auto* event = std::get_if<MemberEvent>(&e)) {
        peers_dirty_ = true;
        effects_.push_back(std::move(*event));
      } else if (auto* send = std::get_if<SendPacket>(&e)) {
        effects_.push_back(std::move(*send));
      } else if (auto* stream = std::get_if<StreamRequest>(&e)) {
        effects_.push_back(std::move(*stream));
      }
    }
    update_peers(now);
    if (replicator_) {
      std::vector<ReplicaEffect> from_replicator;
      replicator_->take_effects(from_replicator);
      for (ReplicaEffect& e : from_replicator) {
        moved = true;
        if (auto* send = std::get_if<ReplicaSend>(&e)) {
          const std::string name(Life::name_of(send->to));
          std::string payload(1, static_cast<char>(Channel::replication));
          payload += send->bytes;
          if (send->stream || !membership_.send_user(now, name, payload)) {
            membership_.send_stream(now, name, payload);
          }
        }
      }
    }
    if (!moved) break;
  }
}

void Node::flush(std::uint64_t now_ms) {
  if (replicator_) replicator_->flush(now_ms);
  settle(now_ms);
}

void Node::take_changes(std::vector<ReplicaChange>& out) {
  if (replicator_) replicator_->take_changes(out);
}

void Node::take_effects(std::vector<Effect>& out) {
  // Into an empty `out` the buffer itself moves, so a burst (a join's thousands of member events)
  // leaves no capacity behind here: at 300 simulated nodes, kept capacity was a quarter of memory.
  if (out.empty()) {
    out = std::move(effects_);
    effects_.clear();
    return;
  }
  for (Effect& e : effects_)
    out.push_back(std::move(e));
  effects_.clear();
}

}  // namespace shoal::cluster
