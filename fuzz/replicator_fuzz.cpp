// libFuzzer target: the replicator's messages from a peer (batches, digests, full states) fed to
// a live replicator. Whatever arrives, it must not crash, and it answers within its bounds.

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "cluster/replicator.h"
#include "fuzz/fuzz_common.h"

using namespace shoal::cluster;

namespace {

// A replicator with something in it, and a peer.
std::unique_ptr<Replicator> make(std::uint64_t now) {
  auto r = std::make_unique<Replicator>("node-a#1", ReplicatorConfig{}, 7, now);
  r->set_peers(now, {"node-b#2"});
  r->put(now, "n/job-1", "pid");
  r->flush(now);
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Seeds: what one replicator sends another.
  Replicator b("node-b#2", ReplicatorConfig{}, 9, 1000);
  b.set_peers(1000, {"node-a#1"});
  b.put(1000, "n/job-2", "pid2");
  b.flush(1000);
  b.on_timer(1200);
  std::vector<ReplicaEffect> effects;
  b.take_effects(effects);
  std::vector<std::string> seeds;
  for (const ReplicaEffect& e : effects) {
    if (const auto* send = std::get_if<ReplicaSend>(&e)) seeds.push_back(send->bytes);
  }
  shoal::fuzz::write_seeds_if_asked(seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto r = make(1000);
  r->on_message(1001, "node-b#2", std::string_view(reinterpret_cast<const char*>(data), size));
  r->on_timer(1500);
  std::vector<ReplicaEffect> effects;
  r->take_effects(effects);
  return 0;
}
