// In-process workers: the runtime's lifecycle reports, the built-in counter's checkpoints, forced
// stops, and worker types the embedding program adds.

#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

#include "supervisor/worker.h"

using namespace shoal::supervisor;

namespace {

StartChild start_of(std::string name, std::string type, std::uint64_t id,
                    std::optional<std::string> checkpoint = std::nullopt) {
  ChildSpec spec;
  spec.name = std::move(name);
  spec.kind = ChildKind::worker;
  spec.worker_type = std::move(type);
  return StartChild{std::move(spec), id, std::move(checkpoint)};
}

std::vector<WorkerReport> drain(WorkerRuntime& rt) {
  std::vector<WorkerReport> out;
  rt.take_reports(out);
  return out;
}

std::vector<std::string> checkpoints(const std::vector<WorkerReport>& reports) {
  std::vector<std::string> out;
  for (const WorkerReport& r : reports)
    if (r.kind == WorkerReport::Kind::checkpoint) out.push_back(r.text);
  return out;
}

// Ends only when asked twice: its stop() ignores the first request.
class Stubborn : public Worker {
 public:
  void start(WorkerContext&, const std::optional<std::string>&) override {}
  void stop(WorkerContext&) override {}
  void on_message(WorkerContext& ctx, const Message& msg) override {
    if (msg.payload == "quit")
      ctx.exit(false, "quit on request");
    else
      ctx.checkpoint(msg.payload);
  }
};

// Counts its ticks; says whether it wants them, and ignores a stop (so only the timeout ends it).
class TickCounter : public Worker {
 public:
  TickCounter(bool wants, int& ticks) : wants_(wants), ticks_(ticks) {}
  void start(WorkerContext&, const std::optional<std::string>&) override {}
  void stop(WorkerContext&) override {}
  void on_tick(WorkerContext&) override { ++ticks_; }
  bool ticks() const override { return wants_; }

 private:
  bool wants_;
  int& ticks_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(worker_runtime)

BOOST_AUTO_TEST_CASE(only_workers_that_tick_are_ticked_and_a_silent_one_still_times_out) {
  WorkerRuntime rt;
  int loud = 0, silent = 0;
  rt.add_type("loud", [&] { return std::make_unique<TickCounter>(true, loud); });
  rt.add_type("silent", [&] { return std::make_unique<TickCounter>(false, silent); });
  rt.start(0, start_of("s", "silent", 1));
  BOOST_TEST(!rt.ticking());  // nothing to tick: the driver need not wake for it
  rt.start(0, start_of("l", "loud", 2));
  BOOST_TEST(rt.ticking());
  rt.tick(100);
  rt.tick(200);
  BOOST_TEST(loud == 2);
  BOOST_TEST(silent == 0);
  drain(rt);
  rt.stop(300, StopChild{"s", 1, StopReason::removed, 1000});
  rt.tick(1299);
  BOOST_TEST(rt.runs("s"));
  rt.tick(1300);
  BOOST_TEST(!rt.runs("s"));
  BOOST_TEST(silent == 0);
  auto reports = drain(rt);
  BOOST_REQUIRE_EQUAL(reports.size(), 1u);
  BOOST_TEST(reports[0].text == "killed after the shutdown timeout");
}

BOOST_AUTO_TEST_CASE(counter_resumes_from_its_checkpoint_and_checkpoints_every_second) {
  WorkerRuntime rt;
  rt.start(1000, start_of("c", "counter", 7, "count=41"));
  auto started = drain(rt);
  BOOST_REQUIRE_EQUAL(started.size(), 1u);
  BOOST_TEST((started[0].kind == WorkerReport::Kind::started));
  BOOST_TEST(started[0].id == 7u);
  BOOST_TEST(rt.runs("c"));

  // Ticks every 100 ms; a checkpoint once a second.
  for (std::uint64_t t = 1100; t <= 2000; t += 100)
    rt.tick(t);
  BOOST_TEST(checkpoints(drain(rt)) == std::vector<std::string>{"count=51"});

  rt.stop(2050, StopChild{"c", 7, StopReason::moved, 5000});
  auto stopped = drain(rt);
  BOOST_REQUIRE_EQUAL(stopped.size(), 1u);
  BOOST_TEST((stopped[0].kind == WorkerReport::Kind::exited));
  BOOST_TEST(stopped[0].normal);
  BOOST_TEST(stopped[0].text == "stopped at count=51 (resumed from 41)");
  BOOST_TEST(!rt.runs("c"));
  BOOST_TEST(rt.size() == 0u);
}

// A stop that hands the state on gets the final count as a checkpoint before the exit; the next
// copy started from it goes on from there.
BOOST_AUTO_TEST_CASE(counter_checkpoints_its_final_count_when_it_hands_over) {
  WorkerRuntime rt;
  rt.start(0, start_of("c", "counter", 1, "count=10"));
  for (std::uint64_t t = 100; t <= 1500; t += 100)
    rt.tick(t);  // 15 ticks: a periodic checkpoint at 1000 (count=20), then 5 more
  BOOST_TEST(checkpoints(drain(rt)) == std::vector<std::string>{"count=20"});
  rt.stop(1550, StopChild{"c", 1, StopReason::moved, 5000, /*handover=*/true});
  auto stopped = drain(rt);
  BOOST_REQUIRE_EQUAL(stopped.size(), 2u);
  BOOST_TEST((stopped[0].kind == WorkerReport::Kind::checkpoint));
  BOOST_TEST(stopped[0].text == "count=25");
  BOOST_TEST((stopped[1].kind == WorkerReport::Kind::exited));
  rt.start(1600, start_of("c", "counter", 2, stopped[0].text));
  rt.tick(1700);
  rt.stop(1750, StopChild{"c", 2, StopReason::removed, 5000});
  BOOST_TEST(drain(rt).back().text == "stopped at count=26 (resumed from 25)");
}

BOOST_AUTO_TEST_CASE(a_garbled_checkpoint_starts_the_counter_from_zero) {
  WorkerRuntime rt;
  rt.start(0, start_of("c", "counter", 1, "count=lots"));
  rt.tick(100);
  rt.stop(150, StopChild{"c", 1, StopReason::removed, 5000});
  auto reports = drain(rt);
  BOOST_REQUIRE(!reports.empty());
  BOOST_TEST(reports.back().text == "stopped at count=1 (resumed from 0)");
}

BOOST_AUTO_TEST_CASE(an_unknown_type_exits_abnormally_at_once) {
  WorkerRuntime rt;
  rt.start(0, start_of("x", "no-such-type", 3));
  auto reports = drain(rt);
  BOOST_REQUIRE_EQUAL(reports.size(), 1u);
  BOOST_TEST((reports[0].kind == WorkerReport::Kind::exited));
  BOOST_TEST(!reports[0].normal);
  BOOST_TEST(reports[0].text == "no worker type 'no-such-type' on this node");
  BOOST_TEST(rt.size() == 0u);
}

BOOST_AUTO_TEST_CASE(a_second_copy_of_a_running_name_is_refused) {
  WorkerRuntime rt;
  rt.start(0, start_of("w", "idle", 1));
  rt.start(0, start_of("w", "idle", 2));
  auto reports = drain(rt);
  BOOST_REQUIRE_EQUAL(reports.size(), 2u);
  BOOST_TEST((reports[1].kind == WorkerReport::Kind::exited));
  BOOST_TEST(reports[1].id == 2u);
  BOOST_TEST(reports[1].text == "already running here");
  BOOST_TEST(rt.size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_stop_for_another_instance_is_ignored) {
  WorkerRuntime rt;
  rt.start(0, start_of("w", "idle", 5));
  drain(rt);
  rt.stop(10, StopChild{"w", 4, StopReason::lost_name, 1000});
  BOOST_TEST(drain(rt).empty());
  BOOST_TEST(rt.runs("w"));
}

BOOST_AUTO_TEST_CASE(a_worker_that_ignores_stop_is_ended_after_its_shutdown_timeout) {
  WorkerRuntime rt;
  rt.add_type("stubborn", [] { return std::make_unique<Stubborn>(); });
  BOOST_TEST(rt.has_type("stubborn"));
  rt.start(0, start_of("s", "stubborn", 9));
  drain(rt);
  rt.stop(1000, StopChild{"s", 9, StopReason::lost_name, 2000});
  rt.tick(2999);
  BOOST_TEST(drain(rt).empty());
  BOOST_TEST(rt.runs("s"));
  rt.tick(3000);
  auto reports = drain(rt);
  BOOST_REQUIRE_EQUAL(reports.size(), 1u);
  BOOST_TEST(!reports[0].normal);
  BOOST_TEST(reports[0].text == "killed after the shutdown timeout");
  BOOST_TEST(!rt.runs("s"));
}

BOOST_AUTO_TEST_CASE(messages_reach_the_worker_of_their_id_which_may_end_itself) {
  WorkerRuntime rt;
  rt.add_type("stubborn", [] { return std::make_unique<Stubborn>(); });
  rt.start(0, start_of("s", "stubborn", 1));
  drain(rt);
  const auto message = [](std::uint64_t to, std::string payload) {
    return shoal::messaging::Deliver{to, {"n1", 1, 5}, std::move(payload), std::nullopt};
  };
  BOOST_TEST(!rt.deliver(1, message(2, "hello")));
  BOOST_TEST(rt.runs_instance(1));
  BOOST_TEST(rt.deliver(1, message(1, "state=3")));
  BOOST_TEST(checkpoints(drain(rt)) == std::vector<std::string>{"state=3"});
  BOOST_TEST(rt.deliver(2, message(1, "quit")));
  auto reports = drain(rt);
  BOOST_REQUIRE_EQUAL(reports.size(), 1u);
  BOOST_TEST(!reports[0].normal);
  BOOST_TEST(reports[0].text == "quit on request");
  BOOST_TEST(!rt.runs("s"));
  BOOST_TEST(!rt.deliver(3, message(1, "again")));
  BOOST_TEST(!rt.runs_instance(1));
}

BOOST_AUTO_TEST_SUITE_END()
