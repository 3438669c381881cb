// libFuzzer target: the data dir's map store reader. The input is written as the log (or, when its
// first byte is odd, as the snapshot) and loaded: whatever it holds, the load reports or skips
// it, never crashes, and appending afterwards yields a log that loads without complaint.

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "cluster/map_store.h"
#include "crdt/codec.h"
#include "fuzz/fuzz_common.h"

using namespace shoal;

namespace {

std::string g_dir;

std::string record(const std::string& payload) {
  std::string out;
  const auto n = static_cast<std::uint32_t>(payload.size());
  const std::uint32_t crc = cluster::crc32(payload);
  for (std::uint32_t v : {n, crc}) {
    out += static_cast<char>(v >> 24);
    out += static_cast<char>(v >> 16);
    out += static_cast<char>(v >> 8);
    out += static_cast<char>(v);
  }
  return out + payload;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  crdt::AwLwwMap state(crdt::AwLwwMap::Kind::state);
  crdt::AwLwwMap delta(crdt::AwLwwMap::Kind::delta);
  state.put("node-a#1", 1000, "c/web", "spec", delta);
  const std::string d = crdt::encode(delta);
  shoal::fuzz::write_seeds_if_asked(
      {"SHL1" + record(d), "SHL1" + record(d) + record(crdt::encode(state)), "SHL1"});
  char tmpl[] = "/tmp/shoal-store-fuzz-XXXXXX";
  g_dir = ::mkdtemp(tmpl);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::filesystem::remove(g_dir + "/log");
  std::filesystem::remove(g_dir + "/snapshot");
  const bool as_snapshot = size > 0 && (data[0] & 1) != 0;
  std::ofstream(g_dir + (as_snapshot ? "/snapshot" : "/log"), std::ios::binary)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  auto store = cluster::MapStore::open(g_dir);
  if (!store) return 0;
  auto loaded = (*store)->load();
  if (!loaded) return 0;
  crdt::AwLwwMap delta(crdt::AwLwwMap::Kind::delta);
  crdt::AwLwwMap state(crdt::AwLwwMap::Kind::state);
  state.put("node-b#2", 2000, "k/x", "1", delta);
  (void)(*store)->append(crdt::encode(delta));
  store->reset();
  auto again = (*cluster::MapStore::open(g_dir))->load();
  // After a load cut the log at its last good record, what follows is valid.
  if (again && !as_snapshot && again->problem.find("log:") != std::string::npos) __builtin_trap();
  return 0;
}
