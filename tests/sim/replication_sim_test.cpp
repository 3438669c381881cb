// The replicated map across a simulated cluster: membership and replication together, as the
// agent runs them. Every case prints its seed.

#include <boost/test/unit_test.hpp>

#include "cluster/sim/sim_cluster.h"
#include "tests/support/seed.h"

using shoal::cluster::MembershipConfig;
using shoal::cluster::ReplicatorConfig;
using shoal::cluster::sim::SimCluster;
using shoal::cluster::sim::SimNetConfig;

namespace {

bool identical(SimCluster& c, std::size_t expected_size) {
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (!c.running(i)) continue;
    if (c.replicator(i).state().size() != expected_size) return false;
    if (i > 0 && !(c.replicator(i).state() == c.replicator(0).state())) return false;
  }
  return true;
}

void run_writes(SimCluster& c, int per_node) {
  for (int k = 0; k < per_node; ++k) {
    for (std::size_t i = 0; i < c.size(); ++i) {
      c.replicator(i).put(c.now(), "reg/" + c.name(i) + "/" + std::to_string(k), c.name(i));
      if (k % 50 == 49) {
        c.replicator(i).flush(c.now());
        c.settle(i);
      }
    }
    if (k % 50 == 49) c.run_for(5);
  }
  for (std::size_t i = 0; i < c.size(); ++i) {
    c.replicator(i).flush(c.now());
    c.settle(i);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(replication_sim)

BOOST_AUTO_TEST_CASE(ten_nodes_register_thousands_of_names_and_converge) {
  const auto seed = shoal::test::test_seed();
  SimNetConfig net;
  net.replication = ReplicatorConfig{};
  SimCluster c(10, seed, MembershipConfig{}, net);
  c.join_all(0);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 10'000));
  const std::uint64_t start = c.now();
  run_writes(c, 2'000);
  BOOST_TEST(c.wait_until([&] { return identical(c, 20'000); }, 60'000, 50), "seed=" << seed);
  BOOST_TEST_MESSAGE("20,000 names on 10 nodes identical everywhere " << c.now() - start
                                                                      << " ms after the first put");
}

BOOST_AUTO_TEST_CASE(with_ten_percent_loss_nothing_is_lost) {
  const auto seed = shoal::test::test_seed();
  SimNetConfig net;
  net.loss = 0.10;
  net.duplicate = 0.02;
  ReplicatorConfig rc;
  rc.replica.max_log_entries = 2'000;  // small enough that lagging peers need full states
  net.replication = rc;
  SimCluster c(10, seed, MembershipConfig{}, net);
  c.join_all(0);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 30'000));
  run_writes(c, 1'000);
  BOOST_TEST(c.wait_until([&] { return identical(c, 10'000); }, 120'000, 50), "seed=" << seed);
}

BOOST_AUTO_TEST_CASE(a_restarted_node_gets_the_whole_map_again) {
  const auto seed = shoal::test::test_seed();
  SimNetConfig net;
  net.replication = ReplicatorConfig{};
  SimCluster c(5, seed, MembershipConfig{}, net);
  c.join_all(0);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 10'000));
  run_writes(c, 500);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return identical(c, 2'500); }, 30'000, 50));
  c.kill(3);
  c.run_for(100);
  c.restart(3, {0});  // empty, new creation
  BOOST_TEST(c.wait_until([&] { return c.replicator(3).state().size() == 2'500u; }, 30'000, 50),
             "seed=" << seed);
}

BOOST_AUTO_TEST_CASE(node_lives_that_come_and_go_leave_no_per_neighbour_bookkeeping_behind) {
  // Every restart is a new origin. Once quiet, origins keep nothing per neighbour (crdt/replica.h,
  // "settled"); before, a node that never restarted kept about three entries per neighbour for
  // every life it had ever heard of. The maps stay identical throughout, under loss.
  const auto seed = shoal::test::test_seed();
  SimNetConfig net;
  net.loss = 0.05;
  ReplicatorConfig rc;
  rc.replica.settle_after_ms = 2'000;
  net.replication = rc;
  SimCluster c(5, seed, MembershipConfig{}, net);
  c.join_all(0);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 30'000));
  std::size_t keys = 0;
  auto write = [&](std::size_t i, int count) {
    for (int k = 0; k < count; ++k)
      c.replicator(i).put(c.now(), "reg/" + std::to_string(keys++), c.name(i));
    c.replicator(i).flush(c.now());
    c.settle(i);
  };
  for (std::size_t i = 0; i < c.size(); ++i)
    write(i, 20);
  constexpr int kLives = 24;
  for (int life = 0; life < kLives; ++life) {
    const std::size_t victim = 1 + static_cast<std::size_t>(life) % 4;
    c.kill(victim);
    c.run_for(200);
    c.restart(victim, {0});
    BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 60'000), "seed=" << seed);
    write(victim, 10);  // the new life writes, and so does a node that never restarts
    write(0, 2);
    c.run_for(500);
  }
  BOOST_TEST(c.wait_until([&] { return identical(c, keys); }, 60'000, 50), "seed=" << seed);
  const auto& replica = c.replicator(0).replica();
  BOOST_TEST(replica.origin_count() >= static_cast<std::size_t>(kLives));
  // Quiet long enough, every origin is settled: nothing is kept per neighbour.
  BOOST_TEST(c.wait_until([&] { return c.replicator(0).replica().neighbour_entries() == 0u; },
                          30'000, 100),
             "entries=" << replica.neighbour_entries() << " seed=" << seed);
  // Settled origins change nothing in what is sent: a write after the quiet still reaches all,
  // and so does a new life's whole map.
  write(2, 5);
  c.kill(3);
  c.run_for(200);
  c.restart(3, {0});
  BOOST_TEST(c.wait_until([&] { return identical(c, keys); }, 60'000, 50), "seed=" << seed);
  BOOST_TEST_MESSAGE("origins " << replica.origin_count() << ", per-neighbour entries "
                                << replica.neighbour_entries() << " after " << kLives + 1
                                << " restarts");
}

BOOST_AUTO_TEST_SUITE_END()
