// libFuzzer target: the membership wire decoders (UDP packets, push-pull state, user streams,
// multicast announcements: anyone on the discovery group's network can send one).
// Any input must decode to a value or an error, never crash, hang or allocate without bound; a
// decoded packet's messages re-encode and decode again.

#include <cstdint>
#include <string_view>

#include "cluster/wire.h"
#include "fuzz/fuzz_common.h"

using namespace shoal::cluster;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  struct {
    std::string sender = "node-a:7946";
    std::uint64_t creation = 1796000000000;
  } p;
  std::vector<std::string> messages{encode_message(Ping{7, "node-b:7946", 42}),
                                    encode_message(Ack{7, 42}),
                                    encode_message(Suspect{"node-c", 3, 1, "node-a:7946"})};
  std::vector<std::string> seeds;
  for (const std::string& m : messages) {
    PacketBuilder b(p.sender, p.creation);
    b.add(m);
    seeds.push_back(b.finish());
  }
  PushPull pp;
  pp.sender = "node-a:7946";
  pp.creation = 1;
  MemberState m;
  m.name = "node-b:7946";
  m.addr = Address::v4(127, 0, 0, 1, 7947);
  m.creation = 2;
  m.tags = {{"zone", "a"}};
  pp.members.push_back(m);
  seeds.push_back(encode_push_pull(pp));
  seeds.push_back(
      encode_announcement(Announcement{"node-a:7946", Address::v4(127, 0, 0, 1, 7946)}));
  shoal::fuzz::write_seeds_if_asked(seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto packet = decode_packet(bytes)) {
    PacketBuilder b(packet->sender, packet->creation, 1 << 20);
    for (const Message& m : packet->messages)
      b.add(encode_message(m));
    if (!decode_packet(b.finish())) __builtin_trap();  // what decodes re-encodes
  }
  if (auto a = decode_announcement(bytes)) {
    auto again = decode_announcement(encode_announcement(*a));
    if (!again || again->name != a->name || !(again->addr == a->addr)) __builtin_trap();
  }
  (void)decode_push_pull(bytes);
  (void)decode_user_stream(bytes);
  return 0;
}
