// The thread-safe messaging client: threads call an echo worker through a stack on a libuv loop.

#include "supervisor/messaging_client.h"

#include <uv.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <thread>

#include "cluster/uv/uv_driver.h"
#include "cluster/uv/uv_executor.h"
#include "tests/support/host.h"

using namespace shoal;
using messaging::Target;

BOOST_AUTO_TEST_SUITE(messaging_client)

BOOST_AUTO_TEST_CASE(threads_send_call_and_publish_through_the_loop) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  cluster::UvDriverOptions options;
  options.bind = cluster::Address::v4(127, 0, 0, 1, shoal::test::free_ports(1));
  supervisor::Stack* stack = nullptr;
  supervisor::StackConfig config;
  config.startup_settle_ms = 0;
  auto driver = cluster::UvDriver::start(
      &loop, options,
      [&](const cluster::Address& advertise, std::uint64_t now) {
        auto s = std::make_unique<supervisor::Stack>(
            config, cluster::NodeIdentity{"a", advertise, 1, {}}, 1, now);
        stack = s.get();
        return s;
      },
      [](const cluster::MemberEvent&) {});
  BOOST_TEST_REQUIRE(driver.has_value());
  cluster::UvDriver& d = **driver;
  supervisor::ChildSpec echo;
  echo.name = "echo";
  echo.kind = supervisor::ChildKind::worker;
  echo.worker_type = "echo";
  BOOST_TEST_REQUIRE(stack->supervisor().add(d.now(), echo).has_value());
  d.settle();
  cluster::UvExecutor executor(&loop);
  supervisor::MessagingClient client(
      executor, *stack, 77, [&d] { return d.now(); }, [&d] { d.settle(); });
  std::thread loop_thread([&loop] { uv_run(&loop, UV_RUN_DEFAULT); });

  // The worker starts on the loop: wait for its name (bounded; through the client's own calls).
  bool up = false;
  for (int k = 0; k < 500 && !up; ++k) {
    up = client.call(Target::of_name("echo"), "up?", 100).get().has_value();
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a condition
  }
  BOOST_TEST_REQUIRE(up);
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&client, &wrong, t] {
      for (int k = 0; k < 200; ++k) {
        const std::string payload = std::to_string(t) + "/" + std::to_string(k);
        auto r = client.call(Target::of_name("echo"), payload).get();
        if (!r || *r != payload) ++wrong;
      }
    });
  }
  for (auto& c : callers)
    c.join();
  BOOST_TEST(wrong == 0);
  auto none = client.call(Target::of_name("nobody"), "x").get();
  BOOST_TEST_REQUIRE(!none.has_value());
  BOOST_TEST((none.error() == messaging::CallError::noproc));
  BOOST_TEST(client.send(Target::of_name("echo"), "one way").get().has_value());
  BOOST_TEST((client.publish("nobody-here", "x").get().error() == messaging::CallError::noproc));
  std::promise<std::string> via_callback;
  client.call(Target::of_name("echo"), "cb", 0, [&via_callback](messaging::CallResult r) {
    via_callback.set_value(r ? *r : "error");
  });
  BOOST_TEST(via_callback.get_future().get() == "cb");

  BOOST_TEST(executor.post([&] {
    executor.close([] {});
    d.close([] {});
  }));
  loop_thread.join();
  BOOST_CHECK_THROW(client.call(Target::of_name("echo"), "late").get(), std::runtime_error);
  BOOST_TEST(uv_loop_close(&loop) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
