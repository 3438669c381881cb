#pragma once

// Membership: the SWIM failure detector and membership protocol with the Lifeguard refinements,
// as a sans-IO state machine.
//
// SWIM (Das, Gupta and Motivala, 2002): every probe interval a node pings the next member of a
// shuffled round-robin list. Without an ack within the probe timeout it asks `indirect_checks`
// other members to ping the target for it (ping-req); without any ack by the end of the interval
// it suspects the target. A suspected member that does not refute (by gossiping an alive message
// with a higher incarnation) within the suspicion timeout is declared dead. Membership updates
// travel piggybacked on probe traffic and in small gossip rounds, each update at most
// retransmit_mult * ceil(log10(N + 1)) times; a periodic full-state exchange over TCP
// (push-pull, also on join) repairs whatever gossip missed.
//
// Lifeguard (Dadgar, Phillips and Currey, 2018):
//  - local health awareness: a score that rises when this node misses acks or nacks, or has to
//    refute a suspicion of itself, and falls on successful probes; probe interval and timeout are
//    multiplied by (score + 1), so a slow node stops accusing healthy ones;
//  - dynamic suspicion: the timeout starts at a maximum and shrinks towards a minimum as
//    independent suspicions of the same member arrive (timing.h);
//  - nacks: an intermediary that cannot reach the target says so, which tells the prober that the
//    intermediary itself is healthy;
//  - a member that becomes suspect is told directly, so it can refute at once.
//
// Deviations, and why:
//  - Crash fast path. A crashed process leaves a live host that answers probes with ICMP port
//    unreachable. The driver reports that (on_unreachable); the prober then asks for indirect
//    probes at once, and if another member confirms the target unreachable, the target is declared
//    dead without the suspicion timeout. One signal alone never kills: a hung or cut-off node
//    answers nothing and still goes through suspicion.
//  - Identity over time. A member is (name, creation): a process restarted under the same name
//    has a greater creation and is accepted as the name's new life at once, whatever state the
//    old life was in; packets from an older life than the one known are dropped (a stale node's
//    accusations are ignored).
//  - Reconnect. Every reconnect interval one random dead member gets a push-pull, so the halves
//    of a healed partition find each other without waiting for discovery.
//  - Round-trip timing. The acks of first pings are timed; the probe timeout stretches to twice
//    the median of the last 31 and the interval to that plus two of them (the indirect path),
//    within the health multiplier's bound (awareness_max + 1 times the configured values, which
//    the quorum lease assumes). The LAN defaults (80 / 200 ms) then hold on a slow link too: at
//    50 +- 20 ms each way they timed out most pings, and the helpers' answers came after the
//    probe had ended (the fault lab, 5 agents, also 20% loss: about 250 suspicions a minute, now
//    about 130; tests/sim, 10% loss and 30-70 ms: 1,700 in ten simulated minutes, now about
//    150). The second ping and the ping-reqs carry their own sequence number, so a late ack of
//    the first ping is still a true sample.
//  - Reminders and direct refutation. A node holding a suspicion tells the suspect again every
//    probe interval until it ends; a refutation goes to every peer directly as well as by gossip
//    (up to 16 peers). With 20% loss, a suspicion's and a refutation's few gossiped copies could
//    all be lost before the timeout, and a live node was declared dead.
//  - Direct death notices. A crash this node confirmed (a probe's "port unreachable" and a
//    helper's: no process there) is announced to every live peer (up to 128) and to the member
//    itself directly, as well as by gossip; a suspicion that timed out is gossiped only (it may
//    be a live node starved of CPU, and must not reach everyone at once). Gossip alone takes
//    O(log N) probe rounds to reach everyone, and until a survivor hears of a crash it does not
//    start its share of the dead member's children (at 50 agents the last survivor heard of a
//    kill about 0.9 s after it; the failover bench measures it).
//
// Driving it. Inputs carry the current time in ms: on_packet, on_unreachable, on_stream_request,
// on_stream_reply, on_stream_failed, on_timer, and the API calls. Outputs are effects queued for
// the driver, which drains them after every input (take_effects), and next_deadline(), the time at
// which on_timer must next be called. Randomness comes from the seed given at construction. The
// core reads no clock and touches no socket.
//
// Invariants:
//  1. The local member is in members() as alive (or left after leave()), with this node's
//     creation; its incarnation only grows.
//  2. For every other member, (creation, incarnation) only grows.
//  3. At most one probe of this node is outstanding.
//
// Owned by one loop thread; not thread-safe.

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "cluster/address.h"
#include "cluster/broadcast_queue.h"
#include "cluster/config.h"
#include "cluster/effects.h"
#include "cluster/wire.h"

namespace shoal::cluster {

// Effects: cluster/effects.h.

// --- The local node ---

struct NodeIdentity {
  std::string name;
  Address addr;
  std::uint64_t creation;  // process start, ms: a restart must give a greater one
  Tags tags;
};

// A member as this node knows it: what push-pull carries (wire.h's MemberState), and local state.
struct Member : MemberState {
  std::uint64_t since_ms = 0;  // when the status last changed
  // The round trip of the last direct probe of this member that was answered, ms (the core's
  // clock is in ms: under 1 ms reads 0); none before the first.
  std::optional<std::uint64_t> rtt_ms = std::nullopt;

  // Internal to Membership: this member's place in its list of live peers.
  static constexpr std::size_t kNotListed = SIZE_MAX;
  std::size_t live_slot = kNotListed;
};

// Members by name. Hashed, not ordered: every packet looks up its sender and each update's
// member, so the lookup is the hottest path of a large cluster's membership.
struct NameHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view name) const noexcept {
    return std::hash<std::string_view>{}(name);
  }
};
using MemberMap = std::unordered_map<std::string, Member, NameHash, std::equal_to<>>;

// Counters for metrics and tests; all only grow.
struct MembershipStats {
  std::uint64_t packets_in = 0;
  std::uint64_t packets_out = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t rejected = 0;  // undecodable packets and frames
  std::uint64_t stale = 0;     // packets from an older life of their sender
  std::uint64_t probes = 0;
  std::uint64_t probes_failed = 0;
  std::uint64_t indirect_probes = 0;
  std::uint64_t suspicions = 0;
  std::uint64_t deaths_declared = 0;
  std::uint64_t fast_deaths = 0;  // declared through the crash fast path
  std::uint64_t refutes = 0;
  std::uint64_t push_pulls = 0;
  std::uint64_t view_syncs = 0;     // push-pulls started because view digests differed
  std::uint64_t corrections = 0;    // newer views sent back to senders of stale accusations
  std::uint64_t urgent_probes = 0;  // probes started at once by a port unreachable
  // Round trips of direct probes answered by their target (not via ping-req), in ms, bucketed by
  // kRttBucketsMs upper bounds (the last bucket: anything slower); sum and count for the mean.
  static constexpr std::array<std::uint64_t, 10> kRttBucketsMs{1,  2,   5,   10,  25,
                                                               50, 100, 250, 500, 1000};
  std::array<std::uint64_t, kRttBucketsMs.size() + 1> rtt_buckets{};
  std::uint64_t rtt_sum_ms = 0;
  std::uint64_t rtt_count = 0;
  std::uint64_t user_in = 0;
};

class Membership {
 public:
  // REQUIRES: !config.validate().
  Membership(MembershipConfig config, NodeIdentity self, std::uint64_t seed, std::uint64_t now_ms);

  // --- Inputs ---

  // A datagram from `from`.
  void on_packet(std::uint64_t now_ms, const Address& from, std::string_view bytes);
  // A datagram this node sent to `to` was answered "port unreachable" (the process there is gone).
  void on_unreachable(std::uint64_t now_ms, const Address& to);
  // A frame arrived on an inbound stream from `from`. Returns the reply frame (empty: none).
  std::string on_stream_request(std::uint64_t now_ms, const Address& from, std::string_view bytes);
  void on_stream_reply(std::uint64_t now_ms, std::uint64_t id, std::string_view bytes);
  void on_stream_failed(std::uint64_t now_ms, std::uint64_t id);
  // Time passed: runs every internal timer due at now_ms.
  void on_timer(std::uint64_t now_ms);

  // --- API ---

  // Joins the cluster through `seeds` (push-pull with each). Retried with backoff while this node
  // sees no peer; calling it again replaces the seed list.
  void join(std::uint64_t now_ms, std::vector<Address> seeds);
  // Another node announced itself at `addr` (multicast discovery): push-pull with it unless it
  // is a known live member.
  void on_announcement(std::uint64_t now_ms, const Address& addr, std::string_view name);
  // Announces a graceful leave. The node stops probing; the driver may stop it once the leave
  // has had time to spread (a few gossip intervals).
  void leave(std::uint64_t now_ms);
  // Changes this node's tags; spreads as an alive message with a new incarnation.
  void set_tags(std::uint64_t now_ms, Tags tags);
  // Sends `payload` to member `name` in one packet (with gossip piggybacked). Returns false if the
  // member is unknown or not alive, or the payload cannot fit a packet.
  bool send_user(std::uint64_t now_ms, std::string_view name, std::string_view payload);
  // Gossips `payload` to the cluster (each member gets it with high probability). Returns false
  // if it cannot fit a packet.
  bool broadcast_user(std::uint64_t now_ms, std::string_view payload);
  // Sends `payload` (up to kMaxUserStateBytes) to member `name` over a reliable stream, one way:
  // for what does not fit a packet. Delivery is not confirmed; the layer above acknowledges by
  // its own messages. Returns false if the member is not live or too many streams to it are open.
  bool send_stream(std::uint64_t now_ms, std::string_view name, std::string_view payload);

  // --- Outputs ---

  // Moves the queued effects into `out` (appending).
  void take_effects(std::vector<Effect>& out);
  // When on_timer must next be called.
  std::uint64_t next_deadline() const;

  // --- Reads ---

  const std::string& name() const { return self_.name; }
  std::uint64_t creation() const { return self_.creation; }
  std::uint64_t incarnation() const;
  // Every member known, this node included, by name, in no particular order.
  const MemberMap& members() const { return members_; }
  const Member* member(std::string_view name) const;
  // Members (this node included) with the given status.
  std::size_t count(MemberStatus status) const;
  int health_score() const { return awareness_; }
  const MembershipStats& stats() const { return stats_; }
  // Member updates waiting to be gossiped (each until its retransmit limit).
  std::size_t queued_updates() const { return updates_.size(); }
  const MembershipConfig& config() const { return config_; }
  // A live member's share of the view digest that pings and acks carry (the digest is the XOR of
  // the shares of every live member, this node included); not-live members have none. Public so
  // that a modelled node (cluster/sim/model_cluster.cpp) computes the digest the same way.
  static std::uint64_t view_hash(std::string_view name, std::uint64_t creation,
                                 std::uint64_t incarnation);

 private:
  enum class TimerKind {
    probe,           // start the next probe
    probe_timeout,   // direct ping unanswered: go indirect
    probe_deadline,  // end of the probe: suspect if no ack
    relay_timeout,   // a ping we relay for someone went unanswered: nack
    suspicion,       // a suspect member's time is up
    gossip,
    push_pull,
    reconnect,
    join_retry,
    stream_timeout,
    reap,
  };
  // Timers are data: a timer carries what it was armed for, and one that fires after its state
  // moved on is a no-op.
  struct Timer {
    std::uint64_t at;
    std::uint64_t order;  // tie-break: arming order
    TimerKind kind;
    std::uint64_t token;  // probe seq, stream id or suspicion token
    std::string member;
    friend bool operator>(const Timer& a, const Timer& b) {
      return a.at != b.at ? a.at > b.at : a.order > b.order;
    }
  };
  struct Probe {
    std::uint64_t seq = 0;           // of the first ping: its ack times the round trip
    std::uint64_t indirect_seq = 0;  // of the second ping and the ping-reqs
    std::string target;
    std::uint64_t creation = 0;
    std::uint64_t incarnation = 0;
    std::uint64_t sent_ms = 0;
    bool acked = false;
    bool indirect_sent = false;
    bool unreachable = false;
    std::size_t expected_nacks = 0;
    std::size_t nacks = 0;
    std::size_t unreachable_nacks = 0;
  };
  struct Relay {
    Address requester;
    std::uint64_t requester_seq;
    std::string target;
    Address target_addr;
  };
  struct Suspicion {
    std::uint64_t token;
    std::uint64_t started_ms;
    std::uint64_t reminded_ms;  // when the suspect was last told
    std::set<std::string> confirmations;
  };
  enum class StreamPurpose { join, push_pull, reconnect, user };
  struct PendingStream {
    StreamPurpose purpose;
    Address to;
  };

  // Timers.
  void arm(std::uint64_t at, TimerKind kind, std::uint64_t token = 0, std::string member = {});
  void fire(std::uint64_t now, const Timer& timer);
  // `configured` times the health multiplier, or `wanted` if longer, at most awareness_max + 1
  // times `configured`.
  std::uint64_t stretched(std::uint64_t configured, std::uint64_t wanted) const;
  // The probe timeout and interval in use: the configured ones, stretched by the health
  // multiplier and by the measured round trips.
  std::uint64_t probe_timeout_ms() const;
  std::uint64_t probe_interval_ms() const;
  void sample_rtt(std::uint64_t rtt_ms);

  // Probing.
  void start_probe(std::uint64_t now);
  void remind_suspects(std::uint64_t now);
  void start_probe_of(std::uint64_t now, const std::string& target);
  std::optional<std::string> next_probe_target();
  void go_indirect(std::uint64_t now);
  void end_probe(std::uint64_t now);
  void adjust_health(int delta);

  // Messages.
  void handle(std::uint64_t now, const Address& from, const std::string& sender,
              std::uint64_t creation, Message& message);
  void on_ping(std::uint64_t now, const Address& from, const Ping& ping);
  void on_ack(std::uint64_t now, const Ack& ack);
  void on_nack(std::uint64_t now, const Nack& nack);
  void on_ping_req(std::uint64_t now, const Address& from, const PingReq& req);
  void apply_alive(std::uint64_t now, const Alive& alive);
  // `reply_to`, when set, is where the message came from: an accusation older than what we know
  // is answered there with our newer view, so that a node that missed a refutation learns it.
  void apply_suspect(std::uint64_t now, const Suspect& suspect, const Address* reply_to);
  void apply_dead(std::uint64_t now, const std::string& name, std::uint64_t creation,
                  std::uint64_t incarnation, const std::string& from, bool left,
                  const Address* reply_to);
  void correct(std::uint64_t now, const Address& to, const Member& m);
  // View digests: the XOR of member_hash over members, kept up to date at every change (XOR out
  // before, XOR in after); compared on every ping and ack, and a difference that lasts triggers a
  // push-pull. member_hash is view_hash for live members, 0 for the others.
  static std::uint64_t member_hash(const Member& m);
  void compare_views(std::uint64_t now, const std::string& peer, const Address& addr,
                     std::uint64_t digest);
  void refute(std::uint64_t now, std::uint64_t at_least);
  void declare_dead(std::uint64_t now, Member& m, bool fast);

  // Sending.
  // Sends `primary` with as much gossip as fits. `to_dead`: the packet goes to a member declared
  // dead, and its gossip does not count against the retransmit limit.
  void send(std::uint64_t now, const Address& to, std::vector<std::string> primary,
            bool to_dead = false);
  void gossip(std::uint64_t now);
  void queue_update(const std::string& name, const Message& message);
  Alive self_alive() const;
  std::size_t live_peers() const;
  // Up to k distinct live peers, uniformly, none of `exclude`.
  std::vector<const Member*> random_members(std::size_t k, const std::set<std::string>& exclude);
  // Every change of a member goes between these two: they keep the view digest and the list of
  // live peers up to date.
  void before_change(const Member& m);
  void after_change(Member& m);

  // Full state.
  PushPull local_state(bool join) const;
  void merge(std::uint64_t now, const PushPull& remote);
  void request_stream(std::uint64_t now, const Address& to, StreamPurpose purpose);
  void retry_join(std::uint64_t now);

  void emit(std::uint64_t now, EventKind kind, const Member& m);

  // Fixed after construction.
  const MembershipConfig config_;
  const NodeIdentity self_;

  // Changed by inputs.
  std::mt19937_64 rng_;
  MemberMap members_;          // includes this node
  std::vector<Member*> live_;  // alive and suspect peers (not this node), in no order
  // Members (this node included) by status, indexed by MemberStatus: count() in O(1).
  std::array<std::size_t, 4> by_status_{};
  // Peers that are dead or left: the periodic scans for reconnects and reaping skip the member
  // list while there are none (the common case; the whole list at every node is O(N^2)).
  std::size_t gone_peers() const;
  std::deque<std::pair<std::uint64_t, std::string>> dead_log_;  // (declared at, name)
  std::vector<std::string> probe_order_;
  std::size_t probe_index_ = 0;
  std::optional<Probe> probe_;
  // A member a port unreachable pointed at while another probe was under way: probed next.
  std::optional<std::string> urgent_;
  std::map<std::uint64_t, Relay> relays_;  // by the seq of our relayed ping
  std::map<std::string, Suspicion, std::less<>> suspicions_;
  std::map<std::uint64_t, PendingStream> streams_;
  // Upper-layer streams open to one peer at most; more are refused (the layer above retries).
  static constexpr std::size_t kMaxUserStreamsPerPeer = 4;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  BroadcastQueue updates_;
  BroadcastQueue user_;
  std::vector<Effect> effects_;
  std::vector<Address> seeds_;
  std::uint64_t join_backoff_ms_;
  bool join_retry_armed_ = false;
  bool leaving_ = false;
  int awareness_ = 0;
  // Round trips of first pings to their acks, ms: the last kRttWindow, and their median. Acks of
  // the second ping or through a helper are not sampled; they would be ambiguous.
  static constexpr std::size_t kRttWindow = 31;
  std::array<std::uint64_t, kRttWindow> rtt_window_{};
  std::uint64_t rtt_samples_ = 0;
  std::uint64_t rtt_typical_ms_ = 0;
  std::uint64_t next_seq_ = 1;
  std::uint64_t next_stream_ = 1;
  std::uint64_t next_timer_order_ = 0;
  std::uint64_t next_token_ = 1;
  std::uint64_t user_key_ = 0;
  // Upper-layer broadcasts seen (origin, id), to deliver and re-gossip each once; bounded FIFO.
  std::set<std::pair<std::string, std::uint64_t>> user_seen_;
  std::deque<std::pair<std::string, std::uint64_t>> user_seen_order_;
  static constexpr std::size_t kUserSeenMax = 16384;
  // Returns true iff (origin, id) was not seen before (and records it).
  bool first_sight(const std::string& origin, std::uint64_t id);
  // The digest of the live members (name, creation, incarnation).
  std::uint64_t digest_ = 0;
  // Since when every view digest heard differed from ours (none agreed meanwhile); none if the
  // last one agreed.
  std::optional<std::uint64_t> mismatch_since_;
  std::uint64_t last_view_sync_ = 0;
  std::uint64_t last_change_ms_ = 0;  // when a member last changed in our view
  std::uint64_t now_hint_ = 0;        // the time of the input being handled
  MembershipStats stats_;
};

}  // namespace shoal::cluster
