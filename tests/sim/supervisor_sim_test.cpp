// The distributed supervisor over a simulated cluster (membership + replication + registry), with a
// fake runtime per node that starts and stops children at once. Every case prints its seed.

#include <boost/test/unit_test.hpp>
#include <map>
#include <memory>
#include <set>

#include "cluster/sim/sim_cluster.h"
#include "registry/registry.h"
#include "supervisor/supervisor.h"
#include "tests/support/seed.h"

using namespace shoal;
using cluster::MembershipConfig;
using cluster::MemberStatus;
using cluster::sim::SimCluster;
using cluster::sim::SimNetConfig;
using registry::Registry;
using supervisor::ChildSpec;
using supervisor::Supervisor;

namespace {

// What a node's runtime runs, and what it was asked to do.
struct FakeRuntime {
  std::map<std::string, std::uint64_t> running;  // name -> instance id
  std::map<std::string, int> starts;
  std::map<std::string, int> stops;
  std::map<std::string, std::optional<std::string>> last_checkpoint;  // handed at the last start
  std::set<std::string> crash_on_start;                               // these exit at once
};

struct World {
  SimCluster c;
  std::vector<std::unique_ptr<Registry>> regs;
  std::vector<std::unique_ptr<Supervisor>> sups;
  std::vector<FakeRuntime> rt;
  std::vector<supervisor::View> views;

  supervisor::SupervisorConfig config;

  World(std::size_t n, std::uint64_t seed, supervisor::SupervisorConfig sup_config = {})
      : c(n, seed, MembershipConfig{},
          [] {
            SimNetConfig net;
            net.replication = cluster::ReplicatorConfig{};
            net.record_changes = true;
            return net;
          }()),
        config(sup_config) {
    for (std::size_t i = 0; i < n; ++i)
      make(i);
    rt.resize(n);
    views.resize(n);
    c.join_all(0);
  }
  void make(std::size_t i) {
    if (regs.size() <= i) {
      regs.resize(i + 1);
      sups.resize(i + 1);
    }
    regs[i] = std::make_unique<Registry>(c.replicator(i), c.name(i));
    sups[i] = std::make_unique<Supervisor>(c.replicator(i), *regs[i], c.name(i),
                                           c.node(i).creation(), config);
  }
  // One pass of what the agent's loop does for node i.
  void step(std::size_t i) {
    Supervisor& s = *sups[i];
    c.settle(i);
    supervisor::View view;
    std::map<std::string, std::uint64_t, std::less<>> live;
    for (const auto& [name, m] : c.node(i).members()) {
      if (m.status == MemberStatus::alive || m.status == MemberStatus::suspect) {
        view[name] = supervisor::MemberInfo{m.creation, m.tags};
        live[name] = m.creation;
      }
    }
    regs[i]->set_members(live);
    bool view_changed = view.size() != views[i].size();
    for (auto a = view.begin(), b = views[i].begin(); !view_changed && a != view.end(); ++a, ++b)
      view_changed = a->first != b->first || a->second.creation != b->second.creation;
    if (view_changed) {
      views[i] = view;
      s.set_members(c.now(), std::move(view));
    }
    for (int round = 0; round < 8; ++round) {
      bool busy = false;
      for (const auto& change : c.take_changes(i)) {
        busy = true;
        std::vector<registry::RegistryEvent> events;
        regs[i]->on_change(c.now(), change, events);
        s.on_change(c.now(), change);
        for (const auto& e : events)
          s.on_registry_event(c.now(), e);
      }
      s.on_timer(c.now());
      std::vector<supervisor::SupervisorEffect> effects;
      s.take_effects(effects);
      for (auto& e : effects) {
        busy = true;
        if (auto* start = std::get_if<supervisor::StartChild>(&e)) {
          FakeRuntime& r = rt[i];
          ++r.starts[start->spec.name];
          r.last_checkpoint[start->spec.name] = start->checkpoint;
          if (r.crash_on_start.contains(start->spec.name)) {
            s.on_exited(c.now(), start->spec.name, start->id, false, "exit status 1");
          } else {
            r.running[start->spec.name] = start->id;
            s.on_started(c.now(), start->spec.name, start->id);
          }
        } else if (auto* stop = std::get_if<supervisor::StopChild>(&e)) {
          ++rt[i].stops[stop->name];
          rt[i].running.erase(stop->name);
          s.on_exited(c.now(), stop->name, stop->id, true, "stopped");
        }
      }
      c.replicator(i).flush(c.now());
      c.settle(i);
      if (!busy) break;
    }
  }
  void feed() {
    for (std::size_t i = 0; i < c.size(); ++i) {
      if (c.running(i)) step(i);
    }
  }
  bool wait(const std::function<bool()>& pred, std::uint64_t ms) {
    return c.wait_until(
        [&] {
          feed();
          return pred();
        },
        ms, 10);
  }
  void kill(std::size_t i) {
    c.kill(i);
    rt[i].running.clear();  // a child never outlives its agent
  }
  // How many copies of `name` run on the running nodes in `among` (all running nodes if empty).
  int copies(const std::string& name, const std::vector<std::size_t>& among = {}) const {
    int n = 0;
    for (std::size_t i = 0; i < c.size(); ++i) {
      if (!c.running(i)) continue;
      bool listed = among.empty();
      for (std::size_t a : among)
        listed = listed || a == i;
      if (!listed) continue;
      n += rt[i].running.contains(name) ? 1 : 0;
    }
    return n;
  }
  // Every child runs exactly once, and every running node's registry answers the live copy.
  bool settled(const std::vector<std::string>& names) {
    for (const std::string& name : names) {
      if (copies(name) != 1) return false;
      for (std::size_t i = 0; i < c.size(); ++i) {
        if (!c.running(i)) continue;
        auto where = regs[i]->whereis(name);
        if (!where) return false;
        const std::size_t runner = runner_of(name);
        if (where->pid.node != c.name(runner) || where->pid.id != rt[runner].running.at(name))
          return false;
      }
    }
    return true;
  }
  std::size_t runner_of(const std::string& name) const {
    for (std::size_t i = 0; i < c.size(); ++i) {
      if (c.running(i) && rt[i].running.contains(name)) return i;
    }
    return c.size();
  }
  int total(const std::map<std::string, int> FakeRuntime::*field, const std::string& name) const {
    int n = 0;
    for (const FakeRuntime& r : rt) {
      auto it = (r.*field).find(name);
      if (it != (r.*field).end()) n += it->second;
    }
    return n;
  }
};

supervisor::SupervisorConfig quorum_of(std::size_t n) {
  supervisor::SupervisorConfig config;
  config.mode = supervisor::Mode::quorum;
  config.expect = n;
  const MembershipConfig m;
  config.lease_ms =
      supervisor::quorum_lease_ms(n, m.probe_interval_ms, m.awareness_max, m.suspicion_mult,
                                  m.suspicion_max_mult, config.fence_after_ms);
  return config;
}

ChildSpec sleeper(const std::string& name) {
  ChildSpec spec;
  spec.name = name;
  spec.argv = {"sleep", "3600"};
  return spec;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(supervisor_sim)

BOOST_AUTO_TEST_CASE(a_killed_nodes_children_restart_once_each_on_survivors_and_no_other_moves) {
  const auto seed = shoal::test::test_seed();
  World w(5, seed);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  w.feed();
  std::vector<std::string> names;
  for (int k = 0; k < 1000; ++k) {
    names.push_back("job-" + std::to_string(k));
    BOOST_TEST_REQUIRE(w.sups[0]->add(w.c.now(), sleeper(names.back())).has_value());
  }
  BOOST_TEST_REQUIRE(w.wait([&] { return w.settled(names); }, 20'000), "seed=" << seed);
  // Rendezvous placement spreads them: each node runs a fair share.
  for (std::size_t i = 0; i < 5; ++i) {
    BOOST_TEST_MESSAGE("node " << i << " runs " << w.rt[i].running.size() << " at t=" << w.c.now());
    BOOST_TEST(w.rt[i].running.size() > 120u);
  }
  std::map<std::string, int> starts_before;
  std::set<std::string> orphans;
  for (const std::string& name : names) {
    starts_before[name] = w.total(&FakeRuntime::starts, name);
    BOOST_TEST_REQUIRE(starts_before[name] == 1);  // one start each so far
    if (w.runner_of(name) == 3) orphans.insert(name);
  }
  w.kill(3);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.settled(names); }, 20'000), "seed=" << seed);
  int moved_others = 0;
  for (const std::string& name : names) {
    const int new_starts = w.total(&FakeRuntime::starts, name) - starts_before[name];
    if (orphans.contains(name)) {
      BOOST_TEST(new_starts == 1, name << " restarted " << new_starts << " times; seed=" << seed);
    } else {
      moved_others += new_starts;
    }
    BOOST_TEST(w.total(&FakeRuntime::stops, name) == 0);
  }
  BOOST_TEST(moved_others == 0, "children of live nodes moved; seed=" << seed);
  BOOST_TEST(orphans.size() > 120u);
  std::uint64_t failovers = 0;
  for (std::size_t i : {0, 1, 2, 4})
    failovers += w.sups[i]->stats().failovers;
  BOOST_TEST(failovers == orphans.size());
}

BOOST_AUTO_TEST_CASE(a_crash_looping_child_is_marked_failed_everywhere) {
  const auto seed = shoal::test::test_seed();
  World w(3, seed);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  for (auto& r : w.rt)
    r.crash_on_start.insert("crashy");
  w.feed();
  ChildSpec spec = sleeper("crashy");
  spec.max_restarts = 3;
  spec.window_ms = 60'000;
  BOOST_TEST_REQUIRE(w.sups[1]->add(w.c.now(), spec).has_value());
  BOOST_TEST_REQUIRE(w.wait(
      [&] {
        for (std::size_t i = 0; i < 3; ++i) {
          if (!w.sups[i]->failed("crashy")) return false;
        }
        return true;
      },
      20'000));
  // The first start and three restarts (with backoff), then failed: nobody starts it again.
  BOOST_TEST(w.total(&FakeRuntime::starts, "crashy") == 4, "seed=" << seed);
  w.c.run_for(5'000);
  w.feed();
  BOOST_TEST(w.total(&FakeRuntime::starts, "crashy") == 4);
  const auto children = w.sups[2]->children();
  BOOST_TEST_REQUIRE(children.size() == 1u);
  BOOST_TEST(children[0].failed);
  // Added anew, it runs again (it no longer crashes).
  for (auto& r : w.rt)
    r.crash_on_start.clear();
  BOOST_TEST_REQUIRE(w.sups[0]->add(w.c.now(), spec).has_value());
  BOOST_TEST(w.wait([&] { return w.settled({"crashy"}); }, 10'000));
}

BOOST_AUTO_TEST_CASE(a_restarted_copy_is_handed_the_last_checkpoint) {
  const auto seed = shoal::test::test_seed();
  World w(3, seed);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  w.feed();
  BOOST_TEST_REQUIRE(w.sups[0]->add(w.c.now(), sleeper("counter")).has_value());
  BOOST_TEST_REQUIRE(w.wait([&] { return w.settled({"counter"}); }, 10'000));
  const std::size_t first = w.runner_of("counter");
  BOOST_TEST(!w.rt[first].last_checkpoint["counter"].has_value());  // none yet
  // Only the node running it may store its checkpoint.
  BOOST_TEST(!w.sups[(first + 1) % 3]->checkpoint(w.c.now(), "counter", "count=1").has_value());
  BOOST_TEST_REQUIRE(w.sups[first]->checkpoint(w.c.now(), "counter", "count=42").has_value());
  BOOST_TEST_REQUIRE(w.wait(
      [&] {
        for (std::size_t i = 0; i < 3; ++i) {
          if (w.sups[i]->checkpoint_of("counter") != std::optional<std::string>("count=42"))
            return false;
        }
        return true;
      },
      5'000));
  w.kill(first);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.settled({"counter"}); }, 20'000), "seed=" << seed);
  const std::size_t second = w.runner_of("counter");
  BOOST_TEST(second != first);
  BOOST_TEST((w.rt[second].last_checkpoint["counter"] == std::optional<std::string>("count=42")));
}

BOOST_AUTO_TEST_CASE(a_partition_runs_copies_on_both_sides_and_healing_leaves_one) {
  const auto seed = shoal::test::test_seed();
  World w(5, seed);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  w.feed();
  std::vector<std::string> names;
  for (int k = 0; k < 200; ++k) {
    names.push_back("svc-" + std::to_string(k));
    BOOST_TEST_REQUIRE(w.sups[0]->add(w.c.now(), sleeper(names.back())).has_value());
  }
  BOOST_TEST_REQUIRE(w.wait([&] { return w.settled(names); }, 20'000));
  const std::vector<std::size_t> left{0, 1, 2};
  const std::vector<std::size_t> right{3, 4};
  w.c.partition({left, right});
  // In ap mode each side runs every child once it has declared the other side dead.
  BOOST_TEST_REQUIRE(w.wait(
                         [&] {
                           for (const std::string& name : names) {
                             if (w.copies(name, left) != 1 || w.copies(name, right) != 1)
                               return false;
                           }
                           return true;
                         },
                         60'000),
                     "seed=" << seed);
  w.c.heal();
  // Membership re-merges; the registry picks one copy per name; the others stop.
  const bool healed = w.wait([&] { return w.c.converged() && w.settled(names); }, 60'000);
  if (!healed) {
    BOOST_TEST_MESSAGE("converged=" << w.c.converged());
    int shown = 0;
    for (const std::string& name : names) {
      if (w.settled({name}) || ++shown > 3) continue;
      std::string where;
      for (std::size_t i = 0; i < 5; ++i) {
        auto h = w.regs[i]->whereis(name);
        where += " n" + std::to_string(i) + (w.rt[i].running.contains(name) ? "(runs)" : "") +
                 "->" + (h ? h->pid.to_string() : "none");
      }
      BOOST_TEST_MESSAGE(name << " copies=" << w.copies(name) << where);
    }
  }
  BOOST_TEST_REQUIRE(healed, "seed=" << seed);
  for (const std::string& name : names)
    BOOST_TEST(w.copies(name) == 1);
}

BOOST_AUTO_TEST_CASE(removing_a_child_stops_it_and_frees_its_name) {
  const auto seed = shoal::test::test_seed();
  World w(3, seed);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  w.feed();
  BOOST_TEST_REQUIRE(w.sups[2]->add(w.c.now(), sleeper("temp")).has_value());
  BOOST_TEST_REQUIRE(w.wait([&] { return w.settled({"temp"}); }, 10'000));
  BOOST_TEST(w.sups[1]->remove(w.c.now(), "temp"));
  BOOST_TEST(w.wait(
                 [&] {
                   for (std::size_t i = 0; i < 3; ++i) {
                     if (w.regs[i]->whereis("temp") || !w.sups[i]->children().empty()) return false;
                   }
                   return w.copies("temp") == 0;
                 },
                 10'000),
             "seed=" << seed);
  BOOST_TEST(w.total(&FakeRuntime::stops, "temp") == 1);
}

BOOST_AUTO_TEST_CASE(a_draining_node_hands_its_children_over_without_a_gap) {
  const auto seed = shoal::test::test_seed();
  World w(5, seed);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  w.feed();
  std::vector<std::string> names;
  for (int k = 0; k < 300; ++k) {
    names.push_back("svc-" + std::to_string(k));
    BOOST_TEST_REQUIRE(w.sups[1]->add(w.c.now(), sleeper(names.back())).has_value());
  }
  BOOST_TEST_REQUIRE(w.wait([&] { return w.settled(names); }, 20'000));
  std::map<std::string, int> starts_before;
  std::set<std::string> leaving;
  for (const std::string& name : names) {
    starts_before[name] = w.total(&FakeRuntime::starts, name);
    if (w.runner_of(name) == 2) leaving.insert(name);
  }
  BOOST_TEST_REQUIRE(!leaving.empty());
  w.sups[2]->drain(w.c.now());
  // Every child keeps at least one copy at every step: the new one starts before the old stops.
  bool gap = false;
  BOOST_TEST_REQUIRE(w.wait(
                         [&] {
                           for (const std::string& name : names)
                             gap = gap || w.copies(name) == 0;
                           return w.sups[2]->drained() && w.settled(names);
                         },
                         20'000),
                     "seed=" << seed);
  BOOST_TEST(!gap, "a child had no copy during the handoff; seed=" << seed);
  BOOST_TEST(w.rt[2].running.empty());
  for (const std::string& name : names) {
    const int new_starts = w.total(&FakeRuntime::starts, name) - starts_before[name];
    BOOST_TEST(new_starts == (leaving.contains(name) ? 1 : 0), name << "; seed=" << seed);
  }
}

BOOST_AUTO_TEST_CASE(quorum_mode_never_runs_two_copies_through_a_partition_and_its_healing) {
  const auto seed = shoal::test::test_seed();
  World w(5, seed, quorum_of(5));
  BOOST_TEST_MESSAGE("lease_ms=" << w.config.lease_ms);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  w.feed();
  std::vector<std::string> names;
  for (int k = 0; k < 200; ++k) {
    names.push_back("svc-" + std::to_string(k));
    ChildSpec spec = sleeper(names.back());
    spec.shutdown_ms = 1'000;
    BOOST_TEST_REQUIRE(w.sups[0]->add(w.c.now(), spec).has_value());
  }
  // Sampled at every step of the simulation (10 ms), from now to the end.
  int most = 0;
  std::string doubled;
  auto wait = [&](const std::function<bool()>& pred, std::uint64_t ms) {
    return w.wait(
        [&] {
          for (const std::string& name : names) {
            const int n = w.copies(name);
            if (n > most) {
              most = n;
              doubled = name + " at t=" + std::to_string(w.c.now());
            }
          }
          return pred();
        },
        ms);
  };
  BOOST_TEST_REQUIRE(wait([&] { return w.settled(names); }, 20'000), "seed=" << seed);
  std::set<std::string> on_minority;
  for (const std::string& name : names) {
    const std::size_t r = w.runner_of(name);
    if (r == 3 || r == 4) on_minority.insert(name);
  }
  BOOST_TEST_REQUIRE(!on_minority.empty());
  const std::vector<std::size_t> majority{0, 1, 2};
  const std::vector<std::size_t> minority{3, 4};
  const std::uint64_t cut = w.c.now();
  w.c.partition({majority, minority});
  // The minority stops its children; the majority runs every child, each once.
  BOOST_TEST_REQUIRE(wait(
                         [&] {
                           for (const std::string& name : names) {
                             if (w.copies(name, majority) != 1 || w.copies(name, minority) != 0)
                               return false;
                           }
                           return true;
                         },
                         120'000),
                     "seed=" << seed);
  BOOST_TEST_MESSAGE("majority runs all " << names.size() << " children " << w.c.now() - cut
                                          << " ms after the cut");
  BOOST_TEST(w.sups[3]->stats().fenced + w.sups[4]->stats().fenced == on_minority.size());
  // Not before the lease: the minority's children started on the majority no earlier than
  // lease_ms after the cut.
  BOOST_TEST(w.c.now() - cut >= w.config.lease_ms);
  w.c.heal();
  BOOST_TEST_REQUIRE(wait([&] { return w.c.converged() && w.settled(names); }, 60'000),
                     "seed=" << seed);
  BOOST_TEST(most <= 1, "two copies of " << doubled << "; seed=" << seed);
}

BOOST_AUTO_TEST_CASE(quorum_mode_restarts_a_killed_nodes_children_after_the_lease_once_each) {
  const auto seed = shoal::test::test_seed();
  World w(5, seed, quorum_of(5));
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  w.feed();
  std::vector<std::string> names;
  for (int k = 0; k < 100; ++k) {
    names.push_back("job-" + std::to_string(k));
    ChildSpec spec = sleeper(names.back());
    spec.shutdown_ms = 500;
    BOOST_TEST_REQUIRE(w.sups[1]->add(w.c.now(), spec).has_value());
  }
  BOOST_TEST_REQUIRE(w.wait([&] { return w.settled(names); }, 20'000), "seed=" << seed);
  std::set<std::string> orphans;
  for (const std::string& name : names) {
    if (w.runner_of(name) == 2) orphans.insert(name);
  }
  BOOST_TEST_REQUIRE(!orphans.empty());
  const std::uint64_t killed = w.c.now();
  w.kill(2);
  std::uint64_t declared = 0;
  BOOST_TEST_REQUIRE(w.wait(
      [&] {
        if (declared == 0 && !w.views[0].contains(w.c.name(2))) declared = w.c.now();
        return w.settled(names);
      },
      60'000));
  BOOST_TEST_MESSAGE("declared dead after " << declared - killed << " ms; all running after "
                                            << w.c.now() - killed << " ms");
  BOOST_TEST(w.c.now() >= declared + w.config.lease_ms + 500);
  for (const std::string& name : names)
    BOOST_TEST(w.total(&FakeRuntime::starts, name) == (orphans.contains(name) ? 2 : 1), name);
}

BOOST_AUTO_TEST_CASE(quorum_mode_starts_nothing_without_a_majority) {
  const auto seed = shoal::test::test_seed();
  World w(2, seed, quorum_of(5));  // 2 of an expected 5
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  w.feed();
  BOOST_TEST_REQUIRE(w.sups[0]->add(w.c.now(), sleeper("lonely")).has_value());
  w.c.run_for(10'000);
  w.feed();
  BOOST_TEST(w.total(&FakeRuntime::starts, "lonely") == 0);
  BOOST_TEST(!w.sups[0]->has_quorum());
  BOOST_TEST(w.sups[1]->children().size() == 1u);  // known everywhere, run nowhere
}

BOOST_AUTO_TEST_SUITE_END()
