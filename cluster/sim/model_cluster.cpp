#include "cluster/sim/model_cluster.h"

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "cluster/broadcast_queue.h"
#include "cluster/core.h"
#include "cluster/node.h"
#include "cluster/sim/sim_cluster.h"
#include "cluster/timing.h"
#include "cluster/wire.h"

namespace shoal::cluster::sim {
namespace {

bool is_live(MemberStatus s) {
  return s == MemberStatus::alive || s == MemberStatus::suspect;
}

// What every node shares: the identities of all nodes and the cluster every node starts with
// (nodes 0..base-1, all alive at incarnation 0).
struct World {
  MembershipConfig config;
  std::size_t base = 0;
  std::vector<NodeIdentity> ids;  // by index; the latest life of each
  std::vector<std::uint64_t> base_creation;
  std::unordered_map<std::string, std::uint32_t> by_name;
  std::unordered_map<Address, std::uint32_t, AddressHash> by_addr;
  std::uint64_t base_digest = 0;
  // What a modelled node met that the model leaves out (being suspected or declared dead itself,
  // which it would refute), by kind: a run that counts any is not a measurement.
  std::uint64_t unmodelled = 0;
  std::map<std::string, std::uint64_t> unmodelled_by_kind;
  void count_unmodelled(const char* kind) {
    ++unmodelled;
    ++unmodelled_by_kind[kind];
  }

  void add(std::size_t i, const NodeIdentity& id) {
    if (ids.size() <= i) ids.resize(i + 1);
    ids[i] = id;
    by_name[id.name] = static_cast<std::uint32_t>(i);
    by_addr[id.addr] = static_cast<std::uint32_t>(i);
  }
  // Nodes 0..n-1 are the cluster every node starts with.
  void freeze(std::size_t n) {
    base = n;
    base_creation.resize(n);
    base_digest = 0;
    for (std::size_t i = 0; i < n; ++i) {
      base_creation[i] = ids[i].creation;
      base_digest ^= Membership::view_hash(ids[i].name, ids[i].creation, 0);
    }
  }
  // The starting cluster as a push-pull from `sender`.
  std::string base_state(std::size_t sender) const {
    PushPull p;
    p.sender = ids[sender].name;
    p.creation = ids[sender].creation;
    p.members.reserve(base);
    for (std::size_t i = 0; i < base; ++i)
      p.members.push_back(
          MemberState{ids[i].name, ids[i].addr, base_creation[i], 0, MemberStatus::alive, {}});
    return encode_push_pull(p);
  }
};

// One modelled node: Membership's protocol over a view kept as differences from World's table.
class ModelCore final : public Core {
 public:
  ModelCore(World& world, std::uint32_t index, NodeIdentity self, std::uint64_t seed,
            std::uint64_t now)
      : w_(world),
        self_(index),
        id_(std::move(self)),
        rng_(seed),
        updates_(world.config.max_queued_updates) {
    probe_at_ = now + rng_() % w_.config.probe_interval_ms;
    gossip_at_ = now + w_.config.gossip_interval_ms;
    push_pull_at_ = now + w_.config.push_pull_interval_ms;
  }

  // --- Reads for the bench ---
  bool sees(std::uint32_t idx, MemberStatus status) const {
    const View v = view(idx);
    return v.known && v.status == status;
  }
  std::size_t queued() const { return updates_.size(); }

  // --- Core ---
  void on_packet(std::uint64_t now, const Address& from, std::string_view bytes) override {
    ready();
    auto packet = decode_packet(bytes);
    if (!packet || packet->sender == id_.name) return;
    auto sender = w_.by_name.find(packet->sender);
    if (sender != w_.by_name.end()) {
      const View v = view(sender->second);
      if (v.known && v.creation > packet->creation) return;  // an older life's packet
    }
    for (Message& m : packet->messages)
      handle(now, from, packet->sender, m);
  }

  void on_unreachable(std::uint64_t now, const Address& to) override {
    ready();
    for (auto it = relays_.begin(); it != relays_.end();) {
      if (it->target_addr == to) {
        send(it->requester, {encode_message(Nack{it->requester_seq, NackReason::unreachable})});
        it = relays_.erase(it);
      } else {
        ++it;
      }
    }
    auto at = w_.by_addr.find(to);
    if (at == w_.by_addr.end()) return;
    const std::uint32_t idx = at->second;
    if (!probe_ || probe_->acked || probe_->target != idx) {
      const View v = view(idx);
      if (idx == self_ || !v.known || !is_live(v.status)) return;
      if (probe_ && probe_->target == idx) return;
      if (!probe_ || probe_->acked) {
        start_probe_of(now, idx);
      } else if (!urgent_) {
        urgent_ = idx;
      }
      return;
    }
    probe_->unreachable = true;
    if (!probe_->indirect_sent) go_indirect();
    if (probe_ && confirmed()) declare_dead(now, idx, true);
  }

  std::string on_stream_request(std::uint64_t now, const Address& /*from*/,
                                std::string_view bytes) override {
    ready();
    if (stream_type(bytes) != MessageType::push_pull) return {};
    auto remote = decode_push_pull(bytes);
    if (!remote || stale(*remote)) return {};
    merge(now, *remote);
    return encode_push_pull(local_state());
  }
  void on_stream_reply(std::uint64_t now, std::uint64_t id, std::string_view bytes) override {
    ready();
    auto it =
        std::find_if(streams_.begin(), streams_.end(), [&](const Stream& s) { return s.id == id; });
    if (it == streams_.end()) return;
    streams_.erase(it);
    auto remote = decode_push_pull(bytes);
    if (!remote || stale(*remote)) return;
    merge(now, *remote);
  }
  void on_stream_failed(std::uint64_t /*now*/, std::uint64_t id) override {
    std::erase_if(streams_, [&](const Stream& s) { return s.id == id; });
  }

  void on_timer(std::uint64_t now) override {
    ready();
    if (probe_ && probe_->timeout_at <= now) {
      probe_->timeout_at = UINT64_MAX;  // fired
      if (!probe_->acked && !probe_->indirect_sent) go_indirect();
    }
    if (probe_ && probe_->deadline_at <= now) end_probe(now);
    for (auto it = relays_.begin(); it != relays_.end();) {
      if (it->deadline <= now) {
        send(it->requester, {encode_message(Nack{it->requester_seq, NackReason::timeout})});
        it = relays_.erase(it);
      } else {
        ++it;
      }
    }
    std::erase_if(streams_, [&](const Stream& s) { return s.deadline <= now; });
    for (std::size_t i = 0; i < suspicions_.size();) {
      if (suspicions_[i].deadline > now) {
        ++i;
        continue;
      }
      const std::uint32_t idx = suspicions_[i].idx;
      suspicions_.erase(suspicions_.begin() + static_cast<std::ptrdiff_t>(i));
      if (view(idx).status == MemberStatus::suspect) declare_dead(now, idx, false);
    }
    if (probe_at_ <= now) {
      if (probe_) end_probe(now);
      remind_suspects(now);
      start_probe(now);
      probe_at_ = now + w_.config.probe_interval_ms;
    }
    if (gossip_at_ <= now) {
      gossip(now);
      gossip_at_ = now + w_.config.gossip_interval_ms;
    }
    if (push_pull_at_ <= now) {
      if (auto peer = random_members(1, UINT32_MAX); !peer.empty())
        request_stream(now, w_.ids[peer[0]].addr);
      push_pull_at_ = now + push_pull_interval_ms(w_.config.push_pull_interval_ms, members_);
    }
  }

  void on_conn_up(std::uint64_t, ConnId) override {}
  void on_conn_accepted(std::uint64_t, ConnId, const Address&) override {}
  void on_conn_data(std::uint64_t, ConnId, std::string_view) override {}
  void on_conn_sent(std::uint64_t, ConnId, std::size_t) override {}
  void on_conn_down(std::uint64_t, ConnId) override {}
  void settle(std::uint64_t) override {}
  bool pending() const override { return false; }
  void flush(std::uint64_t) override {}

  std::uint64_t next_deadline() const override {
    std::uint64_t next = std::min({probe_at_, gossip_at_, push_pull_at_});
    if (probe_) next = std::min({next, probe_->timeout_at, probe_->deadline_at});
    for (const Relay& r : relays_)
      next = std::min(next, r.deadline);
    for (const Stream& s : streams_)
      next = std::min(next, s.deadline);
    for (const Suspicion& s : suspicions_)
      next = std::min(next, s.deadline);
    return next;
  }
  void take_effects(std::vector<Effect>& out) override {
    for (Effect& e : effects_)
      out.push_back(std::move(e));
    effects_.clear();
  }
  void take_changes(std::vector<ReplicaChange>&) override {}
  // A modelled node has no Membership (run_hybrid reads its view through sees(), and asks
  // nothing of SimCluster that would call these).
  Membership& membership() override { std::abort(); }
  const Membership& membership() const override { std::abort(); }
  Replicator* replicator() override { return nullptr; }
  const Replicator* replicator() const override { return nullptr; }

 private:
  struct View {
    std::uint64_t creation = 0;
    std::uint64_t incarnation = 0;
    MemberStatus status = MemberStatus::alive;
    bool known = false;
  };
  struct Diff {
    std::uint32_t idx;
    View v;
  };
  struct Probe {
    std::uint64_t seq;
    std::uint32_t target;
    std::uint64_t creation;
    std::uint64_t timeout_at;
    std::uint64_t deadline_at;
    bool acked = false;
    bool indirect_sent = false;
    std::uint64_t indirect_seq = 0;
    bool unreachable = false;
    std::size_t unreachable_nacks = 0;
  };
  struct Relay {
    std::uint64_t seq;
    Address requester;
    std::uint64_t requester_seq;
    Address target_addr;
    std::uint64_t deadline;
  };
  struct Suspicion {
    std::uint32_t idx;
    std::uint64_t started;
    std::uint64_t reminded;
    std::uint64_t deadline;
    std::vector<std::string> from;  // independent suspecters, the first included
  };
  struct Stream {
    std::uint64_t id;
    Address to;
    std::uint64_t deadline;
  };

  // World's table is complete once the cluster is built; the first input comes after that.
  void ready() {
    if (ready_) return;
    ready_ = true;
    digest_ = w_.base_digest;
    members_ = w_.base;
    live_ = w_.base - 1;
    new_round();
  }

  // Linear in the differences: a clean run has a handful (a newcomer, a dead node).
  View view(std::uint32_t idx) const {
    for (const Diff& d : diffs_)
      if (d.idx == idx) return d.v;
    if (idx < w_.base) return View{w_.base_creation[idx], 0, MemberStatus::alive, true};
    return {};
  }
  std::uint64_t share(std::uint32_t idx, const View& v) const {
    return v.known && is_live(v.status)
               ? Membership::view_hash(w_.ids[idx].name, v.creation, v.incarnation)
               : 0;
  }
  void set_view(std::uint64_t now, std::uint32_t idx, const View& v) {
    const View old = view(idx);
    digest_ ^= share(idx, old) ^ share(idx, v);
    if (!old.known) {
      ++members_;
      extras_.push_back(idx);
      // Into the current probe round at a random place (as Membership::apply_alive).
      const std::size_t span = (w_.base - round_pos_) + inserted_.size() + 1;
      inserted_.emplace_back(round_pos_ + rng_() % span, idx);
    }
    const bool was_live = old.known && is_live(old.status);
    const bool now_live = is_live(v.status);
    if (idx != self_ && was_live != now_live) now_live ? ++live_ : --live_;
    last_change_ = now;
    for (Diff& d : diffs_) {
      if (d.idx == idx) {
        d.v = v;
        return;
      }
    }
    diffs_.push_back(Diff{idx, v});
  }

  void handle(std::uint64_t now, const Address& from, const std::string& sender, Message& m) {
    if (auto* ping = std::get_if<Ping>(&m)) {
      compare_views(now, sender, from, ping->view);
      if (ping->target == id_.name) send(from, {encode_message(Ack{ping->seq, digest_})});
    } else if (auto* ack = std::get_if<Ack>(&m)) {
      compare_views(now, sender, from, ack->view);
      if (probe_ && (probe_->seq == ack->seq ||
                     (probe_->indirect_sent && probe_->indirect_seq == ack->seq))) {
        probe_->acked = true;
        return;
      }
      auto r = std::find_if(relays_.begin(), relays_.end(),
                            [&](const Relay& x) { return x.seq == ack->seq; });
      if (r == relays_.end()) return;
      send(r->requester, {encode_message(Ack{r->requester_seq, digest_})});
      relays_.erase(r);
    } else if (auto* nack = std::get_if<Nack>(&m)) {
      if (!probe_ || !probe_->indirect_sent || probe_->indirect_seq != nack->seq || probe_->acked)
        return;
      if (nack->reason != NackReason::unreachable) return;
      ++probe_->unreachable_nacks;
      if (confirmed()) declare_dead(now, probe_->target, true);
    } else if (auto* req = std::get_if<PingReq>(&m)) {
      const std::uint64_t seq = next_seq_++;
      relays_.push_back(
          Relay{seq, from, req->seq, req->target_addr, now + w_.config.probe_timeout_ms});
      send(req->target_addr, {encode_message(Ping{seq, req->target, digest_})});
    } else if (auto* alive = std::get_if<Alive>(&m)) {
      apply_alive(now, *alive);
    } else if (auto* dead = std::get_if<Dead>(&m)) {
      apply_dead(now, dead->name, dead->creation, dead->incarnation, dead->from, false, &from);
    } else if (auto* left = std::get_if<Left>(&m)) {
      apply_dead(now, left->name, left->creation, left->incarnation, left->name, true, &from);
    } else if (auto* suspect = std::get_if<Suspect>(&m)) {
      apply_suspect(now, *suspect);
    }
  }

  bool confirmed() const {
    return (probe_->unreachable ? 1u : 0u) + probe_->unreachable_nacks >= 2;
  }

  void apply_alive(std::uint64_t now, const Alive& a) {
    auto found = w_.by_name.find(a.name);
    if (found == w_.by_name.end()) return;
    const std::uint32_t idx = found->second;
    if (idx == self_) {
      if (a.creation == id_.creation && a.incarnation > 0) w_.count_unmodelled("refute alive");
      return;
    }
    const View v = view(idx);
    // Unknown, a new life, or a newer incarnation of this one.
    const bool newer = !v.known || a.creation > v.creation ||
                       (a.creation == v.creation && a.incarnation > v.incarnation);
    if (!newer) return;
    end_suspicion(idx);
    set_view(now, idx, View{a.creation, a.incarnation, MemberStatus::alive, true});
    updates_.push(a.name, encode_message(a));
  }

  void apply_dead(std::uint64_t now, const std::string& name, std::uint64_t creation,
                  std::uint64_t incarnation, const std::string& from, bool left,
                  const Address* reply_to) {
    auto found = w_.by_name.find(name);
    if (found == w_.by_name.end()) return;
    const std::uint32_t idx = found->second;
    if (idx == self_) {
      if (creation == id_.creation) w_.count_unmodelled("dead self");  // refute or correct
      return;
    }
    const View v = view(idx);
    if (!v.known || creation != v.creation || !is_live(v.status)) return;
    if (incarnation < v.incarnation) {
      if (reply_to != nullptr && v.status == MemberStatus::alive && !left) {
        const NodeIdentity& m = w_.ids[idx];
        send(*reply_to, {encode_message(Alive{m.name, m.addr, v.creation, v.incarnation, {}})});
      }
      return;
    }
    set_view(now, idx,
             View{creation, incarnation, left ? MemberStatus::left : MemberStatus::dead, true});
    if (!left) dead_log_.emplace_back(now, idx);
    end_suspicion(idx);
    if (left) {
      updates_.push(name, encode_message(Left{name, creation, incarnation}));
    } else {
      updates_.push(name, encode_message(Dead{name, creation, incarnation, from}));
    }
  }

  // Lifeguard's suspicion, as Membership::apply_suspect: the timeout shrinks with independent
  // confirmations; the suspect is told directly and reminded every probe period.
  void apply_suspect(std::uint64_t now, const Suspect& s) {
    auto found = w_.by_name.find(s.name);
    if (found == w_.by_name.end()) return;
    const std::uint32_t idx = found->second;
    if (idx == self_) {
      if (s.creation == id_.creation) w_.count_unmodelled("suspected itself");  // would refute
      return;
    }
    const View v = view(idx);
    if (!v.known || s.creation != v.creation || !is_live(v.status)) return;
    if (s.incarnation < v.incarnation) return;  // stale (a real node corrects the sender)
    const std::uint64_t min_ms =
        suspicion_min_ms(w_.config.suspicion_mult, live_ + 1, w_.config.probe_interval_ms);
    const auto max_ms =
        static_cast<std::uint64_t>(static_cast<double>(min_ms) * w_.config.suspicion_max_mult);
    const auto expected = static_cast<std::size_t>(std::max(0.0, w_.config.suspicion_mult - 2));
    if (v.status == MemberStatus::suspect && s.incarnation == v.incarnation) {
      auto sus = std::find_if(suspicions_.begin(), suspicions_.end(),
                              [&](const Suspicion& x) { return x.idx == idx; });
      if (sus == suspicions_.end()) return;
      if (std::find(sus->from.begin(), sus->from.end(), s.from) != sus->from.end()) return;
      sus->from.push_back(s.from);
      const std::uint64_t deadline =
          sus->started + suspicion_timeout_ms(min_ms, max_ms, sus->from.size() - 1, expected);
      if (deadline <= now) {
        declare_dead(now, idx, false);
      } else {
        sus->deadline = deadline;
        updates_.push(s.name, encode_message(s));
      }
      return;
    }
    set_view(now, idx, View{v.creation, s.incarnation, MemberStatus::suspect, true});
    suspicions_.push_back(Suspicion{
        idx, now, now, now + suspicion_timeout_ms(min_ms, max_ms, 0, expected), {s.from}});
    updates_.push(s.name, encode_message(s));
    send(w_.ids[idx].addr, {encode_message(s)});
  }
  void end_suspicion(std::uint32_t idx) {
    std::erase_if(suspicions_, [&](const Suspicion& x) { return x.idx == idx; });
  }
  void remind_suspects(std::uint64_t now) {
    for (Suspicion& sus : suspicions_) {
      if (now < sus.reminded + w_.config.probe_interval_ms) continue;
      const View v = view(sus.idx);
      if (v.status != MemberStatus::suspect) continue;
      sus.reminded = now;
      send(w_.ids[sus.idx].addr,
           {encode_message(Suspect{w_.ids[sus.idx].name, v.creation, v.incarnation, id_.name})});
    }
  }

  void declare_dead(std::uint64_t now, std::uint32_t idx, bool fast) {
    if (probe_ && probe_->target == idx) probe_.reset();
    const View v = view(idx);
    apply_dead(now, w_.ids[idx].name, v.creation, v.incarnation, id_.name, false, nullptr);
    if (fast && live_ <= 128) {  // Membership's kDirectDeathMax
      const std::string dead =
          encode_message(Dead{w_.ids[idx].name, v.creation, v.incarnation, id_.name});
      for_each_live([&](std::uint32_t peer) { send(w_.ids[peer].addr, {dead}); });
      send(w_.ids[idx].addr, {dead});
    }
  }

  // --- Probing ---

  // A round: the starting members in a random order (i -> (a * i + b) mod base, a coprime with
  // base), with the members learned since placed at random in it.
  void new_round() {
    std::size_t a = 1;
    if (w_.base > 2) {
      do {
        a = 1 + rng_() % (w_.base - 1);
      } while (std::gcd(a, w_.base) != 1);
    }
    perm_a_ = a;
    perm_b_ = rng_() % w_.base;
    round_pos_ = 0;
    inserted_.clear();
    for (std::uint32_t idx : extras_)
      inserted_.emplace_back(rng_() % (w_.base + inserted_.size() + 1), idx);
  }
  std::optional<std::uint32_t> next_probe_target() {
    for (int pass = 0; pass < 2; ++pass) {
      while (round_pos_ < w_.base || !inserted_.empty()) {
        auto ins = std::find_if(inserted_.begin(), inserted_.end(),
                                [&](const auto& p) { return p.first <= round_pos_; });
        std::uint32_t idx;
        if (ins != inserted_.end()) {
          idx = ins->second;
          inserted_.erase(ins);
        } else if (round_pos_ < w_.base) {
          idx = static_cast<std::uint32_t>((perm_a_ * round_pos_ + perm_b_) % w_.base);
          ++round_pos_;
        } else {
          idx = inserted_.back().second;
          inserted_.pop_back();
        }
        if (idx != self_ && is_live(view(idx).status) && view(idx).known) return idx;
      }
      new_round();
    }
    return std::nullopt;
  }
  void start_probe(std::uint64_t now) {
    std::optional<std::uint32_t> target;
    if (urgent_) {
      if (is_live(view(*urgent_).status) && view(*urgent_).known) target = urgent_;
      urgent_.reset();
    }
    if (!target) target = next_probe_target();
    if (target) start_probe_of(now, *target);
  }
  void start_probe_of(std::uint64_t now, std::uint32_t idx) {
    Probe p;
    p.seq = next_seq_++;
    p.target = idx;
    p.creation = view(idx).creation;
    p.timeout_at = now + w_.config.probe_timeout_ms;
    p.deadline_at = now + w_.config.probe_interval_ms - 1;
    probe_ = p;
    send(w_.ids[idx].addr, {encode_message(Ping{p.seq, w_.ids[idx].name, digest_})});
  }
  void go_indirect() {
    probe_->indirect_sent = true;
    probe_->indirect_seq = next_seq_++;
    const NodeIdentity& target = w_.ids[probe_->target];
    const std::string req = encode_message(PingReq{probe_->indirect_seq, target.name, target.addr});
    for (std::uint32_t helper : random_members(w_.config.indirect_checks, probe_->target)) {
      if (view(helper).status == MemberStatus::alive) send(w_.ids[helper].addr, {req});
    }
    send(target.addr, {encode_message(Ping{probe_->indirect_seq, target.name, digest_})});
  }
  void end_probe(std::uint64_t now) {
    const bool acked = probe_->acked;
    const std::uint32_t target = probe_->target;
    const std::uint64_t creation = probe_->creation;
    probe_.reset();
    if (acked) return;
    const View v = view(target);
    if (v.known && v.creation == creation && is_live(v.status))
      apply_suspect(now, Suspect{w_.ids[target].name, creation, v.incarnation, id_.name});
  }

  // --- Sending ---

  void send(const Address& to, const std::vector<std::string>& primary, bool to_dead = false) {
    PacketBuilder packet(id_.name, id_.creation, w_.config.max_packet_bytes);
    for (const std::string& p : primary)
      if (!packet.add(p)) return;
    const std::size_t limit = retransmit_limit(w_.config.retransmit_mult, members_);
    updates_.fill(packet, packet.room(), limit, !to_dead);
    if (packet.count() == 0) return;
    effects_.push_back(SendPacket{to, packet.finish()});
  }
  void gossip(std::uint64_t now) {
    if (updates_.empty()) return;
    for (std::uint32_t m : random_members(w_.config.gossip_fanout, UINT32_MAX)) {
      send(w_.ids[m].addr, {});
      if (updates_.empty()) return;
    }
    while (!dead_log_.empty() && now - dead_log_.front().first >= w_.config.gossip_to_dead_ms)
      dead_log_.pop_front();
    if (dead_log_.empty()) return;
    const std::uint32_t m = dead_log_[rng_() % dead_log_.size()].second;
    if (view(m).status == MemberStatus::dead) send(w_.ids[m].addr, {}, true);
  }
  template <typename F>
  void for_each_live(F f) const {
    for (std::uint32_t i = 0; i < w_.base; ++i)
      if (i != self_ && is_live(view(i).status)) f(i);
    for (std::uint32_t i : extras_)
      if (i != self_ && is_live(view(i).status)) f(i);
  }
  // k distinct live peers at random, not `exclude` (as Membership::random_members).
  std::vector<std::uint32_t> random_members(std::size_t k, std::uint32_t exclude) {
    std::vector<std::uint32_t> out;
    if (live_ == 0 || k == 0) return out;
    const std::size_t excluded = exclude == UINT32_MAX ? 0 : 1;
    if (k + excluded >= live_) {
      for_each_live([&](std::uint32_t i) {
        if (i != exclude) out.push_back(i);
      });
      std::shuffle(out.begin(), out.end(), rng_);
      if (out.size() > k) out.resize(k);
      return out;
    }
    const std::size_t span = w_.base + extras_.size();
    while (out.size() < k) {
      const std::size_t r = rng_() % span;
      const std::uint32_t i = r < w_.base ? static_cast<std::uint32_t>(r) : extras_[r - w_.base];
      const View v = view(i);
      if (i == self_ || i == exclude || !v.known || !is_live(v.status) ||
          std::find(out.begin(), out.end(), i) != out.end())
        continue;
      out.push_back(i);
    }
    return out;
  }

  // --- Views and full state ---

  void compare_views(std::uint64_t now, const std::string& peer, const Address& addr,
                     std::uint64_t digest) {
    if (digest == digest_) {
      mismatch_since_.reset();
      return;
    }
    auto found = w_.by_name.find(peer);
    if (found == w_.by_name.end() || !view(found->second).known) return;
    if (!mismatch_since_) {
      mismatch_since_ = now;
      return;
    }
    if (now - *mismatch_since_ < w_.config.view_sync_holdoff_ms ||
        now - last_change_ < w_.config.view_sync_holdoff_ms ||
        now - last_view_sync_ < w_.config.view_sync_min_interval_ms)
      return;
    mismatch_since_.reset();
    last_view_sync_ = now;
    request_stream(now, addr);
  }
  void request_stream(std::uint64_t now, const Address& to) {
    for (const Stream& s : streams_)
      if (s.to == to) return;
    const std::uint64_t id = next_stream_++;
    streams_.push_back(Stream{id, to, now + w_.config.stream_timeout_ms});
    effects_.push_back(StreamRequest{id, to, encode_push_pull(local_state())});
  }
  bool stale(const PushPull& remote) const {
    if (remote.sender == id_.name) return true;
    auto found = w_.by_name.find(remote.sender);
    if (found == w_.by_name.end()) return false;
    const View v = view(found->second);
    return v.known && v.creation > remote.creation;
  }
  PushPull local_state() const {
    PushPull p;
    p.sender = id_.name;
    p.creation = id_.creation;
    p.members.reserve(members_);
    auto add = [&](std::uint32_t i) {
      const View v = view(i);
      if (!v.known) return;
      p.members.push_back(
          MemberState{w_.ids[i].name, w_.ids[i].addr, v.creation, v.incarnation, v.status, {}});
    };
    for (std::uint32_t i = 0; i < w_.base; ++i)
      add(i);
    for (std::uint32_t i : extras_)
      add(i);
    return p;
  }
  void merge(std::uint64_t now, const PushPull& remote) {
    for (const MemberState& s : remote.members) {
      switch (s.status) {
        case MemberStatus::alive:
          apply_alive(now, Alive{s.name, s.addr, s.creation, s.incarnation, s.tags});
          break;
        case MemberStatus::suspect:
          if (auto f = w_.by_name.find(s.name); f != w_.by_name.end() && !view(f->second).known)
            apply_alive(now, Alive{s.name, s.addr, s.creation, s.incarnation, s.tags});
          apply_suspect(now, Suspect{s.name, s.creation, s.incarnation, remote.sender});
          break;
        case MemberStatus::dead:
          apply_dead(now, s.name, s.creation, s.incarnation, remote.sender, false, nullptr);
          break;
        case MemberStatus::left:
          apply_dead(now, s.name, s.creation, s.incarnation, remote.sender, true, nullptr);
          break;
      }
    }
  }

  World& w_;
  const std::uint32_t self_;
  const NodeIdentity id_;
  std::mt19937_64 rng_;
  bool ready_ = false;
  std::vector<Diff> diffs_;            // members whose state differs from the shared table
  std::vector<std::uint32_t> extras_;  // members known beyond the starting cluster
  std::size_t members_ = 0;            // known members, this node included
  std::size_t live_ = 0;               // live peers
  std::uint64_t digest_ = 0;
  std::optional<std::uint64_t> mismatch_since_;
  std::uint64_t last_view_sync_ = 0;
  std::uint64_t last_change_ = 0;
  BroadcastQueue updates_;
  std::deque<std::pair<std::uint64_t, std::uint32_t>> dead_log_;
  std::uint64_t perm_a_ = 1, perm_b_ = 0;
  std::size_t round_pos_ = 0;
  std::vector<std::pair<std::size_t, std::uint32_t>> inserted_;  // (place in round, member)
  std::optional<Probe> probe_;
  std::optional<std::uint32_t> urgent_;
  std::vector<Relay> relays_;
  std::vector<Suspicion> suspicions_;
  std::vector<Stream> streams_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t next_stream_ = 1;
  std::uint64_t probe_at_, gossip_at_, push_pull_at_;
  std::vector<Effect> effects_;
};

}  // namespace

HybridRun run_hybrid(const HybridOptions& options) {
  const std::size_t n = options.n;
  HybridRun out;
  World world;
  world.config = options.config;
  const std::size_t stride = options.real == 0 || options.real >= n ? 1 : n / options.real;
  auto is_real = [&](std::size_t i) { return i == n || i % stride == stride / 2; };
  for (std::size_t i = 0; i < n; ++i)
    out.real_nodes += is_real(i) ? 1 : 0;
  SimCluster c(n + 1, options.seed,
               [&](std::size_t i, const NodeIdentity& self, std::uint64_t node_seed,
                   std::uint64_t now) -> std::unique_ptr<Core> {
                 world.add(i, self);
                 if (is_real(i))
                   return std::make_unique<Node>(world.config, std::nullopt, self, node_seed, now);
                 return std::make_unique<ModelCore>(world, static_cast<std::uint32_t>(i), self,
                                                    node_seed, now);
               });
  c.kill(n);  // the newcomer, until its turn
  world.freeze(n);
  // The real nodes learn the starting cluster as from a push-pull (so they gossip all of it once,
  // as a node does after its join; the run waits for that to drain).
  for (std::size_t i = 0; i < n; ++i) {
    if (!is_real(i)) continue;
    (void)c.core(i).on_stream_request(c.now(), c.addr((i + 1) % n), world.base_state((i + 1) % n));
    c.settle(i);
  }
  auto sees = [&](std::size_t i, std::size_t subject, MemberStatus status) {
    if (auto* model = dynamic_cast<ModelCore*>(&c.core(i)))
      return model->sees(static_cast<std::uint32_t>(subject), status);
    const Member* m = c.membership(i).member(c.name(subject));
    return m != nullptr && m->status == status;
  };
  auto all_see = [&](std::size_t subject, MemberStatus status) {
    for (std::size_t i = 0; i <= n; ++i) {
      if (i == subject || !c.running(i)) continue;
      if (!sees(i, subject, status)) return false;
    }
    return true;
  };
  auto quiet = [&] {
    for (std::size_t i = 0; i <= n; ++i) {
      if (!c.running(i)) continue;
      if (auto* model = dynamic_cast<ModelCore*>(&c.core(i))) {
        if (model->queued() > 0) return false;
      } else if (c.membership(i).queued_updates() > 0) {
        return false;
      }
    }
    return true;
  };
  out.drained = c.wait_until(quiet, 600'000, 500);
  out.drained_ms = c.now();
  const std::uint64_t before = c.packets_sent();
  c.run_for(10'000);
  out.idle_msgs = static_cast<double>(c.packets_sent() - before) / static_cast<double>(n) / 10.0;
  const std::uint64_t joined_at = c.now();
  c.restart(n, {0});
  out.newcomer_seen = c.wait_until([&] { return all_see(n, MemberStatus::alive); }, 60'000, 10);
  out.newcomer_ms = c.now() - joined_at;
  out.quiet_before_kill = c.wait_until(quiet, 600'000, 500);
  const std::size_t victim = n / 2;
  const std::uint64_t killed_at = c.now();
  c.kill(victim);
  auto anyone_sees = [&](std::size_t subject, MemberStatus status) {
    for (std::size_t i = 0; i <= n; ++i)
      if (i != subject && c.running(i) && sees(i, subject, status)) return true;
    return false;
  };
  c.wait_until([&] { return anyone_sees(victim, MemberStatus::dead); }, 60'000, 1);
  out.kill_first_ms = c.now() - killed_at;
  out.kill_seen = c.wait_until([&] { return all_see(victim, MemberStatus::dead); }, 60'000, 10);
  out.kill_ms = c.now() - killed_at;
  out.unmodelled = world.unmodelled;
  out.unmodelled_by_kind = world.unmodelled_by_kind;
  return out;
}

}  // namespace shoal::cluster::sim
