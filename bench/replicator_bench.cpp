// replicator_bench: the CPU cost of the replicator's anti-entropy rounds in a quiet cluster, the
// work every agent does 20 times a second (round_ms 100, fanout 2) whether or not anything changes.
//
// N replicators exchange everything in memory (no network) until every replica has every batch
// and the origins settle; then one node answers the same round request from a peer over and over:
// decode the request, update what it knows of the peer, look for anything to send, reply with its
// digest. It checks that the replicas converged and that every request was recognised as this
// replica's own digest (the quiet cluster's case), and exits 1 otherwise.
//
//   replicator_bench [--nodes N] [--requests K] [--json PATH]

#include <fmt/core.h>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "bench/provenance.h"
#include "cluster/replicator.h"

using shoal::cluster::ReplicaEffect;
using shoal::cluster::ReplicaSend;
using shoal::cluster::Replicator;
using shoal::cluster::ReplicatorConfig;

namespace {

struct Cluster {
  std::vector<std::string> ids;
  std::map<std::string, std::unique_ptr<Replicator>, std::less<>> nodes;

  explicit Cluster(std::size_t n) {
    // Lives as the agent names them: the node's name and its creation.
    for (std::size_t i = 0; i < n; ++i)
      ids.push_back(fmt::format("n{}#{}", i, 1'765'000'000'000 + i));
    for (std::size_t i = 0; i < n; ++i)
      nodes[ids[i]] = std::make_unique<Replicator>(ids[i], ReplicatorConfig{}, 7 + i, 0);
    for (const auto& [id, node] : nodes) {
      std::vector<std::string> peers;
      for (const std::string& other : ids)
        if (other != id) peers.push_back(other);
      node->set_peers(0, std::move(peers));
    }
  }
  // Delivers every message at once, until nothing is left to send.
  void pump(std::uint64_t now_ms) {
    for (bool sent = true; sent;) {
      sent = false;
      for (const auto& [id, node] : nodes) {
        std::vector<ReplicaEffect> effects;
        node->take_effects(effects);
        for (ReplicaEffect& e : effects) {
          if (auto* s = std::get_if<ReplicaSend>(&e)) {
            nodes.at(s->to)->on_message(now_ms, id, s->bytes);
            sent = true;
          }
        }
      }
    }
  }
  bool converged() const {
    for (const auto& [id, node] : nodes)
      if (!(node->state() == nodes.begin()->second->state())) return false;
    return true;
  }
};

}  // namespace

int main(int argc, char** argv) {
  const shoal::bench::Provenance from = shoal::bench::provenance(argc, argv);
  std::size_t n = 50;
  std::size_t requests = 200'000;
  std::string json_path = "replicator_bench.json";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--nodes" && i + 1 < argc) {
      n = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--requests" && i + 1 < argc) {
      requests = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (arg == "--help" || arg == "-h") {
      fmt::print("usage: replicator_bench [--nodes N] [--requests K] [--json PATH]\n");
      return 0;
    } else {
      fmt::print(stderr, "replicator_bench: unknown argument '{}' (try --help)\n", arg);
      return 2;
    }
  }
  if (n < 2 || n > 1000 || requests < 1000 || requests > 100'000'000) {
    fmt::print(stderr,
               "replicator_bench: --nodes must be 2 to 1000, --requests 1000 to 100000000\n");
    return 2;
  }

  Cluster c(n);
  for (std::size_t i = 0; i < n; ++i)
    c.nodes.at(c.ids[i])->put(1, fmt::format("key{}", i), "value");
  // 20 s of rounds every 50 ms: every batch everywhere, acknowledged, and the origins settled.
  std::uint64_t now = 1;
  for (; now <= 20'000; now += 50) {
    for (const auto& [id, node] : c.nodes)
      node->on_timer(now);
    c.pump(now);
  }
  if (!c.converged()) {
    fmt::print(stderr, "replicator_bench: the {} replicas did not converge\n", n);
    return 1;
  }
  // A round request from n1 to n0, as n1 sends it.
  Replicator& a = *c.nodes.at(c.ids[0]);
  Replicator& b = *c.nodes.at(c.ids[1]);
  b.set_peers(now, {c.ids[0]});
  std::string request;
  for (std::vector<ReplicaEffect> effects; request.empty(); now += 100) {
    effects.clear();
    b.on_timer(now);
    b.take_effects(effects);
    for (ReplicaEffect& e : effects)
      if (auto* s = std::get_if<ReplicaSend>(&e)) request = s->bytes;
  }

  const std::uint64_t same_before = a.stats().digests_in_same;
  std::vector<ReplicaEffect> out;
  std::size_t replies = 0;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < requests; ++i) {
    a.on_message(now + i / 1000, c.ids[1], request);
    a.take_effects(out);
    replies += out.size();
    out.clear();
  }
  const double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
      static_cast<double>(requests);
  const std::uint64_t same = a.stats().digests_in_same - same_before;
  const bool ok = same == requests && replies == requests;

  if (std::FILE* f = std::fopen(json_path.c_str(), "w")) {
    fmt::print(f,
               "{{\"benchmark\": \"replicator\", \"commit\": {}, \"command\": {}, \"date\": {}, "
               "\"nodes\": {}, \"requests\": {}, \"request_bytes\": {}, "
               "\"ns_per_round_request\": {:.1f}, \"requests_taken_as_own_digest\": {}, "
               "\"replies\": {}, \"ok\": {}}}\n",
               shoal::bench::json_string(from.commit), shoal::bench::json_string(from.command),
               shoal::bench::json_string(from.date), n, requests, request.size(), ns, same, replies,
               ok ? "true" : "false");
    std::fclose(f);
  } else {
    fmt::print(stderr, "replicator_bench: cannot write {}\n", json_path);
    return 1;
  }
  fmt::print(
      "replicator_bench: {} nodes, quiet: a round request is {} bytes; {} of {} taken as "
      "this replica's own digest, {} replies; wrote {}\n",
      n, request.size(), same, requests, replies, json_path);
  if (!ok) {
    fmt::print(stderr,
               "replicator_bench: expected every request taken as own digest and answered\n");
    return 1;
  }
  fmt::print(
      "replicator_bench: answering a round's digest request in a quiet cluster of {} takes "
      "{:.0f} ns\n",
      n, ns);
  return 0;
}
