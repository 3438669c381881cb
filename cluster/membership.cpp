#include "cluster/membership.h"

#include <algorithm>
#include <cassert>
#include <limits>

#include "cluster/timing.h"
#include "crdt/hash.h"

namespace shoal::cluster {

const char* event_name(EventKind kind) {
  switch (kind) {
    case EventKind::joined:
      return "joined";
    case EventKind::updated:
      return "updated";
    case EventKind::suspect:
      return "suspect";
    case EventKind::alive_again:
      return "alive-again";
    case EventKind::failed:
      return "failed";
    case EventKind::left:
      return "left";
  }
  return "unknown";
}

namespace {

bool is_live(MemberStatus s) {
  return s == MemberStatus::alive || s == MemberStatus::suspect;
}

// How often the reap timer looks for members to forget, ms.
constexpr std::uint64_t kReapEveryMs = 1000;
// Up to this many peers, a refutation also goes to each directly.
constexpr std::size_t kDirectRefuteMax = 16;
// Up to this many peers, a crash this node confirmed also goes to each directly (and to the
// member declared dead: if it is alive after all, it refutes at once).
constexpr std::size_t kDirectDeathMax = 128;
// The greatest incarnation. This node's incarnation never wraps (invariant 1): an accusation at
// the greatest one cannot be outbid, so it is not refuted (peers that believe it keep this life
// dead until the node restarts with a new creation), and a change of tags there does not spread.
// Honest nodes never come near it: they count one per refutation or change of tags.
constexpr std::uint64_t kMaxIncarnation = std::numeric_limits<std::uint64_t>::max();

}  // namespace

Membership::Membership(MembershipConfig config, NodeIdentity self, std::uint64_t seed,
                       std::uint64_t now_ms)
    : config_(config),
      self_(std::move(self)),
      rng_(seed),
      updates_(config.max_queued_updates),
      user_(config.max_queued_user),
      join_backoff_ms_(config.join_retry_min_ms) {
  assert(!config_.validate());
  now_hint_ = now_ms;
  Member me;
  me.name = self_.name;
  me.addr = self_.addr;
  me.creation = self_.creation;
  me.incarnation = 0;
  me.status = MemberStatus::alive;
  me.tags = self_.tags;
  me.since_ms = now_ms;
  after_change(members_.emplace(self_.name, std::move(me)).first->second);
  // Nodes started together must not probe in lockstep.
  arm(now_ms + rng_() % config_.probe_interval_ms, TimerKind::probe);
  arm(now_ms + config_.gossip_interval_ms, TimerKind::gossip);
  arm(now_ms + config_.push_pull_interval_ms, TimerKind::push_pull);
  if (config_.reconnect_interval_ms > 0) {
    arm(now_ms + config_.reconnect_interval_ms, TimerKind::reconnect);
  }
  arm(now_ms + kReapEveryMs, TimerKind::reap);
}

// --- Timers ---

void Membership::arm(std::uint64_t at, TimerKind kind, std::uint64_t token, std::string member) {
  timers_.push(Timer{at, next_timer_order_++, kind, token, std::move(member)});
}

std::uint64_t Membership::next_deadline() const {
  return timers_.top().at;
}

std::uint64_t Membership::stretched(std::uint64_t configured, std::uint64_t wanted) const {
  const std::uint64_t by_health = configured * static_cast<std::uint64_t>(awareness_ + 1);
  const std::uint64_t bound = configured * static_cast<std::uint64_t>(config_.awareness_max + 1);
  return std::min(std::max(by_health, wanted), bound);
}

// The probe timeout and interval in use. The health multiplier stretches the configured ones
// (Lifeguard); so does the network's typical round trip, the median of the last kRttWindow
// samples: the timeout to twice it, the interval to the timeout and then the indirect path (to a
// helper, to the target and back: two round trips). On a LAN that is far below the configured
// values, which then apply unchanged; over a slow link (the fault lab's 50 +- 20 ms each way) the
// configured 80 ms timed out most pings, every probe depended on the second ping and the
// helpers, and the helpers' answers, four one-way trips later, came after the probe had ended.
// A median, not a mean with deviations: a busy agent's loop answers late now and then, and must
// not slow the detection of crashes (the failover benchmark, 2 cores, 10,000 workers). Both
// stretches together stay within the health multiplier's bound, awareness_max + 1 times the
// configured values, which the quorum lease assumes (supervisor::quorum_lease_ms).
std::uint64_t Membership::probe_timeout_ms() const {
  return stretched(config_.probe_timeout_ms, 2 * rtt_typical_ms_);
}

std::uint64_t Membership::probe_interval_ms() const {
  if (rtt_samples_ == 0) return stretched(config_.probe_interval_ms, 0);
  return stretched(config_.probe_interval_ms, probe_timeout_ms() + 2 * rtt_typical_ms_ + 10);
}

void Membership::sample_rtt(std::uint64_t rtt_ms) {
  rtt_window_[rtt_samples_ % kRttWindow] = rtt_ms;
  ++rtt_samples_;
  std::array<std::uint64_t, kRttWindow> sorted = rtt_window_;
  const std::size_t n = std::min<std::size_t>(rtt_samples_, kRttWindow);
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(n / 2),
                   sorted.begin() + static_cast<std::ptrdiff_t>(n));
  rtt_typical_ms_ = sorted[n / 2];
}

void Membership::on_timer(std::uint64_t now_ms) {
  now_hint_ = now_ms;
  while (!timers_.empty() && timers_.top().at <= now_ms) {
    Timer timer = timers_.top();
    timers_.pop();
    fire(now_ms, timer);
  }
}

void Membership::fire(std::uint64_t now, const Timer& timer) {
  switch (timer.kind) {
    case TimerKind::probe:
      if (probe_) end_probe(now);
      remind_suspects(now);
      start_probe(now);
      arm(now + probe_interval_ms(), TimerKind::probe);
      break;
    case TimerKind::probe_timeout:
      if (probe_ && probe_->seq == timer.token && !probe_->acked && !probe_->indirect_sent) {
        go_indirect(now);
      }
      break;
    case TimerKind::probe_deadline:
      if (probe_ && probe_->seq == timer.token) end_probe(now);
      break;
    case TimerKind::relay_timeout: {
      auto it = relays_.find(timer.token);
      if (it == relays_.end()) break;
      send(now, it->second.requester,
           {encode_message(Nack{it->second.requester_seq, NackReason::timeout})});
      relays_.erase(it);
      break;
    }
    case TimerKind::suspicion: {
      auto it = suspicions_.find(timer.member);
      if (it == suspicions_.end() || it->second.token != timer.token) break;
      auto m = members_.find(timer.member);
      if (m != members_.end() && m->second.status == MemberStatus::suspect) {
        declare_dead(now, m->second, false);
      }
      break;
    }
    case TimerKind::gossip:
      gossip(now);
      arm(now + config_.gossip_interval_ms, TimerKind::gossip);
      break;
    case TimerKind::push_pull: {
      auto peers = random_members(1, {});
      if (!peers.empty() && !leaving_)
        request_stream(now, peers[0]->addr, StreamPurpose::push_pull);
      arm(now + push_pull_interval_ms(config_.push_pull_interval_ms, members_.size()),
          TimerKind::push_pull);
      break;
    }
    case TimerKind::reconnect: {
      std::vector<const Member*> dead;
      for (auto it = members_.begin(); gone_peers() > 0 && it != members_.end(); ++it) {
        if (it->second.status == MemberStatus::dead) dead.push_back(&it->second);
      }
      if (!dead.empty() && !leaving_) {
        request_stream(now, dead[rng_() % dead.size()]->addr, StreamPurpose::reconnect);
      }
      arm(now + config_.reconnect_interval_ms, TimerKind::reconnect);
      break;
    }
    case TimerKind::join_retry:
      join_retry_armed_ = false;
      if (leaving_ || seeds_.empty()) break;
      if (live_peers() == 0) {
        retry_join(now);
      } else {
        // Connected: look again later, in case this node ends up alone.
        join_backoff_ms_ = config_.join_retry_min_ms;
        join_retry_armed_ = true;
        arm(now + config_.join_retry_max_ms, TimerKind::join_retry);
      }
      break;
    case TimerKind::stream_timeout:
      if (streams_.count(timer.token) != 0) on_stream_failed(now, timer.token);
      break;
    case TimerKind::reap: {
      for (auto it = members_.begin(); gone_peers() > 0 && it != members_.end();) {
        const Member& m = it->second;
        const bool forget =
            m.name != self_.name &&
            ((m.status == MemberStatus::dead && now - m.since_ms >= config_.reap_dead_ms) ||
             (m.status == MemberStatus::left && now - m.since_ms >= config_.reap_left_ms));
        if (forget) {
          updates_.erase(it->first);
          --by_status_[static_cast<std::size_t>(m.status)];
          it = members_.erase(it);
        } else {
          ++it;
        }
      }
      arm(now + kReapEveryMs, TimerKind::reap);
      break;
    }
  }
}

// --- Probing ---

std::optional<std::string> Membership::next_probe_target() {
  for (int pass = 0; pass < 2; ++pass) {
    while (probe_index_ < probe_order_.size()) {
      const std::string& name = probe_order_[probe_index_++];
      auto it = members_.find(name);
      if (it != members_.end() && is_live(it->second.status)) return name;
    }
    probe_order_.clear();
    probe_index_ = 0;
    for (const auto& [name, m] : members_) {
      if (name != self_.name && is_live(m.status)) probe_order_.push_back(name);
    }
    std::shuffle(probe_order_.begin(), probe_order_.end(), rng_);
  }
  return std::nullopt;
}

void Membership::start_probe(std::uint64_t now) {
  if (leaving_) return;
  std::optional<std::string> target;
  if (urgent_) {
    auto it = members_.find(*urgent_);
    if (it != members_.end() && is_live(it->second.status)) target = *urgent_;
    urgent_.reset();
  }
  if (!target) target = next_probe_target();
  if (!target) return;
  start_probe_of(now, *target);
}

void Membership::start_probe_of(std::uint64_t now, const std::string& target) {
  const Member& m = members_.at(target);
  Probe probe;
  probe.seq = next_seq_++;
  probe.target = target;
  probe.creation = m.creation;
  probe.incarnation = m.incarnation;
  probe.sent_ms = now;
  probe_ = probe;
  ++stats_.probes;
  send(now, m.addr, {encode_message(Ping{probe.seq, target, digest_})});
  arm(now + probe_timeout_ms(), TimerKind::probe_timeout, probe.seq);
  // Just before the next probe starts, so a late ack still counts.
  arm(now + probe_interval_ms() - 1, TimerKind::probe_deadline, probe.seq);
}

void Membership::go_indirect(std::uint64_t now) {
  probe_->indirect_sent = true;
  probe_->indirect_seq = next_seq_++;
  auto it = members_.find(probe_->target);
  if (it == members_.end()) return;
  const Member& target = it->second;
  auto helpers = random_members(config_.indirect_checks, {probe_->target});
  const std::string req = encode_message(PingReq{probe_->indirect_seq, target.name, target.addr});
  for (const Member* helper : helpers) {
    if (helper->status != MemberStatus::alive) continue;
    send(now, helper->addr, {req});
    ++probe_->expected_nacks;
  }
  ++stats_.indirect_probes;
  // Try the target directly once more too: a single lost ping must not start a suspicion.
  send(now, target.addr, {encode_message(Ping{probe_->indirect_seq, target.name, digest_})});
}

void Membership::end_probe(std::uint64_t now) {
  Probe probe = *probe_;
  probe_.reset();
  if (probe.acked) return;
  ++stats_.probes_failed;
  if (probe.expected_nacks > 0) {
    adjust_health(
        static_cast<int>(probe.expected_nacks - std::min(probe.nacks, probe.expected_nacks)));
  } else {
    adjust_health(1);
  }
  auto it = members_.find(probe.target);
  if (it == members_.end() || it->second.creation != probe.creation ||
      !is_live(it->second.status)) {
    return;
  }
  // Already suspect: our own failed probe is an independent confirmation (Lifeguard), which
  // shortens the suspicion here and, gossiped, everywhere.
  apply_suspect(now, Suspect{probe.target, probe.creation, it->second.incarnation, self_.name},
                nullptr);
}

void Membership::adjust_health(int delta) {
  awareness_ = std::clamp(awareness_ + delta, 0, config_.awareness_max);
}

// Declares the probed target dead at once when two independent signals say its process is gone:
// our own "port unreachable" and a helper's, or two helpers'.
static bool crash_confirmed(bool own_signal, std::size_t helper_signals) {
  return (own_signal ? 1u : 0u) + helper_signals >= 2;
}

void Membership::on_unreachable(std::uint64_t now_ms, const Address& to) {
  now_hint_ = now_ms;
  for (auto it = relays_.begin(); it != relays_.end();) {
    if (it->second.target_addr == to) {
      send(now_ms, it->second.requester,
           {encode_message(Nack{it->second.requester_seq, NackReason::unreachable})});
      it = relays_.erase(it);
    } else {
      ++it;
    }
  }
  if (!probe_ || probe_->acked || members_.find(probe_->target) == members_.end() ||
      members_.at(probe_->target).addr != to) {
    // A port unreachable for a member we are not probing (gossip or replication sent there): it
    // may have crashed. Probe it now, or next if a probe of another member is under way, so a
    // crash is confirmed without waiting for its turn in the probe order.
    for (const auto& [name, m] : members_) {
      if (m.addr != to || name == self_.name || !is_live(m.status)) continue;
      if (probe_ && probe_->target == name) break;
      if (!probe_ || probe_->acked) {
        ++stats_.urgent_probes;
        start_probe_of(now_ms, name);
      } else if (!urgent_) {
        urgent_ = name;
      }
      break;
    }
    return;
  }
  auto it = members_.find(probe_->target);
  probe_->unreachable = true;
  if (!probe_->indirect_sent) go_indirect(now_ms);
  if (probe_ && crash_confirmed(probe_->unreachable, probe_->unreachable_nacks)) {
    declare_dead(now_ms, it->second, true);
  }
}

// --- Messages ---

void Membership::on_packet(std::uint64_t now_ms, const Address& from, std::string_view bytes) {
  now_hint_ = now_ms;
  ++stats_.packets_in;
  stats_.bytes_in += bytes.size();
  auto packet = decode_packet(bytes);
  if (!packet) {
    ++stats_.rejected;
    return;
  }
  if (packet->sender == self_.name) {
    if (packet->creation != self_.creation) ++stats_.stale;
    return;  // our own packet, looped back, or another life of our name
  }
  if (auto known = members_.find(packet->sender);
      known != members_.end() && known->second.creation > packet->creation) {
    ++stats_.stale;
    return;
  }
  for (Message& message : packet->messages)
    handle(now_ms, from, packet->sender, packet->creation, message);
}

void Membership::handle(std::uint64_t now, const Address& from, const std::string& sender,
                        std::uint64_t creation, Message& message) {
  std::visit(
      [&](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, Ping>) {
          compare_views(now, sender, from, m.view);
          on_ping(now, from, m);
        } else if constexpr (std::is_same_v<T, Ack>) {
          compare_views(now, sender, from, m.view);
          on_ack(now, m);
        } else if constexpr (std::is_same_v<T, Nack>) {
          on_nack(now, m);
        } else if constexpr (std::is_same_v<T, PingReq>) {
          on_ping_req(now, from, m);
        } else if constexpr (std::is_same_v<T, Alive>) {
          apply_alive(now, m);
        } else if constexpr (std::is_same_v<T, Suspect>) {
          apply_suspect(now, m, &from);
        } else if constexpr (std::is_same_v<T, Dead>) {
          apply_dead(now, m.name, m.creation, m.incarnation, m.from, false, &from);
        } else if constexpr (std::is_same_v<T, Left>) {
          apply_dead(now, m.name, m.creation, m.incarnation, m.name, true, &from);
        } else if constexpr (std::is_same_v<T, User>) {
          ++stats_.user_in;
          effects_.push_back(UserMessage{sender, std::move(m.payload), creation});
        } else if constexpr (std::is_same_v<T, UserBroadcast>) {
          if (m.origin == self_.name || !first_sight(m.origin, m.id)) return;
          ++stats_.user_in;
          // Spread it further (epidemic), then hand it up.
          user_.push(m.origin + "/" + std::to_string(m.id), encode_message(m));
          effects_.push_back(UserMessage{m.origin, std::move(m.payload), 0});
        }
      },
      message);
}

void Membership::on_ping(std::uint64_t now, const Address& from, const Ping& ping) {
  if (ping.target != self_.name) return;  // meant for someone else at this address
  // A leaving node still answers until it closes: its ack carries the news that it left to a
  // prober that has not heard it yet, which would otherwise suspect it and declare it failed.
  send(now, from, {encode_message(Ack{ping.seq, digest_})});
}

void Membership::on_ack(std::uint64_t now, const Ack& ack) {
  if (probe_ &&
      (probe_->seq == ack.seq || (probe_->indirect_sent && probe_->indirect_seq == ack.seq))) {
    if (!probe_->acked) {
      probe_->acked = true;
      adjust_health(-1);
      if (ack.seq == probe_->seq) {
        const std::uint64_t rtt = now - probe_->sent_ms;
        sample_rtt(rtt);
        if (auto it = members_.find(probe_->target);
            it != members_.end() && it->second.creation == probe_->creation)
          it->second.rtt_ms = rtt;
        std::size_t b = 0;
        while (b < MembershipStats::kRttBucketsMs.size() && rtt > MembershipStats::kRttBucketsMs[b])
          ++b;
        ++stats_.rtt_buckets[b];
        stats_.rtt_sum_ms += rtt;
        ++stats_.rtt_count;
      }
    }
    return;
  }
  auto it = relays_.find(ack.seq);
  if (it == relays_.end()) return;
  send(now, it->second.requester, {encode_message(Ack{it->second.requester_seq, digest_})});
  relays_.erase(it);
}

void Membership::on_nack(std::uint64_t now, const Nack& nack) {
  if (!probe_ || !probe_->indirect_sent || probe_->indirect_seq != nack.seq || probe_->acked)
    return;
  ++probe_->nacks;
  if (nack.reason != NackReason::unreachable) return;
  ++probe_->unreachable_nacks;
  auto it = members_.find(probe_->target);
  if (it != members_.end() && crash_confirmed(probe_->unreachable, probe_->unreachable_nacks)) {
    declare_dead(now, it->second, true);
  }
}

void Membership::on_ping_req(std::uint64_t now, const Address& from, const PingReq& req) {
  if (leaving_) return;
  const std::uint64_t seq = next_seq_++;
  relays_[seq] = Relay{from, req.seq, req.target, req.target_addr};
  send(now, req.target_addr, {encode_message(Ping{seq, req.target, digest_})});
  arm(now + probe_timeout_ms(), TimerKind::relay_timeout, seq);
}

void Membership::apply_alive(std::uint64_t now, const Alive& a) {
  if (a.name == self_.name) {
    if (a.creation != self_.creation || leaving_) return;
    const Member& me = members_.at(self_.name);
    if (a.incarnation > me.incarnation ||
        (a.incarnation == me.incarnation && (a.addr != me.addr || a.tags != me.tags))) {
      refute(now, a.incarnation);  // someone spreads a view of us that is not ours
    }
    return;
  }
  auto it = members_.find(a.name);
  if (it == members_.end()) {
    Member m{{a.name, a.addr, a.creation, a.incarnation, MemberStatus::alive, a.tags}, now};
    auto& added = members_.emplace(a.name, std::move(m)).first->second;
    after_change(added);
    // Into the current probe round at a random place, so a newcomer is probed (and a crash of it
    // noticed) within one round rather than after the next reshuffle. By a swap with the member
    // that held that place, which goes to the round's end: O(1) per newcomer, where an insert
    // would shift the rest of the round (O(N) each, O(N^2) per node while a cluster forms).
    const std::size_t span = probe_order_.size() - probe_index_ + 1;
    const std::size_t place = probe_index_ + rng_() % span;
    probe_order_.push_back(a.name);
    std::swap(probe_order_[place], probe_order_.back());
    emit(now, EventKind::joined, added);
    queue_update(a.name, a);
    return;
  }
  Member& m = it->second;
  if (a.creation < m.creation) return;
  if (a.creation > m.creation) {
    // A new life of the name: the old one is gone, whatever we thought of it.
    if (is_live(m.status)) emit(now, EventKind::failed, m);
    suspicions_.erase(a.name);
    before_change(m);
    const std::size_t slot = m.live_slot;
    m = Member{{a.name, a.addr, a.creation, a.incarnation, MemberStatus::alive, a.tags}, now};
    m.live_slot = slot;
    after_change(m);
    emit(now, EventKind::joined, m);
    queue_update(a.name, a);
    return;
  }
  if (a.incarnation <= m.incarnation) return;
  const bool changed = m.addr != a.addr || m.tags != a.tags;
  const MemberStatus before = m.status;
  before_change(m);
  m.incarnation = a.incarnation;
  m.addr = a.addr;
  m.tags = a.tags;
  m.status = MemberStatus::alive;
  after_change(m);
  if (before != MemberStatus::alive) m.since_ms = now;
  suspicions_.erase(a.name);
  if (before == MemberStatus::suspect) {
    emit(now, EventKind::alive_again, m);
  } else if (before == MemberStatus::dead || before == MemberStatus::left) {
    emit(now, EventKind::joined, m);
  } else if (changed) {
    emit(now, EventKind::updated, m);
  }
  queue_update(a.name, a);
}

// Each suspicion this node holds is told to its suspect again every probe interval, until it
// ends (Lifeguard's buddy system, generalized). The suspect refutes, or answers a notice older
// than its refutation with a correction to the sender: neither the few gossiped copies of a
// suspicion nor those of the refutation can all be lost on a lossy network before the timeout.
void Membership::remind_suspects(std::uint64_t now) {
  const std::uint64_t every = probe_interval_ms();
  for (auto& [name, sus] : suspicions_) {
    if (now < sus.reminded_ms + every) continue;
    auto it = members_.find(name);
    if (it == members_.end() || it->second.status != MemberStatus::suspect) continue;
    const Member& m = it->second;
    sus.reminded_ms = now;
    send(now, m.addr, {encode_message(Suspect{m.name, m.creation, m.incarnation, self_.name})});
  }
}

void Membership::apply_suspect(std::uint64_t now, const Suspect& s, const Address* reply_to) {
  if (s.name == self_.name) {
    if (s.creation != self_.creation || leaving_) return;
    if (s.incarnation >= members_.at(self_.name).incarnation) {
      refute(now, s.incarnation);
      adjust_health(1);
    } else if (reply_to != nullptr) {
      correct(now, *reply_to, members_.at(self_.name));
    }
    return;
  }
  auto it = members_.find(s.name);
  if (it == members_.end()) return;
  Member& m = it->second;
  if (s.creation != m.creation || !is_live(m.status)) return;
  if (s.incarnation < m.incarnation) {
    if (reply_to != nullptr && m.status == MemberStatus::alive) correct(now, *reply_to, m);
    return;
  }

  const std::size_t n = live_.size() + 1;
  const std::uint64_t min_ms =
      suspicion_min_ms(config_.suspicion_mult, n, config_.probe_interval_ms);
  const auto max_ms =
      static_cast<std::uint64_t>(static_cast<double>(min_ms) * config_.suspicion_max_mult);
  const auto expected = static_cast<std::size_t>(std::max(0.0, config_.suspicion_mult - 2));

  if (m.status == MemberStatus::suspect && s.incarnation == m.incarnation) {
    auto sus = suspicions_.find(s.name);
    if (sus == suspicions_.end() || !sus->second.confirmations.insert(s.from).second) return;
    // An independent confirmation: the deadline moves closer, and others should count it too.
    const std::size_t confirmations = sus->second.confirmations.size() - 1;
    const std::uint64_t deadline =
        sus->second.started_ms + suspicion_timeout_ms(min_ms, max_ms, confirmations, expected);
    sus->second.token = next_token_++;
    if (deadline <= now) {
      declare_dead(now, m, false);
    } else {
      arm(deadline, TimerKind::suspicion, sus->second.token, s.name);
      queue_update(s.name, s);
    }
    return;
  }
  before_change(m);
  m.incarnation = s.incarnation;
  m.status = MemberStatus::suspect;
  m.since_ms = now;
  after_change(m);
  Suspicion sus{next_token_++, now, now, {s.from}};
  arm(now + suspicion_timeout_ms(min_ms, max_ms, 0, expected), TimerKind::suspicion, sus.token,
      s.name);
  suspicions_[s.name] = std::move(sus);
  ++stats_.suspicions;
  emit(now, EventKind::suspect, m);
  queue_update(s.name, s);
  // Tell the suspect directly, so that it can refute at once.
  send(now, m.addr, {encode_message(s)});
}

void Membership::apply_dead(std::uint64_t now, const std::string& name, std::uint64_t creation,
                            std::uint64_t incarnation, const std::string& from, bool left,
                            const Address* reply_to) {
  if (name == self_.name) {
    if (creation != self_.creation || leaving_) return;
    if (incarnation >= members_.at(self_.name).incarnation) {
      refute(now, incarnation);
      adjust_health(1);
    } else if (reply_to != nullptr) {
      correct(now, *reply_to, members_.at(self_.name));
    }
    return;
  }
  auto it = members_.find(name);
  if (it == members_.end()) return;
  Member& m = it->second;
  if (creation != m.creation) return;
  // Dead and left are final, and left outranks dead: a member's own word that it left corrects
  // a death others declared while its news was on the way, so that every view ends the same.
  if (!is_live(m.status) && !(left && m.status == MemberStatus::dead)) return;
  if (incarnation < m.incarnation) {
    if (reply_to != nullptr && m.status == MemberStatus::alive && !left) correct(now, *reply_to, m);
    return;
  }
  before_change(m);
  m.status = left ? MemberStatus::left : MemberStatus::dead;
  m.incarnation = incarnation;
  m.since_ms = now;
  after_change(m);
  if (!left) dead_log_.emplace_back(now, name);
  suspicions_.erase(name);
  emit(now, left ? EventKind::left : EventKind::failed, m);
  if (left) {
    queue_update(name, Left{name, creation, incarnation});
  } else {
    queue_update(name, Dead{name, creation, incarnation, from});
  }
}

void Membership::declare_dead(std::uint64_t now, Member& m, bool fast) {
  ++stats_.deaths_declared;
  if (fast) ++stats_.fast_deaths;
  if (probe_ && probe_->target == m.name) probe_.reset();
  apply_dead(now, m.name, m.creation, m.incarnation, self_.name, false, nullptr);
  // Gossip reaches everyone in a few probe rounds, O(log N) of them; every survivor's view of a
  // crash changes in one hop instead, so that its children move as soon as anyone is sure. Only
  // a crash confirmed by "port unreachable" (no process there) goes so: a suspicion that timed out
  // may be a live but starved node, and one node's mistake must not become everyone's at once
  // (found by the failover bench: 50 agents on 2 cores, where it turned one false death into
  // hundreds and every child of the accused moved).
  if (fast && live_.size() <= kDirectDeathMax) {
    const std::string dead = encode_message(Dead{m.name, m.creation, m.incarnation, self_.name});
    for (const Member* peer : live_)
      send(now, peer->addr, {dead});
    send(now, m.addr, {dead});
  }
}

void Membership::correct(std::uint64_t now, const Address& to, const Member& m) {
  ++stats_.corrections;
  send(now, to, {encode_message(Alive{m.name, m.addr, m.creation, m.incarnation, m.tags})});
}

void Membership::before_change(const Member& m) {
  digest_ ^= member_hash(m);
  --by_status_[static_cast<std::size_t>(m.status)];
}

void Membership::after_change(Member& m) {
  digest_ ^= member_hash(m);
  ++by_status_[static_cast<std::size_t>(m.status)];
  last_change_ms_ = now_hint_;
  const bool listed = m.live_slot != Member::kNotListed;
  if (is_live(m.status) && !listed && m.name != self_.name) {
    m.live_slot = live_.size();
    live_.push_back(&m);
  } else if ((!is_live(m.status) || m.name == self_.name) && listed) {
    Member* last = live_.back();
    live_[m.live_slot] = last;
    last->live_slot = m.live_slot;
    live_.pop_back();
    m.live_slot = Member::kNotListed;
  }
}

std::uint64_t Membership::view_hash(std::string_view name, std::uint64_t creation,
                                    std::uint64_t incarnation) {
  const std::uint64_t h = crdt::Fnv1a().bytes(name).word(creation).word(incarnation).value();
  return h ^ (h >> 29);
}

std::uint64_t Membership::member_hash(const Member& m) {
  return is_live(m.status) ? view_hash(m.name, m.creation, m.incarnation) : 0;
}

void Membership::compare_views(std::uint64_t now, const std::string& peer, const Address& addr,
                               std::uint64_t digest) {
  if (digest == digest_) {
    mismatch_since_.reset();
    return;
  }
  if (members_.find(peer) == members_.end()) return;
  // A node whose view differs from every peer it hears, for longer than the holdoff and with its
  // own view standing still, is the one behind (or ahead): one push-pull with the peer at hand
  // settles both. Counted across peers, not per peer: at N members a given peer is heard only
  // every N probe periods or so, so a per-peer count would leave a node blind for seconds. A
  // node that agrees with anyone in between waits: while news spreads (a cluster forming, say)
  // views differ legitimately everywhere, and the nodes that are up to date keep agreeing.
  if (!mismatch_since_) {
    mismatch_since_ = now;
    return;
  }
  if (now - *mismatch_since_ < config_.view_sync_holdoff_ms ||
      now - last_change_ms_ < config_.view_sync_holdoff_ms ||
      now - last_view_sync_ < config_.view_sync_min_interval_ms) {
    return;
  }
  mismatch_since_.reset();
  last_view_sync_ = now;
  ++stats_.view_syncs;
  request_stream(now, addr, StreamPurpose::push_pull);
}

void Membership::refute(std::uint64_t now, std::uint64_t at_least) {
  Member& me = members_.at(self_.name);
  const std::uint64_t outbid = std::max(me.incarnation, at_least);
  if (outbid == kMaxIncarnation) return;
  before_change(me);
  me.incarnation = outbid + 1;
  after_change(me);
  ++stats_.refutes;
  queue_update(self_.name, self_alive());
  // In a small cluster, to everyone at once as well: gossip alone can be outrun by a suspicion
  // timeout that confirmations shortened, on a lossy, slow network.
  if (live_.size() <= kDirectRefuteMax) {
    const std::string alive = encode_message(self_alive());
    for (const Member* m : live_)
      send(now, m->addr, {alive});
  }
  gossip(now);
}

// --- Sending ---

Alive Membership::self_alive() const {
  const Member& me = members_.at(self_.name);
  return Alive{me.name, me.addr, me.creation, me.incarnation, me.tags};
}

void Membership::queue_update(const std::string& name, const Message& message) {
  updates_.push(name, encode_message(message));
}

void Membership::send(std::uint64_t /*now*/, const Address& to, std::vector<std::string> primary,
                      bool to_dead) {
  PacketBuilder packet(self_.name, self_.creation, config_.max_packet_bytes);
  for (const std::string& p : primary) {
    if (!packet.add(p)) return;  // cannot happen for protocol messages; user sends are pre-checked
  }
  const std::size_t limit = retransmit_limit(config_.retransmit_mult, members_.size());
  // Membership updates get a bounded share while upper-layer payloads wait, the rest otherwise.
  const std::size_t room = packet.room();
  const std::size_t share =
      user_.empty() ? room
                    : static_cast<std::size_t>(static_cast<double>(room) * config_.gossip_share);
  // One pass each: a second pass over the same queue would put an update in the packet twice.
  updates_.fill(packet, share, limit, !to_dead);
  user_.fill(packet, packet.room(), limit, !to_dead);
  if (packet.count() == 0) return;
  std::string bytes = packet.finish();
  ++stats_.packets_out;
  stats_.bytes_out += bytes.size();
  effects_.push_back(SendPacket{to, std::move(bytes)});
}

void Membership::gossip(std::uint64_t now) {
  if (updates_.empty() && user_.empty()) return;
  for (const Member* m : random_members(config_.gossip_fanout, {})) {
    send(now, m->addr, {});
    if (updates_.empty() && user_.empty()) return;
  }
  // One member declared dead lately hears the news too, so that a live node declared dead by
  // mistake learns it and refutes.
  while (!dead_log_.empty() && now - dead_log_.front().first >= config_.gossip_to_dead_ms) {
    dead_log_.pop_front();
  }
  if (dead_log_.empty()) return;
  const Member* m = member(dead_log_[rng_() % dead_log_.size()].second);
  if (m != nullptr && m->status == MemberStatus::dead) send(now, m->addr, {}, true);
}

std::size_t Membership::live_peers() const {
  return live_.size();
}

std::vector<const Member*> Membership::random_members(std::size_t k,
                                                      const std::set<std::string>& exclude) {
  std::vector<const Member*> out;
  const std::size_t available = live_.size();
  if (available == 0 || k == 0) return out;
  if (k + exclude.size() >= available) {
    // Small cluster: shuffle all candidates, take the first k.
    for (const Member* m : live_) {
      if (exclude.count(m->name) == 0) out.push_back(m);
    }
    std::shuffle(out.begin(), out.end(), rng_);
    if (out.size() > k) out.resize(k);
    return out;
  }
  // Large cluster: draw until k distinct non-excluded members are found (k is a handful).
  while (out.size() < k) {
    const Member* m = live_[rng_() % available];
    if (exclude.count(m->name) != 0 || std::find(out.begin(), out.end(), m) != out.end()) continue;
    out.push_back(m);
  }
  return out;
}

// --- Full state ---

PushPull Membership::local_state(bool join) const {
  PushPull state;
  state.join = join;
  state.sender = self_.name;
  state.creation = self_.creation;
  state.members.reserve(members_.size());
  for (const auto& [name, m] : members_) {
    state.members.push_back(m);  // its MemberState part
  }
  return state;
}

void Membership::merge(std::uint64_t now, const PushPull& remote) {
  for (const MemberState& s : remote.members) {
    switch (s.status) {
      case MemberStatus::alive:
        apply_alive(now, Alive{s.name, s.addr, s.creation, s.incarnation, s.tags});
        break;
      case MemberStatus::suspect:
      case MemberStatus::dead:
        // A member first heard of here as suspect is added, then suspected. A remote death is
        // taken as it is (the member, if alive, refutes it through dead members' gossip).
        if (!members_.count(s.name) && s.status == MemberStatus::suspect) {
          apply_alive(now, Alive{s.name, s.addr, s.creation, s.incarnation, s.tags});
        }
        if (s.status == MemberStatus::suspect) {
          apply_suspect(now, Suspect{s.name, s.creation, s.incarnation, remote.sender}, nullptr);
        } else {
          apply_dead(now, s.name, s.creation, s.incarnation, remote.sender, false, nullptr);
        }
        break;
      case MemberStatus::left:
        apply_dead(now, s.name, s.creation, s.incarnation, remote.sender, true, nullptr);
        break;
    }
  }
}

void Membership::request_stream(std::uint64_t now, const Address& to, StreamPurpose purpose) {
  for (const auto& [id, pending] : streams_) {
    if (pending.to == to) return;  // one exchange with a peer at a time
  }
  const std::uint64_t id = next_stream_++;
  streams_[id] = PendingStream{purpose, to};
  ++stats_.push_pulls;
  effects_.push_back(
      StreamRequest{id, to, encode_push_pull(local_state(purpose == StreamPurpose::join))});
  arm(now + config_.stream_timeout_ms, TimerKind::stream_timeout, id);
}

std::string Membership::on_stream_request(std::uint64_t now_ms, const Address& /*from*/,
                                          std::string_view bytes) {
  now_hint_ = now_ms;
  ++stats_.packets_in;
  stats_.bytes_in += bytes.size();
  if (stream_type(bytes) == MessageType::user_stream) {
    auto user = decode_user_stream(bytes);
    if (!user) {
      ++stats_.rejected;
      return {};
    }
    if (auto known = members_.find(user->sender);
        user->sender == self_.name ||
        (known != members_.end() && known->second.creation > user->creation)) {
      ++stats_.stale;
      return {};
    }
    ++stats_.user_in;
    effects_.push_back(
        UserMessage{std::move(user->sender), std::move(user->payload), user->creation});
    return {};  // one way
  }
  auto remote = decode_push_pull(bytes);
  if (!remote) {
    ++stats_.rejected;
    return {};
  }
  if (auto known = members_.find(remote->sender);
      remote->sender == self_.name ||
      (known != members_.end() && known->second.creation > remote->creation)) {
    ++stats_.stale;
    return {};
  }
  merge(now_ms, *remote);
  std::string reply = encode_push_pull(local_state(false));
  stats_.bytes_out += reply.size();
  return reply;
}

void Membership::on_stream_reply(std::uint64_t now_ms, std::uint64_t id, std::string_view bytes) {
  now_hint_ = now_ms;
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  streams_.erase(it);
  stats_.bytes_in += bytes.size();
  auto remote = decode_push_pull(bytes);
  if (!remote) {
    ++stats_.rejected;
    return;
  }
  if (auto known = members_.find(remote->sender);
      known != members_.end() && known->second.creation > remote->creation) {
    ++stats_.stale;
    return;
  }
  merge(now_ms, *remote);
}

void Membership::on_stream_failed(std::uint64_t /*now_ms*/, std::uint64_t id) {
  streams_.erase(id);
}

void Membership::join(std::uint64_t now_ms, std::vector<Address> seeds) {
  now_hint_ = now_ms;
  seeds_ = std::move(seeds);
  join_backoff_ms_ = config_.join_retry_min_ms;
  retry_join(now_ms);
}

void Membership::retry_join(std::uint64_t now) {
  for (const Address& seed : seeds_) {
    if (seed != self_.addr) request_stream(now, seed, StreamPurpose::join);
  }
  if (!join_retry_armed_) {
    join_retry_armed_ = true;
    arm(now + join_backoff_ms_, TimerKind::join_retry);
    join_backoff_ms_ = std::min(join_backoff_ms_ * 2, config_.join_retry_max_ms);
  }
}

void Membership::on_announcement(std::uint64_t now_ms, const Address& addr, std::string_view name) {
  if (name == self_.name || addr == self_.addr || leaving_) return;
  if (auto it = members_.find(name);
      it != members_.end() && is_live(it->second.status) && it->second.addr == addr) {
    return;
  }
  request_stream(now_ms, addr, StreamPurpose::join);
}

void Membership::leave(std::uint64_t now_ms) {
  now_hint_ = now_ms;
  if (leaving_) return;
  leaving_ = true;
  probe_.reset();
  Member& me = members_.at(self_.name);
  before_change(me);
  me.status = MemberStatus::left;
  me.since_ms = now_ms;
  after_change(me);
  queue_update(self_.name, Left{me.name, me.creation, me.incarnation});
  gossip(now_ms);
}

void Membership::set_tags(std::uint64_t now_ms, Tags tags) {
  now_hint_ = now_ms;
  Member& me = members_.at(self_.name);
  before_change(me);
  me.tags = std::move(tags);
  if (me.incarnation < kMaxIncarnation) ++me.incarnation;
  after_change(me);
  queue_update(self_.name, self_alive());
  gossip(now_ms);
}

bool Membership::send_user(std::uint64_t now_ms, std::string_view name, std::string_view payload) {
  auto it = members_.find(name);
  if (it == members_.end() || !is_live(it->second.status)) return false;
  std::string encoded = encode_message(User{std::string(payload)});
  PacketBuilder probe(self_.name, self_.creation, config_.max_packet_bytes);
  if (!probe.add(encoded)) return false;
  send(now_ms, it->second.addr, {std::move(encoded)});
  return true;
}

bool Membership::send_stream(std::uint64_t now_ms, std::string_view name,
                             std::string_view payload) {
  auto it = members_.find(name);
  if (it == members_.end() || !is_live(it->second.status) || payload.size() > kMaxUserStateBytes) {
    return false;
  }
  std::size_t open = 0;
  for (const auto& [id, pending] : streams_) {
    open += pending.to == it->second.addr && pending.purpose == StreamPurpose::user ? 1 : 0;
  }
  if (open >= kMaxUserStreamsPerPeer) return false;
  const std::uint64_t id = next_stream_++;
  streams_[id] = PendingStream{StreamPurpose::user, it->second.addr};
  effects_.push_back(StreamRequest{
      id, it->second.addr,
      encode_user_stream(UserStream{self_.name, self_.creation, std::string(payload)})});
  arm(now_ms + config_.stream_timeout_ms, TimerKind::stream_timeout, id);
  return true;
}

bool Membership::broadcast_user(std::uint64_t /*now_ms*/, std::string_view payload) {
  const std::uint64_t id = user_key_++;
  std::string encoded = encode_message(UserBroadcast{self_.name, id, std::string(payload)});
  PacketBuilder probe(self_.name, self_.creation, config_.max_packet_bytes);
  if (!probe.add(encoded)) return false;
  first_sight(self_.name, id);
  user_.push(self_.name + "/" + std::to_string(id), std::move(encoded));
  return true;
}

bool Membership::first_sight(const std::string& origin, std::uint64_t id) {
  if (!user_seen_.emplace(origin, id).second) return false;
  user_seen_order_.emplace_back(origin, id);
  if (user_seen_order_.size() > kUserSeenMax) {
    user_seen_.erase(user_seen_order_.front());
    user_seen_order_.pop_front();
  }
  return true;
}

// --- Outputs and reads ---

void Membership::emit(std::uint64_t now, EventKind kind, const Member& m) {
  effects_.push_back(MemberEvent{kind, m.name, m.addr, m.creation, m.incarnation, m.tags, now});
}

void Membership::take_effects(std::vector<Effect>& out) {
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

std::uint64_t Membership::incarnation() const {
  return members_.at(self_.name).incarnation;
}

const Member* Membership::member(std::string_view name) const {
  auto it = members_.find(name);
  return it == members_.end() ? nullptr : &it->second;
}

static_assert(static_cast<std::size_t>(MemberStatus::left) == 3, "by_status_ holds four");

std::size_t Membership::count(MemberStatus status) const {
  return by_status_[static_cast<std::size_t>(status)];
}

std::size_t Membership::gone_peers() const {
  // This node is alive, or left once leave() has run (invariant 1).
  return count(MemberStatus::dead) + count(MemberStatus::left) - (leaving_ ? 1 : 0);
}

}  // namespace shoal::cluster
