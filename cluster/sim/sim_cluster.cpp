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
  if (ev.kind != Kind::wake && ev.to < nodes_.size()) ev.at += nodes_[ev.to].lag;
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
    } else {
      conn_effect(i, effect);
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

void SimCluster::conn_effect(std::size_t i, Effect& effect) {
  Host& node = nodes_[i];
  if (auto* open = std::get_if<ConnOpen>(&effect)) {
    const std::size_t to = node_at(open->to);
    if (to == nodes_.size() || !nodes_[to].running) {
      // Refused: the dialer hears it after a round trip.
      push(Ev{now_ + 2 * latency(), 0, Kind::conn_down, i, node.life, i, {}, open->id, {}});
      return;
    }
    if (!linked(i, to)) {
      push(Ev{
          now_ + net_.connect_timeout_ms, 0, Kind::conn_down, i, node.life, i, {}, open->id, {}});
      return;
    }
    Link l;
    l.a = i;
    l.b = to;
    l.life_a = node.life;
    l.life_b = nodes_[to].life;
    l.id_a = open->id;
    l.id_b = next_accept_id_++;
    const std::size_t index = links_.size();
    links_.push_back(std::move(l));
    link_of_[{i, open->id}] = index;
    link_of_[{to, links_[index].id_b}] = index;
    const std::uint64_t there = now_ + latency();
    push(Ev{
        there, 0, Kind::conn_accepted, to, nodes_[to].life, i, node.addr, links_[index].id_b, {}});
    push(Ev{there + latency(), 0, Kind::conn_up, i, node.life, to, {}, open->id, {}});
    links_[index].last_ab = links_[index].last_ba = there;
  } else if (auto* send = std::get_if<ConnSend>(&effect)) {
    auto it = link_of_.find({i, send->id});
    if (it == link_of_.end() || !links_[it->second].open) return;
    const std::size_t bytes = send->bytes.size();
    link_send(it->second, i, std::move(send->bytes));
    // Written at once: the simulated socket buffer has room for everything.
    node.core->on_conn_sent(now_, send->id, bytes);
  } else if (auto* close = std::get_if<ConnClose>(&effect)) {
    auto it = link_of_.find({i, close->id});
    if (it == link_of_.end()) return;
    Link& l = links_[it->second];
    if (l.open) {
      // The other end hears the close after the data sent before it.
      l.open = false;
      const bool dialer = l.a == i;
      const std::size_t other = dialer ? l.b : l.a;
      const std::uint64_t at = std::max(now_ + latency(), dialer ? l.last_ab : l.last_ba);
      push(Ev{at,
              0,
              Kind::conn_down,
              other,
              dialer ? l.life_b : l.life_a,
              i,
              {},
              dialer ? l.id_b : l.id_a,
              {}});
    }
    link_of_.erase(it);
  }
}

void SimCluster::link_send(std::size_t index, std::size_t from, std::string bytes) {
  Link& l = links_[index];
  const bool ab = l.a == from;
  const std::size_t to = ab ? l.b : l.a;
  if (!linked(from, to)) {
    (ab ? l.stalled_ab : l.stalled_ba).push_back(std::move(bytes));
    return;
  }
  std::uint64_t& last = ab ? l.last_ab : l.last_ba;
  last = std::max(now_ + latency(), last);
  push(Ev{last,
          0,
          Kind::conn_data,
          to,
          ab ? l.life_b : l.life_a,
          from,
          {},
          ab ? l.id_b : l.id_a,
          std::move(bytes)});
}

void SimCluster::reset_links(std::size_t i) {
  for (Link& l : links_) {
    if (!l.open || (l.a != i && l.b != i)) continue;
    l.open = false;
    const bool dialer = l.a == i;
    const std::size_t other = dialer ? l.b : l.a;
    push(Ev{now_ + latency(),
            0,
            Kind::conn_down,
            other,
            dialer ? l.life_b : l.life_a,
            i,
            {},
            dialer ? l.id_b : l.id_a,
            {}});
    link_of_.erase({i, dialer ? l.id_a : l.id_b});
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
    // A socket buffer holds a few packets; a connection's bytes wait in full (TCP).
    const bool stream = ev.kind == Kind::conn_data || ev.kind == Kind::conn_down ||
                        ev.kind == Kind::conn_up || ev.kind == Kind::conn_accepted;
    if (stream || node.buffered.size() < net_.paused_buffer) node.buffered.push_back(std::move(ev));
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
    case Kind::conn_up:
      core.on_conn_up(now_, ev.stream);
      break;
    case Kind::conn_accepted:
      core.on_conn_accepted(now_, ev.stream, ev.from_addr);
      break;
    case Kind::conn_data:
      if (!link_of_.contains({ev.to, ev.stream})) break;  // this end closed it meanwhile
      core.on_conn_data(now_, ev.stream, ev.bytes);
      break;
    case Kind::conn_down:
      if (link_of_.erase({ev.to, ev.stream}) == 0 && ev.stream >= (ConnId{1} << 63)) break;
      core.on_conn_down(now_, ev.stream);
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
  reset_links(i);
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
  reset_links(i);
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
  // What waited on cut connections arrives now, in order.
  for (std::size_t index = 0; index < links_.size(); ++index) {
    Link& l = links_[index];
    for (int dir = 0; dir < 2 && l.open; ++dir) {
      std::deque<std::string> held = std::move(dir == 0 ? l.stalled_ab : l.stalled_ba);
      (dir == 0 ? l.stalled_ab : l.stalled_ba).clear();
      for (std::string& bytes : held)
        link_send(index, dir == 0 ? l.a : l.b, std::move(bytes));
    }
  }
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
