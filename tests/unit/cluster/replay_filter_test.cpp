#include "cluster/replay_filter.h"

#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

#include "cluster/keyring.h"

using shoal::cluster::Keyring;
using shoal::cluster::ReplayFilter;

namespace {

Keyring one_key() {
  Keyring k;
  k.install(Keyring::generate());
  return k;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(replay_filter)

BOOST_AUTO_TEST_CASE(a_sealed_packet_is_admitted_once_and_its_copies_are_not) {
  const Keyring keys = one_key();
  ReplayFilter filter(100);
  const std::string a = keys.seal("ping");
  const std::string b = keys.seal("ping");  // the same text sealed again: a new nonce
  BOOST_TEST(filter.admit(a));
  BOOST_TEST(!filter.admit(a));
  BOOST_TEST(!filter.admit(a));
  BOOST_TEST(filter.admit(b));
  BOOST_TEST(filter.size() == 2u);
}

BOOST_AUTO_TEST_CASE(the_window_holds_the_last_capacity_packets_and_memory_stays_fixed) {
  const Keyring keys = one_key();
  ReplayFilter filter(64);
  std::vector<std::string> sent;
  for (int i = 0; i < 200; ++i) {
    sent.push_back(keys.seal("m" + std::to_string(i)));
    BOOST_TEST(filter.admit(sent.back()));
  }
  BOOST_TEST(filter.size() == 64u);
  for (int i = 136; i < 200; ++i)
    BOOST_TEST(!filter.admit(sent[static_cast<std::size_t>(i)]), i);
  // Older than the window: no longer known (every message is idempotent; see the header).
  BOOST_TEST(filter.admit(sent[0]));
}

BOOST_AUTO_TEST_CASE(bytes_too_short_for_a_nonce_are_left_to_the_keyring) {
  ReplayFilter filter(8);
  BOOST_TEST(filter.admit(""));
  BOOST_TEST(filter.admit("short"));
  BOOST_TEST(filter.admit("short"));
  BOOST_TEST(filter.size() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
