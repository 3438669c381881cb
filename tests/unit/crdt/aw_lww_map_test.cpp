#include "crdt/aw_lww_map.h"

#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

using shoal::crdt::AwLwwMap;
using shoal::crdt::Change;
using shoal::crdt::from_ms;
using shoal::crdt::VersionView;

namespace {

std::string value_of(const AwLwwMap& map, std::string_view key) {
  auto v = map.get(key);
  return v ? std::string(v->value) : std::string("<absent>");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(aw_lww_map)

BOOST_AUTO_TEST_CASE(put_then_get_returns_the_value_and_its_writer) {
  AwLwwMap map;
  map.put("a", from_ms(10), "k1", "v1");
  auto v = map.get("k1");
  BOOST_TEST_REQUIRE(v.has_value());
  BOOST_TEST(v->value == "v1");
  BOOST_TEST(v->replica == "a");
  BOOST_TEST(v->ts == from_ms(10));
  BOOST_TEST(v->counter == 1u);
  BOOST_TEST(map.size() == 1u);
  BOOST_TEST(!map.get("k2").has_value());
}

BOOST_AUTO_TEST_CASE(second_put_replaces_the_first_on_every_replica) {
  AwLwwMap a;
  AwLwwMap b;
  b.join(a.put("a", from_ms(1), "k", "old"));
  b.join(a.put("a", from_ms(2), "k", "new"));
  BOOST_TEST(a.versions("k") == 1u);
  BOOST_TEST(b.versions("k") == 1u);
  BOOST_TEST(value_of(b, "k") == "new");
  BOOST_TEST((a == b));
}

BOOST_AUTO_TEST_CASE(put_delta_carries_only_its_key) {
  AwLwwMap map;
  for (int i = 0; i < 100; ++i)
    map.put("a", from_ms(i), "k" + std::to_string(i), "v");
  const AwLwwMap delta = map.put("a", from_ms(200), "k7", "w");
  BOOST_TEST(delta.is_delta());
  BOOST_TEST(delta.entry_count() == 1u);
  BOOST_TEST(value_of(delta, "k7") == "w");
  // Its context: the new dot and the dot of the version it replaced, nothing else.
  BOOST_TEST(delta.context().cloud_size() == 2u);
}

BOOST_AUTO_TEST_CASE(remove_delta_removes_the_key_where_it_is_joined) {
  AwLwwMap a;
  AwLwwMap b;
  b.join(a.put("a", from_ms(1), "k", "v"));
  const AwLwwMap removal = a.remove("k");
  BOOST_TEST(removal.entry_count() == 1u);
  BOOST_TEST(removal.size() == 0u);
  BOOST_TEST(!a.get("k").has_value());
  BOOST_TEST(b.join(removal));
  BOOST_TEST(!b.get("k").has_value());
  BOOST_TEST(b.size() == 0u);
  BOOST_TEST((a == b));
  // Removing an absent key is an empty delta.
  BOOST_TEST(a.remove("k").entry_count() == 0u);
}

BOOST_AUTO_TEST_CASE(put_concurrent_with_a_remove_survives_it) {
  AwLwwMap a;
  AwLwwMap b;
  b.join(a.put("a", from_ms(1), "k", "v1"));
  const AwLwwMap again = a.put("a", from_ms(2), "k", "v2");  // a writes again...
  const AwLwwMap removal = b.remove("k");                    // ...while b removes what it saw
  a.join(removal);
  b.join(again);
  BOOST_TEST(value_of(a, "k") == "v2");
  BOOST_TEST(value_of(b, "k") == "v2");
  BOOST_TEST((a == b));
}

BOOST_AUTO_TEST_CASE(remove_of_an_unseen_put_does_not_remove_it) {
  AwLwwMap a;
  AwLwwMap b;
  AwLwwMap c;
  const AwLwwMap first = a.put("a", from_ms(1), "k", "v1");
  b.join(first);
  const AwLwwMap removal = b.remove("k");
  const AwLwwMap second = c.put("c", from_ms(0), "k", "from-c");  // c never saw a's put
  for (AwLwwMap* m : {&a, &b, &c}) {
    m->join(first);
    m->join(removal);
    m->join(second);
  }
  BOOST_TEST(value_of(a, "k") == "from-c");
  BOOST_TEST((a == b));
  BOOST_TEST((b == c));
}

BOOST_AUTO_TEST_CASE(concurrent_puts_keep_both_and_the_later_timestamp_wins_everywhere) {
  AwLwwMap a;
  AwLwwMap b;
  const AwLwwMap from_a = a.put("a", from_ms(20), "k", "A");
  const AwLwwMap from_b = b.put("b", from_ms(10), "k", "B");
  // Views in a Change live only during the callback: keep copies.
  struct Seen {
    std::string before;
    std::string after;
    std::size_t versions;
  };
  std::vector<Seen> seen;
  a.join(from_b, [&](const Change& c) {
    seen.push_back({std::string(c.before->value), std::string(c.after->value), c.versions});
  });
  b.join(from_a);
  BOOST_TEST(value_of(a, "k") == "A");
  BOOST_TEST(value_of(b, "k") == "A");
  BOOST_TEST(a.versions("k") == 2u);
  BOOST_TEST((a == b));
  // a's winner did not change, but a conflict appeared: the change says so.
  BOOST_TEST_REQUIRE(seen.size() == 1u);
  BOOST_TEST(seen[0].versions == 2u);
  BOOST_TEST(seen[0].before == "A");
  BOOST_TEST(seen[0].after == "A");
  // A later put that saw both replaces both.
  const AwLwwMap resolve = b.put("b", from_ms(30), "k", "resolved");
  a.join(resolve);
  BOOST_TEST(a.versions("k") == 1u);
  BOOST_TEST(value_of(a, "k") == "resolved");
}

BOOST_AUTO_TEST_CASE(equal_timestamps_are_broken_by_replica_id_then_counter) {
  AwLwwMap a;
  AwLwwMap z;
  const AwLwwMap from_a = a.put("node-a", from_ms(5), "k", "A");
  const AwLwwMap from_z = z.put("node-z", from_ms(5), "k", "Z");
  a.join(from_z);
  z.join(from_a);
  BOOST_TEST(value_of(a, "k") == "Z");
  BOOST_TEST(value_of(z, "k") == "Z");
}

BOOST_AUTO_TEST_CASE(remove_where_removes_matching_versions_as_one_delta) {
  AwLwwMap a;
  AwLwwMap b;
  for (int i = 0; i < 10; ++i) {
    b.join(a.put("a", from_ms(i), "k" + std::to_string(i), i % 2 == 0 ? "owner=x" : "owner=y"));
  }
  const AwLwwMap purge =
      a.remove_where([](std::string_view, const VersionView& v) { return v.value == "owner=x"; });
  BOOST_TEST(purge.entry_count() == 5u);
  BOOST_TEST(a.size() == 5u);
  b.join(purge);
  BOOST_TEST((a == b));
  b.scan("", [](std::string_view, const VersionView& v) {
    BOOST_TEST(v.value == "owner=y");
    return true;
  });
}

BOOST_AUTO_TEST_CASE(remove_where_leaves_a_concurrent_sibling_in_place) {
  AwLwwMap a;
  AwLwwMap b;
  const AwLwwMap from_b = b.put("b", from_ms(1), "k", "owner=b");
  a.put("a", from_ms(2), "k", "owner=a");
  a.join(from_b);
  BOOST_TEST(value_of(a, "k") == "owner=a");
  const AwLwwMap purge =
      a.remove_where([](std::string_view, const VersionView& v) { return v.replica == "a"; });
  BOOST_TEST(value_of(a, "k") == "owner=b");
  b.join(purge);
  BOOST_TEST(value_of(b, "k") == "owner=b");
}

BOOST_AUTO_TEST_CASE(remove_if_removes_only_the_matching_versions_of_one_key) {
  AwLwwMap a;
  AwLwwMap b;
  const AwLwwMap from_b = b.put("b", from_ms(1), "k", "owner=b");
  b.put("b", from_ms(1), "other", "owner=a");
  a.put("a", from_ms(2), "k", "owner=a");
  a.put("a", from_ms(2), "other", "owner=a");
  a.join(from_b);
  BOOST_TEST(a.versions("k") == 2u);
  const auto owner_a = [](std::string_view, const VersionView& v) { return v.value == "owner=a"; };
  AwLwwMap none(AwLwwMap::Kind::delta);
  BOOST_TEST(!a.remove_if("absent", owner_a, none));
  BOOST_TEST(!a.remove_if(
      "k", [](std::string_view, const VersionView&) { return false; }, none));
  BOOST_TEST(none.entry_count() == 0u);
  // The winner goes; its concurrent sibling stays and becomes the value. Other keys are untouched.
  AwLwwMap delta(AwLwwMap::Kind::delta);
  BOOST_TEST(a.remove_if("k", owner_a, delta));
  BOOST_TEST(value_of(a, "k") == "owner=b");
  BOOST_TEST(a.versions("k") == 1u);
  BOOST_TEST(value_of(a, "other") == "owner=a");
  BOOST_TEST(delta.entry_count() == 1u);
  // The delta removes at b what a removed, and nothing b wrote that a had not seen.
  b.join(delta);
  BOOST_TEST(value_of(b, "k") == "owner=b");
  BOOST_TEST(value_of(b, "other") == "owner=a");
}

BOOST_AUTO_TEST_CASE(scan_visits_keys_with_the_prefix_in_order_until_told_to_stop) {
  AwLwwMap map;
  for (const char* key : {"n/b", "g/x", "n/a", "n/c", "o/a", "n"})
    map.put("r", from_ms(1), key, key);
  map.remove("n/c");
  std::vector<std::string> keys;
  map.scan("n/", [&](std::string_view key, const VersionView& v) {
    BOOST_TEST(key == v.value);
    keys.emplace_back(key);
    return true;
  });
  BOOST_TEST((keys == std::vector<std::string>{"n/a", "n/b"}));
  keys.clear();
  map.scan("", [&](std::string_view key, const VersionView&) {
    keys.emplace_back(key);
    return keys.size() < 2;
  });
  BOOST_TEST((keys == std::vector<std::string>{"g/x", "n"}));
}

BOOST_AUTO_TEST_CASE(full_state_join_removes_what_the_other_side_removed) {
  AwLwwMap a;
  AwLwwMap b;
  for (int i = 0; i < 5; ++i)
    b.join(a.put("a", from_ms(i), "k" + std::to_string(i), "v"));
  a.remove("k1");
  a.remove("k3");
  std::vector<std::string> removed;
  BOOST_TEST(b.join(a, [&](const Change& c) {
    if (!c.after) removed.emplace_back(c.key);
  }));
  BOOST_TEST((removed == std::vector<std::string>{"k1", "k3"}));
  BOOST_TEST((a == b));
  BOOST_TEST(!b.join(a));
}

BOOST_AUTO_TEST_CASE(joining_deltas_together_keeps_the_removals_they_carry) {
  AwLwwMap a;
  AwLwwMap b;
  b.join(a.put("a", from_ms(1), "k", "v"));
  AwLwwMap interval(AwLwwMap::Kind::delta);
  interval.join(a.put("a", from_ms(2), "other", "v"));
  interval.join(a.remove("k"));
  BOOST_TEST(interval.entry_count() == 2u);  // "k" stays listed without a version
  b.join(interval);
  BOOST_TEST((a == b));
}

BOOST_AUTO_TEST_CASE(copies_are_deep_and_equal) {
  AwLwwMap a;
  a.put("a", from_ms(1), "k", "v");
  AwLwwMap copy = a;
  BOOST_TEST((copy == a));
  a.put("a", from_ms(2), "k", "w");
  BOOST_TEST(value_of(copy, "k") == "v");
  BOOST_TEST(!(copy == a));
}

BOOST_AUTO_TEST_SUITE_END()
