#include "crdt/replica.h"

#include <boost/test/unit_test.hpp>

#include "crdt/codec.h"

using shoal::crdt::AwLwwMap;
using shoal::crdt::Digest;
using shoal::crdt::Outgoing;
using shoal::crdt::Replica;
using shoal::crdt::ReplicaConfig;

namespace {

// Delivers what `from` has for `to` (batches or the state) and `to`'s digest back, as the
// replicator does on a reliable link. Returns what was sent.
std::optional<Outgoing> sync(Replica& from, Replica& to, std::uint64_t now = 1000) {
  from.track(to.id());
  to.track(from.id());
  from.flush();
  auto out = from.outgoing(to.id(), now);
  if (!out) return std::nullopt;
  if (out->state) {
    to.join_state(*out->state, out->covers, now);
  } else {
    for (const auto& b : out->batches)
      to.join_batch(b.origin, b.seq, *shoal::crdt::decode(*b.bytes), b.bytes, now);
  }
  from.on_digest(to.id(), to.digest(), now);
  return out;
}

// Tells `to` what `from` has (a digest round), as the replicator does.
void tell(Replica& from, Replica& to, std::uint64_t now = 1000) {
  to.track(from.id());
  to.on_digest(from.id(), from.digest(), now);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(replica)

BOOST_AUTO_TEST_CASE(new_neighbour_gets_the_own_batches_then_nothing) {
  Replica a("a");
  Replica b("b");
  a.put(1000, "k1", "v1");
  a.put(1001, "k2", "v2");
  auto sent = sync(a, b);
  BOOST_TEST_REQUIRE(sent.has_value());
  BOOST_TEST_REQUIRE(sent->batches.size() == 1u);  // both puts went out in one batch
  BOOST_TEST(sent->batches[0].origin == "a");
  BOOST_TEST(sent->batches[0].seq == 1u);
  BOOST_TEST((b.state() == a.state()));
  BOOST_TEST((b.digest() == Digest{{"a", 1}}));
  BOOST_TEST(!a.outgoing("b", 1000).has_value());
  // b learnt it from a: nothing goes back, whatever the time.
  tell(a, b);
  BOOST_TEST(!b.outgoing("a", 99'000).has_value());
  // a's log no longer needs the batch: its only neighbour has it.
  BOOST_TEST(a.log_entries() == 0u);
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

BOOST_AUTO_TEST_CASE(a_put_at_an_earlier_time_survives_a_removal_and_loses_to_a_later_write) {
  Replica a("a");
  Replica b("b");
  Replica c("c");
  a.put(1000, "k", "a-claim");
  const auto claimed = a.state().get("k")->ts;
  sync(a, b);
  // b removes a's version; concurrently, c writes later than a's claim.
  BOOST_TEST(b.remove("k"));
  c.put(2000, "k", "c-claim");
  sync(b, a);
  BOOST_TEST(!a.state().get("k"));
  // a puts its claim back with the claim's time: a version the removal did not cover, which
  // still orders before c's later write wherever the two meet.
  a.put_at(3000, claimed, "k", "a-claim");
  BOOST_TEST(a.state().get("k")->ts == claimed);
  sync(a, b);
  BOOST_TEST(b.state().get("k")->value == "a-claim");
  // Every pair exchanges digests and what the other lacks, until all agree.
  for (int round = 0; round < 3; ++round) {
    for (Replica* x : {&a, &b, &c}) {
      for (Replica* y : {&a, &b, &c}) {
        if (x == y) continue;
        tell(*y, *x);
        sync(*x, *y);
      }
    }
  }
  for (Replica* r : {&a, &b, &c}) {
    BOOST_TEST(r->state().get("k")->value == "c-claim", r->id());
    BOOST_TEST(r->state().versions("k") == 2u, r->id());
  }
}

BOOST_AUTO_TEST_CASE(far_behind_neighbour_catches_up_in_bounded_messages) {
  ReplicaConfig config;
  config.max_batch_entries = 5;
  config.max_message_entries = 10;
  Replica a("a", config);
  Replica b("b", config);
  for (int i = 0; i < 95; ++i)
    a.put(1000 + i, "k" + std::to_string(i), "v");
  int messages = 0;
  while (auto sent = sync(a, b)) {
    BOOST_TEST(sent->entries <= 10u);
    ++messages;
  }
  BOOST_TEST(messages == 10);
  BOOST_TEST((b.state() == a.state()));
}

BOOST_AUTO_TEST_CASE(what_is_on_its_way_is_not_sent_again_until_the_resend_time) {
  ReplicaConfig config;
  config.resend_after_ms = 500;
  Replica a("a", config);
  a.track("b");
  a.put(1000, "k", "v");
  a.flush();
  BOOST_TEST(a.outgoing("b", 1000).has_value());
  BOOST_TEST(!a.outgoing("b", 1400).has_value());  // on its way
  auto again = a.outgoing("b", 1500);              // unacknowledged for 500 ms: lost
  BOOST_TEST_REQUIRE(again.has_value());
  BOOST_TEST(again->batches.size() == 1u);
  a.on_digest("b", {{"a", 1}}, 1600);
  BOOST_TEST(!a.outgoing("b", 9000).has_value());
}

BOOST_AUTO_TEST_CASE(a_lost_batch_is_sent_again_while_other_origins_make_progress) {
  // Found by the fault lab's rolling restart: a restarted node's first batch was lost on the way,
  // and the neighbour's steady acknowledgements of other origins kept it from ever being resent.
  ReplicaConfig config;
  config.resend_after_ms = 500;
  Replica a("a", config);
  a.track("b");
  a.put(1000, "first", "v");
  a.flush();
  BOOST_TEST_REQUIRE(a.outgoing("b", 1000).has_value());  // batch a/1, lost on the way
  for (std::uint64_t t = 1100; t < 1500; t += 100) {
    a.on_digest("b", {{"elsewhere", t / 100}}, t);  // b progresses on another origin
    BOOST_TEST(!a.outgoing("b", t).has_value(), "resent early at " << t);
  }
  a.on_digest("b", {{"elsewhere", 15}}, 1500);
  auto again = a.outgoing("b", 1500);
  BOOST_TEST_REQUIRE(again.has_value());
  BOOST_TEST_REQUIRE(again->batches.size() == 1u);
  BOOST_TEST(again->batches[0].origin == "a");
  BOOST_TEST(again->batches[0].seq == 1u);
}

BOOST_AUTO_TEST_CASE(window_bounds_what_is_unacknowledged) {
  ReplicaConfig config;
  config.max_batch_entries = 1;
  config.window_entries = 3;
  Replica a("a", config);
  a.track("b");
  for (int i = 0; i < 10; ++i)
    a.put(1000, "k" + std::to_string(i), "v");
  a.flush();
  auto first = a.outgoing("b", 1000);
  BOOST_TEST_REQUIRE(first.has_value());
  BOOST_TEST(first->entries == 3u);
  BOOST_TEST(!a.outgoing("b", 1001).has_value());  // the window is full
  a.on_digest("b", {{"a", 2}}, 1002);              // two acknowledged: room for two more
  auto next = a.outgoing("b", 1002);
  BOOST_TEST_REQUIRE(next.has_value());
  BOOST_TEST(next->entries == 2u);
  BOOST_TEST(next->batches.front().seq == 4u);
}

BOOST_AUTO_TEST_CASE(other_origins_batches_are_forwarded_after_the_delay_to_who_lacks_them) {
  ReplicaConfig config;
  config.forward_delay_ms = 200;
  Replica a("a", config);
  Replica b("b", config);
  Replica c("c", config);
  b.track("c");
  b.track("d");
  a.put(1000, "k", "v");
  sync(a, b, 1000);
  tell(c, b, 1000);                                // c has nothing
  BOOST_TEST(!b.outgoing("c", 1100).has_value());  // a may still deliver it itself
  auto forwarded = b.outgoing("c", 1200);
  BOOST_TEST_REQUIRE(forwarded.has_value());
  BOOST_TEST(forwarded->batches[0].origin == "a");
  // Had c reported having it (from a), b would have sent nothing.
  Replica d("d", config);
  const auto& fb = forwarded->batches[0];
  d.join_batch("a", 1, *shoal::crdt::decode(*fb.bytes), fb.bytes, 1200);
  tell(d, b, 1200);
  BOOST_TEST(!b.outgoing("d", 5000).has_value());
}

BOOST_AUTO_TEST_CASE(log_is_bounded_and_a_neighbour_that_lacks_a_dropped_batch_gets_the_state) {
  ReplicaConfig config;
  config.max_log_entries = 10;
  config.max_batch_entries = 1;
  Replica a("a", config);
  Replica b("b", config);
  a.track("b");
  for (int i = 0; i < 50; ++i)
    a.put(1000 + i, "k" + std::to_string(i), "v");
  a.flush();
  BOOST_TEST(a.log_entries() <= 10u);
  tell(b, a);  // b reports an empty digest
  auto sent = sync(a, b);
  BOOST_TEST_REQUIRE(sent.has_value());
  BOOST_TEST(sent->state != nullptr);
  BOOST_TEST((b.state() == a.state()));
  BOOST_TEST((b.digest() == Digest{{"a", 50}}));
  BOOST_TEST(!sync(a, b).has_value());
}

BOOST_AUTO_TEST_CASE(log_is_trimmed_once_every_tracked_neighbour_has_a_batch) {
  Replica a("a");
  a.track("b");
  a.track("c");
  a.put(1000, "k", "v");
  a.flush();
  a.on_digest("b", {{"a", 1}}, 1000);
  BOOST_TEST(a.log_batches() == 1u);  // c has not reported it
  a.forget("c");
  BOOST_TEST(a.log_batches() == 0u);
  // c comes back (a new neighbour) lacking the dropped batch: it gets the full state.
  a.track("c");
  a.on_digest("c", {}, 1001);
  auto sent = a.outgoing("c", 1001);
  BOOST_TEST_REQUIRE(sent.has_value());
  BOOST_TEST(sent->state != nullptr);
}

BOOST_AUTO_TEST_CASE(received_full_state_carries_its_removals_onwards) {
  // c has an entry that a removed; c hears only from b, and b learns of the removal only through
  // a full state from a. The removal must still reach c.
  ReplicaConfig tiny;
  tiny.max_log_entries = 1;
  tiny.max_batch_entries = 1;
  Replica a("a", tiny);
  Replica b("b");
  Replica c("c");
  a.put(1000, "k", "v");
  sync(a, c);
  a.remove("k");
  for (int i = 0; i < 5; ++i)
    a.put(1001, "other" + std::to_string(i), "v");
  tell(b, a);
  auto sent = sync(a, b);
  BOOST_TEST_REQUIRE(sent.has_value());
  BOOST_TEST(sent->state != nullptr);
  tell(c, b);
  // a is live (b tracks it): b leaves a the time to deliver its own batches to c...
  sent = sync(b, c, 1000);
  BOOST_TEST((!sent.has_value() || sent->state == nullptr));
  BOOST_TEST(c.state().get("k").has_value());
  // ... and once a's latest batch is live_origin_grace_ms old and c still lacks it, b relays its
  // state (b never logged a's batches).
  sent = sync(b, c, 1000 + ReplicaConfig{}.live_origin_grace_ms);
  BOOST_TEST_REQUIRE(sent.has_value());
  BOOST_TEST(sent->state != nullptr);
  BOOST_TEST(!c.state().get("k").has_value());
  BOOST_TEST((c.state() == a.state()));
}

BOOST_AUTO_TEST_CASE(batches_out_of_order_count_once_the_gap_fills) {
  Replica a("a");
  Replica b("b");
  std::vector<shoal::crdt::Encoded> batches;
  for (int i = 0; i < 3; ++i) {
    a.put(1000, "k" + std::to_string(i), "v");
    batches.push_back(a.flush().front());
  }
  auto join = [&](shoal::crdt::Seq seq) {
    const auto& bytes = batches[seq - 1];
    return b.join_batch("a", seq, *shoal::crdt::decode(*bytes), bytes, 1000);
  };
  BOOST_TEST(join(3));
  BOOST_TEST(join(2));
  BOOST_TEST((b.digest() == Digest{}));  // batch 1 is missing
  BOOST_TEST(!join(3));                  // a duplicate is ignored
  BOOST_TEST(join(1));
  BOOST_TEST((b.digest() == Digest{{"a", 3}}));
  BOOST_TEST((b.state() == a.state()));
}

BOOST_AUTO_TEST_CASE(digests_never_go_backwards_and_strangers_are_ignored) {
  Replica a("a");
  a.track("b");
  a.on_digest("b", {{"x", 5}}, 1000);
  a.on_digest("b", {{"x", 3}}, 1001);  // older news
  BOOST_TEST_REQUIRE(a.known("b") != nullptr);
  BOOST_TEST(a.known("b")->at("x") == 5u);
  a.on_digest("stranger", {{"x", 9}}, 1002);
  BOOST_TEST(a.known("stranger") == nullptr);
}

BOOST_AUTO_TEST_CASE(removing_nothing_logs_nothing) {
  Replica a("a");
  BOOST_TEST(!a.remove("absent"));
  BOOST_TEST(a.remove_where([](std::string_view, const auto&) { return true; }) == 0u);
  BOOST_TEST(!a.remove_if("absent", [](std::string_view, const auto&) { return true; }));
  BOOST_TEST(!a.has_unflushed());
  BOOST_TEST(a.flush().empty());
  BOOST_TEST((a.digest() == Digest{}));
}

BOOST_AUTO_TEST_CASE(remove_if_logs_only_a_removal_that_matched) {
  Replica a("a");
  a.put(1000, "k", "v");
  BOOST_TEST(a.flush().size() == 1u);
  BOOST_TEST(!a.remove_if("k", [](std::string_view, const auto&) { return false; }));
  BOOST_TEST(!a.has_unflushed());
  BOOST_TEST(a.remove_if("k", [](std::string_view, const auto& v) { return v.value == "v"; }));
  BOOST_TEST(a.state().versions("k") == 0u);
  BOOST_TEST(a.flush().size() == 1u);
}

BOOST_AUTO_TEST_CASE(local_mutations_batch_until_flushed) {
  Replica a("a");
  a.put(1000, "k1", "v1");
  a.put(1000, "k2", "v2");
  a.put(1000, "k1", "v3");
  a.remove("k2");
  BOOST_TEST(a.has_unflushed());
  const auto flushed = a.flush();
  BOOST_TEST_REQUIRE(flushed.size() == 1u);
  const auto decoded = shoal::crdt::decode(*flushed.front());
  BOOST_TEST_REQUIRE(decoded.has_value());
  const AwLwwMap* batch = &*decoded;
  BOOST_TEST(batch->entry_count() == 2u);
  BOOST_TEST(batch->get("k1")->value == "v3");
  BOOST_TEST(batch->versions("k1") == 1u);
  BOOST_TEST(!batch->get("k2").has_value());
  BOOST_TEST(a.flush().empty());
  AwLwwMap elsewhere;
  elsewhere.join(*batch);
  BOOST_TEST((elsewhere == a.state()));
  a.put(1001, "k3", "v");
  a.flush();
  BOOST_TEST((a.digest() == Digest{{"a", 2}}));
}

BOOST_AUTO_TEST_CASE(full_batch_is_sealed_and_a_new_one_opened) {
  ReplicaConfig config;
  config.max_batch_entries = 3;
  Replica a("a", config);
  for (int i = 0; i < 7; ++i)
    a.put(1000, "k" + std::to_string(i), "v");
  BOOST_TEST((a.digest() == Digest{{"a", 2}}));  // two sealed, the third still open
  BOOST_TEST(a.flush().size() == 3u);
  BOOST_TEST(a.log_batches() == 3u);
}

BOOST_AUTO_TEST_CASE(a_quiet_origin_is_settled_and_sending_stays_exact) {
  ReplicaConfig config;
  config.settle_after_ms = 1'000;
  config.forward_delay_ms = 0;
  Replica x("x", config);  // a node life that wrote, then went quiet
  Replica a("a", config);
  x.put(1000, "k1", "v");
  x.flush();
  x.put(1001, "k2", "v");
  sync(x, a, 1001);  // a has x's batches 1 and 2
  a.track("b");
  a.track("c");
  a.on_digest("b", {{"x", 2}}, 1002);
  a.on_digest("c", {{"x", 2}}, 1002);
  BOOST_TEST(a.log_batches() == 0u);
  const std::size_t before = a.neighbour_entries();
  BOOST_TEST(before > 0u);
  a.settle(1500);  // not quiet for long enough yet
  BOOST_TEST(a.neighbour_entries() == before);
  a.settle(2100);
  BOOST_TEST(a.neighbour_entries() == 0u);
  BOOST_TEST(!a.outgoing("b", 2100).has_value());
  // Digests of neighbours that have it add nothing back.
  a.on_digest("b", {{"x", 2}}, 2200);
  BOOST_TEST(a.neighbour_entries() == 0u);

  // A new batch of x: b and c get that one only, not the two they have.
  x.put(3000, "k3", "v");
  auto third = sync(x, a, 3000);
  BOOST_TEST_REQUIRE(third.has_value());
  auto to_b = a.outgoing("b", 3000);
  BOOST_TEST_REQUIRE(to_b.has_value());
  BOOST_TEST(to_b->state == nullptr);
  BOOST_TEST_REQUIRE(to_b->batches.size() == 1u);
  BOOST_TEST(to_b->batches[0].seq == 3u);

  // A neighbour tracked after the settling is asked, not assumed: lacking batches the log no
  // longer holds, it gets the state; having them, nothing.
  a.on_digest("b", {{"x", 3}}, 3001);
  a.on_digest("c", {{"x", 3}}, 3001);
  a.settle(5000);
  BOOST_TEST(a.neighbour_entries() == 0u);
  a.track("d");
  a.on_digest("d", {}, 5001);
  auto to_d = a.outgoing("d", 5001);
  BOOST_TEST_REQUIRE(to_d.has_value());
  BOOST_TEST(to_d->state != nullptr);
  a.track("e");
  a.on_digest("e", {{"x", 3}}, 5001);
  BOOST_TEST(!a.outgoing("e", 5001).has_value());
  // A neighbour forgotten and tracked again is a new one too.
  a.forget("b");
  a.track("b");
  a.on_digest("b", {}, 5002);
  auto again = a.outgoing("b", 5002);
  BOOST_TEST_REQUIRE(again.has_value());
  BOOST_TEST(again->state != nullptr);
  // Once d and b have caught up, the origin settles again over every neighbour.
  a.on_digest("d", {{"x", 3}}, 5003);
  a.on_digest("b", {{"x", 3}}, 5003);
  a.settle(7000);
  BOOST_TEST(a.neighbour_entries() == 0u);
}

BOOST_AUTO_TEST_CASE(a_past_origin_is_retired_reported_for_a_while_then_forgotten) {
  ReplicaConfig config;
  config.settle_after_ms = 1'000;
  config.retire_after_ms = 5'000;
  config.retired_keep_ms = 20'000;
  config.forward_delay_ms = 0;
  Replica x("x", config);  // a node life that wrote, then died: never a neighbour of a again
  Replica a("a", config);
  x.put(1000, "k1", "v");
  x.flush();
  x.put(1001, "k2", "v");
  x.flush();
  sync(x, a, 1001);
  a.forget("x");  // x dies
  a.track("b");
  a.on_digest("b", {{"x", 2}}, 1002);
  a.settle(1002);  // x absent from now on
  BOOST_TEST(a.origin_count() == 1u);
  a.settle(5000);  // settled, absent for 4 s
  BOOST_TEST(a.origin_count() == 1u);
  a.settle(6100);
  BOOST_TEST(a.origin_count() == 0u);
  BOOST_TEST(a.retired_count() == 1u);
  BOOST_TEST(a.neighbour_entries() == 0u);
  // Still reported: a neighbour that has not retired it does not think a lacks it.
  BOOST_TEST((a.digest() == Digest{{"x", 2}}));
  BOOST_TEST((a.digest({"x"}) == Digest{{"x", 2}}));
  // Digests and states that show no more of it change nothing.
  a.on_digest("b", {{"x", 2}}, 6200);
  BOOST_TEST(!a.join_state(x.state(), {{"x", 2}}, 6200));
  BOOST_TEST(a.origin_count() == 0u);
  BOOST_TEST(a.neighbour_entries() == 0u);
  // Forgotten after the keep time.
  a.settle(26'200);
  BOOST_TEST(a.retired_count() == 0u);
  BOOST_TEST(a.digest().empty());
  BOOST_TEST((a.state() == x.state()));  // the data stays: only the bookkeeping went
}

BOOST_AUTO_TEST_CASE(a_retired_origin_that_shows_more_comes_back_and_its_batches_are_acked) {
  ReplicaConfig config;
  config.settle_after_ms = 1'000;
  config.retire_after_ms = 2'000;
  config.forward_delay_ms = 0;
  Replica x("x", config);  // cut off for longer than retire_after_ms, but alive
  Replica a("a", config);
  x.put(1000, "k1", "v");
  sync(x, a, 1000);
  a.forget("x");
  a.track("b");
  a.on_digest("b", {{"x", 1}}, 1000);
  a.settle(1000);
  a.settle(4000);
  BOOST_TEST_REQUIRE(a.retired_count() == 1u);
  // x wrote on; b heard of it and reports more: the origin comes back, and b's next batches of x
  // are joined and acknowledged in a's digest.
  x.put(5000, "k2", "v");
  x.flush();
  a.on_digest("b", {{"x", 2}}, 5000);
  BOOST_TEST(a.retired_count() == 0u);
  BOOST_TEST(a.origin_count() == 1u);
  BOOST_TEST((a.digest() == Digest{{"x", 1}}));
  Replica b("b", config);
  b.join_state(a.state(), a.digest(), 5000);
  tell(a, b, 5000);  // b tracks a before x's batch arrives, so it keeps it for a
  sync(x, b, 5000);
  auto to_a = b.outgoing("a", 5000);
  BOOST_TEST_REQUIRE(to_a.has_value());
  BOOST_TEST_REQUIRE(to_a->batches.size() == 1u);
  const auto& batch = to_a->batches[0];
  BOOST_TEST(
      a.join_batch(batch.origin, batch.seq, *shoal::crdt::decode(*batch.bytes), batch.bytes, 5001));
  BOOST_TEST((a.digest() == Digest{{"x", 2}}));
  BOOST_TEST((a.state() == x.state()));

  // A late batch of a retired origin is taken as well, from where it was retired.
  a.on_digest("b", {{"x", 2}}, 5002);
  a.settle(7000);
  a.settle(10'000);
  BOOST_TEST_REQUIRE(a.retired_count() == 1u);
  x.put(11'000, "k3", "v");
  auto third = x.flush();
  BOOST_TEST_REQUIRE(third.size() == 1u);
  BOOST_TEST(a.join_batch("x", 3, *shoal::crdt::decode(*third[0]), third[0], 11'000));
  BOOST_TEST((a.digest() == Digest{{"x", 3}}));
  // And a state covering more of it.
  a.settle(13'000);
  a.on_digest("b", {{"x", 3}}, 13'000);
  a.settle(20'000);
  BOOST_TEST_REQUIRE(a.retired_count() == 1u);
  x.put(21'000, "k4", "v");
  x.flush();
  BOOST_TEST(a.join_state(x.state(), x.digest(), 21'000));
  BOOST_TEST((a.digest() == Digest{{"x", 4}}));
}

// The replicator keeps the digest it built while digest_is() holds (cluster/replicator.h): it
// must tell the current digest, held and retired origins interleaved, from every near miss.
BOOST_AUTO_TEST_CASE(digest_is_tells_the_current_digest_from_any_other) {
  ReplicaConfig config;
  config.settle_after_ms = 1'000;
  config.retire_after_ms = 2'000;
  config.forward_delay_ms = 0;
  Replica m("m", config);  // a past life, retired at a
  Replica z("z", config);  // a live neighbour
  Replica a("a", config);
  m.put(1000, "k1", "v");
  sync(m, a, 1000);
  a.forget("m");
  z.put(1000, "k2", "v");
  z.flush();
  z.put(1001, "k3", "v");
  sync(z, a, 1001);
  a.put(1000, "k4", "v");
  a.flush();
  a.on_digest("z", {{"m", 1}}, 1002);
  a.settle(1002);
  a.settle(4000);
  BOOST_TEST_REQUIRE(a.retired_count() == 1u);
  const Digest now = a.digest();
  BOOST_TEST_REQUIRE((now == Digest{{"a", 1}, {"m", 1}, {"z", 2}}));
  BOOST_TEST(a.digest_is(now));
  for (const auto& [id, seq] : now) {
    Digest more = now;
    more[id] = seq + 1;
    BOOST_TEST(!a.digest_is(more), "seq of " << id);
    Digest fewer = now;
    fewer.erase(id);
    BOOST_TEST(!a.digest_is(fewer), "without " << id);
  }
  Digest extra = now;
  extra["n"] = 1;
  BOOST_TEST(!a.digest_is(extra));
  BOOST_TEST(!a.digest_is(Digest{}));
  a.put(5000, "k5", "v");
  a.flush();
  BOOST_TEST(!a.digest_is(now));
  BOOST_TEST(a.digest_is(a.digest()));
  BOOST_TEST(Replica("empty", config).digest_is(Digest{}));
}

BOOST_AUTO_TEST_CASE(origins_of_live_neighbours_and_of_this_replica_are_never_retired) {
  ReplicaConfig config;
  config.settle_after_ms = 1'000;
  config.retire_after_ms = 1'000;
  Replica a("a", config);
  Replica b("b", config);
  a.put(1000, "ka", "v");
  b.put(1000, "kb", "v");
  sync(a, b, 1000);
  sync(b, a, 1000);
  for (std::uint64_t t = 1000; t <= 30'000; t += 500) {
    a.settle(t);
    b.settle(t);
  }
  BOOST_TEST(a.retired_count() == 0u);
  BOOST_TEST(a.origin_count() == 2u);
  BOOST_TEST(a.neighbour_entries() == 0u);  // settled, though
  // Not retired while a neighbour reports more of it than this replica has either.
  Replica c("c", config);
  c.put(1000, "kc", "v");
  sync(c, a, 1000);
  a.forget("c");
  a.on_digest("b", {{"c", 2}}, 1000);  // b has more of c than a
  for (std::uint64_t t = 31'000; t <= 60'000; t += 500)
    a.settle(t);
  BOOST_TEST(a.retired_count() == 0u);
}

BOOST_AUTO_TEST_CASE(what_neighbours_report_of_origins_held_nowhere_here_does_not_pile_up) {
  // A hostile or confused neighbour names made-up origins in every digest: what is kept of them
  // is dropped by the next sweep, so it stays bounded by one digest's worth.
  ReplicaConfig config;
  config.settle_after_ms = 1'000;
  Replica a("a", config);
  a.track("b");
  for (std::uint64_t round = 0; round < 10; ++round) {
    Digest made_up;
    for (int k = 0; k < 100; ++k)
      made_up.emplace("ghost" + std::to_string(round) + "-" + std::to_string(k), 7);
    a.on_digest("b", made_up, 1000 + round * 1000);
    BOOST_TEST(a.neighbour_entries() <= 200u);  // its known and stall entries, this digest only
    a.settle(1000 + round * 1000);
  }
  a.settle(20'000);
  BOOST_TEST(a.neighbour_entries() == 0u);
  BOOST_TEST(a.origin_count() == 0u);
}

BOOST_AUTO_TEST_CASE(a_state_passes_on_no_retired_origin_and_past_ones_it_covers_arrive_retired) {
  // Under churn every new member gets a full state. Were past lives in it taken for live origins,
  // each new member would keep them another retire_after_ms and hand them on: never forgotten.
  ReplicaConfig config;
  config.settle_after_ms = 1'000;
  config.retire_after_ms = 2'000;
  config.forward_delay_ms = 0;
  Replica x("x", config);  // past by the time c joins
  Replica y("y", config);  // live, a neighbour of c
  Replica a("a", config);
  x.put(1000, "kx", "v");
  y.put(1000, "ky", "v");
  sync(x, a, 1000);
  sync(y, a, 1000);
  a.on_digest("y", {{"x", 1}, {"y", 1}}, 1000);  // y has x's batch too
  a.forget("x");
  a.settle(1000);
  a.settle(4000);
  BOOST_TEST_REQUIRE(a.retired_count() == 1u);  // x
  // c is new: it tracks y and a, reports nothing, and gets the state.
  Replica c("c", config);
  c.track("y");
  tell(c, a, 4000);
  auto sent = a.outgoing("c", 4000);
  BOOST_TEST_REQUIRE(sent.has_value());
  BOOST_TEST_REQUIRE(sent->state != nullptr);
  BOOST_TEST((sent->covers == Digest{{"y", 1}}));  // not x: retired at a
  c.track("a");
  c.join_state(*sent->state, sent->covers, 4000);
  BOOST_TEST((c.state() == a.state()));
  BOOST_TEST((c.digest() == Digest{{"y", 1}}));
  // A state from a replica that has not retired x yet: c notes x retired at once, and its digest
  // says it has it, so that replica sends nothing more.
  Replica b("b", config);
  b.track("x");
  b.join_state(x.state(), x.digest(), 4000);
  b.forget("x");
  BOOST_TEST_REQUIRE((b.digest() == Digest{{"x", 1}}));
  c.track("b");
  c.join_state(b.state(), b.digest(), 4001);
  BOOST_TEST(c.retired_count() == 1u);
  BOOST_TEST((c.digest() == Digest{{"x", 1}, {"y", 1}}));
  tell(c, b, 4001);
  BOOST_TEST(!b.outgoing("c", 4001).has_value());
}

BOOST_AUTO_TEST_SUITE_END()
