// The thread-safe facade: many threads call into one loop-bound Registry through a UvExecutor.

#include "registry/registry_client.h"

#include <uv.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <thread>

#include "cluster/uv/uv_executor.h"

using namespace shoal;

BOOST_AUTO_TEST_SUITE(registry_client)

BOOST_AUTO_TEST_CASE(threads_register_and_read_through_the_loop) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  cluster::Replicator replicator("a#1", {}, 1, 0);
  registry::Registry reg(replicator, "a");
  reg.set_members({{"a", 1}});
  cluster::UvExecutor executor(&loop);
  std::size_t writes_seen = 0;  // touched on the loop thread only
  registry::RegistryClient client(
      executor, reg, [&loop] { return uv_now(&loop); }, [&writes_seen] { ++writes_seen; });

  std::thread loop_thread([&loop] { uv_run(&loop, UV_RUN_DEFAULT); });
  // Boost.Test's assertions are not thread-safe (from the callers they corrupted its state now
  // and then: CI saw a stack smash); the callers count, the main thread asserts.
  std::atomic<int> not_registered{0};
  std::atomic<int> not_found{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&client, &not_registered, &not_found, t] {
      for (int k = 0; k < 500; ++k) {
        const std::string name = "t" + std::to_string(t) + "/" + std::to_string(k);
        auto done =
            client.register_name(name, registry::Pid{"a", 1, static_cast<std::uint64_t>(k)}).get();
        if (!done) ++not_registered;
        if (!client.whereis(name).get()) ++not_found;
      }
    });
  }
  for (auto& c : callers)
    c.join();
  BOOST_TEST(not_registered == 0);
  BOOST_TEST(not_found == 0);
  BOOST_TEST(client.names("t", 10'000).get().size() == 2'000u);
  auto taken = client.register_name("t0/0", registry::Pid{"a", 1, 999}).get();
  BOOST_TEST_REQUIRE(!taken.has_value());
  BOOST_TEST((taken.error().code == registry::RegisterErrc::already_registered));
  BOOST_TEST(client.unregister("t0/0").get());
  BOOST_TEST(!client.whereis("t0/0").get().has_value());
  BOOST_TEST(client.join("g", registry::Pid{"a", 1, 1}).get().has_value());
  BOOST_TEST(client.members("g").get().size() == 1u);

  // Close from the loop thread; later calls fail cleanly instead of hanging.
  bool closed = false;
  BOOST_TEST(executor.post([&executor, &closed] { executor.close([&closed] { closed = true; }); }));
  loop_thread.join();
  BOOST_TEST(closed);
  BOOST_TEST(writes_seen == 2'003u);
  BOOST_CHECK_THROW(client.whereis("x").get(), std::runtime_error);
  BOOST_TEST(uv_loop_close(&loop) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
