// libFuzzer target: what an operator hands the agent. An input whose first byte is even is a
// config file, read by parse_config() (the agent's --config), whose flags then go to
// parse_agent_options(); an odd first byte makes the rest a key file, read by
// Keyring::from_file(), and a sealed datagram opened with the keys (anyone may send one).
//
// Whatever the text, the parsers must not crash; and what they accept is usable:
//  - config file: an error names the file and line; every flag read has a value, and more than
//    one only if it is repeatable;
//  - flags: the node's name is 1 to 255 bytes; the membership timing validates; every child spec
//    validates and its encoding decodes to it (peers read it from the map); the node's alive
//    message, with its tags, fits a packet and decodes (peers must be able to read this node); the
//    exec policy reads back from the tags as it was; insecure only where it means something;
//  - key file: at least one key, each printed back in hex parses to itself, and what the ring
//    seals it opens.

#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <fstream>
#include <limits>
#include <string>
#include <string_view>

#include "bin/agent_config.h"
#include "cluster/keyring.h"
#include "cluster/wire.h"
#include "fuzz/fuzz_common.h"
#include "supervisor/child_spec.h"
#include "supervisor/exec_policy.h"

using namespace shoal;

namespace {

std::string g_key_file;

void set_unsigned(unsigned& field, std::string_view value) {
  (void)std::from_chars(value.data(), value.data() + value.size(), field);
}

// One `flag=value` line into the options, as bin/main.cpp folds flags, environment and file.
void apply(bin::AgentOptions& o, std::string_view flag, std::string_view value) {
  const std::string v(value);
  if (flag == "name") o.name = v;
  if (flag == "bind") o.bind = v;
  if (flag == "advertise") o.advertise = v;
  if (flag == "join") o.join.push_back(v);
  if (flag == "discovery") o.discovery = v;
  if (flag == "multicast-group") o.multicast_group = v;
  if (flag == "key-file") o.key_file = v;
  if (flag == "insecure") o.insecure = v == "true";
  if (flag == "tag") o.tags.push_back(v);
  if (flag == "register") o.register_names.push_back(v);
  if (flag == "child") o.children.push_back(v);
  if (flag == "worker") o.workers.push_back(v);
  if (flag == "exec") o.exec = v;
  if (flag == "exec-allow") o.exec_allow.push_back(v);
  if (flag == "mode") o.mode = v;
  if (flag == "expect") set_unsigned(o.expect, v);
  if (flag == "quorum-fence-ms") set_unsigned(o.quorum_fence_ms, v);
  if (flag == "quorum-lease-ms") set_unsigned(o.quorum_lease_ms, v);
  if (flag == "rpc") o.rpc = v;
  if (flag == "data-dir") o.data_dir = v;
  if (flag == "fsync") o.fsync = v;
  if (flag == "http") o.http = v;
  if (flag == "log-level") o.log_level = v;
  if (flag == "stats-interval-ms") set_unsigned(o.stats_interval_ms, v);
  if (flag == "probe-interval-ms") set_unsigned(o.probe_interval_ms, v);
  if (flag == "probe-timeout-ms") set_unsigned(o.probe_timeout_ms, v);
}

void fuzz_flags(std::string_view text) {
  auto entries = bin::parse_config(text, "fuzz.conf");
  if (!entries) {
    if (entries.error().find("fuzz.conf:") != 0) __builtin_trap();  // a reason names the file
    return;
  }
  bin::AgentOptions o;
  for (const auto& [flag, values] : *entries) {
    if (values.empty() || (values.size() > 1 && !bin::repeatable_flag(flag))) __builtin_trap();
    for (const std::string& v : values)
      apply(o, flag, v);
  }
  auto c = bin::parse_agent_options(o, "host");
  if (!c) return;
  if (c->name.empty() || c->name.size() > cluster::kMaxNameBytes) __builtin_trap();
  if (c->stack.membership.validate()) __builtin_trap();
  for (const supervisor::ChildSpec& spec : c->children) {
    if (supervisor::validate(spec)) __builtin_trap();
    auto again = supervisor::decode_spec(supervisor::encode_spec(spec));
    if (!again || *again != spec) __builtin_trap();
  }
  // The alive message peers get of this node, at its largest (the widest numbers).
  const std::uint64_t most = std::numeric_limits<std::uint64_t>::max();
  cluster::PacketBuilder packet(c->name, most, c->stack.membership.max_packet_bytes);
  const cluster::Address addr = c->advertise.value_or(c->bind);
  if (!packet.add(cluster::encode_message(cluster::Alive{c->name, addr, most, most, c->tags})))
    __builtin_trap();
  if (!cluster::decode_packet(packet.finish())) __builtin_trap();
  if (supervisor::exec_policy_of(c->tags) != c->exec_policy) __builtin_trap();
  if (c->insecure && (c->bind.is_loopback() || !c->key_file.empty())) __builtin_trap();
}

void fuzz_key_file(std::string_view text) {
  std::ofstream(g_key_file, std::ios::binary | std::ios::trunc)
      .write(text.data(), static_cast<std::streamsize>(text.size()));
  auto ring = cluster::Keyring::from_file(g_key_file);
  if (!ring) return;
  if (!ring->enabled()) __builtin_trap();
  for (const cluster::Key& k : ring->keys()) {
    auto again = cluster::Keyring::parse_key(cluster::Keyring::to_hex(k));
    if (!again || *again != k) __builtin_trap();
  }
  (void)ring->open(text);
  if (ring->open(ring->seal(text)) != std::string(text)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const cluster::Key key{1, 2, 3};
  fuzz::write_seeds_if_asked({
      std::string("\0", 1),
      std::string("\0", 1) +
          "# shoal.conf\n[agent]\nname = \"n1\"\nbind = 10.0.0.1:7946\nadvertise=10.0.0.1:7946\n"
          "join = [\"10.0.0.2:7946\", \"seeds.example:7946\"]\ndiscovery=seeds\n"
          "key_file = \"/etc/shoal/cluster.key\"\ntag = [\"zone=a\", \"role=db\"]\n"
          "register=svc ; the agent's own name\nchild = \"web=/bin/sleep 1000\"\n"
          "worker=tally=counter\nexec-allow=/usr/bin/*\nmode=quorum\nexpect=3\n"
          "quorum-fence-ms=2000\nfsync=always\nhttp=127.0.0.1:8080\nlog-level=debug\n"
          "probe-interval-ms=500\nprobe-timeout-ms=200\n",
      std::string("\0", 1) + "name = \"a \\\"quoted\\\" name\"\njoin = [\"x\",\n",
      std::string("\0", 1) + "bind=[::1]:7946\ndiscovery=none\nexec=deny\ninsecure=true\n",
      "\x01# cluster keys (first: primary)\n" + cluster::Keyring::to_hex(key) + "\n\n" +
          "BAUGAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
  });
  char tmpl[] = "/tmp/shoal-config-fuzz-XXXXXX";
  g_key_file = std::string(::mkdtemp(tmpl)) + "/cluster.key";
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 1) == 0) {
    fuzz_flags(text);
  } else {
    fuzz_key_file(text);
  }
  return 0;
}
