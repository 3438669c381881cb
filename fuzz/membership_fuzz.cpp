// libFuzzer target: the membership core's handlers. A live Membership that has joined three peers
// is driven by a sequence of inputs read from the fuzz input (fuzz_common.h's FieldReader): raw
// datagrams and stream frames, packets and push-pulls built from fields (names, creations,
// incarnations and sequence numbers drawn mostly from what the core knows, so that they reach
// past the first checks), stream replies and failures, port unreachables, announcements, API
// calls, and time passing.
//
// Whatever arrives, the core must not crash, and after every input:
//  - this node is a member, alive (left after leave()), with its creation, and its incarnation
//    has not decreased (membership.h, invariant 1);
//  - no other member's (creation, incarnation) has decreased while it stayed known (invariant 2);
//  - the health score is within [0, awareness_max]; a timer is due after the time just run;
//  - every packet it sends fits max_packet_bytes and decodes, every stream frame decodes;
//  - it knows no more members than the input could have named.

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cluster/membership.h"
#include "fuzz/fuzz_common.h"

using namespace shoal::cluster;
using shoal::fuzz::FieldReader;
using shoal::fuzz::FieldWriter;

namespace {

struct Peer {
  const char* name;
  Address addr;
  std::uint64_t creation;
};

// kPeers[0] is this node; b, c and d join first; e is a name that may show up.
const std::array<Peer, 5> kPeers{{
    {"node-a", Address::v4(10, 0, 0, 1, 7946), 1000},
    {"node-b", Address::v4(10, 0, 0, 2, 7946), 2000},
    {"node-c", Address::v4(10, 0, 0, 3, 7946), 3000},
    {"node-d", Address::v4(10, 0, 0, 4, 7946), 4000},
    {"node-e", Address::v4(10, 0, 0, 5, 7946), 5000},
}};
constexpr std::uint64_t kStartMs = 1'000'000;
// Names "x0".."x15": newcomers, few enough to meet again.
constexpr unsigned kFreshNames = 16;
// Inputs per run: enough for suspicions to run their course, few enough to keep runs fast.
constexpr int kMaxSteps = 256;

enum Op : std::uint8_t {
  kRawPacket,
  kPacket,
  kRawStream,
  kPushPull,
  kRawStreamReply,
  kStreamFailed,
  kUnreachable,
  kAnnouncement,
  kApi,
  kWait,
  kOps
};
enum MessageKind : std::uint8_t {
  kPing,
  kAck,
  kNack,
  kPingReq,
  kAlive,
  kSuspect,
  kDead,
  kLeft,
  kUser,
  kUserBroadcast,
  kMessageKinds
};
enum ApiCall : std::uint8_t { kSendUser, kBroadcast, kSendStream, kSetTags, kJoin, kLeave, kCalls };

PushPull initial_state() {
  PushPull pp;
  pp.join = true;
  pp.sender = kPeers[1].name;
  pp.creation = kPeers[1].creation;
  for (std::size_t i = 1; i <= 3; ++i) {
    MemberState m;
    m.name = kPeers[i].name;
    m.addr = kPeers[i].addr;
    m.creation = kPeers[i].creation;
    pp.members.push_back(m);
  }
  return pp;
}

class Driver {
 public:
  explicit Driver(std::size_t input_size)
      : core_(MembershipConfig{},
              NodeIdentity{kPeers[0].name, kPeers[0].addr, kPeers[0].creation, {}}, 7, kStartMs),
        max_members_(kPeers.size() + kFreshNames + input_size) {
    (void)core_.on_stream_request(now_, kPeers[1].addr, encode_push_pull(initial_state()));
    after_input();
  }

  void step(FieldReader& in) {
    now_ += in.u8();
    if (now_ >= core_.next_deadline()) {
      core_.on_timer(now_);
      if (core_.next_deadline() <= now_) __builtin_trap();  // every due timer ran
      after_input();
    }
    switch (in.u8() % kOps) {
      case kRawPacket: {
        const Address from = address(in);
        core_.on_packet(now_, from, in.bytes(2 * kMaxPacketBytes));
        break;
      }
      case kPacket: {
        const Address from = address(in);
        const std::string sender = name(in);
        PacketBuilder b(sender, creation(in, sender));
        for (int n = 1 + in.u8() % 6; n > 0; --n)
          b.add(encode_message(message(in)));
        core_.on_packet(now_, from, b.finish());
        break;
      }
      case kRawStream: {
        const Address from = address(in);
        (void)core_.on_stream_request(now_, from, in.bytes());
        break;
      }
      case kPushPull: {
        const bool as_reply = (in.u8() & 1) != 0 && !streams_.empty();
        const std::uint64_t id = as_reply ? stream(in) : 0;
        const Address from = address(in);
        const std::string bytes = encode_push_pull(push_pull(in));
        if (as_reply) {
          core_.on_stream_reply(now_, id, bytes);
        } else {
          (void)core_.on_stream_request(now_, from, bytes);
        }
        break;
      }
      case kRawStreamReply: {
        const std::uint64_t id = stream(in);
        core_.on_stream_reply(now_, id, in.bytes());
        break;
      }
      case kStreamFailed:
        core_.on_stream_failed(now_, stream(in));
        break;
      case kUnreachable:
        core_.on_unreachable(now_, address(in));
        break;
      case kAnnouncement: {
        const Address at = address(in);
        core_.on_announcement(now_, at, name(in));
        break;
      }
      case kApi:
        api(in);
        break;
      case kWait:
        // Up to about 17 minutes: past suspicions, reaping of the dead, join retries.
        now_ += std::uint64_t{in.u16()} * 16;
        core_.on_timer(now_);
        if (core_.next_deadline() <= now_) __builtin_trap();
        break;
    }
    after_input();
  }

 private:
  // --- Fields ---

  std::string name(FieldReader& in) {
    const std::uint8_t v = in.u8();
    if (v % 8 < kPeers.size()) return kPeers[v % 8].name;
    if (v % 8 == kPeers.size()) return "x" + std::to_string(v / 8 % kFreshNames);
    return std::string(in.bytes(kMaxNameBytes + 1));
  }
  // Mostly what the core holds for `member` (or the pool's), one off, or anything.
  std::uint64_t creation(FieldReader& in, const std::string& member) {
    std::uint64_t known = 1;
    if (const Member* m = core_.member(member)) {
      known = m->creation;
    } else {
      for (const Peer& p : kPeers) {
        if (member == p.name) known = p.creation;
      }
    }
    return near(in, known);
  }
  std::uint64_t incarnation(FieldReader& in, const std::string& member) {
    const Member* m = core_.member(member);
    return near(in, m == nullptr ? 0 : m->incarnation);
  }
  static std::uint64_t near(FieldReader& in, std::uint64_t known) {
    switch (in.u8() % 4) {
      case 0:
        return known;
      case 1:
        return known + 1;
      case 2:
        return known - 1;
      default:
        return in.u64();
    }
  }
  Address address(FieldReader& in) {
    const std::uint8_t v = in.u8();
    if (v % 8 < kPeers.size()) return kPeers[v % 8].addr;
    if (v % 8 == 5) return Address::v4(10, 0, 1, v, 7946);
    Address a;
    if (v % 8 == 7) {
      a.ip_len = 16;
      for (std::size_t i = 0; i < 16; ++i)
        a.ip[i] = in.u8();
    } else {
      for (std::size_t i = 0; i < 4; ++i)
        a.ip[i] = in.u8();
    }
    a.port = in.u16();
    return a;
  }
  // Mostly the sequence number of one of our recent pings or ping-reqs.
  std::uint64_t seq(FieldReader& in) {
    const std::uint8_t v = in.u8();
    if (v < 224 && !seqs_.empty()) return seqs_[v % seqs_.size()];
    return in.u64();
  }
  // Mostly one of the streams the core asked for.
  std::uint64_t stream(FieldReader& in) {
    const std::uint8_t v = in.u8();
    if (v < 224 && !streams_.empty()) return streams_[v % streams_.size()];
    return in.u64();
  }
  Tags tags(FieldReader& in) {
    Tags out;
    for (int n = in.u8() % 4; n > 0; --n) {
      std::string key(in.bytes(kMaxTagKeyBytes + 1));
      out[std::move(key)] = std::string(in.bytes(kMaxTagValueBytes + 1));
    }
    return out;
  }
  Message message(FieldReader& in) {
    switch (in.u8() % kMessageKinds) {
      case kPing: {
        const std::uint64_t s = seq(in);
        std::string target = name(in);
        return Ping{s, std::move(target), in.u64()};
      }
      case kAck: {
        const std::uint64_t s = seq(in);
        return Ack{s, in.u64()};
      }
      case kNack: {
        const std::uint64_t s = seq(in);
        return Nack{s, static_cast<NackReason>(in.u8() % 2)};
      }
      case kPingReq: {
        const std::uint64_t s = seq(in);
        std::string target = name(in);
        return PingReq{s, std::move(target), address(in)};
      }
      case kAlive: {
        Alive a;
        a.name = name(in);
        a.addr = address(in);
        a.creation = creation(in, a.name);
        a.incarnation = incarnation(in, a.name);
        a.tags = tags(in);
        return a;
      }
      case kSuspect:
      case kDead:
      case kLeft: {
        std::string who = name(in);
        const std::uint64_t c = creation(in, who);
        const std::uint64_t i = incarnation(in, who);
        std::string from = name(in);
        if (in.u8() % 3 == 0) return Left{std::move(who), c, i};
        if (in.u8() % 2 == 0) return Dead{std::move(who), c, i, std::move(from)};
        return Suspect{std::move(who), c, i, std::move(from)};
      }
      case kUser:
        return User{std::string(in.bytes(kMaxPacketBytes))};
      default: {
        std::string origin = name(in);
        const std::uint64_t id = in.u8();
        return UserBroadcast{std::move(origin), id, std::string(in.bytes(kMaxPacketBytes))};
      }
    }
  }
  PushPull push_pull(FieldReader& in) {
    PushPull pp;
    pp.join = (in.u8() & 1) != 0;
    pp.sender = name(in);
    pp.creation = creation(in, pp.sender);
    for (int n = in.u8() % 8; n > 0; --n) {
      MemberState m;
      m.name = name(in);
      m.addr = address(in);
      m.creation = creation(in, m.name);
      m.incarnation = incarnation(in, m.name);
      m.status = static_cast<MemberStatus>(in.u8() % 4);
      m.tags = tags(in);
      pp.members.push_back(std::move(m));
    }
    pp.user_state = std::string(in.bytes(256));
    return pp;
  }

  // --- API calls, within their contracts ---

  void api(FieldReader& in) {
    switch (in.u8() % kCalls) {
      case kSendUser: {
        const std::string to = name(in);
        (void)core_.send_user(now_, to, in.bytes(2 * kMaxPacketBytes));
        break;
      }
      case kBroadcast:
        (void)core_.broadcast_user(now_, in.bytes(2 * kMaxPacketBytes));
        break;
      case kSendStream: {
        const std::string to = name(in);
        (void)core_.send_stream(now_, to, in.bytes());
        break;
      }
      case kSetTags: {
        Tags t;
        for (int n = in.u8() % 4; n > 0; --n)
          t["k" + std::to_string(in.u8() % 8)] = std::string(in.bytes(32));
        core_.set_tags(now_, std::move(t));
        break;
      }
      case kJoin: {
        std::vector<Address> seeds;
        for (int n = in.u8() % 4; n > 0; --n)
          seeds.push_back(address(in));
        core_.join(now_, std::move(seeds));
        break;
      }
      case kLeave:
        core_.leave(now_);
        left_ = true;
        break;
    }
  }

  // --- Outputs and invariants ---

  void after_input() {
    effects_.clear();
    core_.take_effects(effects_);
    for (const Effect& e : effects_) {
      if (const auto* send = std::get_if<SendPacket>(&e)) {
        if (send->bytes.size() > core_.config().max_packet_bytes) __builtin_trap();
        auto packet = decode_packet(send->bytes);
        if (!packet) __builtin_trap();  // what we send decodes
        for (const Message& m : packet->messages) {
          if (const auto* ping = std::get_if<Ping>(&m)) remember(seqs_, ping->seq, 16);
          if (const auto* req = std::get_if<PingReq>(&m)) remember(seqs_, req->seq, 16);
        }
      } else if (const auto* req = std::get_if<StreamRequest>(&e)) {
        const auto type = stream_type(req->bytes);
        const bool decodes = type == MessageType::user_stream
                                 ? decode_user_stream(req->bytes).has_value()
                                 : decode_push_pull(req->bytes).has_value();
        if (!decodes) __builtin_trap();
        remember(streams_, req->id, 64);
      }
    }
    check();
  }

  static void remember(std::vector<std::uint64_t>& ring, std::uint64_t v, std::size_t cap) {
    if (ring.size() == cap) ring.erase(ring.begin());
    ring.push_back(v);
  }

  void check() {
    const Member* me = core_.member(kPeers[0].name);
    if (me == nullptr || me->creation != kPeers[0].creation) __builtin_trap();
    if (me->status != (left_ ? MemberStatus::left : MemberStatus::alive)) __builtin_trap();
    if (me->incarnation < self_incarnation_) __builtin_trap();
    self_incarnation_ = me->incarnation;
    const auto& members = core_.members();
    if (members.size() > max_members_) __builtin_trap();
    std::erase_if(seen_, [&](const auto& kv) { return !members.contains(kv.first); });
    for (const auto& [name, m] : members) {
      const std::pair<std::uint64_t, std::uint64_t> now{m.creation, m.incarnation};
      auto [it, added] = seen_.try_emplace(name, now);
      if (!added && now < it->second) __builtin_trap();
      it->second = now;
    }
    if (core_.health_score() < 0 || core_.health_score() > core_.config().awareness_max)
      __builtin_trap();
  }

  Membership core_;
  const std::size_t max_members_;
  std::uint64_t now_ = kStartMs;
  std::vector<std::uint64_t> seqs_;     // of our recent pings and ping-reqs
  std::vector<std::uint64_t> streams_;  // ids of the streams the core asked for, oldest first
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>, std::less<>> seen_;
  std::uint64_t self_incarnation_ = 0;
  bool left_ = false;
  std::vector<Effect> effects_;
};

// Seeds: a few conversations a peer could have with the node.
std::vector<std::string> seeds() {
  // A packet of one message from pool peer `peer`, from its address and its known creation.
  auto packet = [](FieldWriter& w, std::uint8_t peer) -> FieldWriter& {
    return w.u8(10).u8(kPacket).u8(peer).u8(peer).u8(0).u8(0);
  };
  std::vector<std::string> out;
  {
    // b gossips e alive, then suspects it; time passes (e is declared dead, then reaped).
    FieldWriter w;
    packet(w, 1).u8(kAlive).u8(4).u8(4).u8(0).u8(0).u8(1).bytes("zone").bytes("a");
    packet(w, 1).u8(kSuspect).u8(4).u8(0).u8(0).u8(1).u8(1).u8(1);
    w.u8(0).u8(kWait).u16(2000);
    w.u8(0).u8(kWait).u16(40000);
    out.push_back(w.str());
  }
  {
    // Probing: a probe starts, c acks our ping, b asks us to probe d, d acks, c is unreachable.
    FieldWriter w;
    w.u8(0).u8(kWait).u16(16);
    packet(w, 2).u8(kAck).u8(0).u64(0);
    packet(w, 1).u8(kPingReq).u8(0).u8(3).u8(3);
    packet(w, 3).u8(kAck).u8(1).u64(0);
    w.u8(0).u8(kUnreachable).u8(2);
    w.u8(0).u8(kWait).u16(50);
    out.push_back(w.str());
  }
  {
    // Accusations of this node; a push-pull from c (d suspect, e alive); user messages.
    FieldWriter w;
    packet(w, 1).u8(kSuspect).u8(0).u8(0).u8(0).u8(1).u8(1).u8(1);
    packet(w, 2).u8(kDead).u8(0).u8(0).u8(1).u8(2).u8(1).u8(0);
    w.u8(0).u8(kPushPull).u8(0).u8(2).u8(1).u8(2).u8(0).u8(2);
    w.u8(3).u8(3).u8(0).u8(1).u8(1).u8(0);
    w.u8(4).u8(4).u8(0).u8(0).u8(0).u8(0);
    w.bytes("");
    packet(w, 3).u8(kUser).bytes("hello");
    w.u8(0).u8(kApi).u8(kBroadcast).bytes("news");
    w.u8(0).u8(kWait).u16(100);
    out.push_back(w.str());
  }
  {
    // An accusation refuted, then one at the greatest incarnation, which cannot be outbid; a change
    // of tags.
    FieldWriter w;
    packet(w, 1).u8(kSuspect).u8(0).u8(0).u8(0).u8(1).u8(1).u8(1);
    packet(w, 2).u8(kSuspect).u8(0).u8(0).u8(3).u64(UINT64_MAX).u8(2).u8(1).u8(1);
    w.u8(0).u8(kApi).u8(kSetTags).u8(1).u8(0).bytes("a");
    w.u8(0).u8(kWait).u16(100);
    out.push_back(w.str());
  }
  {
    // Raw frames: a packet and a push-pull as bytes; an announcement, and the stream's reply.
    FieldWriter w;
    PacketBuilder b(kPeers[2].name, kPeers[2].creation);
    b.add(encode_message(Ping{9, kPeers[0].name, 0}));
    w.u8(0).u8(kRawPacket).u8(2).bytes(b.finish());
    w.u8(0).u8(kRawStream).u8(3).bytes(encode_push_pull(initial_state()));
    w.u8(0).u8(kAnnouncement).u8(5).u8(4);
    w.u8(0).u8(kRawStreamReply).u8(0).bytes(encode_push_pull(initial_state()));
    out.push_back(w.str());
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  shoal::fuzz::write_seeds_if_asked(seeds());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Driver d(size);
  FieldReader in(data, size);
  for (int i = 0; i < kMaxSteps && !in.done(); ++i)
    d.step(in);
  return 0;
}
