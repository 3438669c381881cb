// The membership core driven by hand: packets built with the wire codec, time passed explicitly.

#include "cluster/membership.h"

#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <limits>

using namespace shoal::cluster;

namespace {

Address addr(std::uint8_t last) {
  return Address::v4(127, 0, 0, last, 7946);
}

struct Core {
  Membership m{MembershipConfig{}, NodeIdentity{"me", addr(1), 100, {}}, 7, 0};
  std::vector<Effect> effects;

  void packet(std::uint64_t now, const std::string& sender, std::uint64_t creation,
              std::vector<Message> messages, std::uint8_t from = 2) {
    PacketBuilder b(sender, creation);
    for (const Message& msg : messages)
      b.add(encode_message(msg));
    m.on_packet(now, addr(from), b.finish());
    m.take_effects(effects);
  }
  std::vector<MemberEvent> events() const {
    std::vector<MemberEvent> out;
    for (const Effect& e : effects) {
      if (auto* ev = std::get_if<MemberEvent>(&e)) out.push_back(*ev);
    }
    return out;
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(membership_core)

BOOST_AUTO_TEST_CASE(alive_gossip_adds_a_member_and_emits_joined) {
  Core c;
  c.packet(10, "peer", 50, {Alive{"peer", addr(2), 50, 0, {{"role", "db"}}}});
  const Member* m = c.m.member("peer");
  BOOST_TEST_REQUIRE(m != nullptr);
  BOOST_TEST((m->status == MemberStatus::alive));
  BOOST_TEST(m->tags.at("role") == "db");
  BOOST_TEST_REQUIRE(c.events().size() == 1u);
  BOOST_TEST((c.events()[0].kind == EventKind::joined));
  BOOST_TEST(c.events()[0].at_ms == 10u);
}

BOOST_AUTO_TEST_CASE(suspicion_of_this_node_is_refuted_with_a_higher_incarnation) {
  Core c;
  c.packet(10, "peer", 50, {Suspect{"me", 100, 0, "peer"}});
  BOOST_TEST(c.m.incarnation() == 1u);
  BOOST_TEST(c.m.stats().refutes == 1u);
  BOOST_TEST(c.m.health_score() == 1);
  // An older accusation than what we already refuted is answered, not refuted again.
  c.packet(20, "peer", 50, {Dead{"me", 100, 0, "peer"}});
  BOOST_TEST(c.m.incarnation() == 1u);
  BOOST_TEST(c.m.stats().corrections == 1u);
}

BOOST_AUTO_TEST_CASE(an_accusation_at_the_greatest_incarnation_never_wraps_this_nodes_incarnation) {
  constexpr std::uint64_t most = std::numeric_limits<std::uint64_t>::max();
  Core c;
  c.packet(10, "peer", 50, {Suspect{"me", 100, 0, "peer"}});
  BOOST_TEST(c.m.incarnation() == 1u);
  // It cannot be outbid: not refuted, and the incarnation does not wrap to 0.
  c.packet(20, "peer", 50, {Suspect{"me", 100, most, "peer"}, Dead{"me", 100, most, "peer"}});
  BOOST_TEST(c.m.incarnation() == 1u);
  BOOST_TEST(c.m.stats().refutes == 1u);
  // One below it can be: the refutation takes the greatest, where a change of tags stays.
  c.packet(30, "peer", 50, {Suspect{"me", 100, most - 1, "peer"}});
  BOOST_TEST(c.m.incarnation() == most);
  c.m.set_tags(40, {{"role", "db"}});
  BOOST_TEST(c.m.incarnation() == most);
  BOOST_TEST((c.m.member("me")->status == MemberStatus::alive));
}

BOOST_AUTO_TEST_CASE(packets_from_an_older_life_of_their_sender_are_ignored) {
  Core c;
  c.packet(10, "peer", 50, {Alive{"peer", addr(2), 50, 0, {}}, Alive{"other", addr(3), 60, 0, {}}});
  c.packet(20, "peer", 70, {Alive{"peer", addr(2), 70, 0, {}}});  // peer restarted
  BOOST_TEST(c.m.member("peer")->creation == 70u);
  // The old process (creation 50) still accuses "other": nobody listens.
  c.packet(30, "peer", 50, {Dead{"other", 60, 0, "peer"}});
  BOOST_TEST((c.m.member("other")->status == MemberStatus::alive));
  BOOST_TEST(c.m.stats().stale == 1u);
}

BOOST_AUTO_TEST_CASE(new_creation_replaces_a_dead_member_at_once) {
  Core c;
  c.packet(10, "peer", 50, {Alive{"peer", addr(2), 50, 3, {}}});
  c.packet(20, "x", 9, {Dead{"peer", 50, 3, "x"}}, 4);
  BOOST_TEST((c.m.member("peer")->status == MemberStatus::dead));
  c.packet(30, "peer", 80, {Alive{"peer", addr(9), 80, 0, {}}}, 9);
  const Member* m = c.m.member("peer");
  BOOST_TEST((m->status == MemberStatus::alive));
  BOOST_TEST(m->creation == 80u);
  BOOST_TEST(m->addr.to_string() == addr(9).to_string());
}

BOOST_AUTO_TEST_CASE(suspect_with_lower_incarnation_than_known_is_ignored) {
  Core c;
  c.packet(10, "peer", 50, {Alive{"peer", addr(2), 50, 5, {}}});
  c.packet(20, "x", 9, {Suspect{"peer", 50, 4, "x"}}, 4);
  BOOST_TEST((c.m.member("peer")->status == MemberStatus::alive));
}

// A node declared dead by others before its leave reached them: its own word wins, in either
// order of arrival, so that every view ends the same.
BOOST_AUTO_TEST_CASE(a_leave_corrects_a_death_declared_before_it_arrived_and_not_the_reverse) {
  Core c;
  c.packet(10, "peer", 50, {Alive{"peer", addr(2), 50, 2, {}}, Alive{"other", addr(3), 60, 0, {}}});
  c.packet(20, "x", 9, {Dead{"peer", 50, 2, "x"}, Left{"other", 60, 0}}, 4);
  BOOST_TEST((c.m.member("peer")->status == MemberStatus::dead));
  BOOST_TEST((c.m.member("other")->status == MemberStatus::left));
  c.effects.clear();
  // An older life's leave, or an older incarnation's, corrects nothing.
  c.packet(30, "x", 9, {Left{"peer", 49, 2}, Left{"peer", 50, 1}}, 4);
  BOOST_TEST((c.m.member("peer")->status == MemberStatus::dead));
  BOOST_TEST(c.events().empty());
  c.packet(40, "x", 9, {Left{"peer", 50, 2}, Dead{"other", 60, 0, "x"}}, 4);
  BOOST_TEST((c.m.member("peer")->status == MemberStatus::left));
  BOOST_TEST(c.m.member("peer")->since_ms == 40u);
  BOOST_TEST((c.m.member("other")->status == MemberStatus::left));
  BOOST_TEST_REQUIRE(c.events().size() == 1u);
  BOOST_TEST((c.events()[0].kind == EventKind::left));
  BOOST_TEST(c.events()[0].name == "peer");
}

// A leaving node answers probes until it closes, and its answer carries the leave: a prober
// that had not heard of it learns it instead of suspecting a node that is on its way out.
BOOST_AUTO_TEST_CASE(a_leaving_node_answers_probes_with_its_leave) {
  Core c;
  c.packet(10, "peer", 50, {Alive{"peer", addr(2), 50, 0, {}}});
  c.m.leave(20);
  c.effects.clear();
  c.packet(30, "peer", 50, {Ping{7, "me", 0}});
  bool acked = false, carries_leave = false;
  for (const Effect& e : c.effects) {
    const auto* p = std::get_if<SendPacket>(&e);
    if (p == nullptr) continue;
    auto decoded = decode_packet(p->bytes);
    BOOST_TEST_REQUIRE(decoded.has_value());
    for (const Message& msg : decoded->messages) {
      if (const auto* ack = std::get_if<Ack>(&msg)) acked |= ack->seq == 7u;
      if (const auto* l = std::get_if<Left>(&msg)) carries_leave |= l->name == "me";
    }
  }
  BOOST_TEST(acked);
  BOOST_TEST(carries_leave);
}

BOOST_AUTO_TEST_CASE(undecodable_packets_are_counted_and_change_nothing) {
  Core c;
  c.m.on_packet(10, addr(2), "\x94\x01garbage");
  c.m.on_packet(10, addr(2), std::string(2000, 'x'));
  BOOST_TEST(c.m.stats().rejected == 2u);
  BOOST_TEST(c.m.members().size() == 1u);
}

BOOST_AUTO_TEST_CASE(ping_for_another_name_at_this_address_gets_no_ack) {
  Core c;
  c.packet(10, "peer", 50, {Ping{1, "someone-else", 0}});
  for (const Effect& e : c.effects)
    BOOST_TEST(!std::holds_alternative<SendPacket>(e));
  c.packet(11, "peer", 50, {Ping{2, "me", 0}});
  bool acked = false;
  for (const Effect& e : c.effects)
    acked |= std::holds_alternative<SendPacket>(e);
  BOOST_TEST(acked);
}

BOOST_AUTO_TEST_CASE(next_deadline_never_lies_in_the_past_after_on_timer) {
  Core c;
  for (std::uint64_t t = 0; t < 10'000; t += 37) {
    c.m.on_timer(t);
    BOOST_TEST(c.m.next_deadline() > t);
  }
}

BOOST_AUTO_TEST_CASE(a_port_unreachable_for_a_member_not_being_probed_probes_it_at_once) {
  Core c;
  c.packet(10, "p2", 50, {Alive{"p2", addr(2), 50, 0, {}}});
  c.packet(10, "p3", 50, {Alive{"p3", addr(3), 50, 0, {}}}, 3);
  c.effects.clear();
  // No probe under way yet: the report about p3's address starts a probe of p3 now.
  c.m.on_unreachable(20, addr(3));
  c.m.take_effects(c.effects);
  BOOST_TEST(c.m.stats().urgent_probes == 1u);
  bool pinged = false;
  for (const Effect& e : c.effects) {
    if (auto* send = std::get_if<SendPacket>(&e); send != nullptr && send->to == addr(3)) {
      auto p = decode_packet(send->bytes);
      BOOST_REQUIRE(p.has_value());
      for (const Message& msg : p->messages) {
        if (auto* ping = std::get_if<Ping>(&msg)) pinged = pinged || ping->target == "p3";
      }
    }
  }
  BOOST_TEST(pinged);
  // While that probe is unanswered, another report about p3 starts nothing more.
  c.m.on_unreachable(21, addr(3));
  BOOST_TEST(c.m.stats().urgent_probes == 1u);
  // An unknown address is ignored.
  c.m.on_unreachable(22, addr(9));
  BOOST_TEST(c.m.stats().urgent_probes == 1u);
}

namespace {

// Messages of type T in the packets sent to `to` among `effects`.
template <typename T>
std::vector<T> sent_to(const std::vector<Effect>& effects, const Address& to) {
  std::vector<T> out;
  for (const Effect& e : effects) {
    auto* send = std::get_if<SendPacket>(&e);
    if (send == nullptr || send->to != to) continue;
    auto p = decode_packet(send->bytes);
    if (!p) continue;
    for (const Message& msg : p->messages) {
      if (auto* m = std::get_if<T>(&msg)) out.push_back(*m);
    }
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_suspect_is_told_of_the_suspicion_again_every_probe_interval) {
  Core c;
  c.packet(10, "p2", 50, {Alive{"p2", addr(2), 50, 0, {}}});
  c.packet(10, "p3", 50, {Alive{"p3", addr(3), 50, 0, {}}}, 3);
  c.packet(20, "p3", 50, {Suspect{"p2", 50, 0, "p3"}}, 3);
  BOOST_TEST_REQUIRE((c.m.member("p2")->status == MemberStatus::suspect));
  // Until the suspicion ends (2,400 ms at most here), p2 hears of it once per probe interval
  // (200 ms), not only once: that one notice, and the gossip, may all be lost.
  std::uint64_t now = 20;
  while (now < 1'000) {
    now = c.m.next_deadline();
    c.m.on_timer(now);
    c.m.take_effects(c.effects);
  }
  std::size_t notices = 0;
  for (const Suspect& s : sent_to<Suspect>(c.effects, addr(2)))
    notices += s.name == "p2";
  BOOST_TEST(notices >= 4u);
  BOOST_TEST(notices <= 8u);
}

BOOST_AUTO_TEST_CASE(a_refutation_goes_to_every_peer_of_a_small_cluster_at_once) {
  Core c;
  for (std::uint8_t k = 2; k <= 6; ++k) {
    const std::string name = "p" + std::to_string(k);
    c.packet(10, name, 50, {Alive{name, addr(k), 50, 0, {}}}, k);
  }
  c.effects.clear();
  c.packet(20, "p2", 50, {Suspect{"me", 100, 0, "p2"}});
  // Gossip alone reaches 3 random peers; the refutation reaches all 5 in this turn.
  for (std::uint8_t k = 2; k <= 6; ++k) {
    bool refuted = false;
    for (const Alive& a : sent_to<Alive>(c.effects, addr(k)))
      refuted = refuted || (a.name == "me" && a.incarnation == 1);
    BOOST_TEST(refuted, "p" << int(k));
  }
}

BOOST_AUTO_TEST_SUITE_END()
