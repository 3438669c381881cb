#include "crdt/replica.h"

#include <boost/test/unit_test.hpp>

using shoal::crdt::AwLwwMap;
using shoal::crdt::Outgoing;
using shoal::crdt::Replica;
using shoal::crdt::ReplicaConfig;

namespace {

// Sends what `from` has for `to`, joins it there and acknowledges it. Returns what was sent.
std::optional<Outgoing> sync(Replica& from, Replica& to, std::uint64_t now = 1000) {
  auto out = from.outgoing(to.id());
  if (!out) return std::nullopt;
  to.join(from.id(), out->payload, now);
  from.on_ack(to.id(), out->upto);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(replica)

BOOST_AUTO_TEST_CASE(new_neighbour_gets_the_logged_deltas_then_nothing) {
  Replica a("a");
  Replica b("b");
  a.put(1000, "k1", "v1");
  a.put(1001, "k2", "v2");
  auto sent = sync(a, b);
  BOOST_TEST_REQUIRE(sent.has_value());
  BOOST_TEST((sent->kind == Outgoing::Kind::delta_interval));
  BOOST_TEST(sent->upto == 1u);  // both puts went out in one batch
  BOOST_TEST((b.state() == a.state()));
  BOOST_TEST(!a.outgoing("b").has_value());
  // b's log holds what it learnt, but it came from a: nothing goes back.
  BOOST_TEST(b.log_size() == 1u);
  BOOST_TEST(!b.outgoing("a").has_value());
}

BOOST_AUTO_TEST_CASE(timestamps_follow_the_clock_and_observed_remote_time) {
  Replica a("a");
  Replica b("b");
  a.put(5000, "k", "from-a");
  sync(a, b, 1000);  // b's clock is behind a's
  b.put(1000, "k", "from-b");
  BOOST_TEST(b.state().get("k")->ts > a.state().get("k")->ts);
  sync(b, a);
  BOOST_TEST(a.state().get("k")->value == "from-b");
}

BOOST_AUTO_TEST_CASE(far_behind_neighbour_catches_up_in_bounded_intervals) {
  ReplicaConfig config;
  config.max_interval_entries = 10;
  Replica a("a", config);
  Replica b("b", config);
  for (int i = 0; i < 95; ++i)
    a.put(1000 + i, "k" + std::to_string(i), "v");
  int rounds = 0;
  while (auto sent = sync(a, b)) {
    BOOST_TEST(sent->payload->entry_count() <= 10u);
    ++rounds;
  }
  BOOST_TEST(rounds == 10);
  BOOST_TEST((b.state() == a.state()));
}

BOOST_AUTO_TEST_CASE(log_is_bounded_and_a_neighbour_behind_it_gets_the_full_state) {
  ReplicaConfig config;
  config.max_log_entries = 20;
  config.max_interval_entries = 5;
  Replica a("a", config);
  Replica b("b", config);
  a.put(1000, "early", "v");
  sync(a, b);
  for (int i = 0; i < 100; ++i)
    a.put(1000 + i, "k" + std::to_string(i), "v");
  a.remove("early");
  BOOST_TEST(a.log_entries() <= 20u);
  BOOST_TEST(a.log_start() > 1u);
  auto sent = sync(a, b);
  BOOST_TEST_REQUIRE(sent.has_value());
  BOOST_TEST((sent->kind == Outgoing::Kind::full_state));
  BOOST_TEST((b.state() == a.state()));
  BOOST_TEST(!b.state().get("early").has_value());
  BOOST_TEST(!a.outgoing("b").has_value());
}

BOOST_AUTO_TEST_CASE(log_is_trimmed_once_every_tracked_neighbour_acknowledged) {
  Replica a("a");
  Replica b("b");
  Replica c("c");
  a.on_ack("c", 0);  // c is a known neighbour that has nothing yet
  a.put(1000, "k", "v");
  sync(a, b);
  BOOST_TEST(a.log_size() == 1u);  // b acknowledged, c did not
  a.put(1001, "k2", "v");
  sync(a, b);
  BOOST_TEST(a.log_size() == 2u);  // c holds the log
  a.forget("c");
  BOOST_TEST(a.log_size() == 0u);
  // c, now unknown, is behind the log: it gets the full state.
  auto sent = sync(a, c);
  BOOST_TEST_REQUIRE(sent.has_value());
  BOOST_TEST((sent->kind == Outgoing::Kind::full_state));
  BOOST_TEST((c.state() == a.state()));
}

BOOST_AUTO_TEST_CASE(received_full_state_is_relayed_with_its_removals) {
  // c has an entry that a removed; c hears only from b, and b learns of the removal only through
  // a full state from a. The removal must still reach c.
  ReplicaConfig tiny;
  tiny.max_log_entries = 1;
  Replica a("a", tiny);
  Replica b("b");
  Replica c("c");
  a.put(1000, "k", "v");
  sync(a, c);
  a.remove("k");
  for (int i = 0; i < 5; ++i)
    a.put(1001, "other" + std::to_string(i), "v");
  auto sent = sync(a, b);
  BOOST_TEST((sent->kind == Outgoing::Kind::full_state));
  sync(b, c);
  BOOST_TEST(!c.state().get("k").has_value());
  BOOST_TEST((c.state() == a.state()));
}

BOOST_AUTO_TEST_CASE(acks_for_numbers_never_given_out_are_ignored) {
  Replica a("a");
  a.put(1000, "k", "v");
  a.on_ack("b", 99);
  BOOST_TEST(!a.acked("b").has_value());
  BOOST_TEST(a.outgoing("b").has_value());
}

BOOST_AUTO_TEST_CASE(removing_nothing_logs_nothing) {
  Replica a("a");
  BOOST_TEST(!a.remove("absent"));
  BOOST_TEST(a.remove_where([](std::string_view, const auto&) { return true; }) == 0u);
  BOOST_TEST(a.next_seq() == 0u);
  BOOST_TEST(a.flush().empty());
}

BOOST_AUTO_TEST_CASE(local_mutations_batch_until_flushed) {
  Replica a("a");
  a.put(1000, "k1", "v1");
  a.put(1000, "k2", "v2");
  a.put(1000, "k1", "v3");
  a.remove("k2");
  const auto flushed = a.flush();
  BOOST_TEST_REQUIRE(flushed.size() == 1u);
  const auto& batch = flushed.front();
  BOOST_TEST(batch->entry_count() == 2u);
  BOOST_TEST(batch->get("k1")->value == "v3");
  BOOST_TEST(batch->versions("k1") == 1u);
  BOOST_TEST(!batch->get("k2").has_value());
  BOOST_TEST(a.flush().empty());
  AwLwwMap elsewhere;
  elsewhere.join(*batch);
  BOOST_TEST((elsewhere == a.state()));
  a.put(1001, "k3", "v");
  BOOST_TEST(a.next_seq() == 2u);
}

BOOST_AUTO_TEST_CASE(full_batch_is_sealed_and_a_new_one_opened) {
  ReplicaConfig config;
  config.max_interval_entries = 3;
  Replica a("a", config);
  for (int i = 0; i < 7; ++i)
    a.put(1000, "k" + std::to_string(i), "v");
  BOOST_TEST(a.log_size() == 3u);
  BOOST_TEST(a.next_seq() == 3u);
}

BOOST_AUTO_TEST_CASE(ack_of_the_open_batch_is_ignored) {
  Replica a("a");
  a.put(1000, "k", "v");
  a.on_ack("b", 1);  // the batch (seq 0) is still open: b cannot have it
  BOOST_TEST(!a.acked("b").has_value());
  a.put(1000, "k2", "v");
  BOOST_TEST(a.log_size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
