// Messaging over a simulated cluster of stacks (tests/support/sim_stacks.h): workers send, call and
// publish to names, groups and pids over the one connection each pair of nodes keeps; kills,
// failovers and partitions happen under them. Every case prints its seed.

#include <boost/test/unit_test.hpp>
#include <map>
#include <memory>
#include <set>

#include "supervisor/stack.h"
#include "tests/support/seed.h"
#include "tests/support/sim_stacks.h"

using namespace shoal;
using messaging::CallError;
using messaging::Target;
using supervisor::ChildSpec;
using supervisor::Message;
using supervisor::WorkerContext;
using World = shoal::test::SimStacks;

namespace {

// What the test's workers heard, shared by every copy on every node.
struct Log {
  std::vector<std::pair<std::string, std::string>> received;  // (worker's node, payload)
  std::map<std::string, int> results;                         // call outcomes by name
};

// Records what it is sent; answers calls with "ok:" + the payload.
class Recorder : public supervisor::Worker {
 public:
  explicit Recorder(std::shared_ptr<Log> log) : log_(std::move(log)) {}
  void start(WorkerContext&, const std::optional<std::string>&) override {}
  void on_message(WorkerContext& ctx, const Message& msg) override {
    log_->received.emplace_back(ctx.self().node, std::string(msg.payload));
    if (msg.reply_to) ctx.reply(*msg.reply_to, "ok:" + std::string(msg.payload));
  }

 private:
  std::shared_ptr<Log> log_;
};

// Never answers: its callers wait.
class Silent : public supervisor::Worker {
 public:
  void start(WorkerContext&, const std::optional<std::string>&) override {}
};

// Joins group "subs" when it starts, and records what it is sent.
class Subscriber : public Recorder {
 public:
  using Recorder::Recorder;
  void start(WorkerContext& ctx, const std::optional<std::string>& cp) override {
    Recorder::start(ctx, cp);
    ctx.join("subs");
  }
};

ChildSpec worker(const std::string& name, const std::string& type,
                 std::map<std::string, std::string, std::less<>> constraints = {}) {
  ChildSpec spec;
  spec.name = name;
  spec.kind = supervisor::ChildKind::worker;
  spec.worker_type = type;
  spec.constraints = std::move(constraints);
  return spec;
}

bool add(World& w, std::size_t i, const ChildSpec& spec) {
  const bool added = w.sup(i).add(w.c.now(), spec).has_value();
  w.settle(i);
  return added;
}

// The node that runs child `name` (by its registry entry, seen from node `from`), or size().
std::size_t runner(World& w, const std::string& name, std::size_t from = 0) {
  auto where = w.reg(from).whereis(name);
  if (!where) return w.c.size();
  for (std::size_t i = 0; i < w.c.size(); ++i) {
    if (w.c.running(i) && w.c.name(i) == where->pid.node) return i;
  }
  return w.c.size();
}

// A local id on node i for the test's own calls (no receiver there: replies only).
constexpr std::uint64_t kTester = 7;

// Calls `target` from node i through its messenger; returns the call's id.
std::uint64_t call(World& w, std::size_t i, const Target& target, std::string payload,
                   std::uint64_t timeout_ms = 5'000) {
  auto id = w.stack(i).messenger().call(w.c.now(), target, kTester, payload, timeout_ms);
  BOOST_TEST_REQUIRE(id.has_value(),
                     "call failed at once: " << (id ? "" : messaging::call_error_name(id.error())));
  w.settle(i);
  return *id;
}

bool done(World& w, std::size_t i, std::uint64_t id) {
  return w.call_results(i).contains(id);
}

// The test's worker types on every node, and a converged cluster.
void ready(World& w, std::uint64_t seed, const std::shared_ptr<Log>& log) {
  w.add_worker_type("recorder", [log] { return std::make_unique<Recorder>(log); });
  w.add_worker_type("subscriber", [log] { return std::make_unique<Subscriber>(log); });
  w.add_worker_type("silent", [] { return std::make_unique<Silent>(); });
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 10'000), "seed=" << seed);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(messaging_sim)

BOOST_AUTO_TEST_CASE(sends_arrive_once_and_in_order_per_sender_node) {
  const auto seed = shoal::test::test_seed();
  auto log = std::make_shared<Log>();
  World w(5, seed);
  ready(w, seed, log);
  BOOST_TEST_REQUIRE(add(w, 0, worker("sink", "recorder")));
  BOOST_TEST_REQUIRE(
      w.wait([&] { return runner(w, "sink") < 5 && runner(w, "sink", 4) < 5; }, 10'000));
  const std::size_t at = runner(w, "sink");
  // Every other node sends 300 numbered messages, a few per step, while the network jitters.
  std::map<std::size_t, int> next;
  for (int round = 0; round < 100; ++round) {
    for (std::size_t i = 0; i < 5; ++i) {
      if (i == at) continue;
      for (int k = 0; k < 3; ++k) {
        const std::string payload = std::to_string(i) + ":" + std::to_string(next[i]++);
        BOOST_TEST_REQUIRE(w.stack(i)
                               .messenger()
                               .send(w.c.now(), Target::of_name("sink"), kTester, payload)
                               .has_value());
      }
      w.settle(i);
    }
    w.c.run_for(1);
  }
  BOOST_TEST_REQUIRE(w.wait([&] { return log->received.size() == 4u * 300u; }, 10'000),
                     "received " << log->received.size() << "; seed=" << seed);
  std::map<std::string, int> expect;
  for (const auto& [node, payload] : log->received) {
    const std::string sender = payload.substr(0, payload.find(':'));
    const int n = std::stoi(payload.substr(payload.find(':') + 1));
    BOOST_TEST(n == expect[sender], "from n" << sender << " got " << n << " after "
                                             << expect[sender] - 1 << "; seed=" << seed);
    expect[sender] = n + 1;
  }
  w.c.run_for(1'000);
  BOOST_TEST(log->received.size() == 4u * 300u);  // nothing twice
  // One connection per pair of nodes that talked: the receiver's node has one to each sender.
  BOOST_TEST(w.stack(at).messenger().connections_up() == 4u);
}

BOOST_AUTO_TEST_CASE(calls_get_the_reply_or_noproc) {
  const auto seed = shoal::test::test_seed();
  auto log = std::make_shared<Log>();
  World w(3, seed);
  ready(w, seed, log);
  BOOST_TEST_REQUIRE(add(w, 0, worker("echo", "echo")));
  BOOST_TEST_REQUIRE(w.wait([&] { return runner(w, "echo", 1) < 3; }, 10'000));
  const std::size_t from = (runner(w, "echo", 1) + 1) % 3;
  const auto id = call(w, from, Target::of_name("echo"), "ping");
  BOOST_TEST_REQUIRE(w.wait([&] { return done(w, from, id); }, 5'000), "seed=" << seed);
  BOOST_TEST((w.call_results(from).at(id) == messaging::CallResult("ping")));
  // Nobody by that name: noproc at once. A pid no receiver holds: noproc from its node.
  auto none = w.stack(from).messenger().call(w.c.now(), Target::of_name("nobody"), kTester, "x");
  BOOST_TEST((none.error() == CallError::noproc));
  const registry::Pid stranger{w.c.name(runner(w, "echo", 1)),
                               w.c.membership(runner(w, "echo", 1)).creation(), 424242};
  const auto id2 = call(w, from, Target::of_pid(stranger), "x");
  BOOST_TEST_REQUIRE(w.wait([&] { return done(w, from, id2); }, 5'000));
  BOOST_TEST((w.call_results(from).at(id2) == std::unexpected(CallError::noproc)));
  // A call on the same node goes through no connection.
  const std::size_t here = runner(w, "echo", 1);
  const auto id3 = call(w, here, Target::of_name("echo"), "local");
  BOOST_TEST_REQUIRE(w.wait([&] { return done(w, here, id3); }, 5'000));
  BOOST_TEST((w.call_results(here).at(id3) == messaging::CallResult("local")));
}

BOOST_AUTO_TEST_CASE(a_call_to_a_node_that_dies_fails_with_nodedown_before_its_timeout) {
  const auto seed = shoal::test::test_seed();
  auto log = std::make_shared<Log>();
  World w(5, seed);
  ready(w, seed, log);
  BOOST_TEST_REQUIRE(add(w, 0, worker("mute", "silent")));
  BOOST_TEST_REQUIRE(
      w.wait([&] { return runner(w, "mute") < 5 && runner(w, "mute", 4) < 5; }, 10'000));
  const std::size_t victim = runner(w, "mute");
  const std::size_t from = (victim + 2) % 5;
  const auto id = call(w, from, Target::of_name("mute"), "hello?", 60'000);
  w.c.run_for(500);
  BOOST_TEST_REQUIRE(!done(w, from, id));  // it waits: nobody answers
  const std::uint64_t killed = w.c.now();
  w.kill(victim);
  BOOST_TEST_REQUIRE(w.wait([&] { return done(w, from, id); }, 60'000), "seed=" << seed);
  BOOST_TEST((w.call_results(from).at(id) == std::unexpected(CallError::nodedown)));
  BOOST_TEST_MESSAGE("nodedown " << w.c.now() - killed << " ms after the kill");
  BOOST_TEST(w.c.now() - killed < 5'000u);  // the failure detector's time, not the timeout's
}

BOOST_AUTO_TEST_CASE(a_message_to_a_name_that_moved_goes_to_the_new_copy) {
  const auto seed = shoal::test::test_seed();
  auto log = std::make_shared<Log>();
  World w(5, seed);
  ready(w, seed, log);
  BOOST_TEST_REQUIRE(add(w, 0, worker("svc", "recorder")));
  BOOST_TEST_REQUIRE(w.wait([&] { return runner(w, "svc") < 5; }, 10'000));
  const std::size_t first = runner(w, "svc");
  w.kill(first);
  const std::size_t from = (first + 1) % 5;
  BOOST_TEST_REQUIRE(
      w.wait([&] { return runner(w, "svc", from) < 5 && runner(w, "svc", from) != first; }, 20'000),
      "seed=" << seed);
  const std::size_t second = runner(w, "svc", from);
  const auto id = call(w, from, Target::of_name("svc"), "after");
  BOOST_TEST_REQUIRE(w.wait([&] { return done(w, from, id); }, 5'000));
  BOOST_TEST((w.call_results(from).at(id) == messaging::CallResult("ok:after")));
  BOOST_TEST_REQUIRE(!log->received.empty());
  BOOST_TEST(log->received.back().first == w.c.name(second));
  // A pid of the old copy (an earlier life of its node, or the dead node) gets nothing.
  const registry::Pid old{w.c.name(first), w.c.membership(first).creation(), 1ULL << 32};
  auto gone = w.stack(from).messenger().send(w.c.now(), Target::of_pid(old), kTester, "x");
  BOOST_TEST((gone.error() == CallError::noproc));
}

BOOST_AUTO_TEST_CASE(publish_reaches_every_live_member_once) {
  const auto seed = shoal::test::test_seed();
  auto log = std::make_shared<Log>();
  World w(5, seed);
  ready(w, seed, log);
  std::vector<std::string> subs;
  for (int k = 0; k < 20; ++k) {
    subs.push_back("sub-" + std::to_string(k));
    BOOST_TEST_REQUIRE(add(w, 0, worker(subs.back(), "subscriber")));
  }
  BOOST_TEST_REQUIRE(w.wait([&] { return w.reg(3).members("subs").size() == 20u; }, 10'000));
  auto count = w.stack(3).messenger().publish(w.c.now(), "subs", kTester, "news");
  w.settle(3);
  BOOST_TEST_REQUIRE(count.has_value());
  BOOST_TEST(*count == 20u);
  BOOST_TEST(w.wait([&] { return log->received.size() == 20u; }, 5'000), "seed=" << seed);
  w.c.run_for(1'000);
  BOOST_TEST(log->received.size() == 20u);
  std::set<std::string> nodes;
  for (const auto& [node, payload] : log->received)
    nodes.insert(node);
  BOOST_TEST(nodes.size() > 1u);  // spread over several nodes
  auto none = w.stack(3).messenger().publish(w.c.now(), "nobody-here", kTester, "x");
  BOOST_TEST((none.error() == CallError::noproc));
}

BOOST_AUTO_TEST_CASE(calls_across_a_partition_fail_and_never_outlive_their_timeout) {
  const auto seed = shoal::test::test_seed();
  auto log = std::make_shared<Log>();
  World w(5, seed);
  ready(w, seed, log);
  BOOST_TEST_REQUIRE(add(w, 0, worker("far", "echo", {})));
  BOOST_TEST_REQUIRE(
      w.wait([&] { return runner(w, "far") < 5 && runner(w, "far", 4) < 5; }, 10'000));
  const std::size_t target = runner(w, "far");
  std::vector<std::size_t> near{target}, away;
  for (std::size_t i = 0; i < 5; ++i) {
    if (i == target) continue;
    (near.size() < 2 ? near : away).push_back(i);
  }
  const std::size_t from = away.front();
  // Warm the connection, then cut it.
  const auto warm = call(w, from, Target::of_name("far"), "warm");
  BOOST_TEST_REQUIRE(w.wait([&] { return done(w, from, warm); }, 5'000));
  const registry::Pid copy = w.reg(from).whereis("far")->pid;
  w.c.partition({near, away});
  // To the copy beyond the cut: every call fails (timeout, or nodedown once that side is declared
  // failed). To the name: the away side restarts the child itself (ap mode), so later calls are
  // answered there. Either way no call outlives its timeout.
  std::vector<std::pair<std::uint64_t, bool>> calls;  // (id, to the pid)
  for (int k = 0; k < 20; ++k) {
    for (bool to_pid : {true, false}) {
      auto id = w.stack(from).messenger().call(
          w.c.now(), to_pid ? Target::of_pid(copy) : Target::of_name("far"), kTester, "x", 800);
      w.settle(from);
      if (id) calls.emplace_back(*id, to_pid);
    }
    w.c.run_for(150);
  }
  w.c.run_for(1'000);
  std::size_t answered_by_name = 0;
  for (const auto& [id, to_pid] : calls) {
    BOOST_TEST_REQUIRE(done(w, from, id), "a call outlived its timeout; seed=" << seed);
    const auto& r = w.call_results(from).at(id);
    if (to_pid) {
      BOOST_TEST_REQUIRE(!r.has_value(), "the copy beyond the cut answered; seed=" << seed);
      BOOST_TEST((r.error() == CallError::timeout || r.error() == CallError::nodedown));
    } else if (r) {
      ++answered_by_name;
    }
  }
  BOOST_TEST(answered_by_name > 0u);  // the name's new copy on this side
  w.c.heal();
  BOOST_TEST_REQUIRE(w.wait([&] { return w.c.converged(); }, 60'000));
  // Healed, calls work again (to the copy that holds the name now).
  BOOST_TEST_REQUIRE(w.wait([&] { return runner(w, "far", from) < 5; }, 30'000));
  std::uint64_t again = 0;
  BOOST_TEST(w.wait(
                 [&] {
                   if (again != 0 && done(w, from, again) && w.call_results(from).at(again))
                     return true;
                   if (again == 0 || done(w, from, again)) {
                     auto id = w.stack(from).messenger().call(w.c.now(), Target::of_name("far"),
                                                              kTester, "again", 1'000);
                     w.settle(from);
                     again = id ? *id : 0;
                   }
                   return false;
                 },
                 30'000),
             "seed=" << seed);
}

BOOST_AUTO_TEST_CASE(a_full_queue_refuses_with_overloaded) {
  const auto seed = shoal::test::test_seed();
  auto log = std::make_shared<Log>();
  supervisor::StackConfig config;
  config.messaging.max_queue_bytes = 4096;
  World w(3, seed, config);
  ready(w, seed, log);
  BOOST_TEST_REQUIRE(add(w, 0, worker("sink", "recorder")));
  BOOST_TEST_REQUIRE(
      w.wait([&] { return runner(w, "sink", 1) < 3 && runner(w, "sink", 2) < 3; }, 10'000));
  const std::size_t at = runner(w, "sink", 1);
  const std::size_t from = (at + 1) % 3;
  // Within one loop turn (no flush), a queue of 4 KiB takes about 4 KiB of 100-byte messages.
  int sent = 0;
  int refused = 0;
  for (int k = 0; k < 200; ++k) {
    auto r = w.stack(from).messenger().send(w.c.now(), Target::of_name("sink"), kTester,
                                            std::string(100, 'x'));
    (r ? sent : refused) += 1;
    if (!r) BOOST_TEST((r.error() == CallError::overloaded));
  }
  w.settle(from);
  BOOST_TEST(sent > 0);
  BOOST_TEST(refused > 0);
  BOOST_TEST(w.wait([&] { return log->received.size() == static_cast<std::size_t>(sent); }, 5'000),
             "seed=" << seed);
  BOOST_TEST(w.stack(from).messenger().stats().overloaded == static_cast<std::uint64_t>(refused));
}

BOOST_AUTO_TEST_CASE(a_command_runs_once_on_the_node_asked_and_its_output_comes_back) {
  const auto seed = shoal::test::test_seed();
  auto log = std::make_shared<Log>();
  World w(3, seed);
  ready(w, seed, log);
  auto id = w.stack(0).messenger().start_task(w.c.now(), w.c.name(2), {"echo", "hi"}, 10'000);
  w.settle(0);
  BOOST_TEST_REQUIRE(id.has_value());
  BOOST_TEST_REQUIRE(w.wait(
      [&] {
        for (const auto& e : w.task_events(0))
          if (e.kind == messaging::TaskEvent::Kind::end) return true;
        return false;
      },
      5'000));
  const auto& events = w.task_events(0);
  BOOST_TEST_REQUIRE(events.size() == 2u);
  BOOST_TEST(events[0].bytes == "echo hi\n");
  BOOST_TEST((events[1].kind == messaging::TaskEvent::Kind::end));
  BOOST_TEST(events[1].status == 0u);
  BOOST_TEST(!events[1].error.has_value());
  auto nowhere = w.stack(0).messenger().start_task(w.c.now(), "n9", {"true"}, 1'000);
  BOOST_TEST((nowhere.error() == CallError::noproc));
}

BOOST_AUTO_TEST_SUITE_END()
