// libFuzzer target: the replicated map's codec (deltas and full states). Any input decodes to a
// map or an error; a decoded map re-encodes to bytes that decode to an equal map, and joins into
// another replica without trouble.

#include <cstdint>
#include <string_view>

#include "crdt/codec.h"
#include "fuzz/fuzz_common.h"

using namespace shoal::crdt;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  AwLwwMap state(AwLwwMap::Kind::state);
  AwLwwMap delta(AwLwwMap::Kind::delta);
  state.put("node-a#1", Timestamp{1796000000000ull << 16}, "n/job-1", "pid-bytes", delta, {});
  state.put("node-b#2", Timestamp{1796000000001ull << 16}, "n/job-2", "other", delta, {});
  state.remove("n/job-1", delta, {});
  shoal::fuzz::write_seeds_if_asked({encode(state), encode(delta)});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto map = decode(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!map) return 0;
  const std::string again = encode(*map);
  auto back = decode(again);
  if (!back || encode(*back) != again) __builtin_trap();
  AwLwwMap replica(AwLwwMap::Kind::state);
  replica.join(*map, {});
  return 0;
}
