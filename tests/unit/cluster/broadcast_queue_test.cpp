#include "cluster/broadcast_queue.h"

#include <boost/test/unit_test.hpp>

using namespace shoal::cluster;

namespace {

std::string update(const std::string& name, std::uint64_t incarnation) {
  return encode_message(Suspect{name, 1, incarnation, "n0"});
}

std::vector<Message> sent(std::size_t limit, BroadcastQueue& q, std::size_t budget = 10'000) {
  PacketBuilder packet("n0", 1);
  q.fill(packet, budget, limit);
  return decode_packet(packet.finish()).value().messages;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(broadcast_queue)

BOOST_AUTO_TEST_CASE(update_is_sent_limit_times_then_dropped) {
  BroadcastQueue q(16);
  q.push("n1", update("n1", 1));
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(sent(3, q).size() == 1u);
  BOOST_TEST(q.empty());
  BOOST_TEST(sent(3, q).empty());
}

BOOST_AUTO_TEST_CASE(uncounted_sends_do_not_use_up_the_limit) {
  BroadcastQueue q(16);
  q.push("n1", update("n1", 1));
  for (int i = 0; i < 5; ++i) {
    PacketBuilder packet("n0", 1);
    q.fill(packet, 10'000, 2, /*count=*/false);
    BOOST_TEST(packet.count() == 1u);
  }
  BOOST_TEST(q.size() == 1u);
  sent(2, q);
  sent(2, q);
  BOOST_TEST(q.empty());
}

BOOST_AUTO_TEST_CASE(newer_update_about_a_member_replaces_the_queued_one) {
  BroadcastQueue q(16);
  q.push("n1", update("n1", 1));
  q.push("n1", update("n1", 2));
  auto messages = sent(5, q);
  BOOST_TEST_REQUIRE(messages.size() == 1u);
  BOOST_TEST(std::get<Suspect>(messages[0]).incarnation == 2u);
}

BOOST_AUTO_TEST_CASE(least_transmitted_go_first_and_the_budget_is_respected) {
  BroadcastQueue q(16);
  q.push("old", update("old", 1));
  sent(10, q);  // "old" has been sent once
  q.push("new", update("new", 1));
  const std::size_t one = update("new", 1).size();
  auto messages = sent(10, q, one);  // room for exactly one
  BOOST_TEST_REQUIRE(messages.size() == 1u);
  BOOST_TEST(std::get<Suspect>(messages[0]).name == "new");
}

BOOST_AUTO_TEST_CASE(queue_is_bounded_and_drops_the_most_transmitted) {
  BroadcastQueue q(2);
  q.push("a", update("a", 1));
  sent(10, q);
  q.push("b", update("b", 1));
  q.push("c", update("c", 1));
  BOOST_TEST(q.size() == 2u);
  BOOST_TEST(q.overflowed() == 1u);
  for (const Message& m : sent(10, q))
    BOOST_TEST(std::get<Suspect>(m).name != "a");
}

BOOST_AUTO_TEST_CASE(a_packet_never_exceeds_its_limit) {
  BroadcastQueue q(4096);
  for (int i = 0; i < 500; ++i)
    q.push("member-" + std::to_string(i), update("member-" + std::to_string(i), 7));
  PacketBuilder packet("n0", 1);
  q.fill(packet, 100'000, 10);
  BOOST_TEST(packet.finish().size() <= kMaxPacketBytes);
  BOOST_TEST(packet.count() > 10u);
}

BOOST_AUTO_TEST_SUITE_END()
