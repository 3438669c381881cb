// libFuzzer target: the values peers write into the replicated map (cluster/key_spaces.h), which
// every node decodes: registrations (n/, g/, and the child meta they carry), child specs (c/),
// failure marks (f/), checkpoints (k/), draining marks (d/) and presumed-dead markers (p/).
//
// The input is a list of writes (fuzz_common.h's FieldReader): a key space, a choice of name or
// node life for the key, a put or a remove, and the value. Each value goes through the decoders
// alone: whatever decodes re-encodes and decodes again to the same value. Then a peer's replica
// writes them all and replicates them to a live node (a supervisor::Stack that has joined the
// peer), as a peer would: its registry and supervisor handle every change, start what it owns,
// and answer reads. Whatever a peer writes, the node must not crash, and it holds a child spec
// iff the last value written for it decodes.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/key_spaces.h"
#include "cluster/life.h"
#include "crdt/msgpack_writer.h"
#include "fuzz/fuzz_common.h"
#include "registry/registry.h"
#include "supervisor/child_spec.h"
#include "supervisor/stack.h"

using namespace shoal;
using fuzz::FieldReader;
using fuzz::FieldWriter;

namespace {

const cluster::Life kSelf{"node-a", 1000};
const cluster::Life kPeer{"node-b", 2000};
const cluster::Address kSelfAddr = cluster::Address::v4(10, 0, 0, 1, 7946);
const cluster::Address kPeerAddr = cluster::Address::v4(10, 0, 0, 2, 7946);
// Lives a key may name: this node, the peer, an older life of the peer, a stranger.
const cluster::Life kLives[] = {kSelf, kPeer, {"node-b", 1999}, {"node-z", 1}};
// Names a key may hold: placement gives "api" to this node and "web" to the peer.
const char* const kNames[] = {"api", "web"};
constexpr std::uint64_t kStartMs = 1'000'000;
constexpr int kMaxWrites = 32;

enum Space : std::uint8_t {
  kName,
  kGroup,
  kSpec,
  kFailure,
  kCheckpoint,
  kDraining,
  kMarker,
  kSpaces
};

struct Write {
  std::string key;
  std::optional<std::string> value;  // nullopt: a remove
};

// Reads one write; `who` picks the name or the life in the key, its top bit makes a remove.
Write read_write(FieldReader& in) {
  const std::uint8_t space = in.u8() % kSpaces;
  const std::uint8_t who = in.u8();
  const std::string name = kNames[who % 2];
  const cluster::Life& life = kLives[who % 4];
  Write w;
  switch (space) {
    case kName:
      w.key = std::string(cluster::keys::kName) + name;
      break;
    case kGroup:
      w.key = std::string(cluster::keys::kGroup) + "workers" + '\0' +
              registry::Pid{life.name, life.creation, who}.to_string();
      break;
    case kSpec:
      w.key = std::string(cluster::keys::kChild) + name;
      break;
    case kFailure:
      w.key = std::string(cluster::keys::kFailed) + name;
      break;
    case kCheckpoint:
      w.key = std::string(cluster::keys::kCheckpoint) + name;
      break;
    case kDraining:
      w.key = std::string(cluster::keys::kDraining) + life.key();
      break;
    default:
      w.key = std::string(cluster::keys::kPresumedDead) + life.name + '\0' +
              std::to_string(life.creation);
      break;
  }
  const std::string_view value = in.bytes();
  if ((who & 0x80) == 0) w.value = std::string(value);
  return w;
}

// The decoders alone: what decodes re-encodes to the same value.
void check_decoders(std::string_view bytes) {
  if (auto reg = registry::decode_registration(bytes)) {
    auto again = registry::decode_registration(registry::encode_registration(*reg));
    if (!again || again->pid != reg->pid || again->meta != reg->meta) __builtin_trap();
    if (auto meta = supervisor::decode_child_meta(reg->meta)) {
      auto meta_again = supervisor::decode_child_meta(supervisor::encode_child_meta(*meta));
      if (!meta_again || meta_again->os_pid != meta->os_pid ||
          meta_again->started_ms != meta->started_ms || meta_again->restarts != meta->restarts ||
          meta_again->kind != meta->kind) {
        __builtin_trap();
      }
    }
  }
  if (auto spec = supervisor::decode_spec(bytes)) {
    if (supervisor::validate(*spec)) __builtin_trap();  // a decoded spec is valid
    auto again = supervisor::decode_spec(supervisor::encode_spec(*spec));
    if (!again || *again != *spec) __builtin_trap();
  }
  if (auto pid = registry::Pid::parse(bytes)) {
    auto again = registry::Pid::parse(pid->to_string());
    if (!again || *again != *pid) __builtin_trap();
  }
  if (auto life = cluster::Life::parse(bytes)) {
    auto again = cluster::Life::parse(life->key());
    if (!again || *again != *life) __builtin_trap();
  }
}

// A node that has joined the peer, as the agent runs it.
std::unique_ptr<supervisor::Stack> make_node(std::uint64_t now) {
  auto node = std::make_unique<supervisor::Stack>(
      supervisor::StackConfig{}, cluster::NodeIdentity{kSelf.name, kSelfAddr, kSelf.creation, {}},
      7, now);
  cluster::PushPull join;
  join.join = true;
  join.sender = kPeer.name;
  join.creation = kPeer.creation;
  cluster::MemberState peer;
  peer.name = kPeer.name;
  peer.addr = kPeerAddr;
  peer.creation = kPeer.creation;
  join.members.push_back(peer);
  (void)node->on_stream_request(now, kPeerAddr, cluster::encode_push_pull(join));
  node->on_timer(now);
  return node;
}

// What the node's replicator says to the peer's (digests that acknowledge its batches): handed
// to it, so that it goes on shipping.
void answer_peer(cluster::Replicator& peer, std::uint64_t now,
                 const std::vector<cluster::Effect>& effects) {
  auto deliver = [&](std::string_view payload) {
    if (!payload.empty() && static_cast<std::uint8_t>(payload[0]) ==
                                static_cast<std::uint8_t>(cluster::Channel::replication))
      peer.on_message(now, kSelf.key(), payload.substr(1));
  };
  for (const cluster::Effect& e : effects) {
    if (const auto* send = std::get_if<cluster::SendPacket>(&e)) {
      if (auto packet = cluster::decode_packet(send->bytes)) {
        for (const cluster::Message& m : packet->messages) {
          if (const auto* user = std::get_if<cluster::User>(&m)) deliver(user->payload);
        }
      }
    } else if (const auto* stream = std::get_if<cluster::StreamRequest>(&e)) {
      if (auto user = cluster::decode_user_stream(stream->bytes)) deliver(user->payload);
    }
  }
}

// Runs the node's due work at `now`; the runtime reports every exec child it is asked to start
// as running.
void run(supervisor::Stack& node, cluster::Replicator& peer, std::uint64_t now) {
  for (int pass = 0; pass < 4; ++pass) {
    node.on_timer(now);
    std::vector<cluster::Effect> effects;
    node.take_effects(effects);
    answer_peer(peer, now, effects);
    std::vector<supervisor::StackOutput> outputs;
    node.take_outputs(outputs);
    bool started = false;
    for (const supervisor::StackOutput& o : outputs) {
      if (const auto* start = std::get_if<supervisor::StartChild>(&o)) {
        node.on_child_started(now, start->spec.name, start->id, 4242);
        started = true;
      }
    }
    if (!started && node.next_deadline() > now) return;
  }
}

// Every read the agent's views make.
void read_all(const supervisor::Stack& node) {
  const registry::Registry& r = node.registry();
  for (const char* name : kNames)
    (void)r.whereis(name);
  for (const auto& [name, reg] : r.names("", 100))
    (void)supervisor::decode_child_meta(reg.meta);
  for (const std::string& group : r.groups())
    (void)r.members(group);
  const supervisor::Supervisor& s = node.supervisor();
  for (const supervisor::ChildInfo& c : s.children()) {
    (void)s.failure(c.spec.name);
    (void)s.checkpoint_of(c.spec.name);
    (void)s.refused(c.spec.name);
  }
  for (const char* name : kNames)
    (void)s.failure(name);
}

std::string registration(const registry::Pid& pid) {
  supervisor::ChildMeta meta;
  meta.os_pid = 4242;
  meta.started_ms = kStartMs;
  return registry::encode_registration({pid, supervisor::encode_child_meta(meta)});
}

std::vector<std::string> seeds() {
  supervisor::ChildSpec exec;
  exec.name = "api";
  exec.argv = {"/bin/sleep", "1000"};
  exec.env = {"A=1"};
  exec.exec_path = "/bin/sleep";
  supervisor::ChildSpec worker;
  worker.name = "web";
  worker.kind = supervisor::ChildKind::worker;
  worker.worker_type = "counter";
  worker.handoff = supervisor::Handoff::overlap;
  worker.constraints = {{"zone", "a"}};
  std::string failure;
  crdt::MsgWriter w(failure);
  w.array(3);
  w.str(kPeer.name);
  w.uint(kStartMs);
  w.str("restarted too often");
  const std::string peer_pid = registration({kPeer.name, kPeer.creation, 7});
  auto one = [](Space space, std::uint8_t who, std::string_view value) {
    return FieldWriter().u8(space).u8(who).bytes(value).str();
  };
  return {
      one(kName, 0, peer_pid),
      one(kGroup, 1, peer_pid),
      one(kSpec, 0, supervisor::encode_spec(exec)),
      one(kSpec, 1, supervisor::encode_spec(worker)),
      one(kFailure, 0, failure),
      one(kCheckpoint, 0, "state"),
      one(kDraining, 0, "1"),
      one(kMarker, 0, ""),
      // The peer adds a spec, this node runs it, the peer claims its name, then removes the spec.
      one(kSpec, 0, supervisor::encode_spec(exec)) + one(kName, 0, peer_pid) + one(kSpec, 0x80, ""),
      // The child here fails, has a checkpoint, and this node drains.
      one(kSpec, 0, supervisor::encode_spec(exec)) + one(kCheckpoint, 0, "state") +
          one(kFailure, 0, failure) + one(kDraining, 0, "1"),
      // This life was presumed dead while it held a name.
      one(kName, 0, registration({kSelf.name, kSelf.creation, 1})) + one(kMarker, 0, ""),
  };
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::write_seeds_if_asked(seeds());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FieldReader in(data, size);
  std::vector<Write> writes;
  for (int i = 0; i < kMaxWrites && !in.done(); ++i) {
    writes.push_back(read_write(in));
    if (writes.back().value) check_decoders(*writes.back().value);
  }

  std::uint64_t now = kStartMs;
  auto node = make_node(now);
  cluster::Replicator peer(kPeer.key(), cluster::ReplicatorConfig{}, 9, now);
  peer.set_peers(now, {kSelf.key()});
  std::map<std::string, std::optional<std::string>> last;  // spec key -> last value written
  for (const Write& w : writes) {
    now += 10;
    if (w.value) {
      peer.put(now, w.key, *w.value);
    } else {
      (void)peer.remove(now, w.key);
    }
    if (w.key.starts_with(cluster::keys::kChild)) last[w.key] = w.value;
    peer.flush(now);
    std::vector<cluster::ReplicaEffect> sends;
    peer.take_effects(sends);
    for (const cluster::ReplicaEffect& e : sends) {
      const auto& send = std::get<cluster::ReplicaSend>(e);
      std::string payload(1, static_cast<char>(cluster::Channel::replication));
      payload += send.bytes;
      (void)node->on_stream_request(
          now, kPeerAddr,
          cluster::encode_user_stream({kPeer.name, kPeer.creation, std::move(payload)}));
    }
    run(*node, peer, now);
  }
  run(*node, peer, now += 6'000);  // restarts, refreshes, purges
  read_all(*node);

  for (const auto& [key, value] : last) {
    const std::string name = key.substr(cluster::keys::kChild.size());
    std::optional<supervisor::ChildSpec> decoded;
    if (value) {
      if (auto spec = supervisor::decode_spec(*value); spec && spec->name == name) decoded = *spec;
    }
    if (node->supervisor().spec(name) != decoded) __builtin_trap();
  }
  return 0;
}
