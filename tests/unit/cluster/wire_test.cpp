#include "cluster/wire.h"

#include "cluster/life.h"

#include <boost/test/unit_test.hpp>

#include "tests/support/seed.h"

using namespace shoal::cluster;

namespace {

Address addr(std::uint8_t last) {
  return Address::v4(127, 0, 0, last, 7946);
}

std::vector<Message> every_message() {
  return {Ping{1, "n1", 0xdeadbeef},
          Ack{2, 7},
          Nack{3, NackReason::unreachable},
          PingReq{4, "n2", addr(2)},
          Alive{"n3", addr(3), 1732312345123, 5, {{"role", "db"}, {"zone", "a"}}},
          Suspect{"n4", 17, 6, "n1"},
          Dead{"n5", 18, 7, "n2"},
          Left{"n6", 19, 8},
          User{std::string("\0\1payload", 9)},
          UserBroadcast{"origin", 77, "to all"}};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(wire)

BOOST_AUTO_TEST_CASE(every_message_round_trips_in_one_compound_packet) {
  PacketBuilder builder("sender", 42);
  for (const Message& m : every_message())
    BOOST_TEST(builder.add(encode_message(m)));
  const std::string bytes = builder.finish();
  BOOST_TEST(bytes.size() == builder.size());
  auto packet = decode_packet(bytes);
  BOOST_TEST_REQUIRE(packet.has_value(), (packet ? "" : packet.error().to_string()));
  BOOST_TEST(packet->sender == "sender");
  BOOST_TEST(packet->creation == 42u);
  BOOST_TEST_REQUIRE(packet->messages.size() == every_message().size());
  for (std::size_t i = 0; i < packet->messages.size(); ++i) {
    BOOST_TEST(encode_message(packet->messages[i]) == encode_message(every_message()[i]));
  }
}

BOOST_AUTO_TEST_CASE(push_pull_round_trips) {
  PushPull state;
  state.join = true;
  state.sender = "n1";
  state.creation = 9;
  state.members.push_back(MemberState{"n1", addr(1), 9, 3, MemberStatus::alive, {{"k", "v"}}});
  state.members.push_back(
      MemberState{"n2", Address::parse("[::1]:7000").value(), 4, 0, MemberStatus::left, {}});
  state.user_state = "opaque";
  auto back = decode_push_pull(encode_push_pull(state));
  BOOST_TEST_REQUIRE(back.has_value());
  BOOST_TEST(back->join);
  BOOST_TEST(back->members.size() == 2u);
  BOOST_TEST((back->members[1].status == MemberStatus::left));
  BOOST_TEST(back->members[1].addr.to_string() == "[::1]:7000");
  BOOST_TEST(back->members[0].tags.at("k") == "v");
  BOOST_TEST(back->user_state == "opaque");
}

BOOST_AUTO_TEST_CASE(builder_refuses_what_would_overflow_the_packet) {
  PacketBuilder builder("n", 1, 600);
  const std::string big = encode_message(User{std::string(500, 'x')});
  BOOST_TEST(builder.add(big));
  BOOST_TEST(!builder.add(big));
  BOOST_TEST(builder.finish().size() <= 600u);
}

BOOST_AUTO_TEST_CASE(hostile_packets_decode_to_an_error_never_a_crash) {
  const auto seed = shoal::test::test_seed();
  auto rng = shoal::test::rng_for(seed);
  PacketBuilder builder("sender", 42);
  for (const Message& m : every_message())
    builder.add(encode_message(m));
  const std::string good = builder.finish();
  std::size_t rejected = 0;
  for (int round = 0; round < 20'000; ++round) {
    std::string bad = good;
    if (round % 3 == 0) {
      bad.resize(rng() % good.size());
    } else {
      const int flips = 1 + static_cast<int>(rng() % 6);
      for (int f = 0; f < flips; ++f)
        bad[rng() % bad.size()] = static_cast<char>(rng());
    }
    auto packet = decode_packet(bad);
    if (!packet) {
      ++rejected;
      BOOST_TEST(!packet.error().to_string().empty());
    }
    (void)decode_push_pull(bad);
  }
  BOOST_TEST_MESSAGE("rejected " << rejected << " of 20000");
  BOOST_TEST(rejected > 10'000u);
  BOOST_TEST(!decode_packet(std::string(kMaxPacketBytes + 1, '\x90')).has_value());
}

BOOST_AUTO_TEST_CASE(wrong_version_and_unknown_type_are_named) {
  std::string bytes = PacketBuilder("n", 1).finish();
  bytes[1] = 2;
  auto v = decode_packet(bytes);
  BOOST_TEST_REQUIRE(!v.has_value());
  BOOST_TEST((v.error().code == shoal::crdt::Errc::bad_version));
  PacketBuilder b("n", 1);
  b.add(std::string("\x91\x63", 2));  // [99]
  auto t = decode_packet(b.finish());
  BOOST_TEST_REQUIRE(!t.has_value());
  BOOST_TEST(t.error().field == "messages[0].type");
}

BOOST_AUTO_TEST_CASE(announcements_round_trip_and_strangers_are_refused) {
  const Announcement a{"node-7", Address::v4(127, 0, 0, 9, 7950)};
  const std::string bytes = encode_announcement(a);
  auto back = decode_announcement(bytes);
  BOOST_TEST_REQUIRE(back.has_value(), (back ? "" : back.error().to_string()));
  BOOST_TEST(back->name == "node-7");
  BOOST_TEST((back->addr == a.addr));
  // Another program's datagram on the group, a cut one, one with trailing bytes, an empty name.
  BOOST_TEST(
      !decode_announcement("\x94\x01\xa5hello\xa1n\x92\xc4\x04\x7f\x00\x00\x01\x01").has_value());
  BOOST_TEST(!decode_announcement(bytes.substr(0, bytes.size() - 1)).has_value());
  BOOST_TEST(!decode_announcement(bytes + "x").has_value());
  BOOST_TEST(!decode_announcement(encode_announcement({"", a.addr})).has_value());
}

BOOST_AUTO_TEST_CASE(lives_print_and_parse) {
  const Life life{"n1#odd", 1732312345123};
  BOOST_TEST(life.key() == "n1#odd#1732312345123");
  BOOST_TEST((Life::parse(life.key()) == life));
  BOOST_TEST(Life::name_of(life.key()) == "n1#odd");
  BOOST_TEST(!Life::parse("n1").has_value());
  BOOST_TEST(!Life::parse("#5").has_value());
  BOOST_TEST(!Life::parse("n1#").has_value());
  BOOST_TEST(!Life::parse("n1#12x").has_value());
  BOOST_TEST(!Life::parse("n1#99999999999999999999999").has_value());
}

BOOST_AUTO_TEST_CASE(addresses_parse_and_print) {
  BOOST_TEST(Address::parse("127.0.0.1:7946").value().to_string() == "127.0.0.1:7946");
  BOOST_TEST(Address::parse("[::1]:80").value().is_loopback());
  BOOST_TEST(!Address::parse("localhost:80").has_value());
  BOOST_TEST(!Address::parse("127.0.0.1").has_value());
  BOOST_TEST(!Address::parse("127.0.0.1:99999").has_value());
}

BOOST_AUTO_TEST_SUITE_END()
