// The distributed supervisor over a simulated cluster of stacks (tests/support/sim_stacks.h: every
// node runs a supervisor::Stack, as the agent does, with a fake OS that starts and stops exec
// children at once). Every case prints its seed.

#include <boost/test/unit_test.hpp>
#include <map>
#include <memory>
#include <set>

#include "cluster/sim/sim_cluster.h"
#include "registry/registry.h"
#include "supervisor/supervisor.h"
#include "tests/support/seed.h"
#include "tests/support/sim_stacks.h"

using namespace shoal;
using cluster::MembershipConfig;
using cluster::MemberStatus;
using supervisor::ChildSpec;
using supervisor::Supervisor;

namespace {

using World = shoal::test::SimStacks;
using Runtime = shoal::test::SimStacks::Runtime;

// Adds a child through node i's supervisor.
bool add(World& w, std::size_t i, const ChildSpec& spec) {
  const bool added = w.sup(i).add(w.c.now(), spec).has_value();
  w.settle(i);
  return added;
}

supervisor::StackConfig quorum_of(std::size_t n) {
  supervisor::StackConfig config;
  supervisor::SupervisorConfig& s = config.supervisor;
  s.mode = supervisor::Mode::quorum;
  s.expect = n;
  const MembershipConfig& m = config.membership;
  s.lease_ms =
      supervisor::quorum_lease_ms(n, m.probe_interval_ms, m.awareness_max, m.suspicion_mult,
                                  m.suspicion_max_mult, s.fence_after_ms);
  return config;
}

ChildSpec sleeper(const std::string& name,
                  supervisor::Handoff handoff = supervisor::Handoff::state) {
  ChildSpec spec;
  spec.name = name;
  spec.argv = {"sleep", "3600"};
  spec.handoff = handoff;
  return spec;
}

// Adds `count` sleepers named PREFIX<k> through node `via`, each with `shutdown_ms`; returns their
// names.
std::vector<std::string> add_sleepers(World& w, std::size_t via, const std::string& prefix,
                                      int count, std::uint64_t shutdown_ms) {
  std::vector<std::string> names;
  for (int k = 0; k < count; ++k) {
    names.push_back(prefix + std::to_string(k));
    ChildSpec spec = sleeper(names.back());
    spec.shutdown_ms = shutdown_ms;
    BOOST_TEST_REQUIRE(add(w, via, spec));
  }
  return names;
}

// What the "tally" workers did: every copy of every child, in start order.
struct Tally {
  struct Copy {
    registry::Pid pid;
    std::uint64_t resumed = 0;           // the count it started from (its checkpoint)
    std::optional<std::uint64_t> final;  // the count it stopped at (none: still running, or killed)
    std::uint64_t started_ms = 0;
    std::uint64_t stopped_ms = 0;
    bool handed_over = false;  // its stop was a state handover
  };
  std::map<std::string, std::vector<Copy>> copies;
};

// Counts its ticks from the checkpoint it started with; stores "n=COUNT" every second and when it
// hands its state on.
class TallyWorker : public supervisor::Worker {
 public:
  explicit TallyWorker(std::shared_ptr<Tally> tally) : tally_(std::move(tally)) {}
  void start(supervisor::WorkerContext& ctx, const std::optional<std::string>& cp) override {
    if (cp && cp->starts_with("n=")) count_ = std::stoull(cp->substr(2));
    last_checkpoint_ms_ = ctx.now();
    auto& copies = tally_->copies[ctx.name()];
    index_ = copies.size();
    copies.push_back({ctx.self(), count_, std::nullopt, ctx.now(), 0, false});
  }
  void on_tick(supervisor::WorkerContext& ctx) override {
    ++count_;
    if (ctx.now() - last_checkpoint_ms_ >= 1000) {
      last_checkpoint_ms_ = ctx.now();
      ctx.checkpoint("n=" + std::to_string(count_));
    }
  }
  void stop(supervisor::WorkerContext& ctx) override {
    Tally::Copy& copy = tally_->copies[ctx.name()][index_];
    copy.final = count_;
    copy.stopped_ms = ctx.now();
    copy.handed_over = ctx.handing_over();
    if (ctx.handing_over()) ctx.checkpoint("n=" + std::to_string(count_));
    ctx.exit(true, "stopped");
  }

 private:
  std::shared_ptr<Tally> tally_;
  std::size_t index_ = 0;
  std::uint64_t count_ = 0;
  std::uint64_t last_checkpoint_ms_ = 0;
};

ChildSpec tally(const std::string& name, supervisor::Handoff handoff) {
  ChildSpec spec;
  spec.name = name;
  spec.kind = supervisor::ChildKind::worker;
  spec.worker_type = "tally";
  spec.handoff = handoff;
  return spec;
}

// Every worker in `names` has exactly one running copy, on a running node, and every running
// node's registry answers that copy's pid.
bool workers_settled(World& w, const Tally& t, const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    auto it = t.copies.find(name);
    if (it == t.copies.end()) return false;
    const Tally::Copy* live = nullptr;
    for (const Tally::Copy& copy : it->second) {
      if (copy.final) continue;
      const std::size_t node = std::stoul(copy.pid.node.substr(1));
      if (!w.c.running(node) || w.stack(node).left()) continue;  // killed with its node
      if (live != nullptr) return false;
      live = &copy;
    }
    if (live == nullptr) return false;
    for (std::size_t i = 0; i < w.c.size(); ++i) {
      if (!w.c.running(i) || w.stack(i).left()) continue;
      auto where = w.reg(i).whereis(name);
      if (!where || where->pid != live->pid) return false;
    }
  }
  return true;
}

// Checks every move of the workers in `names` made since copy `from[name]`: the old copy stopped
// with a handover and the new one started after it, from the count it stopped at. Returns the
// number of moves, and updates `from`.
std::size_t check_state_handoffs(const Tally& t, const std::vector<std::string>& names,
                                 std::map<std::string, std::size_t>& from, std::uint64_t seed) {
  std::size_t moves = 0;
  for (const std::string& name : names) {
    const std::vector<Tally::Copy>& copies = t.copies.at(name);
    for (std::size_t k = from[name] + 1; k < copies.size(); ++k) {
      const Tally::Copy& old = copies[k - 1];
      const Tally::Copy& next = copies[k];
      ++moves;
      BOOST_TEST_REQUIRE(old.final.has_value(), name << " copy " << k << "; seed=" << seed);
      BOOST_TEST(old.handed_over, name << "; seed=" << seed);
      BOOST_TEST(next.resumed == *old.final, name << " stopped at " << *old.final
                                                  << ", its next copy resumed from " << next.resumed
                                                  << "; seed=" << seed);
      BOOST_TEST(next.started_ms >= old.stopped_ms, name << "; seed=" << seed);
    }
    from[name] = copies.size() - 1;
  }
  return moves;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(supervisor_sim)

BOOST_AUTO_TEST_CASE(a_killed_nodes_children_restart_once_each_on_survivors_and_no_other_moves) {
  const auto seed = shoal::test::test_seed();
  World w(5, seed);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  std::vector<std::string> names;
  for (int k = 0; k < 1000; ++k) {
    names.push_back("job-" + std::to_string(k));
    BOOST_TEST_REQUIRE(add(w, 0, sleeper(names.back())));
  }
  BOOST_TEST_REQUIRE(w.wait([&] { return w.settled(names); }, 20'000), "seed=" << seed);
  // Rendezvous placement spreads them: each node runs a fair share.
  for (std::size_t i = 0; i < 5; ++i) {
    BOOST_TEST_MESSAGE("node " << i << " runs " << w.rt(i).running.size() << " at t=" << w.c.now());
    BOOST_TEST(w.rt(i).running.size() > 120u);
  }
  std::map<std::string, int> starts_before;
  std::set<std::string> orphans;
  for (const std::string& name : names) {
    starts_before[name] = w.total(&Runtime::starts, name);
    BOOST_TEST_REQUIRE(starts_before[name] == 1);  // one start each so far
    if (w.runner_of(name) == 3) orphans.insert(name);
  }
  w.kill(3);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.settled(names); }, 20'000), "seed=" << seed);
  int moved_others = 0;
  for (const std::string& name : names) {
    const int new_starts = w.total(&Runtime::starts, name) - starts_before[name];
    if (orphans.contains(name)) {
      BOOST_TEST(new_starts == 1, name << " restarted " << new_starts << " times; seed=" << seed);
    } else {
      moved_others += new_starts;
    }
    BOOST_TEST(w.total(&Runtime::stops, name) == 0);
  }
  BOOST_TEST(moved_others == 0, "children of live nodes moved; seed=" << seed);
  BOOST_TEST(orphans.size() > 120u);
  std::uint64_t failovers = 0;
  for (std::size_t i : {0, 1, 2, 4})
    failovers += w.sup(i).stats().failovers;
  BOOST_TEST(failovers == orphans.size());
}

// A clean crash in a larger cluster whose survivors hear of it at different times: some run on
// loaded machines (the simulator delivers everything to them late), so for a while some views
// still have the dead member (suspected or alive) while others have dropped it. Every orphan
// must still start exactly once, and nothing else move: a survivor that has not dropped the dead
// member sees it as the owner and starts nothing, and one that has computes the same new owner
// as every other that has.
void crash_with_staggered_detection(std::size_t n, std::uint64_t seed) {
  World w(n, seed);
  // Every third survivor lags by 40, 80 or 120 ms (about 1, 2 or 3 probe timeouts' worth).
  for (std::size_t i = 1; i < n; ++i) {
    if (i % 3 == 0) w.c.set_lag(i, 40 * (1 + (i / 3) % 3));
  }
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 30'000), "seed=" << seed);
  std::vector<std::string> names;
  for (int k = 0; k < 1000; ++k) {
    names.push_back("job-" + std::to_string(k));
    BOOST_TEST_REQUIRE(add(w, 0, sleeper(names.back())));
  }
  BOOST_TEST_REQUIRE(w.wait([&] { return w.settled(names); }, 60'000), "seed=" << seed);
  const std::size_t victim = n / 2 + 1;
  std::map<std::string, int> starts_before;
  std::set<std::string> orphans;
  for (const std::string& name : names) {
    starts_before[name] = w.total(&Runtime::starts, name);
    if (w.runner_of(name) == victim) orphans.insert(name);
  }
  BOOST_TEST_REQUIRE(!orphans.empty());
  const std::size_t events_before = w.c.events().size();
  const std::uint64_t killed = w.c.now();
  w.kill(victim);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.settled(names); }, 60'000), "seed=" << seed);
  // Let any late second copy show itself.
  w.c.run_for(5'000);
  BOOST_TEST_REQUIRE(w.settled(names), "seed=" << seed);
  // When each survivor dropped the victim from its view: they must differ (else the test shows
  // nothing about staggered views).
  std::map<std::size_t, std::uint64_t> dropped;
  for (std::size_t e = events_before; e < w.c.events().size(); ++e) {
    const auto& ev = w.c.events()[e];
    if (ev.event.name == w.c.name(victim) && ev.event.kind == cluster::EventKind::failed)
      dropped.try_emplace(ev.node, ev.event.at_ms);
  }
  BOOST_TEST_REQUIRE(dropped.size() == n - 1, "seed=" << seed);
  std::uint64_t first = UINT64_MAX, last = 0;
  for (const auto& [node, at] : dropped) {
    first = std::min(first, at);
    last = std::max(last, at);
  }
  BOOST_TEST_MESSAGE("N=" << n << ": " << orphans.size()
                          << " orphans; survivors dropped the victim " << first - killed << " to "
                          << last - killed << " ms after the kill");
  BOOST_TEST(last - first >= 40u, "detection was not staggered; seed=" << seed);
  int other_starts = 0;
  for (const std::string& name : names) {
    const int new_starts = w.total(&Runtime::starts, name) - starts_before[name];
    if (orphans.contains(name)) {
      BOOST_TEST(new_starts == 1, name << " started " << new_starts << " times; seed=" << seed);
    } else {
      other_starts += new_starts;
    }
  }
  BOOST_TEST(other_starts == 0, "children of live nodes moved; seed=" << seed);
}

BOOST_AUTO_TEST_CASE(a_crash_seen_at_different_times_starts_each_orphan_once_at_n20) {
  crash_with_staggered_detection(20, shoal::test::test_seed());
}

BOOST_AUTO_TEST_CASE(a_crash_seen_at_different_times_starts_each_orphan_once_at_n50) {
  crash_with_staggered_detection(50, shoal::test::test_seed());
}

BOOST_AUTO_TEST_CASE(a_crash_looping_child_is_marked_failed_everywhere) {
  const auto seed = shoal::test::test_seed();
  World w(3, seed);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  for (std::size_t i = 0; i < 3; ++i)
    w.rt(i).crash_on_start.insert("crashy");
  ChildSpec spec = sleeper("crashy");
  spec.max_restarts = 3;
  spec.window_ms = 60'000;
  BOOST_TEST_REQUIRE(add(w, 1, spec));
  BOOST_TEST_REQUIRE(w.wait(
      [&] {
        for (std::size_t i = 0; i < 3; ++i) {
          if (!w.sup(i).failed("crashy")) return false;
        }
        return true;
      },
      20'000));
  // The first start and three restarts (with backoff), then failed: nobody starts it again.
  BOOST_TEST(w.total(&Runtime::starts, "crashy") == 4, "seed=" << seed);
  w.c.run_for(5'000);
  BOOST_TEST(w.total(&Runtime::starts, "crashy") == 4);
  const auto children = w.sup(2).children();
  BOOST_TEST_REQUIRE(children.size() == 1u);
  BOOST_TEST(children[0].failed);
  // Added anew, it runs again (it no longer crashes).
  for (std::size_t i = 0; i < 3; ++i)
    w.rt(i).crash_on_start.clear();
  BOOST_TEST_REQUIRE(add(w, 0, spec));
  BOOST_TEST(w.wait([&] { return w.settled({"crashy"}); }, 10'000));
}

BOOST_AUTO_TEST_CASE(a_restarted_copy_is_handed_the_last_checkpoint) {
  const auto seed = shoal::test::test_seed();
  World w(3, seed);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  BOOST_TEST_REQUIRE(add(w, 0, sleeper("counter")));
  BOOST_TEST_REQUIRE(w.wait([&] { return w.settled({"counter"}); }, 10'000));
  const std::size_t first = w.runner_of("counter");
  BOOST_TEST(!w.rt(first).last_checkpoint["counter"].has_value());  // none yet
  // Only the node running it may store its checkpoint.
  BOOST_TEST(!w.sup((first + 1) % 3).checkpoint(w.c.now(), "counter", "count=1").has_value());
  BOOST_TEST_REQUIRE(w.sup(first).checkpoint(w.c.now(), "counter", "count=42").has_value());
  w.settle(first);
  BOOST_TEST_REQUIRE(w.wait(
      [&] {
        for (std::size_t i = 0; i < 3; ++i) {
          if (w.sup(i).checkpoint_of("counter") != std::optional<std::string>("count=42"))
            return false;
        }
        return true;
      },
      5'000));
  w.kill(first);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.settled({"counter"}); }, 20'000), "seed=" << seed);
  const std::size_t second = w.runner_of("counter");
  BOOST_TEST(second != first);
  BOOST_TEST((w.rt(second).last_checkpoint["counter"] == std::optional<std::string>("count=42")));
}

BOOST_AUTO_TEST_CASE(a_partition_runs_copies_on_both_sides_and_healing_leaves_one) {
  const auto seed = shoal::test::test_seed();
  World w(5, seed);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  std::vector<std::string> names;
  for (int k = 0; k < 200; ++k) {
    names.push_back("svc-" + std::to_string(k));
    BOOST_TEST_REQUIRE(add(w, 0, sleeper(names.back())));
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
        auto h = w.reg(i).whereis(name);
        where += " n" + std::to_string(i) + (w.rt(i).running.contains(name) ? "(runs)" : "") +
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
  BOOST_TEST_REQUIRE(add(w, 2, sleeper("temp")));
  BOOST_TEST_REQUIRE(w.wait([&] { return w.settled({"temp"}); }, 10'000));
  BOOST_TEST(w.sup(1).remove(w.c.now(), "temp"));
  w.settle(1);
  BOOST_TEST(w.wait(
                 [&] {
                   for (std::size_t i = 0; i < 3; ++i) {
                     if (w.reg(i).whereis("temp") || !w.sup(i).children().empty()) return false;
                   }
                   return w.copies("temp") == 0;
                 },
                 10'000),
             "seed=" << seed);
  BOOST_TEST(w.total(&Runtime::stops, "temp") == 1);
}

BOOST_AUTO_TEST_CASE(a_draining_node_hands_overlap_children_over_without_a_gap) {
  const auto seed = shoal::test::test_seed();
  World w(5, seed);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  std::vector<std::string> names;
  for (int k = 0; k < 300; ++k) {
    names.push_back("svc-" + std::to_string(k));
    BOOST_TEST_REQUIRE(add(w, 1, sleeper(names.back(), supervisor::Handoff::overlap)));
  }
  BOOST_TEST_REQUIRE(w.wait([&] { return w.settled(names); }, 20'000));
  std::map<std::string, int> starts_before;
  std::set<std::string> leaving;
  for (const std::string& name : names) {
    starts_before[name] = w.total(&Runtime::starts, name);
    if (w.runner_of(name) == 2) leaving.insert(name);
  }
  BOOST_TEST_REQUIRE(!leaving.empty());
  w.sup(2).drain(w.c.now());
  w.settle(2);
  // Every child keeps at least one copy at every step: the new one starts before the old stops.
  bool gap = false;
  BOOST_TEST_REQUIRE(w.wait(
                         [&] {
                           for (const std::string& name : names)
                             gap = gap || w.copies(name) == 0;
                           return w.sup(2).drained() && w.settled(names);
                         },
                         20'000),
                     "seed=" << seed);
  BOOST_TEST(!gap, "a child had no copy during the handoff; seed=" << seed);
  BOOST_TEST(w.rt(2).running.empty());
  for (const std::string& name : names) {
    const int new_starts = w.total(&Runtime::starts, name) - starts_before[name];
    BOOST_TEST(new_starts == (leaving.contains(name) ? 1 : 0), name << "; seed=" << seed);
  }
}

// handoff state, for workers and exec children, through a drain, a leave and a rebalance on join:
// every moved copy starts after the old one stopped, from the state it stopped with.
BOOST_AUTO_TEST_CASE(a_state_handoff_resumes_every_moved_child_from_its_final_state) {
  const auto seed = shoal::test::test_seed();
  World w(5, seed);
  auto t = std::make_shared<Tally>();
  w.add_worker_type("tally", [t] { return std::make_unique<TallyWorker>(t); });
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  std::vector<std::string> workers, execs;
  for (int k = 0; k < 200; ++k) {
    workers.push_back("w-" + std::to_string(k));
    BOOST_TEST_REQUIRE(add(w, 0, tally(workers.back(), supervisor::Handoff::state)));
  }
  for (int k = 0; k < 100; ++k) {
    execs.push_back("x-" + std::to_string(k));
    BOOST_TEST_REQUIRE(add(w, 0, sleeper(execs.back())));
  }
  auto settled = [&] { return workers_settled(w, *t, workers) && w.settled(execs); };
  BOOST_TEST_REQUIRE(w.wait(settled, 20'000), "seed=" << seed);
  std::map<std::string, std::size_t> from;
  BOOST_TEST(check_state_handoffs(*t, workers, from, seed) == 0u);
  // Each exec child that moves starts from the final checkpoint its old copy stored as it stopped.
  auto check_execs = [&](std::size_t old_node) {
    std::size_t moved = 0;
    for (const std::string& name : execs) {
      auto final = w.rt(old_node).final_checkpoint.find(name);
      if (final == w.rt(old_node).final_checkpoint.end()) continue;
      ++moved;
      const std::size_t now_on = w.runner_of(name);
      BOOST_TEST_REQUIRE(now_on != old_node);
      BOOST_TEST((w.rt(now_on).last_checkpoint[name] == std::optional<std::string>(final->second)),
                 name << "; seed=" << seed);
    }
    return moved;
  };
  // Every move since the last check: the workers' (checked as they are counted) and those of the
  // exec children that left `old_nodes`; some of each moved.
  auto check_moves = [&](const char* what, std::initializer_list<std::size_t> old_nodes) {
    const std::size_t moved = check_state_handoffs(*t, workers, from, seed);
    std::size_t moved_execs = 0;
    for (std::size_t node : old_nodes)
      moved_execs += check_execs(node);
    BOOST_TEST_MESSAGE(what << ": workers moved " << moved << ", exec children " << moved_execs);
    BOOST_TEST(moved > 10u, what << "; seed=" << seed);
    BOOST_TEST(moved_execs > 5u, what << "; seed=" << seed);
  };
  // Counts move on past the periodic checkpoints.
  w.c.run_for(1'500);

  // 1. A drain.
  w.sup(1).drain(w.c.now());
  w.settle(1);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.sup(1).drained() && settled(); }, 20'000),
                     "seed=" << seed);
  check_moves("drain", {1});
  w.c.run_for(1'500);

  // 2. A graceful leave (what the agent does on `shoal leave` and SIGTERM).
  w.stack(2).leave(w.c.now(), "test");
  w.settle(2);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.stack(2).left() && settled(); }, 20'000),
                     "seed=" << seed);
  check_moves("leave", {2});
  w.c.run_for(1'500);

  // 3. A member joins (node 2's next life): children move to it from the others.
  w.kill(2);
  w.restart(2, {0});
  BOOST_TEST_REQUIRE(w.wait(
                         [&] {
                           return w.c.converged() && settled() && !w.rt(2).running.empty() &&
                                  !w.sup(2).local().empty();
                         },
                         20'000),
                     "seed=" << seed);
  BOOST_TEST_REQUIRE(w.wait(settled, 20'000), "seed=" << seed);
  check_moves("join", {0, 3, 4});
  w.c.run_for(1'500);

  // 4. Another leave, now that a member left and came back: it must not wait for the past life
  // (its late messages once made the others track it again, and every later leave timed out).
  const std::uint64_t leave_at = w.c.now();
  w.stack(3).leave(w.c.now(), "test");
  w.settle(3);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.stack(3).left() && settled(); }, 30'000),
                     "seed=" << seed);
  BOOST_TEST(w.c.now() - leave_at < w.config().drain_timeout_ms, "seed=" << seed);
  check_moves("second leave", {3});
  std::uint64_t timeouts = 0;
  for (std::size_t i = 0; i < 5; ++i)
    timeouts += w.sup(i).stats().handoff_timeouts;
  BOOST_TEST(timeouts == 0u);
}

// The same drain with handoff overlap: the new copy starts before the old one stops and resumes
// from the last periodic checkpoint, so the counts since are lost (what state prevents).
BOOST_AUTO_TEST_CASE(an_overlap_handoff_has_no_gap_and_resumes_from_the_last_periodic_checkpoint) {
  const auto seed = shoal::test::test_seed();
  World w(5, seed);
  auto t = std::make_shared<Tally>();
  w.add_worker_type("tally", [t] { return std::make_unique<TallyWorker>(t); });
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  std::vector<std::string> workers;
  for (int k = 0; k < 200; ++k) {
    workers.push_back("w-" + std::to_string(k));
    BOOST_TEST_REQUIRE(add(w, 0, tally(workers.back(), supervisor::Handoff::overlap)));
  }
  BOOST_TEST_REQUIRE(w.wait([&] { return workers_settled(w, *t, workers); }, 20'000));
  w.c.run_for(1'500);
  w.sup(1).drain(w.c.now());
  w.settle(1);
  BOOST_TEST_REQUIRE(
      w.wait([&] { return w.sup(1).drained() && workers_settled(w, *t, workers); }, 20'000),
      "seed=" << seed);
  std::size_t moves = 0, lost = 0;
  for (const std::string& name : workers) {
    const std::vector<Tally::Copy>& copies = t->copies.at(name);
    for (std::size_t k = 1; k < copies.size(); ++k) {
      ++moves;
      BOOST_TEST(!copies[k - 1].handed_over);
      BOOST_TEST(copies[k].started_ms <= copies[k - 1].stopped_ms, name << "; seed=" << seed);
      BOOST_TEST(copies[k].resumed <= *copies[k - 1].final);
      if (copies[k].resumed < *copies[k - 1].final) ++lost;
    }
  }
  BOOST_TEST_MESSAGE("moves=" << moves << " resumed from less than the final count: " << lost);
  BOOST_TEST(moves > 10u);
  BOOST_TEST(lost > 0u);
}

// An old copy that never ends (a stuck OS): the new owner waits the child's shutdown_ms plus
// handoff_wait_ms for it to let go of the name, then starts anyway.
BOOST_AUTO_TEST_CASE(a_state_handoff_waits_for_a_stuck_old_copy_only_so_long) {
  const auto seed = shoal::test::test_seed();
  World w(3, seed);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  ChildSpec spec = sleeper("stuck");
  spec.shutdown_ms = 1'000;
  BOOST_TEST_REQUIRE(add(w, 0, spec));
  BOOST_TEST_REQUIRE(w.wait([&] { return w.settled({"stuck"}); }, 10'000));
  const std::size_t old_node = w.runner_of("stuck");
  w.rt(old_node).ignore_stop.insert("stuck");
  const std::uint64_t drained_at = w.c.now();
  w.sup(old_node).drain(drained_at);
  w.settle(old_node);
  // Waiting: the new owner holds the child as "handoff" and starts nothing.
  std::size_t next = 3;
  BOOST_TEST_REQUIRE(w.wait(
      [&] {
        for (std::size_t i = 0; i < 3; ++i) {
          auto it = w.sup(i).local().find("stuck");
          if (i != old_node && it != w.sup(i).local().end() &&
              it->second.status == supervisor::LocalStatus::waiting)
            next = i;
        }
        return next != 3;
      },
      5'000));
  BOOST_TEST(w.copies("stuck") == 1);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.rt(next).running.contains("stuck"); }, 20'000));
  const std::uint64_t waited = w.c.now() - drained_at;
  BOOST_TEST_MESSAGE("the new copy started " << waited << " ms after the drain");
  BOOST_TEST(waited >= spec.shutdown_ms + w.config().supervisor.handoff_wait_ms);
  BOOST_TEST(w.sup(next).stats().handoff_timeouts == 1u);
}

BOOST_AUTO_TEST_CASE(quorum_mode_never_runs_two_copies_through_a_partition_and_its_healing) {
  const auto seed = shoal::test::test_seed();
  World w(5, seed, quorum_of(5));
  // Every child ignores SIGTERM: a stop ends it only at the kill after its shutdown timeout, so a
  // copy elsewhere must wait for that too.
  for (std::size_t i = 0; i < 5; ++i)
    w.rt(i).ignore_sigterm = true;
  const std::uint64_t lease_ms = w.config().supervisor.lease_ms;
  constexpr std::uint64_t kShutdownMs = 1'000;
  BOOST_TEST_MESSAGE("lease_ms=" << lease_ms << " shutdown_ms=" << kShutdownMs);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  const std::vector<std::string> names = add_sleepers(w, 0, "svc-", 200, kShutdownMs);
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
  BOOST_TEST(w.sup(3).stats().fenced + w.sup(4).stats().fenced == on_minority.size());
  // Each start since the cut, of every child: none before the lease and the shutdown timeout
  // of the fenced copy have run out.
  std::size_t restarted = 0;
  std::uint64_t earliest = UINT64_MAX;
  for (const std::string& name : names) {
    for (std::size_t i : majority) {
      for (std::uint64_t at : w.rt(i).started_at[name]) {
        if (at <= cut) continue;
        ++restarted;
        earliest = std::min(earliest, at);
        BOOST_TEST(at >= cut + lease_ms + kShutdownMs, name << " started on n" << i << " "
                                                            << at - cut
                                                            << " ms after the cut; seed=" << seed);
      }
    }
  }
  BOOST_TEST(restarted == on_minority.size());
  BOOST_TEST_MESSAGE(restarted << " children started on the majority, the first " << earliest - cut
                               << " ms after the cut");
  w.c.heal();
  // Healed: sampled on until placement has stayed the same, one copy each, for a quiet window
  // of 15 s (children may move back to the healed nodes first).
  const std::uint64_t healed = w.c.now();
  std::map<std::string, std::size_t> placed;
  std::uint64_t stable_since = 0;
  const bool stable = wait(
      [&] {
        std::map<std::string, std::size_t> now;
        if (w.c.converged() && w.settled(names)) {
          for (const std::string& name : names)
            now[name] = w.runner_of(name);
        }
        if (now.empty() || now != placed) {
          placed = std::move(now);
          stable_since = w.c.now();
          return false;
        }
        return w.c.now() - stable_since >= 15'000;
      },
      180'000);
  BOOST_TEST_REQUIRE(stable, "placement never held still for 15 s; seed=" << seed);
  BOOST_TEST_MESSAGE("placement stable " << stable_since - healed << " ms after the healing");
  // The healed minority regained a majority: it started nothing for the lease after that.
  std::size_t moved_back = 0;
  for (const std::string& name : names) {
    for (std::size_t i : minority) {
      for (std::uint64_t at : w.rt(i).started_at[name]) {
        if (at <= healed) continue;
        ++moved_back;
        BOOST_TEST(at >= healed + lease_ms, name << " started on n" << i << " " << at - healed
                                                 << " ms after the healing; seed=" << seed);
      }
    }
  }
  BOOST_TEST_MESSAGE(moved_back << " children moved back to the healed minority");
  BOOST_TEST(most <= 1, "two copies of " << doubled << "; seed=" << seed);
}

BOOST_AUTO_TEST_CASE(quorum_mode_restarts_a_killed_nodes_children_after_the_lease_once_each) {
  const auto seed = shoal::test::test_seed();
  World w(5, seed, quorum_of(5));
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  const std::vector<std::string> names = add_sleepers(w, 1, "job-", 100, 500);
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
        if (declared == 0 && w.c.sees(0, w.c.name(2), MemberStatus::dead)) declared = w.c.now();
        return w.settled(names);
      },
      60'000));
  BOOST_TEST_MESSAGE("declared dead after " << declared - killed << " ms; all running after "
                                            << w.c.now() - killed << " ms");
  BOOST_TEST(w.c.now() >= declared + w.config().supervisor.lease_ms + 500);
  for (const std::string& name : names)
    BOOST_TEST(w.total(&Runtime::starts, name) == (orphans.contains(name) ? 2 : 1), name);
}

BOOST_AUTO_TEST_CASE(quorum_mode_a_restarted_node_starts_nothing_for_the_lease) {
  const auto seed = shoal::test::test_seed();
  World w(5, seed, quorum_of(5));
  const std::uint64_t lease_ms = w.config().supervisor.lease_ms;
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  const std::vector<std::string> names = add_sleepers(w, 0, "job-", 100, 500);
  BOOST_TEST_REQUIRE(w.wait([&] { return w.settled(names); }, 20'000), "seed=" << seed);
  int most = 0;
  auto sampled = [&](const std::function<bool()>& pred) {
    return [&, pred] {
      for (const std::string& name : names)
        most = std::max(most, w.copies(name));
      return pred();
    };
  };
  w.kill(4);
  BOOST_TEST_REQUIRE(w.wait(sampled([&] { return w.settled(names); }), 60'000), "seed=" << seed);
  // n4 comes back as a new life: a majority at once, but it starts nothing for the lease, even
  // the children rendezvous gives back to it.
  const std::uint64_t restarted = w.c.now();
  w.rt(4).started_at.clear();
  w.restart(4, {0});
  BOOST_TEST_REQUIRE(w.wait(sampled([&] {
                              return w.c.converged() && w.settled(names) &&
                                     !w.rt(4).started_at.empty();
                            }),
                            60'000),
                     "seed=" << seed);
  std::uint64_t first = UINT64_MAX;
  for (const auto& [name, starts] : w.rt(4).started_at) {
    for (std::uint64_t at : starts)
      first = std::min(first, at);
  }
  BOOST_TEST_MESSAGE("the restarted node started its first child " << first - restarted
                                                                   << " ms after its restart");
  BOOST_TEST(first >= restarted + lease_ms, "seed=" << seed);
  BOOST_TEST(most <= 1, "seed=" << seed);
}

BOOST_AUTO_TEST_CASE(quorum_mode_starts_nothing_without_a_majority) {
  const auto seed = shoal::test::test_seed();
  World w(2, seed, quorum_of(5));  // 2 of an expected 5
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000));
  BOOST_TEST_REQUIRE(add(w, 0, sleeper("lonely")));
  w.c.run_for(10'000);
  BOOST_TEST(w.total(&Runtime::starts, "lonely") == 0);
  BOOST_TEST(!w.sup(0).has_quorum());
  BOOST_TEST(w.sup(1).children().size() == 1u);  // known everywhere, run nowhere
}

BOOST_AUTO_TEST_SUITE_END()
