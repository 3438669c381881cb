#include "crdt/causal_context.h"

#include <boost/test/unit_test.hpp>
#include <set>
#include <vector>

#include "tests/support/seed.h"

using shoal::crdt::CausalContext;
using shoal::crdt::Counter;
using shoal::crdt::CounterRange;
using shoal::crdt::Dot;
using shoal::crdt::ReplicaIx;

BOOST_AUTO_TEST_SUITE(causal_context)

BOOST_AUTO_TEST_CASE(intern_gives_stable_indices_and_find_answers_them) {
  CausalContext ctx;
  const ReplicaIx a = ctx.intern("a");
  const ReplicaIx b = ctx.intern("b");
  BOOST_TEST(a != b);
  BOOST_TEST(ctx.intern("a") == a);
  BOOST_TEST(ctx.find("b").value() == b);
  BOOST_TEST(!ctx.find("c").has_value());
  BOOST_TEST(ctx.id(b) == "b");
  // Past the linear-search limit the hash index takes over and must agree.
  for (int i = 0; i < 50; ++i)
    ctx.intern("r" + std::to_string(i));
  BOOST_TEST(ctx.find("a").value() == a);
  BOOST_TEST(ctx.find("r49").value() == ctx.intern("r49"));
  BOOST_TEST(ctx.replica_count() == 52u);
}

BOOST_AUTO_TEST_CASE(in_order_dots_stay_in_the_version_vector) {
  CausalContext ctx;
  const ReplicaIx a = ctx.intern("a");
  for (Counter c = 1; c <= 100; ++c)
    BOOST_TEST(ctx.add(Dot{a, c}));
  BOOST_TEST(ctx.max(a) == 100u);
  BOOST_TEST(ctx.cloud_size() == 0u);
  BOOST_TEST(!ctx.add(Dot{a, 50}));
  BOOST_TEST(ctx.next_counter(a) == 101u);
}

BOOST_AUTO_TEST_CASE(gaps_go_to_the_cloud_and_fold_in_when_filled) {
  CausalContext ctx;
  const ReplicaIx a = ctx.intern("a");
  ctx.add(Dot{a, 3});
  ctx.add(Dot{a, 5});
  ctx.add(Dot{a, 6});
  BOOST_TEST(ctx.max(a) == 0u);
  BOOST_TEST((ctx.cloud(a) == std::vector<CounterRange>{{3, 3}, {5, 6}}));
  BOOST_TEST(ctx.contains(Dot{a, 5}));
  BOOST_TEST(!ctx.contains(Dot{a, 4}));
  BOOST_TEST(ctx.next_counter(a) == 7u);
  ctx.add(Dot{a, 1});
  ctx.add(Dot{a, 2});
  BOOST_TEST(ctx.max(a) == 3u);
  BOOST_TEST((ctx.cloud(a) == std::vector<CounterRange>{{5, 6}}));
  ctx.add(Dot{a, 4});
  BOOST_TEST(ctx.max(a) == 6u);
  BOOST_TEST(ctx.cloud_size() == 0u);
}

BOOST_AUTO_TEST_CASE(add_range_merges_overlapping_and_adjacent_ranges) {
  CausalContext ctx;
  const ReplicaIx a = ctx.intern("a");
  ctx.add_range(a, 10, 12);
  ctx.add_range(a, 20, 25);
  ctx.add_range(a, 30, 30);
  BOOST_TEST(ctx.add_range(a, 13, 21));  // touches the first, overlaps the second
  BOOST_TEST((ctx.cloud(a) == std::vector<CounterRange>{{10, 25}, {30, 30}}));
  BOOST_TEST(!ctx.add_range(a, 11, 24));
  BOOST_TEST(ctx.add_range(a, 26, 29));
  BOOST_TEST((ctx.cloud(a) == std::vector<CounterRange>{{10, 30}}));
  BOOST_TEST(ctx.add_range(a, 1, 9));
  BOOST_TEST(ctx.max(a) == 30u);
  BOOST_TEST(ctx.cloud_size() == 0u);
}

BOOST_AUTO_TEST_CASE(random_adds_match_a_plain_set) {
  const auto seed = shoal::test::test_seed();
  auto rng = shoal::test::rng_for(seed);
  for (int round = 0; round < 200; ++round) {
    BOOST_TEST_CONTEXT("seed=" << seed << " round=" << round) {
      CausalContext ctx;
      const ReplicaIx a = ctx.intern("a");
      std::set<Counter> model;
      const int ops = 1 + static_cast<int>(rng() % 60);
      for (int i = 0; i < ops; ++i) {
        const Counter first = 1 + rng() % 80;
        const Counter last = first + rng() % 4;
        bool fresh = false;
        for (Counter c = first; c <= last; ++c)
          fresh |= model.insert(c).second;
        BOOST_TEST(ctx.add_range(a, first, last) == fresh);
      }
      for (Counter c = 1; c <= 90; ++c)
        BOOST_TEST(ctx.contains(Dot{a, c}) == model.contains(c));
      // Invariant 1: ranges sorted, disjoint, not adjacent, above max + 1.
      Counter floor = ctx.max(a) + 1;
      for (const CounterRange& r : ctx.cloud(a)) {
        BOOST_TEST(r.first > floor);
        BOOST_TEST(r.first <= r.last);
        floor = r.last + 1;
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(join_unions_dots_by_id_and_reports_growth) {
  CausalContext x;
  CausalContext y;
  const ReplicaIx xa = x.intern("a");
  const ReplicaIx yb = y.intern("b");
  const ReplicaIx ya = y.intern("a");
  x.add_range(xa, 1, 5);
  y.add_range(ya, 4, 9);
  y.add(Dot{yb, 2});
  std::vector<ReplicaIx> translation;
  BOOST_TEST(x.join(y, &translation));
  BOOST_TEST(translation.size() == 2u);
  BOOST_TEST(x.id(translation[yb]) == "b");
  BOOST_TEST(x.max(xa) == 9u);
  BOOST_TEST(x.contains(Dot{translation[yb], 2}));
  BOOST_TEST(!x.join(y));
  BOOST_TEST(x.includes(y));
  BOOST_TEST(!y.includes(x));
}

BOOST_AUTO_TEST_CASE(equality_ignores_table_order_and_empty_rows) {
  CausalContext x;
  CausalContext y;
  x.intern("unused");
  x.add(Dot{x.intern("a"), 1});
  x.add(Dot{x.intern("b"), 7});
  y.add(Dot{y.intern("b"), 7});
  y.add(Dot{y.intern("a"), 1});
  BOOST_TEST((x == y));
  y.add(Dot{y.find("a").value(), 2});
  BOOST_TEST(!(x == y));
}

BOOST_AUTO_TEST_SUITE_END()
