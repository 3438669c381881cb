// The replicated map across a simulated cluster: membership and replication together, as the
// agent runs them. Every case prints its seed.

#include <algorithm>

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

// Replication whose bookkeeping settles, retires and forgets within simulated seconds.
ReplicatorConfig fast_retirement(std::uint64_t keep_ms) {
  ReplicatorConfig rc;
  rc.replica.settle_after_ms = 2'000;
  rc.replica.retire_after_ms = 5'000;
  rc.replica.retired_keep_ms = keep_ms;
  return rc;
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

BOOST_AUTO_TEST_CASE(node_lives_that_come_and_go_leave_no_bookkeeping_behind) {
  // Every restart is a new origin. Once quiet, origins keep nothing per neighbour, and past lives
  // leave the origin table and the digests (crdt/replica.h, "settled", "retired"). Before, a node
  // that never restarted kept about three entries per neighbour and one origin for every life it
  // had ever heard of. The maps stay identical throughout, under loss, and a new life still gets
  // everything.
  const auto seed = shoal::test::test_seed();
  SimNetConfig net;
  net.loss = 0.05;
  net.replication = fast_retirement(20'000);
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
  // Lives much shorter than retire_after_ms, as in the soak: past lives must still be forgotten
  // at the pace they come (a full state hands no retired origin on to a new member).
  constexpr int kLives = 60;
  std::size_t most_origins = 0;
  std::size_t most_kept = 0;  // origins and retired ones, over the second half of the churn
  for (int life = 0; life < kLives; ++life) {
    const std::size_t victim = 1 + static_cast<std::size_t>(life) % 4;
    c.kill(victim);
    c.run_for(200);
    c.restart(victim, {0});
    BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 60'000), "seed=" << seed);
    write(victim, 10);  // the new life writes, and so does a node that never restarts
    write(0, 2);
    c.run_for(1'000);
    const auto& r0 = c.replicator(0).replica();
    most_origins = std::max(most_origins, r0.origin_count());
    if (life >= kLives / 2) most_kept = std::max(most_kept, r0.origin_count() + r0.retired_count());
  }
  // The churn lasts minutes; what is kept spans the retire and keep times (about 30 s of lives),
  // not the whole run.
  BOOST_TEST(most_kept < static_cast<std::size_t>(kLives / 2), "seed=" << seed);
  BOOST_TEST(c.wait_until([&] { return identical(c, keys); }, 60'000, 50), "seed=" << seed);
  // Quiet long enough, every origin is settled (nothing is kept per neighbour), the past lives
  // are retired and then forgotten: what is left is the five live ones.
  auto bookkeeping_done = [&] {
    for (std::size_t i = 0; i < c.size(); ++i) {
      const auto& r = c.replicator(i).replica();
      if (r.neighbour_entries() != 0 || r.origin_count() != 5 || r.retired_count() != 0)
        return false;
    }
    return true;
  };
  const bool done = c.wait_until(bookkeeping_done, 60'000, 100);
  BOOST_TEST(done, "n0: origins=" << c.replicator(0).replica().origin_count()
                                  << " retired=" << c.replicator(0).replica().retired_count()
                                  << " entries=" << c.replicator(0).replica().neighbour_entries()
                                  << " seed=" << seed);
  BOOST_TEST(c.replicator(0).replica().digest().size() == 5u);
  // None of it changes what is sent: a write after the quiet reaches all, and a new life gets
  // the whole map, the retired lives' entries included.
  write(2, 5);
  c.kill(3);
  c.run_for(200);
  c.restart(3, {0});
  BOOST_TEST(c.wait_until([&] { return identical(c, keys); }, 60'000, 50), "seed=" << seed);
  BOOST_TEST_MESSAGE("on n0 during "
                     << kLives << " restarts: most origins " << most_origins
                     << ", most origins and retired ones in the second half " << most_kept
                     << "; after: " << c.replicator(0).replica().origin_count()
                     << "; full states received " << c.replicator(0).stats().states_in);
}

BOOST_AUTO_TEST_CASE(a_partition_longer_than_the_retirement_loses_nothing) {
  // Each side retires the other side's lives while they are cut off (they look past), and each
  // side writes on. After the healing their batches bring the origins back: nothing is lost.
  const auto seed = shoal::test::test_seed();
  SimNetConfig net;
  net.replication = fast_retirement(40'000);
  SimCluster c(5, seed, MembershipConfig{}, net);
  c.join_all(0);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return c.converged(); }, 30'000));
  run_writes(c, 50);
  BOOST_TEST_REQUIRE(c.wait_until([&] { return identical(c, 250); }, 30'000, 50));
  c.partition({{0, 1, 2}, {3, 4}});
  c.run_for(25'000);  // retired on both sides, and still remembered
  BOOST_TEST(c.replicator(0).replica().retired_count() == 2u, "seed=" << seed);
  std::size_t keys = 250;
  for (std::size_t i = 0; i < c.size(); ++i) {
    c.replicator(i).put(c.now(), "split/" + std::to_string(keys++), c.name(i));
    c.replicator(i).flush(c.now());
    c.settle(i);
  }
  c.run_for(40'000);  // and now forgotten
  BOOST_TEST(c.replicator(0).replica().retired_count() == 0u, "seed=" << seed);
  c.heal();
  BOOST_TEST(c.wait_until([&] { return c.converged(); }, 60'000), "seed=" << seed);
  BOOST_TEST(c.wait_until([&] { return identical(c, keys); }, 60'000, 50), "seed=" << seed);
}

BOOST_AUTO_TEST_SUITE_END()
