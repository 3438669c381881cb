#include "cluster/wire.h"

#include "cluster/life.h"
#include "crdt/msgpack_writer.h"

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

BOOST_AUTO_TEST_CASE(another_wire_version_is_refused_and_named) {
  std::string bytes = PacketBuilder("n", 1).finish();
  bytes[1] = 2;
  auto v = decode_packet(bytes);
  BOOST_TEST_REQUIRE(!v.has_value());
  BOOST_TEST((v.error().code == shoal::crdt::Errc::bad_version));
  BOOST_TEST(v.error().field == "version");
}

// What a newer minor version of the same wire version may send (include/shoal/version.h): fields
// appended to the packet, to messages, to push-pull and its members, and message types this
// build does not know. This build reads what it knows and skips the rest.
BOOST_AUTO_TEST_CASE(a_newer_minor_versions_fields_and_message_types_are_skipped) {
  using shoal::crdt::MsgWriter;
  std::string packet;
  MsgWriter pk(packet);
  pk.array(5);  // one field more than this build's packet
  pk.uint(kWireVersion);
  pk.str("n9");
  pk.uint(5);
  pk.array(3);
  pk.array(6);  // a ping with two new fields: a string and a nested value
  pk.uint(1);
  pk.uint(41);
  pk.str("n1");
  pk.uint(7);
  pk.str("new field");
  pk.array(2);
  pk.map(1);
  pk.str("k");
  pk.bin("v");
  pk.nil();
  pk.array(3);  // a message type from the future
  pk.uint(99);
  pk.str("future");
  pk.array(1);
  pk.uint(300);
  pk.array(3);  // a plain ack after them
  pk.uint(2);
  pk.uint(42);
  pk.uint(8);
  pk.boolean(true);  // the packet's new field
  auto decoded = decode_packet(packet);
  BOOST_TEST_REQUIRE(decoded.has_value(), (decoded ? "" : decoded.error().to_string()));
  BOOST_TEST(decoded->sender == "n9");
  BOOST_TEST_REQUIRE(decoded->messages.size() == 2u);
  BOOST_TEST(encode_message(decoded->messages[0]) == encode_message(Ping{41, "n1", 7}));
  BOOST_TEST(encode_message(decoded->messages[1]) == encode_message(Ack{42, 8}));

  std::string pp;
  MsgWriter w(pp);
  w.array(8);
  w.uint(kWireVersion);
  w.uint(10);  // push_pull
  w.uint(1);
  w.str("n9");
  w.uint(5);
  w.array(1);
  w.array(7);  // a member with one new field
  w.str("n9");
  w.array(2);
  w.bin(std::string("\x7f\0\0\1", 4));
  w.uint(7946);
  w.uint(5);
  w.uint(2);
  w.uint(0);
  w.array(0);
  w.str("member's new field");
  w.bin("state");
  w.uint(12345);  // the push-pull's new field
  auto state = decode_push_pull(pp);
  BOOST_TEST_REQUIRE(state.has_value(), (state ? "" : state.error().to_string()));
  BOOST_TEST_REQUIRE(state->members.size() == 1u);
  BOOST_TEST(state->members[0].addr.to_string() == "127.0.0.1:7946");
  BOOST_TEST(state->members[0].incarnation == 2u);
  BOOST_TEST(state->user_state == "state");

  // Fewer fields than a type needs, and values nested past the skip depth, are still errors.
  PacketBuilder short_ping("n", 1);
  short_ping.add(std::string("\x92\x01\x05", 3));  // [1, 5]
  BOOST_TEST(!decode_packet(short_ping.finish()).has_value());
  std::string deep = "\x92\x63";  // [99, [[[[...]]]]]
  deep += std::string(40, '\x91');
  deep += '\xc0';
  PacketBuilder nested("n", 1);
  nested.add(deep);
  auto too_deep = decode_packet(nested.finish());
  BOOST_TEST_REQUIRE(!too_deep.has_value());
  BOOST_TEST(too_deep.error().to_string().find("nested too deep") != std::string::npos,
             too_deep.error().to_string());
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
