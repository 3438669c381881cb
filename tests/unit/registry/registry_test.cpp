// The registry over one replicator, driven directly: what a node does with entries whose owners it
// has or has not seen alive.

#include "registry/registry.h"

#include <boost/test/unit_test.hpp>
#include <string>

#include "cluster/replicator.h"

using namespace shoal;
using registry::Pid;
using registry::Registry;

BOOST_AUTO_TEST_SUITE(registry_purge)

// A node that has just started may hold its peers' entries (its map came back from disk, or a
// peer's state reached it before their views met) without having seen any of them alive yet: it
// purges none of them, whatever rendezvous says. A peer it saw alive that then left its view is
// another matter: that one is presumed dead, purged and marked.
BOOST_AUTO_TEST_CASE(a_node_that_has_just_started_purges_nothing_of_its_peers) {
  // b and c register names in b's map.
  cluster::Replicator at_b("b#1", {}, 1, 0);
  Registry b(at_b, "b");
  b.set_members({{"b", 1}, {"c", 1}});
  for (std::uint64_t k = 0; k < 20; ++k) {
    BOOST_TEST_REQUIRE(b.register_name(1000, "b/" + std::to_string(k), Pid{"b", 1, k}).has_value());
    BOOST_TEST_REQUIRE(b.register_name(1000, "c/" + std::to_string(k), Pid{"c", 1, k}).has_value());
  }
  // a starts with that map and sees only itself: it is the one rendezvous picks for every
  // life, and still removes nothing.
  cluster::Replicator at_a("a#7", {}, 2, 0);
  at_a.restore(2000, at_b.state());
  Registry a(at_a, "a");
  a.set_members({{"a", 7}});
  BOOST_TEST(a.purge(2000) == 0u);
  BOOST_TEST(a.purge(60'000) == 0u);
  BOOST_TEST(at_a.state().size() == 40u);
  // Reads do not answer for owners it does not see alive.
  BOOST_TEST(!a.whereis("b/3"));
  // Once it has seen them alive, a member that leaves its view is presumed dead and purged.
  a.set_members({{"a", 7}, {"b", 1}, {"c", 1}});
  BOOST_TEST(a.whereis("b/3").has_value());
  BOOST_TEST(a.purge(61'000) == 0u);
  a.set_members({{"a", 7}, {"b", 1}});
  std::size_t removed = 0;
  // Whether a or b is the one to act depends on rendezvous; a purges c's entries only if it is.
  removed += a.purge(62'000);
  BOOST_TEST((removed == 0u || removed == 20u));
  BOOST_TEST(at_a.state().size() >= 20u);
  BOOST_TEST(a.whereis("b/3").has_value());
  BOOST_TEST(!a.whereis("c/3"));
}

BOOST_AUTO_TEST_SUITE_END()
