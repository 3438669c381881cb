// KeyIndex against a std::unordered_map under random inserts, lookups and erases, across table
// growth (also past 2^20 slots, where the stored hash bits no longer suffice to relocate).

#include "crdt/key_index.h"

#include <boost/test/unit_test.hpp>
#include <map>
#include <unordered_map>

#include "crdt/aw_lww_map.h"
#include "tests/support/seed.h"

using shoal::crdt::AwLwwMap;
using shoal::crdt::from_ms;

BOOST_AUTO_TEST_SUITE(key_index)

BOOST_AUTO_TEST_CASE(agrees_with_a_hash_map_under_random_operations) {
  const auto seed = shoal::test::test_seed();
  auto rng = shoal::test::rng_for(seed);
  // The map owns the blocks and keeps its index; the reference remembers what must be found.
  AwLwwMap map;
  std::unordered_map<std::string, std::string> reference;
  for (int step = 0; step < 200'000; ++step) {
    const std::string key = "k" + std::to_string(rng() % 50'000);
    const int roll = static_cast<int>(rng() % 100);
    if (roll < 55) {
      const std::string value = std::to_string(step);
      map.put("a", from_ms(1000 + step), key, value);
      reference[key] = value;
    } else if (roll < 75) {
      map.remove(key);
      reference.erase(key);
    } else {
      auto got = map.get(key);
      auto want = reference.find(key);
      BOOST_TEST_REQUIRE(got.has_value() == (want != reference.end()), "seed=" << seed);
      if (got) BOOST_TEST_REQUIRE(got->value == want->second);
    }
  }
  BOOST_TEST(map.size() == reference.size());
  for (const auto& [key, value] : reference)
    BOOST_TEST_REQUIRE(map.get(key)->value == value);
}

BOOST_AUTO_TEST_CASE(finds_every_key_past_a_million_slots_and_after_erasing_half) {
  AwLwwMap map;
  constexpr int n = 800'000;  // past 786,432 keys the table grows to 2^21 slots
  for (int i = 0; i < n; ++i)
    map.put("a", from_ms(1000), "key/" + std::to_string(i), "v");
  for (int i = 0; i < n; i += 2)
    map.remove("key/" + std::to_string(i));
  int found = 0;
  for (int i = 0; i < n; ++i)
    found += map.get("key/" + std::to_string(i)).has_value() == (i % 2 == 1) ? 1 : 0;
  BOOST_TEST(found == n);
  BOOST_TEST(!map.get("key/absent").has_value());
}

BOOST_AUTO_TEST_CASE(hash_spreads_similar_keys) {
  // Keys that differ in one byte land in different home slots of a small table.
  std::map<std::uint64_t, int> homes;
  for (int i = 0; i < 1000; ++i)
    ++homes[shoal::crdt::detail::KeyIndex::hash("name-" + std::to_string(i)) >> 54];  // 1024
  int worst = 0;
  for (const auto& [home, count] : homes)
    worst = std::max(worst, count);
  BOOST_TEST(homes.size() > 500u);
  BOOST_TEST(worst < 8);
}

BOOST_AUTO_TEST_SUITE_END()
