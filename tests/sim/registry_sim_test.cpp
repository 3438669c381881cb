// The registry over a simulated cluster (membership + replication). Every case prints its seed.

#include <boost/test/unit_test.hpp>
#include <memory>
#include <ostream>

#include "cluster/sim/sim_cluster.h"
#include "crdt/aw_lww_map.h"
#include "registry/registry.h"
#include "tests/support/seed.h"
#include "tests/support/sim_stacks.h"

using namespace shoal;
using cluster::MembershipConfig;
using cluster::MemberStatus;
using cluster::sim::SimCluster;
using cluster::sim::SimNetConfig;
using registry::Pid;
using registry::Registry;
using registry::RegistryEvent;
using registry::RegistryEventKind;

namespace shoal::registry {
// For Boost.Test's messages.
std::ostream& operator<<(std::ostream& os, const Pid& pid) {
  return os << pid.to_string();
}
}  // namespace shoal::registry

namespace {

// A simulated cluster of stacks (tests/support/sim_stacks.h), as the agents run them: each hands
// its registry the live view, its changes, and purges dead owners' names by itself.
struct World : shoal::test::SimStacks {
  World(std::size_t n, std::uint64_t seed, registry::RegistryLimits limits = {})
      : SimStacks(n, seed, [&] {
          supervisor::StackConfig config;
          config.registry = limits;
          return config;
        }()) {}
  Pid pid(std::size_t i, std::uint64_t id) {
    return Pid{c.name(i), c.membership(i).creation(), id};
  }
  // Entries (names and group memberships) in node i's map, and lives marked presumed dead.
  std::size_t entries(std::size_t i) {
    std::size_t n = 0;
    c.replicator(i).state().scan("", [&](std::string_view key, const crdt::VersionView&) {
      n += key.starts_with("n/") || key.starts_with("g/");
      return true;
    });
    return n;
  }
  std::size_t markers(std::size_t i) {
    std::size_t n = 0;
    c.replicator(i).state().scan("p/", [&](std::string_view, const crdt::VersionView&) {
      ++n;
      return true;
    });
    return n;
  }
  // Entries the running stacks purged for dead owners, so far.
  std::uint64_t purged() {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < c.size(); ++i) {
      if (c.running(i)) n += stack(i).stats().purged;
    }
    return n;
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(registry_sim)

BOOST_AUTO_TEST_CASE(a_name_registered_on_one_node_is_found_on_every_other) {
  World w(5, shoal::test::test_seed());
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  BOOST_TEST_REQUIRE(w.reg(2).register_name(w.c.now(), "job-7", w.pid(2, 42), "meta").has_value());
  w.settle_all();
  BOOST_TEST(w.wait(
      [&] {
        for (std::size_t i = 0; i < 5; ++i) {
          auto where = w.reg(i).whereis("job-7");
          if (!where || where->pid != w.pid(2, 42)) return false;
        }
        return true;
      },
      5'000));
  // Taken: another node cannot register it, and is told who holds it.
  auto refused = w.reg(4).register_name(w.c.now(), "job-7", w.pid(4, 1));
  BOOST_TEST_REQUIRE(!refused.has_value());
  BOOST_TEST((refused.error().code == registry::RegisterErrc::already_registered));
  BOOST_TEST(refused.error().holder.value() == w.pid(2, 42));
  bool seen = false;
  for (const auto& e : w.events(0))
    seen |= e.kind == RegistryEventKind::registered && e.name == "job-7";
  BOOST_TEST(seen);
}

BOOST_AUTO_TEST_CASE(a_killed_nodes_names_vanish_from_reads_and_are_purged) {
  World w(5, shoal::test::test_seed());
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  for (std::uint64_t k = 0; k < 100; ++k) {
    BOOST_TEST_REQUIRE(
        w.reg(3).register_name(w.c.now(), "n3/" + std::to_string(k), w.pid(3, k)).has_value());
  }
  w.settle_all();
  BOOST_TEST_REQUIRE(w.wait([&] { return w.reg(0).names("n3/", 1000).size() == 100u; }, 5'000));
  const std::uint64_t purged_before = w.purged();
  w.kill(3);
  // Reads stop answering as soon as the death is known, before any removal spreads.
  BOOST_TEST(w.wait(
      [&] { return w.reg(0).names("n3/", 1000).empty() && !w.reg(0).whereis("n3/5"); }, 10'000));
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.all_see(3, MemberStatus::dead); }, 10'000));
  // Survivors purge on every membership change and periodically; the node responsible for n3
  // removes its entries, and the removal reaches every map. The responsible node may purge before
  // all of n3's entries reached it: the next run catches up. n3 failed (it did not leave): its
  // life is marked presumed dead, in case it is alive on the far side of a partition and returns.
  BOOST_TEST(w.wait(
      [&] {
        for (std::size_t i = 0; i < 5; ++i) {
          if (i != 3 && (w.entries(i) != 0 || w.markers(i) != 1)) return false;
        }
        return true;
      },
      10'000));
  const std::uint64_t purged = w.purged() - purged_before;
  BOOST_TEST(purged >= 100u);
  BOOST_TEST(purged < 200u);  // one node did it, not every survivor
  // n3 comes back as a new life: the old life is gone for certain, and so are its markers.
  w.restart(3, {0});
  BOOST_TEST(w.wait(
      [&] {
        for (std::size_t i = 0; i < 5; ++i) {
          if (w.markers(i) != 0 || w.entries(i) != 0) return false;
        }
        return true;
      },
      20'000));
}

BOOST_AUTO_TEST_CASE(markers_of_a_life_that_never_returns_expire) {
  registry::RegistryLimits limits;
  limits.presumed_dead_keep_ms = 30'000;
  World w(4, shoal::test::test_seed(), limits);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  BOOST_TEST_REQUIRE(w.reg(2).register_name(w.c.now(), "gone", w.pid(2, 1)).has_value());
  w.settle_all();
  BOOST_TEST_REQUIRE(w.wait([&] { return w.reg(0).whereis("gone").has_value(); }, 5'000));
  w.c.kill(2);
  const std::uint64_t killed = w.c.now();
  BOOST_TEST_REQUIRE(
      w.wait([&] { return w.entries(0) == 0 && w.markers(0) == 1 && w.markers(1) == 1; }, 15'000));
  // Kept until keep_ms after the purge, then removed everywhere.
  BOOST_TEST(
      w.wait([&] { return w.markers(0) == 0 && w.markers(1) == 0 && w.markers(3) == 0; }, 60'000));
  BOOST_TEST(w.c.now() - killed >= 30'000u);
}

// A partition longer than the failure detector: each side declares the other failed and purges
// its names. When it heals, each owner puts back what it still holds; what it removed during the
// split stays removed. (The fault lab's ap partition runs the same with real agents.)
BOOST_AUTO_TEST_CASE(names_purged_across_a_partition_come_back_when_it_heals) {
  const auto seed = shoal::test::test_seed();
  World w(5, seed);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  for (std::size_t i = 0; i < 5; ++i) {
    for (std::uint64_t k = 0; k < 20; ++k) {
      const std::string name = "s" + std::to_string(i) + "-" + std::to_string(k);
      BOOST_TEST_REQUIRE(w.reg(i).register_name(w.c.now(), name, w.pid(i, k)).has_value());
    }
    BOOST_TEST_REQUIRE(w.reg(i).join(w.c.now(), "all", w.pid(i, 100)).has_value());
  }
  w.settle_all();
  BOOST_TEST_REQUIRE(w.wait([&] { return w.reg(4).names("s", 1000).size() == 100u; }, 5'000));

  const std::vector<std::size_t> big{0, 1, 2}, small{3, 4};
  w.c.partition({big, small});
  const auto sees_dead = [&](std::size_t i, std::size_t j) {
    const auto* m = w.c.membership(i).member(w.c.name(j));
    return m != nullptr && m->status == MemberStatus::dead;
  };
  BOOST_TEST_REQUIRE(w.wait(
      [&] {
        // Each side has purged the other's names (and group memberships).
        return sees_dead(0, 3) && sees_dead(3, 0) && w.entries(0) == 63u && w.entries(3) == 42u;
      },
      30'000));
  // During the split, n1 unregisters one of its names and n4 leaves the group.
  BOOST_TEST_REQUIRE(w.reg(1).unregister(w.c.now(), "s1-7"));
  BOOST_TEST_REQUIRE(w.reg(4).leave(w.c.now(), "all", w.pid(4, 100)));
  w.settle_all();
  w.c.heal();
  BOOST_TEST(w.wait(
                 [&] {
                   if (!w.c.converged()) return false;
                   for (std::size_t i = 0; i < 5; ++i) {
                     if (w.reg(i).names("s", 1000).size() != 99u) return false;
                     if (w.reg(i).members("all").size() != 4u) return false;
                     if (w.markers(i) != 0) return false;
                   }
                   return true;
                 },
                 60'000),
             "seed=" << seed);
  for (std::size_t i = 0; i < 5; ++i) {
    BOOST_TEST(!w.reg(i).whereis("s1-7"));
    auto where = w.reg(i).whereis("s3-5");
    BOOST_TEST((where && where->pid == w.pid(3, 5)));
  }
  std::uint64_t restored = 0;
  for (std::size_t i = 0; i < 5; ++i)
    restored += w.reg(i).restored();
  BOOST_TEST_MESSAGE("entries put back by their owners: " << restored);
  BOOST_TEST(restored >= 103u);  // 105 entries purged on one side or the other, less 2 removed
}

BOOST_AUTO_TEST_CASE(pids_from_before_a_restart_never_answer) {
  World w(4, shoal::test::test_seed());
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  const Pid old = w.pid(1, 9);
  BOOST_TEST_REQUIRE(w.reg(1).register_name(w.c.now(), "svc", old).has_value());
  w.settle_all();
  BOOST_TEST_REQUIRE(w.wait([&] { return w.reg(0).whereis("svc").has_value(); }, 5'000));
  w.c.kill(1);
  w.c.run_for(20);
  w.restart(1, {0});  // same name, new creation: the old pid is gone
  BOOST_TEST(w.wait(
      [&] {
        const auto* m = w.c.membership(0).member("n1");
        return m != nullptr && m->creation == w.c.membership(1).creation() &&
               !w.reg(0).whereis("svc");
      },
      10'000));
}

// One run of the case below.
static void conflicting_registrations_heal_to_the_latest(std::uint64_t seed) {
  World w(6, seed);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  w.c.partition({{0, 1, 2}, {3, 4, 5}});
  w.c.run_for(200);
  BOOST_TEST_REQUIRE(w.reg(1).register_name(w.c.now(), "leader", w.pid(1, 1)).has_value());
  w.c.run_for(3);
  BOOST_TEST_REQUIRE(w.reg(4).register_name(w.c.now(), "leader", w.pid(4, 1)).has_value());
  w.settle_all();
  w.c.run_for(3'000);
  w.c.heal();
  BOOST_TEST(w.wait(
                 [&] {
                   if (!w.c.converged()) return false;
                   std::optional<Pid> first;
                   for (std::size_t i = 0; i < 6; ++i) {
                     auto where = w.reg(i).whereis("leader");
                     if (!where) return false;
                     if (!first) first = where->pid;
                     if (where->pid != *first) return false;
                   }
                   return true;
                 },
                 60'000),
             "seed=" << seed);
  // The loser's node heard that its pid lost the name, so that it can stop whatever it runs
  // under it: a conflict naming the winner (when both versions met in its map), the name moving
  // to the winner, or its pid's registration removed (by the other side's purge) and the name
  // then registered to the winner. Which comes first depends on how fast each side declared the
  // other dead.
  const Pid winner = w.reg(0).whereis("leader")->pid;
  const std::size_t loser_node = winner == w.pid(4, 1) ? 1 : 4;
  const Pid loser = w.pid(loser_node, 1);
  bool told = false;
  bool lost = false;
  std::string heard;
  for (const auto& e : w.events(loser_node)) {
    if (e.name != "leader") continue;
    heard += std::string(registry::event_name(e.kind)) + " ";
    told |= (e.kind == RegistryEventKind::conflict || e.kind == RegistryEventKind::moved) &&
            e.pid == winner;
    lost |= e.kind == RegistryEventKind::unregistered && e.previous == loser;
    told |= lost && e.kind == RegistryEventKind::registered && e.pid == winner;
  }
  BOOST_TEST(told, "n" << loser_node << " heard: " << heard << "; seed=" << seed);
  // The latest claim won.
  BOOST_TEST((winner == w.pid(4, 1)), "seed=" << seed);
}

// Eight runs: which side purges the other first, and when each puts its names back, differ from
// seed to seed.
BOOST_AUTO_TEST_CASE(conflicting_registrations_in_a_partition_heal_to_one_winner) {
  const auto base = shoal::test::test_seed();
  for (std::uint64_t k = 0; k < 8; ++k)
    conflicting_registrations_heal_to_the_latest(base + k);
}

// Two claims made at once, with no partition: both versions reach every node and the later wins.
// When the winner lets go (its process ended), the other claim, still held, holds the name again
// everywhere: a release removes only its own pid's versions.
BOOST_AUTO_TEST_CASE(a_released_winner_leaves_the_name_to_the_concurrent_claim) {
  const auto seed = shoal::test::test_seed();
  World w(5, seed);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  BOOST_TEST_REQUIRE(w.reg(1).register_name(w.c.now(), "leader", w.pid(1, 7)).has_value());
  BOOST_TEST_REQUIRE(w.reg(3).register_name(w.c.now(), "leader", w.pid(3, 9)).has_value());
  w.settle_all();
  const auto everywhere = [&](const std::optional<Pid>& holder, std::size_t versions) {
    for (std::size_t i = 0; i < 5; ++i) {
      auto where = w.reg(i).whereis("leader");
      if (where.has_value() != holder.has_value()) return false;
      if (where && where->pid != *holder) return false;
      if (w.c.replicator(i).state().versions("n/leader") != versions) return false;
    }
    return true;
  };
  std::optional<Pid> first;
  BOOST_TEST_REQUIRE(w.wait(
                         [&] {
                           first = w.reg(0).whereis("leader").transform(
                               [](const registry::Registration& r) { return r.pid; });
                           return first && everywhere(first, 2);
                         },
                         10'000),
                     "seed=" << seed);
  const bool one_won = *first == w.pid(1, 7);
  const std::size_t winner_node = one_won ? 1 : 3;
  const Pid loser = one_won ? w.pid(3, 9) : w.pid(1, 7);
  BOOST_TEST_MESSAGE("seed=" << seed << ": " << first->to_string() << " won over "
                             << loser.to_string());
  BOOST_TEST_REQUIRE(w.reg(winner_node).release(w.c.now(), "leader", *first));
  BOOST_TEST(!w.reg(winner_node).release(w.c.now(), "leader", *first));  // nothing left of it
  w.settle_all();
  BOOST_TEST(w.wait([&] { return everywhere(loser, 1); }, 10'000), "seed=" << seed);
  // And when the loser lets go too, the name is free everywhere.
  BOOST_TEST_REQUIRE(w.reg(one_won ? 3 : 1).release(w.c.now(), "leader", loser));
  w.settle_all();
  BOOST_TEST(w.wait([&] { return everywhere(std::nullopt, 0); }, 10'000), "seed=" << seed);
}

BOOST_AUTO_TEST_CASE(watchers_hear_the_names_they_watch_until_they_stop) {
  World w(3, shoal::test::test_seed());
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  std::vector<std::string> heard;
  const auto id = w.reg(0).watch("job-", [&](const RegistryEvent& e) {
    heard.push_back(std::string(registry::event_name(e.kind)) + ":" + e.name);
  });
  BOOST_TEST_REQUIRE(w.reg(2).register_name(w.c.now(), "job-1", w.pid(2, 1)).has_value());
  BOOST_TEST_REQUIRE(w.reg(2).register_name(w.c.now(), "other", w.pid(2, 2)).has_value());
  w.settle_all();
  BOOST_TEST(w.wait([&] { return heard.size() == 1u; }, 5'000));
  BOOST_TEST(heard.at(0) == "registered:job-1");
  BOOST_TEST(w.reg(0).unwatch(id));
  BOOST_TEST(!w.reg(0).unwatch(id));
  BOOST_TEST(w.reg(2).unregister(w.c.now(), "job-1"));
  w.settle_all();
  BOOST_TEST(w.wait([&] { return !w.reg(0).whereis("job-1"); }, 5'000));
  BOOST_TEST(heard.size() == 1u);
}

BOOST_AUTO_TEST_CASE(groups_hold_many_pids) {
  World w(3, shoal::test::test_seed());
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  for (std::size_t i = 0; i < 3; ++i) {
    BOOST_TEST_REQUIRE(w.reg(i).join(w.c.now(), "workers", w.pid(i, 1)).has_value());
  }
  BOOST_TEST(w.reg(0).leave(w.c.now(), "workers", w.pid(0, 1)));
  w.settle_all();
  BOOST_TEST(w.wait([&] { return w.reg(2).members("workers").size() == 2u; }, 5'000));
}

BOOST_AUTO_TEST_CASE(bounds_are_enforced_with_clear_errors) {
  registry::RegistryLimits limits;
  limits.max_entries_per_node = 3;
  World w(1, shoal::test::test_seed(), limits);
  auto& r = w.reg(0);
  auto too_long = r.register_name(0, std::string(300, 'x'), w.pid(0, 1));
  BOOST_TEST((too_long.error().code == registry::RegisterErrc::bad_name));
  auto meta = r.register_name(0, "m", w.pid(0, 1), std::string(2000, 'm'));
  BOOST_TEST((meta.error().code == registry::RegisterErrc::meta_too_large));
  for (int k = 0; k < 3; ++k) {
    BOOST_TEST(r.register_name(0, "k" + std::to_string(k), w.pid(0, k)).has_value());
    w.settle(0);
    w.c.run_for(1);  // the stack's turn counts the entry against the limit
  }
  auto full = r.register_name(0, "k3", w.pid(0, 3));
  BOOST_TEST_REQUIRE(!full.has_value());
  BOOST_TEST((full.error().code == registry::RegisterErrc::too_many_entries));
  BOOST_TEST(Pid::parse(w.pid(0, 7).to_string()).value() == w.pid(0, 7));
  BOOST_TEST(!Pid::parse("<bad>").has_value());
}

BOOST_AUTO_TEST_SUITE_END()
