#include "cluster/sim/sim_cluster.h"
#include "crdt/hash.h"

#include <algorithm>
#include <cstdlib>

namespace shoal::cluster::sim {

using crdt::splitmix64;

SimCluster::SimCluster(std::size_t n, std::uint64_t seed, MembershipConfig config, SimNetConfig net)
    : SimCluster(
          n, seed,
          [config, replication = net.replication](std::size_t, const NodeIdentity& self,
                                                  std::uint64_t node_seed, std::uint64_t now) {
            return std::make_unique<Node>(config, replication, self, node_seed, now);
          },
          net) {}

SimCluster::SimCluster(std::size_t n, std::uint64_t seed, CoreFactory make, SimNetConfig net)
    : seed_(seed), make_(std::move(make)), net_(net), rng_(splitmix64(seed)) {
  nodes_.resize(n);
  user_.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    Host& node = nodes_[i];
    node.name = "n" + std::to_string(i);
    // Simulated addresses stay inside 127.0.0.0/8 all the same.
    node.addr = Address::v4(127, static_cast<std::uint8_t>(1 + i / 62500),
                            static_cast<std::uint8_t>((i / 250) % 250),
                            static_cast<std::uint8_t>(1 + i % 250), 7946);
    by_addr_[node.addr] = i;
    start(i);
  }
}

void SimCluster::start(std::size_t i) {
  Host& node = nodes_[i];
  ++node.life;
  node.running = true;
  node.paused = false;
  node.buffered.clear();
  node.wake_at = UINT64_MAX;
  NodeIdentity identity{node.name, node.addr, now_ + 1, {}};
  node.core = make_(i, identity, splitmix64(seed_ ^ (i * 0x1234567ULL) ^ node.life), now_);
  after_input(i);
}

void SimCluster::join(std::size_t i, const std::vector<std::size_t>& seeds) {
  std::vector<Address> addrs;
  for (std::size_t s : seeds)
    addrs.push_back(nodes_[s].addr);
  nodes_[i].core->membership().join(now_, std::move(addrs));
  settle(i);
}

void SimCluster::join_all(std::size_t seed) {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (i != seed) join(i, {seed});
  }
}

void SimCluster::push(Ev ev) {
  ev.seq = next_seq_++;
  heap_.push(std::move(ev));
}

std::uint64_t SimCluster::latency() {
  const std::uint64_t span = net_.latency_max_ms - net_.latency_min_ms + 1;
  return net_.latency_min_ms + rng_() % span;
}

bool SimCluster::chance(double p) {
  if (p <= 0) return false;
  return static_cast<double>(rng_() % 1'000'000) < p * 1'000'000.0;
}

std::size_t SimCluster::node_at(const Address& a) const {
  auto it = by_addr_.find(a);
  return it == by_addr_.end() ? nodes_.size() : it->second;
}

void SimCluster::mix(std::uint64_t v) {
  trace_.word(v);
}

Replicator& SimCluster::replicator(std::size_t i) {
  Replicator* r = nodes_[i].core->replicator();
  if (r == nullptr) std::abort();  // the cluster was made without replication
  return *r;
}

void SimCluster::settle(std::size_t i) {
  nodes_[i].core->settle(now_);
  after_input(i);
}

void SimCluster::after_input(std::size_t i) {
  Host& node = nodes_[i];
  if (after_input_hook_) after_input_hook_(i);
  // The end of the loop turn: its local writes leave as one batch.
  if (node.core->pending()) node.core->flush(now_);
  scratch_.clear();
  node.core->take_effects(scratch_);
  for (Effect& effect : scratch_) {
    if (auto* send = std::get_if<SendPacket>(&effect)) {
      ++packets_sent_;
      const std::size_t to = node_at(send->to);
      if (to == nodes_.size() || !linked(i, to) || chance(net_.loss)) {
        ++packets_dropped_;
        continue;
      }
      const int copies = chance(net_.duplicate) ? 2 : 1;
      for (int c = 0; c < copies; ++c) {
        push(Ev{now_ + latency(), 0, Kind::packet, to, nodes_[to].life, i, node.addr, 0,
                send->bytes});
      }
    } else if (auto* req = std::get_if<StreamRequest>(&effect)) {
      const std::size_t to = node_at(req->to);
      if (to == nodes_.size() || !nodes_[to].running) {
        // Connection refused: the requester hears of it after a round trip.
        push(Ev{now_ + 2 * latency(), 0, Kind::stream_failed, i, node.life, i, {}, req->id, {}});
      } else if (linked(i, to)) {
        push(Ev{now_ + latency(), 0, Kind::stream_request, to, nodes_[to].life, i, node.addr,
                req->id, std::move(req->bytes)});
      }
      // Partitioned: nothing comes back; the requester's own stream timeout fires.
    } else if (auto* event = std::get_if<MemberEvent>(&effect)) {
      const bool routine = event->kind == EventKind::joined || event->kind == EventKind::updated;
      if (!routine || net_.record_joins) events_.push_back(SimEvent{i, std::move(*event)});
    } else if (auto* user = std::get_if<UserMessage>(&effect)) {
      user_[i].push_back(std::move(*user));
    }
  }
  changes_scratch_.clear();
  node.core->take_changes(changes_scratch_);
  node.changes += changes_scratch_.size();
  const std::uint64_t deadline = node.core->next_deadline();
  if (deadline < node.wake_at) {
    node.wake_at = deadline;
    push(Ev{std::max(deadline, now_), 0, Kind::wake, i, node.life, i, {}, 0, {}});
  }
}

void SimCluster::deliver(Ev& ev) {
  Host& node = nodes_[ev.to];
  if (ev.life != node.life) return;  // meant for an earlier life of this node
  if (!node.running) {
    if (ev.kind == Kind::packet && nodes_[ev.from].running) {
      // The process is gone but its host is up: "port unreachable" goes back to the sender.
      push(Ev{now_ + latency(),
              0,
              Kind::unreachable,
              ev.from,
              nodes_[ev.from].life,
              ev.to,
              node.addr,
              0,
              {}});
    }
    return;
  }
  if (node.paused) {
    if (ev.kind == Kind::wake) return;  // resume() runs the timers
    if (node.buffered.size() < net_.paused_buffer) node.buffered.push_back(std::move(ev));
    return;
  }
  mix(now_);
  mix(static_cast<std::uint64_t>(ev.kind));
  mix(ev.to);
  for (char c : ev.bytes)
    mix(static_cast<unsigned char>(c));
  Core& core = *node.core;
  switch (ev.kind) {
    case Kind::packet:
      core.on_packet(now_, ev.from_addr, ev.bytes);
      break;
    case Kind::unreachable:
      core.on_unreachable(now_, ev.from_addr);
      break;
    case Kind::stream_request: {
      std::string reply = core.on_stream_request(now_, ev.from_addr, ev.bytes);
      Host& requester = nodes_[ev.from];
      if (!requester.running || !linked(ev.to, ev.from)) break;
      if (reply.empty()) {
        push(Ev{now_ + latency(),
                0,
                Kind::stream_failed,
                ev.from,
                requester.life,
                ev.to,
                {},
                ev.stream,
                {}});
      } else {
        push(Ev{now_ + latency(), 0, Kind::stream_reply, ev.from, requester.life, ev.to, node.addr,
                ev.stream, std::move(reply)});
      }
      break;
    }
    case Kind::stream_reply:
      core.on_stream_reply(now_, ev.stream, ev.bytes);
      break;
    case Kind::stream_failed:
      core.on_stream_failed(now_, ev.stream);
      break;
    case Kind::wake:
      node.wake_at = UINT64_MAX;
      core.on_timer(now_);
      break;
  }
  after_input(ev.to);
}

void SimCluster::step() {
  Ev ev = heap_.top();
  heap_.pop();
  now_ = std::max(now_, ev.at);
  deliver(ev);
}

void SimCluster::run_for(std::uint64_t ms) {
  const std::uint64_t end = now_ + ms;
  while (!heap_.empty() && heap_.top().at <= end)
    step();
  now_ = end;
}

bool SimCluster::wait_until(const std::function<bool()>& pred, std::uint64_t timeout_ms,
                            std::uint64_t check_every_ms) {
  const std::uint64_t end = now_ + timeout_ms;
  while (now_ < end) {
    if (pred()) return true;
    run_for(std::min(check_every_ms, end - now_));
  }
  return pred();
}

void SimCluster::kill(std::size_t i) {
  nodes_[i].running = false;
  nodes_[i].buffered.clear();
}

void SimCluster::pause(std::size_t i) {
  nodes_[i].paused = true;
}

void SimCluster::resume(std::size_t i) {
  Host& node = nodes_[i];
  if (!node.paused) return;
  node.paused = false;
  std::deque<Ev> buffered = std::move(node.buffered);
  node.buffered.clear();
  node.wake_at = UINT64_MAX;
  node.core->on_timer(now_);
  after_input(i);
  for (Ev& ev : buffered) {
    ev.at = now_;
    push(std::move(ev));
  }
}

void SimCluster::restart(std::size_t i, const std::vector<std::size_t>& seeds) {
  start(i);
  join(i, seeds);
}

void SimCluster::partition(const std::vector<std::vector<std::size_t>>& groups) {
  for (Host& node : nodes_)
    node.group = 0;
  int g = 1;
  for (const auto& group : groups) {
    for (std::size_t i : group)
      nodes_[i].group = g;
    ++g;
  }
}

void SimCluster::heal() {
  for (Host& node : nodes_)
    node.group = 0;
}

bool SimCluster::sees(std::size_t i, const std::string& name, MemberStatus status) const {
  const Member* m = nodes_[i].core->membership().member(name);
  return m != nullptr && m->status == status;
}

bool SimCluster::converged() const {
  std::size_t running = 0;
  for (const Host& node : nodes_)
    running += node.running ? 1 : 0;
  // Counts first: cheap, and enough to say "no" while news is still spreading.
  for (const Host& node : nodes_) {
    if (node.running && node.core->membership().count(MemberStatus::alive) != running) return false;
  }
  for (const Host& node : nodes_) {
    if (!node.running) continue;
    for (const Host& other : nodes_) {
      if (other.running &&
          !sees(static_cast<std::size_t>(&node - nodes_.data()), other.name, MemberStatus::alive)) {
        return false;
      }
    }
  }
  return true;
}

bool SimCluster::all_see(std::size_t victim, MemberStatus status) const {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (i == victim || !nodes_[i].running) continue;
    if (!sees(i, nodes_[victim].name, status)) return false;
  }
  return true;
}

}  // namespace shoal::cluster::sim
