#include "crdt/hlc.h"

#include <boost/test/unit_test.hpp>

using shoal::crdt::from_ms;
using shoal::crdt::Hlc;
using shoal::crdt::logical;
using shoal::crdt::physical_ms;

BOOST_AUTO_TEST_SUITE(hlc)

BOOST_AUTO_TEST_CASE(tick_follows_physical_time_when_it_advances) {
  Hlc clock;
  BOOST_TEST(clock.tick(1000) == from_ms(1000));
  BOOST_TEST(clock.tick(1005) == from_ms(1005));
}

BOOST_AUTO_TEST_CASE(tick_counts_logically_within_one_millisecond) {
  Hlc clock;
  const auto a = clock.tick(1000);
  const auto b = clock.tick(1000);
  const auto c = clock.tick(999);  // physical time went backwards: still strictly increasing
  BOOST_TEST(b == a + 1);
  BOOST_TEST(c == a + 2);
  BOOST_TEST(physical_ms(c) == 1000u);
  BOOST_TEST(logical(c) == 2u);
}

BOOST_AUTO_TEST_CASE(observed_timestamp_orders_later_local_events_after_it) {
  Hlc clock;
  clock.tick(1000);
  BOOST_TEST(clock.observe(from_ms(5000) + 7, 1000));
  const auto next = clock.tick(1001);
  BOOST_TEST(next > from_ms(5000) + 7);
  BOOST_TEST(physical_ms(next) == 5000u);
}

BOOST_AUTO_TEST_CASE(timestamp_too_far_ahead_is_ignored) {
  Hlc clock(/*max_drift_ms=*/1000);
  BOOST_TEST(!clock.observe(from_ms(10'000), 5000));
  BOOST_TEST(clock.tick(5000) == from_ms(5000));
  BOOST_TEST(clock.observe(from_ms(6000), 5000));
  BOOST_TEST(clock.tick(5000) == from_ms(6000) + 1);
}

BOOST_AUTO_TEST_SUITE_END()
