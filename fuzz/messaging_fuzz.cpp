// libFuzzer target: what a peer says on a messaging connection (messaging/wire.h), fed to a live
// messenger after its hello, in chunks of any size: the frame decoder and every frame's handling.
// Whatever arrives, it must not crash, hang or grow without bound, and it leaves the messenger in
// a state it can go on from.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/replicator.h"
#include "fuzz/fuzz_common.h"
#include "messaging/messenger.h"
#include "registry/registry.h"

using namespace shoal;

namespace {

const cluster::Address kPeerAddr = cluster::Address::v4(127, 0, 0, 2, 7946);

struct World {
  cluster::Replicator replicator{"a#1", cluster::ReplicatorConfig{}, 7, 1000};
  registry::Registry registry{replicator, "a"};
  messaging::Messenger messenger{messaging::MessengerConfig{}, cluster::Life{"a", 1}, registry};

  World() {
    registry.set_members({{"a", 1}, {"b", 2}});
    messenger.set_members(1000, {{"b", messaging::PeerInfo{2, kPeerAddr}}});
    messenger.open(5);
  }
};

std::string hello() {
  std::string out;
  messaging::append_frame(out, messaging::Hello{"b", 2, "a", 1});
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Seeds: the frames a peer sends after its hello.
  std::vector<std::string> seeds;
  auto one = [&](const messaging::Frame& f) {
    std::string s;
    messaging::append_frame(s, f);
    seeds.push_back(s);
  };
  one(messaging::Send{5, 9, "hello"});
  one(messaging::Call{5, 1, 9, "ping"});
  one(messaging::Reply{1, "pong"});
  one(messaging::Failure{1, messaging::FailureCode::noproc});
  one(messaging::Multicast{{5, 6}, 9, "news"});
  one(messaging::Task{3, {"echo", "hi"}, 1000});
  one(messaging::TaskOut{3, 1, "hi\n"});
  one(messaging::TaskEnd{3, 0, ""});
  fuzz::write_seeds_if_asked(seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  World w;
  const cluster::ConnId id = (cluster::ConnId{1} << 63) + 1;
  w.messenger.on_conn_accepted(1000, id, kPeerAddr);
  w.messenger.on_conn_data(1001, id, hello());
  // A call of ours to b waits: replies and failures have something to end.
  (void)w.messenger.call(1001, messaging::Target::of_pid({"b", 2, 7}), 5, "q", 1000);
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // The first byte chooses the chunk size: frames cut anywhere must be reassembled.
  const std::size_t chunk = size == 0 ? 1 : 1 + static_cast<std::uint8_t>(data[0]) % 64;
  for (std::size_t at = size == 0 ? 0 : 1; at < size; at += chunk)
    w.messenger.on_conn_data(1002, id, bytes.substr(at, chunk));
  w.messenger.flush(1003);
  w.messenger.on_timer(5000);
  std::vector<cluster::Effect> effects;
  w.messenger.take_effects(effects);
  std::vector<messaging::MessengerOutput> outputs;
  w.messenger.take_outputs(outputs);
  return 0;
}
