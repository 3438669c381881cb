// Child specs (codec, validation, hostile bytes) and rendezvous placement.

#include <boost/test/unit_test.hpp>
#include <map>
#include <set>
#include <variant>
#include <vector>

#include "cluster/key_spaces.h"
#include "cluster/life.h"
#include "cluster/replicator.h"
#include "registry/registry.h"
#include "supervisor/child_spec.h"
#include "supervisor/exec_policy.h"
#include "supervisor/placement.h"
#include "supervisor/supervisor.h"
#include "tests/support/seed.h"

using namespace shoal::supervisor;

namespace {

ChildSpec full_spec() {
  ChildSpec s;
  s.name = "billing-worker";
  s.kind = ChildKind::exec;
  s.argv = {"/usr/bin/env", "python3", "worker.py", "--queue=billing"};
  s.env = {"MODE=prod", "EMPTY="};
  s.cwd = "/srv/billing";
  s.restart = Restart::transient;
  s.max_restarts = 7;
  s.window_ms = 30'000;
  s.constraints = {{"role", "db"}, {"zone", "a"}};
  s.shutdown_ms = 12'000;
  s.handoff = Handoff::overlap;
  s.exec_path = "/usr/bin/env";
  return s;
}

View members(int n) {
  View v;
  for (int i = 0; i < n; ++i)
    v["node-" + std::to_string(i)] = MemberInfo{1000u + static_cast<unsigned>(i), {}};
  return v;
}

// What the Stack does with the map's changes: hands each to the supervisor.
void hand_changes(shoal::cluster::Replicator& replicator, Supervisor& sup, std::uint64_t now) {
  std::vector<shoal::cluster::ReplicaChange> changes;
  replicator.take_changes(changes);
  for (const auto& c : changes)
    sup.on_change(now, c);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(child_spec)

BOOST_AUTO_TEST_CASE(round_trips_every_field) {
  const ChildSpec s = full_spec();
  auto back = decode_spec(encode_spec(s));
  BOOST_TEST_REQUIRE(back.has_value());
  BOOST_TEST((*back == s));
  ChildSpec w;
  w.name = "counter";
  w.kind = ChildKind::worker;
  w.worker_type = "counter";
  auto wb = decode_spec(encode_spec(w));
  BOOST_TEST_REQUIRE(wb.has_value());
  BOOST_TEST((*wb == w));
}

// Specs written before the handoff and exec_path fields (12 elements, by older nodes) still decode,
// and hand over state, the default.
BOOST_AUTO_TEST_CASE(a_spec_without_the_handoff_field_decodes_as_state) {
  ChildSpec s = full_spec();
  s.handoff = Handoff::state;
  s.exec_path.clear();
  std::string bytes = encode_spec(s);
  BOOST_TEST_REQUIRE(static_cast<unsigned char>(bytes.front()) == 0x9eu);  // fixarray of 14
  BOOST_TEST_REQUIRE(bytes.back() == static_cast<char>(0xa0));             // exec_path ""
  BOOST_TEST_REQUIRE(bytes[bytes.size() - 2] == '\0');                     // handoff 0: state
  bytes.front() = static_cast<char>(0x9c);
  bytes.resize(bytes.size() - 2);
  s.handoff = Handoff::overlap;
  auto old = decode_spec(bytes);
  BOOST_TEST_REQUIRE(old.has_value(), (old ? std::string() : old.error()));
  BOOST_TEST((old->handoff == Handoff::state));
  BOOST_TEST(old->shutdown_ms == s.shutdown_ms);
  bytes.front() = static_cast<char>(0x9b);  // 11 elements: not a spec
  BOOST_TEST(!decode_spec(bytes).has_value());
  BOOST_TEST(!parse_handoff("later").has_value());
  BOOST_TEST(parse_handoff("later").error().find("state or overlap") != std::string::npos);
  BOOST_TEST((parse_handoff("overlap").value() == Handoff::overlap));
  BOOST_TEST(std::string(handoff_name(Handoff::state)) == "state");
}

BOOST_AUTO_TEST_CASE(invalid_specs_get_a_clear_reason) {
  ChildSpec s = full_spec();
  s.name.clear();
  BOOST_TEST(validate(s).value_or("").find("name") != std::string::npos);
  s = full_spec();
  s.argv.clear();
  BOOST_TEST(validate(s).value_or("").find("command") != std::string::npos);
  s = full_spec();
  s.env = {"NOEQUALS"};
  BOOST_TEST(validate(s).value_or("").find("KEY=value") != std::string::npos);
  s = full_spec();
  s.kind = ChildKind::worker;
  BOOST_TEST(validate(s).value_or("").find("worker type") != std::string::npos);
  s = full_spec();
  s.name = std::string(256, 'x');
  BOOST_TEST(validate(s).has_value());
  BOOST_TEST(!parse_restart("sometimes").has_value());
  BOOST_TEST((parse_restart("temporary").value() == Restart::temporary));
}

BOOST_AUTO_TEST_CASE(hostile_bytes_are_rejected_without_crashing) {
  const auto seed = shoal::test::test_seed();
  auto rng = shoal::test::rng_for(seed);
  const std::string good = encode_spec(full_spec());
  int rejected = 0;
  for (int i = 0; i < 20'000; ++i) {
    std::string bytes = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f)
      bytes[rng() % bytes.size()] = static_cast<char>(rng());
    if (rng() % 3 == 0) bytes.resize(rng() % bytes.size());
    auto decoded = decode_spec(bytes);
    if (!decoded) {
      ++rejected;
      BOOST_TEST_REQUIRE(!decoded.error().empty());
    } else {
      BOOST_TEST_REQUIRE(!validate(*decoded).has_value());  // whatever decodes is valid
    }
  }
  BOOST_TEST(rejected > 10'000, "seed=" << seed);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(placement)

BOOST_AUTO_TEST_CASE(every_node_computes_the_same_owner_and_shares_are_fair) {
  const View view = members(5);
  std::map<std::string, int> share;
  for (int k = 0; k < 10'000; ++k) {
    ChildSpec s;
    s.name = "job-" + std::to_string(k);
    const auto owner = place(s, view);
    BOOST_TEST_REQUIRE(owner.has_value());
    BOOST_TEST_REQUIRE((place(s, view) == owner));  // deterministic
    ++share[*owner];
  }
  BOOST_TEST(share.size() == 5u);
  for (const auto& [node, n] : share)
    BOOST_TEST((n > 1700 && n < 2300), node << " got " << n);
}

BOOST_AUTO_TEST_CASE(a_membership_change_moves_only_the_children_of_the_member_that_changed) {
  const View before = members(6);
  View without = before;
  without.erase("node-2");
  View with = before;
  with["node-9"] = MemberInfo{5000, {}};
  int moved_in = 0;
  for (int k = 0; k < 10'000; ++k) {
    ChildSpec s;
    s.name = "job-" + std::to_string(k);
    const std::string was = *place(s, before);
    const std::string gone = *place(s, without);
    if (was != "node-2") BOOST_TEST_REQUIRE(gone == was);  // untouched by the departure
    BOOST_TEST_REQUIRE(gone != "node-2");
    const std::string joined = *place(s, with);
    if (joined != was) {
      BOOST_TEST_REQUIRE(joined == "node-9");  // only moves to the newcomer
      ++moved_in;
    }
  }
  BOOST_TEST((moved_in > 1100 && moved_in < 1800));  // about 1/7 of them
}

BOOST_AUTO_TEST_CASE(constraints_restrict_the_candidates) {
  View view = members(4);
  view["node-1"].tags = {{"role", "db"}};
  view["node-3"].tags = {{"role", "db"}, {"zone", "b"}};
  ChildSpec s;
  s.name = "pg";
  s.constraints = {{"role", "db"}};
  for (int k = 0; k < 100; ++k) {
    s.name = "pg-" + std::to_string(k);
    const auto owner = place(s, view);
    BOOST_TEST_REQUIRE((owner == std::optional<std::string>("node-1") ||
                        owner == std::optional<std::string>("node-3")));
  }
  s.constraints = {{"role", "db"}, {"zone", "b"}};
  BOOST_TEST((place(s, view) == std::optional<std::string>("node-3")));
  s.constraints = {{"role", "cache"}};
  BOOST_TEST(!place(s, view).has_value());
}

BOOST_AUTO_TEST_CASE(weights_share_children_in_proportion_and_move_only_to_the_reweighted) {
  View view = members(3);
  view["node-2"].tags = {{"weight", "2"}};
  std::map<std::string, int> share;
  View heavier = view;
  heavier["node-0"].tags = {{"weight", "3.5"}};
  for (int k = 0; k < 20'000; ++k) {
    ChildSpec s;
    s.name = "job-" + std::to_string(k);
    const std::string owner = *place(s, view);
    ++share[owner];
    const std::string after = *place(s, heavier);
    if (after != owner) BOOST_TEST_REQUIRE(after == "node-0");  // only towards the reweighted
  }
  // 1 : 1 : 2 of 20,000.
  BOOST_TEST((share["node-0"] > 4600 && share["node-0"] < 5400), share["node-0"]);
  BOOST_TEST((share["node-1"] > 4600 && share["node-1"] < 5400), share["node-1"]);
  BOOST_TEST((share["node-2"] > 9400 && share["node-2"] < 10600), share["node-2"]);
}

BOOST_AUTO_TEST_CASE(a_bad_weight_counts_as_one) {
  BOOST_TEST(placement_weight({}) == 1.0);
  BOOST_TEST(placement_weight({{"weight", "2.5"}}) == 2.5);
  for (const char* bad : {"0", "-1", "abc", "2x", "", "1e9", "nan"})
    BOOST_TEST(placement_weight({{"weight", bad}}) == 1.0, bad);
}

// The supervisor keeps every child's owner and updates it from what changed in the view (members
// that went, came, were retagged or drained); whatever the sequence, the owner it reports must be
// the one placement over the whole view gives.
BOOST_AUTO_TEST_CASE(the_supervisors_cached_owners_always_equal_placement_over_the_view) {
  const auto seed = shoal::test::test_seed();
  auto rng = shoal::test::rng_for(seed);
  shoal::cluster::Replicator replicator("node-0#1", {}, seed, 0);
  shoal::registry::Registry registry(replicator, "node-0");
  Supervisor sup(replicator, registry, "node-0", 1);
  std::uint64_t now = 1;
  auto apply = [&] { hand_changes(replicator, sup, now); };
  for (int k = 0; k < 300; ++k) {
    ChildSpec s;
    s.name = "job-" + std::to_string(k);
    s.argv = {"sleep", "1"};
    if (k % 7 == 0) s.constraints = {{"role", "db"}};
    if (k % 5 == 0) s.exec_path = k % 10 == 0 ? "/usr/bin/sleep" : "/opt/tool/run";
    BOOST_TEST_REQUIRE(sup.add(now, s).has_value());
  }
  apply();
  View view = members(8);
  std::set<shoal::cluster::Life> draining;
  for (int step = 0; step < 400; ++step) {
    ++now;
    const int what = static_cast<int>(rng() % 4);
    const std::string someone = "node-" + std::to_string(1 + rng() % 11);
    if (what == 0) {
      view.erase(someone);  // went
    } else if (what == 1) {
      view.try_emplace(someone, MemberInfo{now, {}});  // came
    } else if (what == 2 && view.contains(someone)) {
      // Retagged: a role, a weight, or an exec policy (which placement also skips by).
      const int tag = static_cast<int>(rng() % 4);
      view[someone].tags =
          tag == 0   ? shoal::cluster::Tags{{"role", "db"}}
          : tag == 1 ? shoal::cluster::Tags{{"weight", std::to_string(1 + rng() % 4)}}
          : tag == 2 ? shoal::cluster::Tags{{"shoal.exec", "none"}}
                     : shoal::cluster::Tags{{"shoal.exec", "/usr/bin/*"}, {"role", "db"}};
    } else if (what == 3 && view.contains(someone)) {
      // Drains: placed as if gone while still in the view.
      const shoal::cluster::Life life{someone, view[someone].creation};
      replicator.put(now, std::string(shoal::cluster::keys::kDraining) + life.key(), "1");
      draining.insert(life);
    }
    view.try_emplace("node-0", MemberInfo{1, {}});  // this node is always in its own view
    sup.set_members(now, view);
    apply();
    View placed;
    for (const auto& [name, info] : view) {
      if (!draining.contains(shoal::cluster::Life{name, info.creation})) placed.emplace(name, info);
    }
    for (const ChildInfo& c : sup.children()) {
      BOOST_TEST_REQUIRE((c.owner == place(c.spec, placed)),
                         c.spec.name << " at step " << step << "; seed=" << seed);
      // What this node owns it has started (the view change reconciled it).
      if (c.owner == std::optional<std::string>("node-0"))
        BOOST_TEST_REQUIRE(c.local.has_value(), c.spec.name << " at step " << step);
    }
  }
}

// The periodic reconciliation is a safety net for a missed event: it visits sweep_batch children
// per period, in name order and round, so with 5 children and a batch of 2 every one is visited
// within 3 periods. Here the missed events are the registry's: names taken away behind the
// supervisor's back are claimed back only by the sweep (not by an unchanged view).
BOOST_AUTO_TEST_CASE(the_periodic_sweep_visits_a_batch_per_period_and_comes_round_to_every_child) {
  shoal::cluster::Replicator replicator("node-0#1", {}, 1, 0);
  shoal::registry::Registry registry(replicator, "node-0");
  SupervisorConfig config;
  config.sweep_batch = 2;
  config.reclaim_after_ms = 1;
  Supervisor sup(replicator, registry, "node-0", 1000, config);
  std::uint64_t now = 1;
  auto apply = [&] { hand_changes(replicator, sup, now); };
  const View view = members(1);
  registry.set_members({{"node-0", view.at("node-0").creation}});
  sup.set_members(now, view);
  for (int k = 0; k < 5; ++k) {
    ChildSpec s;
    s.name = "job-" + std::to_string(k);
    s.argv = {"sleep", "1"};
    BOOST_TEST_REQUIRE(sup.add(now, s).has_value());
  }
  apply();
  std::vector<SupervisorEffect> effects;
  sup.take_effects(effects);
  std::map<std::string, shoal::registry::Pid> pids;
  for (const SupervisorEffect& e : effects) {
    if (const auto* start = std::get_if<StartChild>(&e))
      sup.on_started(now, start->spec.name, start->id, {});
  }
  apply();
  for (int k = 0; k < 5; ++k) {
    const std::string name = "job-" + std::to_string(k);
    auto holder = registry.whereis(name);
    BOOST_TEST_REQUIRE(holder.has_value(), name << " was not claimed when it started");
    pids.emplace(name, holder->pid);
    BOOST_TEST_REQUIRE(registry.release(now, name, holder->pid));
  }
  apply();  // the releases reach on_change, which leaves registry keys to on_registry_event
  auto held = [&] {
    int n = 0;
    for (const auto& [name, pid] : pids) {
      auto holder = registry.whereis(name);
      n += holder && holder->pid == pid ? 1 : 0;
    }
    return n;
  };
  BOOST_TEST(held() == 0);
  // The Stack hands the same view down every few seconds: that reconciles nothing.
  sup.set_members(now, view);
  BOOST_TEST(held() == 0);
  std::vector<int> after_each;
  for (int period = 0; period < 4; ++period) {
    now = std::max(now + 1, sup.next_deadline());
    sup.on_timer(now);
    after_each.push_back(held());
  }
  BOOST_TEST(after_each == (std::vector<int>{2, 4, 5, 5}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(exec_policy)

BOOST_AUTO_TEST_CASE(a_policy_round_trips_through_its_tag_and_admits_by_glob) {
  using shoal::cluster::Tags;
  BOOST_TEST((exec_policy_of(Tags{}) == ExecPolicy{}));  // none advertised: any (older nodes)
  BOOST_TEST((exec_policy_of(Tags{{"shoal.exec", "any"}}).mode == ExecPolicy::Mode::any));
  const ExecPolicy none{ExecPolicy::Mode::none, {}};
  const ExecPolicy globs{ExecPolicy::Mode::globs, {"/usr/bin/*", "/opt/app/bin/run-?"}};
  for (const ExecPolicy& p : {none, globs, ExecPolicy{}}) {
    BOOST_TEST((exec_policy_of(Tags{{"shoal.exec", encode_exec_policy(p)}}) == p));
    BOOST_TEST(!validate_exec_policy(p).has_value());
  }
  BOOST_TEST(admits(ExecPolicy{}, ""));  // any admits even an unknown path
  BOOST_TEST(!admits(none, "/usr/bin/sleep"));
  BOOST_TEST(admits(globs, "/usr/bin/sleep"));
  BOOST_TEST(!admits(globs, "/usr/bin/x/sleep"));  // * does not cross a '/'
  BOOST_TEST(admits(globs, "/opt/app/bin/run-1"));
  BOOST_TEST(!admits(globs, "/opt/app/bin/run-10"));
  BOOST_TEST(!admits(globs, ""));  // an unknown path: only any admits it
  BOOST_TEST(!admits(globs, "sleep"));
  // A value this node cannot read admits nothing.
  BOOST_TEST(
      !admits(exec_policy_of(Tags{{"shoal.exec", "sleep:also-relative"}}), "/usr/bin/sleep"));
}

BOOST_AUTO_TEST_CASE(bad_globs_get_a_clear_reason) {
  auto why = [](std::vector<std::string> globs) {
    return validate_exec_policy(ExecPolicy{ExecPolicy::Mode::globs, std::move(globs)}).value_or("");
  };
  BOOST_TEST(why({"bin/*"}).find("absolute") != std::string::npos);
  BOOST_TEST(why({"/a:b"}).find("':'") != std::string::npos);
  BOOST_TEST(why({}).find("at least one") != std::string::npos);
  BOOST_TEST(why({std::string(300, '/')}).find("bytes") != std::string::npos);
}

// Placement skips a member whose policy refuses the command, as it skips one that lacks a
// constraint's tag; workers are not concerned.
BOOST_AUTO_TEST_CASE(placement_skips_members_whose_policy_refuses_the_command) {
  View view = members(6);
  view["node-0"].tags = {{"shoal.exec", "none"}};
  view["node-1"].tags = {{"shoal.exec", "/usr/bin/*"}};
  int on_1 = 0;
  for (int k = 0; k < 300; ++k) {
    ChildSpec s;
    s.name = "c-" + std::to_string(k);
    s.argv = {"sleep", "1"};
    s.exec_path = "/usr/bin/sleep";
    const auto owner = place(s, view);
    BOOST_TEST_REQUIRE(owner.has_value());
    BOOST_TEST(*owner != "node-0");
    on_1 += *owner == "node-1" ? 1 : 0;
    s.exec_path = "/opt/tool";
    BOOST_TEST(*place(s, view) != "node-1");
    s.exec_path.clear();  // not known, and argv[0] is relative: only "any" members
    BOOST_TEST(*place(s, view) != "node-1");
    s.argv = {"/usr/bin/sleep", "1"};  // an absolute argv[0] stands for the path
    BOOST_TEST(*place(s, view) != "node-0");
    ChildSpec w;
    w.name = s.name;
    w.kind = ChildKind::worker;
    w.worker_type = "idle";
    BOOST_TEST((place(w, view) == place(w, members(6))));  // workers: the policy changes nothing
  }
  BOOST_TEST(on_1 > 20);  // node-1 takes its share of what it allows
  // Nobody may run it: placement has no owner and the reason names the policy.
  View strict;
  strict["node-0"] = MemberInfo{1, {{"shoal.exec", "none"}}};
  strict["node-1"] = MemberInfo{2, {{"shoal.exec", "/usr/bin/*"}}};
  ChildSpec s;
  s.name = "tool";
  s.argv = {"tool"};
  s.exec_path = "/opt/tool";
  BOOST_TEST(!place(s, strict).has_value());
  const auto why = refused_everywhere(s, {&strict["node-0"].tags, &strict["node-1"].tags});
  BOOST_TEST_REQUIRE(why.has_value());
  BOOST_TEST(why->find("/opt/tool") != std::string::npos, *why);
  s.exec_path = "/usr/bin/tool";
  BOOST_TEST(!refused_everywhere(s, {&strict["node-0"].tags, &strict["node-1"].tags}));
}

BOOST_AUTO_TEST_SUITE_END()
