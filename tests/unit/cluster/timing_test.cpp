#include "cluster/timing.h"

#include <boost/test/unit_test.hpp>

using namespace shoal::cluster;

BOOST_AUTO_TEST_SUITE(timing)

BOOST_AUTO_TEST_CASE(retransmit_limit_grows_with_the_log_of_the_cluster) {
  struct Row {
    std::size_t mult, n, want;
  };
  for (const Row& r : {Row{4, 1, 4}, Row{4, 9, 4}, Row{4, 10, 8}, Row{4, 99, 8}, Row{4, 100, 12},
                       Row{4, 1000, 16}, Row{3, 5, 3}}) {
    BOOST_TEST_CONTEXT("mult=" << r.mult << " n=" << r.n) {
      BOOST_TEST(retransmit_limit(r.mult, r.n) == r.want);
    }
  }
}

BOOST_AUTO_TEST_CASE(suspicion_minimum_scales_with_log10_of_members_but_not_below_one) {
  BOOST_TEST(suspicion_min_ms(4, 1, 200) == 800u);
  BOOST_TEST(suspicion_min_ms(4, 5, 200) == 800u);
  BOOST_TEST(suspicion_min_ms(4, 10, 200) == 800u);
  BOOST_TEST(suspicion_min_ms(4, 100, 200) == 1600u);
  BOOST_TEST(suspicion_min_ms(4, 1000, 200) == 2400u);
}

BOOST_AUTO_TEST_CASE(suspicion_timeout_shrinks_from_max_to_min_with_confirmations) {
  // min 1000, max 3000, 2 expected confirmations.
  BOOST_TEST(suspicion_timeout_ms(1000, 3000, 0, 2) == 3000u);
  BOOST_TEST(suspicion_timeout_ms(1000, 3000, 1, 2) == 1738u);  // 3000 - 2000 * log(2)/log(3)
  BOOST_TEST(suspicion_timeout_ms(1000, 3000, 2, 2) == 1000u);
  BOOST_TEST(suspicion_timeout_ms(1000, 3000, 9, 2) == 1000u);  // never below min
  BOOST_TEST(suspicion_timeout_ms(1000, 1000, 0, 2) == 1000u);
  BOOST_TEST(suspicion_timeout_ms(1000, 3000, 0, 0) == 1000u);  // nothing to wait for
}

BOOST_AUTO_TEST_CASE(push_pull_interval_is_flat_to_32_members_then_grows_logarithmically) {
  BOOST_TEST(push_pull_interval_ms(15000, 1) == 15000u);
  BOOST_TEST(push_pull_interval_ms(15000, 32) == 15000u);
  BOOST_TEST(push_pull_interval_ms(15000, 33) == 30000u);
  BOOST_TEST(push_pull_interval_ms(15000, 64) == 30000u);
  BOOST_TEST(push_pull_interval_ms(15000, 1000) == 90000u);
}

BOOST_AUTO_TEST_SUITE_END()
