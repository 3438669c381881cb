// Membership scenarios in the simulator: virtual time, seeded, no sleeps. Each case prints its
// seed; SHOAL_SEED=N replays it exactly.

#include <algorithm>
#include <array>
#include <boost/test/unit_test.hpp>
#include <map>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "cluster/sim/model_cluster.h"
#include "cluster/sim/sim_cluster.h"
#include "tests/support/seed.h"

using shoal::cluster::MembershipConfig;
using shoal::cluster::MemberStatus;
using shoal::cluster::sim::SimCluster;
using shoal::cluster::sim::SimNetConfig;

namespace {

std::size_t false_deaths(const SimCluster& c, std::span<const std::size_t> really_dead = {}) {
  std::size_t n = 0;
  for (const auto& e : c.events()) {
    if (e.event.kind != shoal::cluster::EventKind::failed) continue;
    bool expected = false;
    for (std::size_t d : really_dead)
      expected |= e.event.name == c.name(d);
    n += expected ? 0 : 1;
  }
  return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(membership_sim)

BOOST_AUTO_TEST_CASE(hundred_nodes_join_through_one_seed_and_converge) {
  const auto seed = shoal::test::test_seed();
  SimCluster c(100, seed);
  c.join_all(0);
  const bool ok = c.wait_until([&] { return c.converged(); }, 30'000);
  BOOST_TEST_MESSAGE("100 nodes converged after " << c.now() << " ms (virtual)");
  BOOST_TEST(ok, "seed=" << seed << " not converged after " << c.now() << " ms");
  BOOST_TEST(false_deaths(c) == 0u);
}

// Each member's round trip is the last direct probe's: two one-way latencies of 1 to 3 ms.
BOOST_AUTO_TEST_CASE(each_probed_member_has_its_round_trip) {
  const auto seed = shoal::test::test_seed();
  SimCluster c(5, seed);
  c.join_all(0);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 30'000), "seed=" << seed);
  // Five probe periods per peer: every peer has been probed directly by then.
  c.run_for(10'000);
  for (const auto& [name, m] : c.membership(0).members()) {
    if (name == c.name(0)) {
      BOOST_TEST(!m.rtt_ms.has_value());  // never probes itself
      continue;
    }
    BOOST_TEST_REQUIRE(m.rtt_ms.has_value(), name << " seed=" << seed);
    BOOST_TEST(*m.rtt_ms >= 2u, name);
    BOOST_TEST(*m.rtt_ms <= 6u, name);
  }
}

BOOST_AUTO_TEST_CASE(killed_node_is_declared_dead_by_every_survivor) {
  const auto seed = shoal::test::test_seed();
  SimCluster c(10, seed);
  c.join_all(0);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 10'000));
  const std::uint64_t killed_at = c.now();
  c.kill(7);
  BOOST_TEST(c.wait_until([&] { return c.all_see(7, MemberStatus::dead); }, 10'000),
             "seed=" << seed);
  BOOST_TEST_MESSAGE("kill detected by all after " << c.now() - killed_at << " ms");
  // The crash fast path, not the suspicion timeout, did it: well under one suspicion timeout.
  BOOST_TEST(c.now() - killed_at < 1500u);
  const std::size_t killed[] = {7};
  BOOST_TEST(false_deaths(c, killed) == 0u);
}

BOOST_AUTO_TEST_CASE(hung_node_goes_through_suspicion_and_is_declared_dead) {
  const auto seed = shoal::test::test_seed();
  SimCluster c(10, seed);
  c.join_all(0);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 10'000));
  const std::uint64_t paused_at = c.now();
  c.pause(3);
  BOOST_TEST(c.wait_until([&] { return c.all_see(3, MemberStatus::dead); }, 20'000),
             "seed=" << seed);
  BOOST_TEST_MESSAGE("pause detected by all after " << c.now() - paused_at << " ms");
  bool suspected_first = false;
  for (const auto& e : c.events()) {
    suspected_first |= e.event.kind == shoal::cluster::EventKind::suspect && e.event.name == "n3";
  }
  BOOST_TEST(suspected_first);
}

BOOST_AUTO_TEST_CASE(node_paused_shorter_than_the_suspicion_timeout_stays_alive) {
  const auto seed = shoal::test::test_seed();
  SimCluster c(10, seed);
  c.join_all(0);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 10'000));
  c.pause(4);
  c.run_for(300);  // default suspicion timeout at N = 10 is at least 800 ms
  c.resume(4);
  c.run_for(5'000);
  BOOST_TEST(false_deaths(c) == 0u, "seed=" << seed);
  BOOST_TEST(c.converged());
}

BOOST_AUTO_TEST_CASE(loss_and_duplication_declare_no_live_node_dead) {
  const auto seed = shoal::test::test_seed();
  SimNetConfig net;
  net.loss = 0.10;
  net.duplicate = 0.05;
  SimCluster c(20, seed, MembershipConfig{}, net);
  c.join_all(0);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 30'000));
  c.run_for(10 * 60'000);  // ten simulated minutes
  BOOST_TEST(false_deaths(c) == 0u, "seed=" << seed);
  // At any instant a member may be suspect for a moment under 10% loss; it must not last.
  BOOST_TEST(c.wait_until([&] { return c.converged(); }, 5'000));
}

// Round trips longer than the configured probe timeout (80 ms): the probe timing stretches to
// what the acks measure, so a slow network alone suspects nobody, and a slow lossy one (the fault
// lab's 20% loss, 50 +- 20 ms) declares no live node dead.
BOOST_AUTO_TEST_CASE(a_slow_network_stretches_the_probe_timing_and_suspects_nobody) {
  const auto seed = shoal::test::test_seed();
  SimNetConfig net;
  net.latency_min_ms = 60;
  net.latency_max_ms = 110;  // round trips of 120 to 220 ms: beyond the configured interval
  SimCluster c(5, seed, MembershipConfig{}, net);
  c.join_all(0);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 30'000));
  c.run_for(10'000);  // the estimates settle
  const std::size_t before = c.events().size();
  c.run_for(10 * 60'000);
  std::size_t suspicions = 0;
  for (std::size_t i = before; i < c.events().size(); ++i)
    suspicions += c.events()[i].event.kind == shoal::cluster::EventKind::suspect;
  BOOST_TEST_MESSAGE("suspicions in 10 simulated minutes at 60-110 ms one way: " << suspicions);
  BOOST_TEST(suspicions == 0u, "seed=" << seed);
  BOOST_TEST(false_deaths(c) == 0u, "seed=" << seed);
}

BOOST_AUTO_TEST_CASE(a_slow_lossy_network_declares_no_live_node_dead) {
  const auto seed = shoal::test::test_seed();
  SimNetConfig net;
  net.latency_min_ms = 30;
  net.latency_max_ms = 70;
  net.loss = 0.10;
  SimCluster c(5, seed, MembershipConfig{}, net);
  c.join_all(0);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 30'000));
  c.run_for(10 * 60'000);
  std::size_t suspicions = 0;
  for (const auto& e : c.events())
    suspicions += e.event.kind == shoal::cluster::EventKind::suspect;
  BOOST_TEST_MESSAGE("suspicions in 10 simulated minutes at 10% loss, 30-70 ms: " << suspicions);
  BOOST_TEST(false_deaths(c) == 0u, "seed=" << seed);
  BOOST_TEST(c.wait_until([&] { return c.converged(); }, 10'000));
}

BOOST_AUTO_TEST_CASE(halves_merge_again_after_a_partition_heals) {
  const auto seed = shoal::test::test_seed();
  SimCluster c(10, seed);
  c.join_all(0);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 10'000));
  c.partition({{0, 1, 2, 3, 4}, {5, 6, 7, 8, 9}});
  BOOST_TEST(c.wait_until(
      [&] { return c.all_see(7, MemberStatus::dead) || c.sees(0, "n7", MemberStatus::dead); },
      20'000));
  c.run_for(5'000);
  c.heal();
  BOOST_TEST(c.wait_until([&] { return c.converged(); }, 30'000), "seed=" << seed);
}

BOOST_AUTO_TEST_CASE(restarted_node_is_accepted_as_a_new_life_at_once) {
  const auto seed = shoal::test::test_seed();
  SimCluster c(5, seed);
  c.join_all(0);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 10'000));
  const std::uint64_t old_creation = c.membership(2).creation();
  c.kill(2);
  c.run_for(50);  // restarted faster than anyone can notice the crash
  c.restart(2, {0});
  BOOST_TEST(c.membership(2).creation() > old_creation);
  BOOST_TEST(c.wait_until(
                 [&] {
                   for (std::size_t i = 0; i < c.size(); ++i) {
                     const auto* m = c.membership(i).member("n2");
                     if (m == nullptr || m->creation != c.membership(2).creation() ||
                         m->status != MemberStatus::alive) {
                       return false;
                     }
                   }
                   return true;
                 },
                 5'000),
             "seed=" << seed);
}

BOOST_AUTO_TEST_CASE(graceful_leave_is_seen_as_left_not_failed) {
  const auto seed = shoal::test::test_seed();
  SimCluster c(8, seed);
  c.join_all(0);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 10'000));
  c.membership(5).leave(c.now());
  c.settle(5);
  const std::uint64_t left_at = c.now();
  BOOST_TEST(c.wait_until([&] { return c.all_see(5, MemberStatus::left); }, 5'000));
  BOOST_TEST_MESSAGE("leave seen by all after " << c.now() - left_at << " ms");
  BOOST_TEST(false_deaths(c) == 0u);
}

// A newcomer goes into each node's current probe round at a random place: every node probes it
// directly within one round (one probe period per peer) of learning of it, not after the next
// reshuffle.
BOOST_AUTO_TEST_CASE(a_newcomer_is_probed_by_every_node_within_one_round) {
  const auto seed = shoal::test::test_seed();
  constexpr std::size_t kOld = 11;
  SimCluster c(kOld + 1, seed);
  for (std::size_t i = 1; i < kOld; ++i)
    c.join(i, {0});
  const auto all_old_see = [&](std::size_t who) {
    for (std::size_t i = 0; i < kOld; ++i)
      if (i != who && !c.sees(i, c.name(who), MemberStatus::alive)) return false;
    return true;
  };
  BOOST_TEST_REQUIRE(c.wait_until(
                         [&] {
                           for (std::size_t i = 0; i < kOld; ++i)
                             if (!all_old_see(i)) return false;
                           return true;
                         },
                         10'000),
                     "seed=" << seed);
  c.run_for(3'000);  // some way into everyone's probe round
  c.join(kOld, {0});
  // When each old node first saw the newcomer, and when it first had its round trip.
  std::vector<std::uint64_t> seen(kOld, 0);
  std::vector<std::uint64_t> probed(kOld, 0);
  const bool all_probed = c.wait_until(
      [&] {
        bool done = true;
        for (std::size_t i = 0; i < kOld; ++i) {
          const auto* m = c.membership(i).member(c.name(kOld));
          if (m != nullptr && seen[i] == 0) seen[i] = c.now();
          if (m != nullptr && m->rtt_ms && probed[i] == 0) probed[i] = c.now();
          done = done && probed[i] != 0;
        }
        return done;
      },
      20'000, 10);
  BOOST_TEST_REQUIRE(all_probed, "seed=" << seed);
  const std::uint64_t round_ms = kOld * MembershipConfig{}.probe_interval_ms;
  for (std::size_t i = 0; i < kOld; ++i) {
    // The round in progress holds at most the other old nodes and the newcomer: kOld probes.
    BOOST_TEST(probed[i] - seen[i] <= round_ms + 100, "node " << i << " seed=" << seed);
  }
}

// A dead member is kept for reap_dead_ms and a departed one for reap_left_ms, then forgotten by
// every survivor; the reaper and the reconnects skip the member list only while nobody is gone.
BOOST_AUTO_TEST_CASE(dead_and_departed_members_are_forgotten_when_their_retention_ends) {
  const auto seed = shoal::test::test_seed();
  MembershipConfig config;
  config.reap_dead_ms = 8'000;
  config.reap_left_ms = 4'000;
  SimCluster c(8, seed, config);
  c.join_all(0);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 10'000), "seed=" << seed);
  c.kill(2);
  c.membership(5).leave(c.now());
  c.settle(5);
  // The survivors: running, and not the departed n5 (whose own view no longer matters).
  const auto survivors = [&](std::size_t who) {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < c.size(); ++i)
      if (i != who && i != 5 && c.running(i)) out.push_back(i);
    return out;
  };
  const auto all_see = [&](std::size_t who, MemberStatus status) {
    for (std::size_t i : survivors(who))
      if (!c.sees(i, c.name(who), status)) return false;
    return true;
  };
  // How many survivors still hold node `who`.
  const auto held_by = [&](std::size_t who) {
    std::size_t n = 0;
    for (std::size_t i : survivors(who))
      n += c.membership(i).member(c.name(who)) != nullptr ? 1 : 0;
    return n;
  };
  BOOST_TEST_REQUIRE(
      c.wait_until([&] { return all_see(2, MemberStatus::dead) && all_see(5, MemberStatus::left); },
                   10'000),
      "seed=" << seed);
  c.run_for(2'000);  // within both retentions: still known
  BOOST_TEST(held_by(2) == 6u, "seed=" << seed);
  BOOST_TEST(held_by(5) == 6u, "seed=" << seed);
  BOOST_TEST(c.wait_until([&] { return held_by(5) == 0; }, 10'000), "seed=" << seed);
  BOOST_TEST(held_by(2) == 6u, "the dead one outlives the departed one; seed=" << seed);
  BOOST_TEST(c.wait_until([&] { return held_by(2) == 0; }, 20'000), "seed=" << seed);
  // A member that dies after the others were forgotten is still seen dead, then forgotten too.
  c.kill(6);
  BOOST_TEST(c.wait_until([&] { return all_see(6, MemberStatus::dead); }, 10'000), "seed=" << seed);
  BOOST_TEST(c.wait_until([&] { return held_by(6) == 0; }, 20'000), "seed=" << seed);
  BOOST_TEST(false_deaths(c, std::array<std::size_t, 2>{2, 6}) == 0u);
}

// Whatever mix of crashes, graceful leaves (closing 0 to 500 ms after announcing; the agent waits
// 500) and restarts a cluster went through, once it is quiet the running members agree: each sees
// the same live members, and a member two of them hold is in the same life and status at both.
// (A node that joined after a member was gone never hears of it, as in memberlist: news of a
// death is for those who knew the life.) The view digests cover live members only, so nothing
// else would mend a disagreement about the dead and the departed.
BOOST_AUTO_TEST_CASE(survivors_agree_on_every_member_after_crashes_leaves_and_restarts) {
  const auto seed = shoal::test::test_seed();
  constexpr std::size_t kNodes = 12;
  SimCluster c(kNodes, seed);
  auto rng = shoal::test::rng_for(seed);
  c.join_all(0);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 10'000), "seed=" << seed);
  std::vector<bool> gone(kNodes, false);  // killed, or left and closed
  const auto up = [&] {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < kNodes; ++i)
      if (!gone[i]) out.push_back(i);
    return out;
  };
  for (int op = 0; op < 8; ++op) {
    const std::vector<std::size_t> running = up();
    const std::size_t pick = rng() % 3;
    if (pick == 2 && running.size() < kNodes) {
      std::size_t i = rng() % kNodes;
      while (!gone[i])
        i = (i + 1) % kNodes;
      c.restart(i, {running[rng() % running.size()]});
      gone[i] = false;
    } else if (running.size() > kNodes / 2) {
      const std::size_t i = running[rng() % running.size()];
      if (pick == 0) {
        c.kill(i);
      } else {
        // Closing at once races the leave against the crash's death notices.
        c.membership(i).leave(c.now());
        c.settle(i);
        c.run_for(std::array<std::uint64_t, 3>{0, 100, 500}[rng() % 3]);
        c.kill(i);
      }
      gone[i] = true;
    }
    c.run_for(rng() % 1'500);
  }
  // Each member as one node sees it: its life and status, by name.
  const auto view_of = [&](std::size_t i) {
    std::map<std::string, std::pair<std::uint64_t, MemberStatus>> view;
    for (const auto& [name, m] : c.membership(i).members())
      view[name] = {m.creation, m.status};
    return view;
  };
  const auto agree = [&] {
    const std::vector<std::size_t> running = up();
    for (std::size_t i : running) {
      const auto mine = view_of(i);
      for (std::size_t j : running) {
        const auto theirs = view_of(j);
        for (const auto& [name, life] : mine) {
          auto it = theirs.find(name);
          if (it == theirs.end() ? life.second == MemberStatus::alive : it->second != life)
            return false;
        }
      }
    }
    return true;
  };
  // Quiet: nobody suspected, and every member seen alive is a running life.
  const auto quiet = [&] {
    std::map<std::string, std::uint64_t> lives;
    for (std::size_t i : up())
      lives[c.name(i)] = c.membership(i).member(c.name(i))->creation;
    for (std::size_t i : up()) {
      for (const auto& [name, m] : c.membership(i).members()) {
        if (m.status == MemberStatus::suspect) return false;
        if (m.status == MemberStatus::alive &&
            (!lives.contains(name) || lives.at(name) != m.creation))
          return false;
      }
    }
    return true;
  };
  BOOST_TEST_REQUIRE(c.wait_until(quiet, 30'000), "seed=" << seed);
  // From here every gone life's status is final, and only a leave can still replace a death: a
  // moment of agreement lasts. A node that missed the leave's gossip has it by push-pull.
  const bool agreed = c.wait_until(agree, 2 * MembershipConfig{}.push_pull_interval_ms);
  if (!agreed) {
    for (std::size_t i : up()) {
      std::ostringstream line;
      for (const auto& [name, life] : view_of(i))
        line << " " << name << "/" << life.first << ":" << status_name(life.second);
      BOOST_TEST_MESSAGE("n" << i << " sees" << line.str());
    }
  }
  BOOST_TEST(agreed, "seed=" << seed);
}

BOOST_AUTO_TEST_CASE(upper_layer_payloads_reach_one_member_or_all) {
  const auto seed = shoal::test::test_seed();
  SimCluster c(30, seed);
  c.join_all(0);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 10'000));
  BOOST_TEST(c.membership(3).send_user(c.now(), "n7", "direct"));
  BOOST_TEST(!c.membership(3).send_user(c.now(), "nobody", "direct"));
  BOOST_TEST(
      !c.membership(3).broadcast_user(c.now(), std::string(2000, 'x')));  // cannot fit a packet
  BOOST_TEST(c.membership(0).broadcast_user(c.now(), "to-everyone"));
  auto everyone_has_it = [&] {
    for (std::size_t i = 1; i < c.size(); ++i) {
      bool got = false;
      for (const auto& m : c.user_messages()[i])
        got |= m.payload == "to-everyone" && m.from == "n0";
      if (!got) return false;
    }
    return true;
  };
  BOOST_TEST(c.wait_until(everyone_has_it, 5'000), "seed=" << seed);
  std::size_t direct = 0;
  for (const auto& m : c.user_messages()[7])
    direct += m.payload == "direct" ? 1 : 0;
  BOOST_TEST(direct == 1u);
}

// The model that stands in for most nodes at 10,000 (cluster/sim/model_cluster.h) must spread
// news as the real core does. The same runs with every node real and with most modelled: the
// medians of newcomer -> all and of a kill's first detection -> all agree within half a probe
// period, probe traffic is the same, and no modelled node meets what the model leaves out. At
// 150 nodes deaths spread by gossip; at 100 (up to 128 live peers) the node that confirms a crash
// also tells every peer directly.
BOOST_AUTO_TEST_CASE(a_modelled_cluster_spreads_news_as_the_real_one_does) {
  const auto seed = shoal::test::test_seed();
  constexpr std::size_t kRuns = 8;
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  const double period = static_cast<double>(MembershipConfig{}.probe_interval_ms);
  for (const std::size_t n : {std::size_t{150}, std::size_t{100}}) {
    std::array<std::vector<double>, 2> newcomer, spread, idle;
    for (std::size_t kind = 0; kind < 2; ++kind) {
      for (std::size_t r = 0; r < kRuns; ++r) {
        shoal::cluster::sim::HybridOptions options;
        options.n = n;
        options.real = kind == 0 ? 0 : 10;
        options.seed = seed + r;
        const auto run = shoal::cluster::sim::run_hybrid(options);
        BOOST_TEST_REQUIRE(run.real_nodes == (kind == 0 ? n : 10u));
        BOOST_TEST_REQUIRE(
            (run.drained && run.newcomer_seen && run.quiet_before_kill && run.kill_seen),
            "seed=" << options.seed << " n=" << n << " real=" << options.real);
        BOOST_TEST(run.unmodelled == 0u, "seed=" << options.seed << " n=" << n);
        newcomer[kind].push_back(static_cast<double>(run.newcomer_ms));
        spread[kind].push_back(static_cast<double>(run.kill_ms - run.kill_first_ms));
        idle[kind].push_back(run.idle_msgs);
      }
    }
    BOOST_TEST(std::abs(median(newcomer[1]) - median(newcomer[0])) <= period / 2,
               "seed=" << seed << " n=" << n << " newcomer p50: real " << median(newcomer[0])
                       << " ms, model " << median(newcomer[1]) << " ms");
    BOOST_TEST(std::abs(median(spread[1]) - median(spread[0])) <= period / 2,
               "seed=" << seed << " n=" << n << " kill first->all p50: real " << median(spread[0])
                       << " ms, model " << median(spread[1]) << " ms");
    BOOST_TEST(std::abs(median(idle[1]) - median(idle[0])) <= 0.2,
               "seed=" << seed << " n=" << n << " msgs/node/s: real " << median(idle[0])
                       << ", model " << median(idle[1]));
  }
}

BOOST_AUTO_TEST_CASE(same_seed_replays_the_same_trace) {
  const auto seed = shoal::test::test_seed();
  auto run = [&] {
    SimNetConfig net;
    net.loss = 0.05;
    SimCluster c(12, seed, MembershipConfig{}, net);
    c.join_all(0);
    c.run_for(3'000);
    c.kill(5);
    c.run_for(3'000);
    return c.trace_hash();
  };
  BOOST_TEST(run() == run());
}

BOOST_AUTO_TEST_SUITE_END()

// Large clusters: minutes under the sanitizers, so CI runs them in the Release build only
// (ctest label "large").
BOOST_AUTO_TEST_SUITE(membership_sim_large)

BOOST_AUTO_TEST_CASE(thousand_nodes_converge_within_a_bounded_number_of_periods) {
  const auto seed = shoal::test::test_seed();
  const MembershipConfig config;
  SimCluster c(1000, seed, config);
  c.join_all(0);
  const bool ok = c.wait_until([&] { return c.converged(); }, 60'000, 50);
  const double periods =
      static_cast<double>(c.now()) / static_cast<double>(config.probe_interval_ms);
  BOOST_TEST_MESSAGE("1000 nodes converged after " << c.now() << " ms = " << periods
                                                   << " probe periods (virtual)");
  BOOST_TEST(ok, "seed=" << seed);
  BOOST_TEST(periods <= 100.0);
  BOOST_TEST(false_deaths(c) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
