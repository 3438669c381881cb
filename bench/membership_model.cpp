// membership_model: the membership protocol at up to 10,000 nodes, most of them modelled.
//
// Each run (cluster/sim/model_cluster.h) starts N nodes formed and quiet: a sample of them (--real)
// runs the real core, the rest a compact model of it. It measures messages per node per second
// once quiet, the time until every node sees a newcomer (a real node joining through node 0), in
// probe periods, and the time until every node sees a killed node dead. Forming the cluster is
// not measured here (membership_sim does it, with every node real, up to 5,000: bound by bytes,
// it takes a number of periods that grows with N).
//
// --validate N runs the same measurements at N with every node real, over the same seeds, and
// prints both; the bench fails if the model's medians (newcomer -> all; a kill's first detection
// -> all) differ from the real ones by more than --tolerance probe periods. The first detection
// itself (when some probe first reaches the dead node) varies too much from seed to seed to check
// on a handful of runs; its means are printed. It also fails if a run did not drain, a newcomer or
// a kill was not seen by all, or a modelled node met something the model leaves out. Prints a
// table, the headline last, and writes JSON (--json PATH) with the commit and the command line.

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

#include "bench/provenance.h"
#include "cluster/sim/model_cluster.h"

namespace {

using shoal::cluster::MembershipConfig;
using shoal::cluster::sim::HybridOptions;
using shoal::cluster::sim::HybridRun;

double mean(const std::vector<double>& v) {
  return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes{1000, 10000};
  std::vector<std::size_t> validate;
  std::size_t real = 32;
  std::uint64_t seed = 1;
  std::size_t seeds = 1;
  double tolerance_periods = 0.5;
  std::string json_path = "membership_model.json";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        fmt::print(stderr, "membership_model: {} needs a value\n", arg);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--sizes") {
      sizes = shoal::bench::parse_sizes(value());
    } else if (arg == "--validate") {
      validate = shoal::bench::parse_sizes(value());
    } else if (arg == "--real") {
      real = std::strtoull(value().c_str(), nullptr, 10);
    } else if (arg == "--seed") {
      seed = std::strtoull(value().c_str(), nullptr, 10);
    } else if (arg == "--seeds") {
      seeds = std::max<std::size_t>(1, std::strtoull(value().c_str(), nullptr, 10));
    } else if (arg == "--tolerance") {
      tolerance_periods = std::strtod(value().c_str(), nullptr);
    } else if (arg == "--json") {
      json_path = value();
    } else {
      fmt::print(stderr,
                 "usage: membership_model [--sizes 1000,10000] [--real K] [--validate 1000,2000] "
                 "[--seed N] [--seeds S] [--tolerance PERIODS] [--json PATH]\n"
                 "  --real K: nodes that run the real core (plus the newcomer); the rest are "
                 "modelled\n"
                 "  --validate N,...: also run these sizes with every node real and compare\n"
                 "  --seeds S: runs per size and kind, seeds N..N+S-1 (medians reported)\n"
                 "  --tolerance P: most the model's median may differ from the real one, in probe "
                 "periods (newcomer -> all, and a kill's first detection -> all)\n");
      return 2;
    }
  }
  const MembershipConfig config;
  const double period = static_cast<double>(config.probe_interval_ms);
  const shoal::bench::Provenance from = shoal::bench::provenance(argc, argv);
  fmt::print(
      "membership_model: seeds {}..{}, probe_interval={} ms, latency 1-3 ms, no loss, {} real "
      "nodes (+ the newcomer), the rest modelled\n",
      seed, seed + seeds - 1, config.probe_interval_ms, real);
  fmt::print("{:>6} {:>5} {:>5} {:>8} {:>9} {:>13} {:>7} {:>12} {:>13} {:>13} {:>10} {:>8}\n", "N",
             "real", "seeds", "quiet(s)", "msgs/n/s", "newcomer (ms)", "periods", "kill: first",
             "first->all", "kill->all", "unmodelled", "real (s)");
  fmt::print("{:>6} {:>5} {:>5} {:>8} {:>9} {:>13} {:>7} {:>12} {:>13} {:>13} {:>10} {:>8}\n", "",
             "", "", "p50", "p50", "p50", "p50", "mean (ms)", "p50 (ms)", "p50/max (ms)", "", "");
  std::vector<std::string> failures;
  std::string rows;
  struct Summary {
    double newcomer_ms, first_mean, spread_ms, kill_ms, idle;
  };
  auto run_size = [&](std::size_t n, std::size_t k) -> Summary {
    std::vector<double> newcomer, first, spread, kill, idle, drain;
    std::uint64_t unmodelled = 0;
    double real_s = 0;
    std::size_t real_nodes = 0;
    for (std::size_t s = 0; s < seeds; ++s) {
      const auto start = std::chrono::steady_clock::now();
      HybridOptions options;
      options.n = n;
      options.real = k;
      options.seed = seed + s;
      const HybridRun r = shoal::cluster::sim::run_hybrid(options);
      const double run_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      for (const auto& [kind, count] : r.unmodelled_by_kind)
        fmt::print(stderr, "  N={} seed {}: unmodelled {}: {}\n", n, options.seed, kind, count);
      real_nodes = r.real_nodes;
      newcomer.push_back(static_cast<double>(r.newcomer_ms));
      first.push_back(static_cast<double>(r.kill_first_ms));
      spread.push_back(static_cast<double>(r.kill_ms - r.kill_first_ms));
      kill.push_back(static_cast<double>(r.kill_ms));
      idle.push_back(r.idle_msgs);
      drain.push_back(static_cast<double>(r.drained_ms) / 1000.0);
      unmodelled += r.unmodelled;
      real_s += run_s;
      if (!r.drained || !r.quiet_before_kill)
        failures.push_back(fmt::format("N={} seed {}: never quiet", n, options.seed));
      if (!r.newcomer_seen)
        failures.push_back(
            fmt::format("N={} seed {}: the newcomer was not seen by all", n, options.seed));
      if (!r.kill_seen)
        failures.push_back(
            fmt::format("N={} seed {}: the kill was not seen by all", n, options.seed));
      if (!rows.empty()) rows += ",\n";
      rows += fmt::format(
          "    {{\"n\": {}, \"real_nodes\": {}, \"seed\": {}, \"drained\": {}, \"drained_ms\": {}, "
          "\"msgs_per_node_per_s_idle\": {:.2f}, \"newcomer_seen_by_all\": {}, "
          "\"newcomer_to_all_ms\": {}, \"kill_seen_by_all\": {}, \"kill_to_first_ms\": {}, "
          "\"kill_to_all_ms\": {}, \"unmodelled\": {}, \"real_s\": {:.1f}, "
          "\"peak_rss_kib\": {}}}",
          n, r.real_nodes, options.seed, r.drained, r.drained_ms, r.idle_msgs, r.newcomer_seen,
          r.newcomer_ms, r.kill_seen, r.kill_first_ms, r.kill_ms, r.unmodelled, run_s,
          shoal::bench::peak_rss_kib());
    }
    if (unmodelled > 0)
      failures.push_back(fmt::format("N={}: {} unmodelled events", n, unmodelled));
    const Summary sum{median(newcomer), mean(first), median(spread), median(kill), median(idle)};
    fmt::print(
        "{:>6} {:>5} {:>5} {:>8.1f} {:>9.1f} {:>13.0f} {:>7.1f} {:>12.0f} {:>13.0f} "
        "{:>8.0f}/{:<4.0f} "
        "{:>10} {:>8.1f}\n",
        n, real_nodes, seeds, median(drain), sum.idle, sum.newcomer_ms, sum.newcomer_ms / period,
        sum.first_mean, sum.spread_ms, sum.kill_ms, *std::max_element(kill.begin(), kill.end()),
        unmodelled, real_s);
    std::fflush(stdout);
    return sum;
  };
  std::string checks;
  for (std::size_t n : validate) {
    const Summary all_real = run_size(n, 0);
    const Summary model = run_size(n, real);
    const double d_new = (model.newcomer_ms - all_real.newcomer_ms) / period;
    const double d_spread = (model.spread_ms - all_real.spread_ms) / period;
    const double d_first = (model.first_mean - all_real.first_mean) / period;
    const bool ok = std::abs(d_new) <= tolerance_periods && std::abs(d_spread) <= tolerance_periods;
    fmt::print(
        "validation at N={}: model - real: newcomer p50 {:+.2f} periods, kill first->all p50 "
        "{:+.2f} periods (tolerance {} each): {}; kill first mean {:+.2f} periods, idle "
        "msgs/node/s {:+.2f} (not checked)\n",
        n, d_new, d_spread, tolerance_periods, ok ? "ok" : "FAILED", d_first,
        model.idle - all_real.idle);
    std::fflush(stdout);
    if (!ok) failures.push_back(fmt::format("the model strays from the real core at N={}", n));
    if (!checks.empty()) checks += ",\n";
    checks += fmt::format(
        "    {{\"n\": {}, \"newcomer_diff_periods\": {:.2f}, \"kill_spread_diff_periods\": {:.2f}, "
        "\"kill_first_mean_diff_periods\": {:.2f}, \"idle_msgs_diff\": {:.2f}, \"ok\": {}}}",
        n, d_new, d_spread, d_first, model.idle - all_real.idle, ok);
  }
  Summary last{};
  std::size_t last_n = 0;
  for (std::size_t n : sizes) {
    last = run_size(n, real);
    last_n = n;
  }
  const std::string json = fmt::format(
      "{{\n  \"bench\": \"membership_model\",\n  \"commit\": {},\n  \"command\": {},\n  "
      "\"date\": {},\n  \"probe_interval_ms\": {},\n  \"real\": {},\n  \"seeds\": {},\n  "
      "\"tolerance_periods\": {},\n  \"runs\": [\n{}\n  ],\n  \"validation\": [\n{}\n  ],\n  "
      "\"failures\": {}\n}}\n",
      shoal::bench::json_string(from.commit), shoal::bench::json_string(from.command),
      shoal::bench::json_string(from.date), config.probe_interval_ms, real, seeds,
      tolerance_periods, rows, checks, failures.size());
  if (FILE* f = std::fopen(json_path.c_str(), "w")) {
    std::fputs(json.c_str(), f);
    std::fclose(f);
  }
  fmt::print("json: {}\n", json_path);
  for (const std::string& f : failures)
    fmt::print("membership_model: FAILED: {}\n", f);
  if (last_n > 0) {
    fmt::print(
        "membership_model: at {} nodes a newcomer is seen by all in {:.1f} probe periods, a kill "
        "in {:.0f} ms (p50, simulated, {} real nodes, the rest modelled)\n",
        last_n, last.newcomer_ms / period, last.kill_ms, real);
  }
  return failures.empty() ? 0 : 1;
}
