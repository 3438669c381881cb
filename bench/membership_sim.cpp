// membership_sim: the membership protocol at scale, in the deterministic simulator.
//
// For each N: every node joins through node 0 at time 0; measures virtual time (and probe periods)
// until every node sees all N alive, then membership traffic per node per second over the 10
// simulated seconds after that (the join's news still being gossiped) and over 10 s once every
// gossip queue has drained, then the time until every node sees one newcomer (node N, joining
// through node 0 once the cluster is quiet), then time until every survivor declares a killed
// node dead. The formation is bound by bytes: each node must receive N alive messages, a few
// dozen to a packet, at a rate of packets per node that does not grow with N, so it takes a
// number of periods that grows with N. One newcomer, like one death, is a single piece of news,
// which infection-style gossip spreads in O(log N) periods: that is the newcomer's column. Prints a
// table, the headline last, and writes JSON (--json PATH) with the commit and command line. Real
// time and the process's peak RSS are reported too: the simulator runs every node, in full, in
// this one process (each holds every member). Exits 1 if a size did not converge, its gossip never
// drained, a kill was not seen by every survivor, or the lossy run declared a live node dead.

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/provenance.h"
#include "cluster/sim/sim_cluster.h"

using shoal::cluster::MembershipConfig;
using shoal::cluster::MemberStatus;
using shoal::cluster::sim::SimCluster;

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes{100, 1000};
  std::string json_path = "membership_sim.json";
  std::uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--sizes" && i + 1 < argc) {
      sizes = shoal::bench::parse_sizes(argv[++i]);
    } else if (arg == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (arg == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      fmt::print(stderr, "usage: membership_sim [--sizes 100,1000] [--seed N] [--json PATH]\n");
      return 2;
    }
  }
  const MembershipConfig config;
  fmt::print("membership_sim: seed={} probe_interval={} ms, latency 1-3 ms, no loss\n", seed,
             config.probe_interval_ms);
  fmt::print("{:>6} {:>14} {:>9} {:>16} {:>14} {:>16} {:>14} {:>10} {:>14} {:>10}\n", "N",
             "converge (ms)", "periods", "msgs/node/s 10s", "drained (ms)", "msgs/node/s idle",
             "newcomer (ms)", "periods", "kill->all (ms)", "real (s)");
  const shoal::bench::Provenance from = shoal::bench::provenance(argc, argv);
  std::string json = fmt::format(
      "{{\n  \"bench\": \"membership_sim\",\n  \"commit\": {},\n  \"command\": {},\n  "
      "\"date\": {},\n  \"seed\": {},\n  \"probe_interval_ms\": {},\n  \"results\": [\n",
      shoal::bench::json_string(from.commit), shoal::bench::json_string(from.command),
      shoal::bench::json_string(from.date), seed, config.probe_interval_ms);
  std::vector<std::string> failures;
  double last_periods = 0;
  std::size_t last_n = 0;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    const std::size_t n = sizes[k];
    const auto real_start = std::chrono::steady_clock::now();
    // Node n is the newcomer: down until the cluster of n is quiet (converged() counts running
    // nodes only), then started and joined through node 0.
    SimCluster c(n + 1, seed, config);
    c.kill(n);
    for (std::size_t i = 1; i < n; ++i)
      c.join(i, {0});
    const bool converged = c.wait_until([&] { return c.converged(); }, 120'000, 50);
    const std::uint64_t converge_ms = c.now();
    const double periods =
        static_cast<double>(converge_ms) / static_cast<double>(config.probe_interval_ms);
    // Traffic in the 10 s after converging (the join's news still being gossiped), then once every
    // node's gossip queue has drained (probes, acks and periodic exchanges only).
    const std::uint64_t sent_before = c.packets_sent();
    c.run_for(10'000);
    const double msgs =
        static_cast<double>(c.packets_sent() - sent_before) / static_cast<double>(n) / 10.0;
    const std::uint64_t drain_from = c.now();
    const bool drained = c.wait_until(
        [&] {
          for (std::size_t i = 0; i < n; ++i)
            if (c.membership(i).queued_updates() > 0) return false;
          return true;
        },
        300'000, 500);
    const std::uint64_t drained_ms = c.now() - drain_from + 10'000;
    const std::uint64_t quiet_before = c.packets_sent();
    c.run_for(10'000);
    const double quiet_msgs =
        static_cast<double>(c.packets_sent() - quiet_before) / static_cast<double>(n) / 10.0;
    const std::uint64_t joined_at = c.now();
    c.restart(n, {0});
    const bool newcomer_seen =
        c.wait_until([&] { return c.all_see(n, MemberStatus::alive); }, 60'000, 10);
    const std::uint64_t newcomer_ms = c.now() - joined_at;
    const double newcomer_periods =
        static_cast<double>(newcomer_ms) / static_cast<double>(config.probe_interval_ms);
    const std::size_t victim = n / 2;
    const std::uint64_t killed_at = c.now();
    c.kill(victim);
    const bool detected =
        c.wait_until([&] { return c.all_see(victim, MemberStatus::dead); }, 60'000, 10);
    const std::uint64_t detect_ms = c.now() - killed_at;
    const double real_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - real_start).count();
    fmt::print(
        "{:>6} {:>14} {:>9.1f} {:>16.1f} {:>14} {:>16.1f} {:>14} {:>10.1f} {:>14} {:>10.1f}\n", n,
        converged ? std::to_string(converge_ms) : std::string("never"), periods, msgs,
        drained ? std::to_string(drained_ms) : std::string("never"), quiet_msgs,
        newcomer_seen ? std::to_string(newcomer_ms) : std::string("never"), newcomer_periods,
        detected ? std::to_string(detect_ms) : std::string("never"), real_s);
    json += fmt::format(
        "    {{\"n\": {}, \"converged\": {}, \"converge_ms\": {}, \"periods\": {:.1f}, "
        "\"msgs_per_node_per_s_after_converging\": {:.1f}, \"gossip_drained\": {}, "
        "\"gossip_drained_ms\": {}, \"msgs_per_node_per_s_idle\": {:.1f}, "
        "\"newcomer_seen_by_all\": {}, "
        "\"newcomer_to_all_ms\": {}, \"newcomer_periods\": {:.1f}, \"kill_detected\": {}, "
        "\"kill_to_all_ms\": {}, \"real_s\": {:.1f}, \"peak_rss_kib\": {}}}{}\n",
        n, converged, converge_ms, periods, msgs, drained, drained_ms, quiet_msgs, newcomer_seen,
        newcomer_ms, newcomer_periods, detected, detect_ms, real_s, shoal::bench::peak_rss_kib(),
        k + 1 < sizes.size() ? "," : "");
    last_periods = periods;
    last_n = n;
    if (!converged) failures.push_back(fmt::format("N={} did not converge", n));
    if (!detected) failures.push_back(fmt::format("N={}: the kill was not seen by all", n));
    if (!newcomer_seen)
      failures.push_back(fmt::format("N={}: the newcomer was not seen by all", n));
    if (!drained) failures.push_back(fmt::format("N={}: gossip queues never drained", n));
  }
  json += "  ],\n";

  // Lossy network: 20 nodes, 10% loss and 5% duplication for ten simulated minutes.
  {
    shoal::cluster::sim::SimNetConfig net;
    net.loss = 0.10;
    net.duplicate = 0.05;
    SimCluster c(20, seed, config, net);
    c.join_all(0);
    c.wait_until([&] { return c.converged(); }, 60'000, 50);
    const std::size_t before = c.events().size();
    c.run_for(10 * 60'000);
    std::size_t false_deaths = 0;
    std::size_t suspicions = 0;
    for (std::size_t i = before; i < c.events().size(); ++i) {
      false_deaths += c.events()[i].event.kind == shoal::cluster::EventKind::failed ? 1 : 0;
      suspicions += c.events()[i].event.kind == shoal::cluster::EventKind::suspect ? 1 : 0;
    }
    fmt::print(
        "lossy run: 20 nodes, 10% loss, 5% duplication, 600 s simulated: {} false deaths, {} "
        "suspicions\n",
        false_deaths, suspicions);
    if (false_deaths > 0)
      failures.push_back(fmt::format("the lossy run declared {} live nodes dead", false_deaths));
    json += fmt::format(
        "  \"lossy\": {{\"n\": 20, \"loss\": 0.10, \"duplicate\": 0.05, \"seconds\": 600, "
        "\"false_deaths\": {}, \"suspicions\": {}}}\n}}\n",
        false_deaths, suspicions);
  }
  if (FILE* f = std::fopen(json_path.c_str(), "w")) {
    std::fputs(json.c_str(), f);
    std::fclose(f);
  }
  fmt::print("json: {}\n", json_path);
  for (const std::string& f : failures)
    fmt::print("membership_sim: FAILED: {}\n", f);
  fmt::print("membership_sim: {} nodes converge in {:.1f} probe periods (simulated)\n", last_n,
             last_periods);
  return failures.empty() ? 0 : 1;
}
