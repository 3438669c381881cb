// Replicators on a fake lossy network: convergence, no entry lost, backpressure, hostile input.

#include "cluster/replicator.h"

#include <boost/test/unit_test.hpp>
#include <map>
#include <memory>
#include <set>

#include "tests/support/seed.h"

using namespace shoal::cluster;
using shoal::crdt::AwLwwMap;

namespace {

struct Net {
  struct Msg {
    std::uint64_t at;
    std::string from;
    std::string to;
    std::string bytes;
  };
  double loss = 0;
  double dup = 0;
  std::mt19937_64 rng;
  std::vector<Msg> pool;
  std::uint64_t lost = 0;
  std::set<std::pair<std::string, std::string>> cut;  // (from, to) links that drop everything

  bool chance(double p) { return static_cast<double>(rng() % 1'000'000) < p * 1'000'000.0; }
};

struct Cluster {
  Net net;
  std::uint64_t now = 0;
  std::vector<std::string> names;
  std::map<std::string, std::unique_ptr<Replicator>> nodes;
  // A peer is known by its replica id: the node name plus its life, as the agent forms it from
  // name and creation; a restarted node is a new peer.
  std::map<std::string, std::string> id_of;
  std::uint64_t lives = 0;

  Cluster(std::size_t n, std::uint64_t seed, ReplicatorConfig config, double loss, double dup) {
    net.rng = shoal::test::rng_for(seed);
    net.loss = loss;
    net.dup = dup;
    for (std::size_t i = 0; i < n; ++i)
      names.push_back("n" + std::to_string(i));
    for (const std::string& name : names)
      id_of[name] = name + "#" + std::to_string(++lives);
    for (const std::string& name : names)
      start(name, config, seed, id_of[name]);
  }
  void start(const std::string& name, ReplicatorConfig config, std::uint64_t seed, std::string id) {
    id_of[name] = id;
    nodes[name] =
        std::make_unique<Replicator>(id, config, seed ^ std::hash<std::string>{}(name), now);
    // Every node's peers are the current lives of the others.
    for (const std::string& n : names) {
      if (!nodes.contains(n)) continue;
      std::vector<std::string> peers;
      for (const std::string& other : names) {
        if (other != n) peers.push_back(id_of[other]);
      }
      nodes[n]->set_peers(now, peers);
    }
  }
  void restart(const std::string& name, ReplicatorConfig config, std::uint64_t seed) {
    start(name, config, seed, name + "#" + std::to_string(++lives));
  }
  Replicator* by_id(const std::string& id) {
    for (const auto& [name, node_id] : id_of) {
      if (node_id == id) return nodes[name].get();
    }
    return nullptr;  // a past life: the message is lost
  }
  void drain(const std::string& name) {
    std::vector<ReplicaEffect> effects;
    nodes[name]->take_effects(effects);
    for (ReplicaEffect& e : effects) {
      auto* send = std::get_if<ReplicaSend>(&e);
      if (send == nullptr) continue;
      if (net.cut.contains({id_of[name], send->to})) continue;
      // Streams are reliable (TCP); datagrams may be lost or duplicated.
      if (!send->stream && net.chance(net.loss)) {
        ++net.lost;
        continue;
      }
      const int copies = !send->stream && net.chance(net.dup) ? 2 : 1;
      for (int c = 0; c < copies; ++c) {
        net.pool.push_back({now + 1 + net.rng() % 20, id_of[name], send->to, send->bytes});
      }
    }
  }
  // One 5 ms step: timers, then deliveries due, in random order.
  void step() {
    now += 5;
    for (const std::string& name : names) {
      nodes[name]->on_timer(now);
      drain(name);
    }
    std::vector<Net::Msg> due;
    for (auto it = net.pool.begin(); it != net.pool.end();) {
      if (it->at <= now) {
        due.push_back(std::move(*it));
        it = net.pool.erase(it);
      } else {
        ++it;
      }
    }
    std::shuffle(due.begin(), due.end(), net.rng);
    for (Net::Msg& m : due) {
      Replicator* to = by_id(m.to);
      if (to == nullptr) continue;
      to->on_message(now, m.from, m.bytes);
      for (const auto& [name, node] : nodes) {
        if (node.get() == to) drain(name);
      }
    }
  }
  bool all_equal(const AwLwwMap& reference) const {
    for (const auto& [name, node] : nodes) {
      if (!(node->state() == reference)) return false;
    }
    return true;
  }
};

// Hands everything `from` has to send to `to`, as from peer `from_id`; returns what it sent.
std::size_t deliver(Replicator& from, const std::string& from_id, Replicator& to,
                    std::uint64_t now_ms) {
  std::vector<ReplicaEffect> effects;
  from.take_effects(effects);
  std::size_t sent = 0;
  for (ReplicaEffect& e : effects) {
    if (auto* s = std::get_if<ReplicaSend>(&e)) {
      to.on_message(now_ms, from_id, s->bytes);
      ++sent;
    }
  }
  return sent;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(replicator)

BOOST_AUTO_TEST_CASE(ten_thousand_puts_under_loss_reach_every_replica_none_lost) {
  const auto seed = shoal::test::test_seed();
  ReplicatorConfig config;
  config.replica.max_log_entries = 512;  // small: lagging replicas need full states too
  config.replica.max_batch_entries = 16;
  config.replica.max_message_entries = 64;
  Cluster c(5, seed, config, 0.10, 0.05);
  auto rng = shoal::test::rng_for(seed + 1);
  AwLwwMap reference;
  std::set<std::string> removed;
  for (int i = 0; i < 10'000; ++i) {
    const std::string& name = c.names[rng() % c.names.size()];
    const std::string key = "reg/" + std::to_string(i);
    c.nodes[name]->put(c.now, key, name);
    if (i % 10 == 3) {  // some names are unregistered again
      const std::string gone = "reg/" + std::to_string(rng() % (i + 1));
      if (c.nodes[name]->remove(c.now, gone)) removed.insert(gone);
    }
    reference.join(c.nodes[name]->state());
    if (i % 25 == 0) {
      for (const std::string& n : c.names) {
        c.nodes[n]->flush(c.now);
        c.drain(n);
      }
      c.step();
    }
  }
  for (const std::string& n : c.names)
    reference.join(c.nodes[n]->state());
  int steps = 0;
  while (!c.all_equal(reference) && steps < 20'000) {
    c.step();
    ++steps;
  }
  BOOST_TEST_MESSAGE("converged after " << steps * 5 << " ms of anti-entropy; " << c.net.lost
                                        << " datagrams lost");
  BOOST_TEST(c.all_equal(reference), "seed=" << seed);
  // No entry lost: every key put and never removed is on every replica.
  for (const auto& [name, node] : c.nodes) {
    std::size_t present = 0;
    node->state().scan("reg/", [&](std::string_view, const auto&) {
      ++present;
      return true;
    });
    BOOST_TEST(present == reference.size());
  }
  std::size_t full = 0;
  for (const auto& [name, node] : c.nodes)
    full += node->stats().full_states_sent;
  BOOST_TEST_MESSAGE("full states sent: " << full);
}

BOOST_AUTO_TEST_CASE(a_new_replica_catches_up_by_full_state) {
  const auto seed = shoal::test::test_seed();
  ReplicatorConfig config;
  config.replica.max_log_entries = 128;
  Cluster c(3, seed, config, 0.0, 0.0);
  for (int i = 0; i < 2'000; ++i)
    c.nodes["n0"]->put(c.now, "k" + std::to_string(i), "v");
  for (int s = 0; s < 400; ++s)
    c.step();
  // The log no longer holds the first batches: every peer has them.
  BOOST_TEST(c.nodes["n0"]->replica().log_entries() <= 128u);
  // n2 restarts empty (a new life: a new replica id, a new peer for the others) and must receive
  // everything.
  c.restart("n2", config, seed + 7);
  for (int s = 0; s < 2'000 && !(c.nodes["n2"]->state().size() == 2'000u); ++s)
    c.step();
  BOOST_TEST(c.nodes["n2"]->state().size() == 2'000u, "seed=" << seed);
  BOOST_TEST(c.nodes["n0"]->stats().full_states_sent + c.nodes["n1"]->stats().full_states_sent >
             0u);
}

// A member's last messages can arrive after it left the peers (a leaving node's final rounds): they
// must not make it a neighbour again, for which the log would be kept and acknowledgements awaited
// (a node that left and came back as a new life once held up every later graceful leave).
BOOST_AUTO_TEST_CASE(a_late_message_from_a_past_peer_does_not_track_it_again) {
  ReplicatorConfig config;
  Replicator a("a#1", config, 1, 0);
  Replicator b("b#1", config, 2, 0);
  a.set_peers(0, {"b#1"});
  b.set_peers(0, {"a#1"});
  a.put(1, "k", "v");
  a.flush(1);
  for (int i = 0; i < 4; ++i) {
    deliver(a, "a#1", b, 2);
    deliver(b, "b#1", a, 2);
  }
  BOOST_TEST_REQUIRE(a.replica().acknowledged());
  // b leaves; a new life of it joins. Then the old life's digest (a round's request) arrives.
  a.set_peers(10, {"b#2"});
  b.on_timer(200);  // a round: it asks its peer a#1 for a digest
  std::vector<ReplicaEffect> late;
  b.take_effects(late);
  std::size_t delivered = 0;
  for (ReplicaEffect& e : late) {
    if (auto* send = std::get_if<ReplicaSend>(&e)) {
      a.on_message(20, "b#1", send->bytes);
      ++delivered;
    }
  }
  BOOST_TEST_REQUIRE(delivered > 0u);
  BOOST_TEST(a.replica().known("b#1") == nullptr);
  a.put(30, "k2", "v");
  a.flush(30);
  std::vector<ReplicaEffect> to_new;
  a.take_effects(to_new);
  // Only the new life is waited for.
  BOOST_TEST((a.replica().unacknowledged() == std::vector<std::string>{"b#2"}));
}

BOOST_AUTO_TEST_CASE(a_peer_that_never_acknowledges_gets_a_window_per_resend_timeout) {
  ReplicatorConfig config;
  config.round_ms = 10;
  config.fanout = 1;
  config.replica.window_entries = 100;
  config.replica.resend_after_ms = 1000;
  Replicator r("a#1", config, 1, 0);
  r.set_peers(0, {"silent#1"});
  std::vector<ReplicaEffect> effects;
  for (std::uint64_t t = 0; t <= 2'500; t += 10) {
    r.put(t, "k" + std::to_string(t), "v");
    r.flush(t);  // one entry per batch
    r.on_timer(t);
    effects.clear();
    r.take_effects(effects);
  }
  // A window of 100 batches at t = 0..990, then nothing until the resend at t = 1000, which sends
  // the first 100 again, and likewise at t = 2000; the log keeps everything meanwhile.
  BOOST_TEST(r.stats().batches_sent == 300u);
  BOOST_TEST(r.replica().log_entries() == 251u);
  BOOST_TEST(r.stats().digests_sent > 200u);  // asked every round, never answered
}

BOOST_AUTO_TEST_CASE(batches_cross_each_link_once_and_are_not_forwarded_to_who_has_them) {
  ReplicatorConfig config;  // the default forward delay lets the origin deliver first
  Cluster c(5, 11, config, 0.0, 0.0);
  for (int s = 0; s < 20; ++s)
    c.step();  // the first digest exchange between new peers is done
  for (int i = 0; i < 1'000; ++i)
    c.nodes["n0"]->put(c.now, "k" + std::to_string(i), "v");
  c.nodes["n0"]->flush(c.now);
  c.drain("n0");
  for (int s = 0; s < 400; ++s)
    c.step();  // 2 s: twenty rounds of digests between every pair
  for (const auto& [name, node] : c.nodes)
    BOOST_TEST(node->state().size() == 1'000u);
  // n0 shipped its batch once to each of the 4 others; they acknowledged, and in the rounds that
  // followed nobody forwarded it, because every digest showed the others had it.
  BOOST_TEST(c.nodes["n0"]->stats().batches_sent == 4u);
  for (const std::string n : {"n1", "n2", "n3", "n4"}) {
    BOOST_TEST(c.nodes[n]->stats().batches_sent == 0u);
    BOOST_TEST(c.nodes[n]->replica().log_entries() == 0u);  // trimmed: every peer has it
  }
}

BOOST_AUTO_TEST_CASE(a_batch_its_origin_cannot_deliver_is_forwarded) {
  Cluster c(3, 12, {}, 0.0, 0.0);
  // The link between n0 and n2 is down both ways; n1 hears both.
  c.net.cut.insert({c.id_of["n0"], c.id_of["n2"]});
  c.net.cut.insert({c.id_of["n2"], c.id_of["n0"]});
  c.nodes["n0"]->put(c.now, "only-via-n1", "v");
  c.nodes["n0"]->flush(c.now);
  c.drain("n0");
  int steps = 0;
  while (!c.nodes["n2"]->state().get("only-via-n1") && steps < 400) {
    c.step();
    ++steps;
  }
  BOOST_TEST(c.nodes["n2"]->state().get("only-via-n1").has_value());
  BOOST_TEST(c.nodes["n1"]->stats().batches_sent >= 1u);
  // Not before the forward delay: n0 was given the time to deliver it itself.
  BOOST_TEST(steps * 5 >= static_cast<int>(ReplicatorConfig{}.replica.forward_delay_ms));
}

BOOST_AUTO_TEST_CASE(changes_are_reported_with_values) {
  Replicator a("a#1", {}, 1, 0);
  Replicator b("b#1", {}, 2, 0);
  a.set_peers(0, {"b#1"});
  b.set_peers(0, {"a#1"});
  a.put(1, "name", "pid-1");
  a.flush(1);
  deliver(a, "a#1", b, 2);
  std::vector<ReplicaChange> changes;
  b.take_changes(changes);
  BOOST_TEST_REQUIRE(changes.size() == 1u);
  BOOST_TEST(changes[0].key == "name");
  BOOST_TEST(!changes[0].before.has_value());
  BOOST_TEST((changes[0].after == std::optional<std::string>("pid-1")));
  changes.clear();
  a.take_changes(changes);  // the writer hears its own change too
  BOOST_TEST(changes.size() == 1u);
  BOOST_TEST(b.state().get("name")->value == "pid-1");
}

BOOST_AUTO_TEST_CASE(a_peer_counts_as_synced_only_once_this_replica_has_all_it_had) {
  Replicator a("a#1", {}, 1, 0);
  Replicator b("b#1", {}, 2, 0);
  a.set_peers(0, {"b#1"});
  b.set_peers(0, {"a#1"});
  // b writes, and its batch to a is lost; a's first look at b's digest finds it behind.
  b.put(1, "held-by-b", "pid");
  b.flush(1);
  std::vector<ReplicaEffect> lost;
  b.take_effects(lost);
  std::vector<ReplicaEffect> drop;
  a.take_effects(drop);  // a's own digest request to b: not needed here
  b.on_timer(1'000);     // a round: b asks a for its digest, sending its own
  BOOST_TEST_REQUIRE(deliver(b, "b#1", a, 1'001) > 0u);
  BOOST_TEST(!a.synced_with("b#1"));
  // An exchange until a has b's batch; the next full digest from b then marks it synced.
  for (std::uint64_t t = 1'002; t < 3'000 && !a.synced_with("b#1"); t += 100) {
    deliver(a, "a#1", b, t);
    deliver(b, "b#1", a, t);
    b.on_timer(t);
  }
  BOOST_TEST(a.state().get("held-by-b").has_value());
  BOOST_TEST(a.synced_with("b#1"));
  // A peer that drops out and comes back must be caught up with again.
  a.set_peers(3'000, {});
  a.set_peers(3'000, {"b#1"});
  BOOST_TEST(!a.synced_with("b#1"));
}

// Once every replica has the same batches, a round's digests are this replica's own byte for
// byte: they are taken without decoding. A write makes them differ, and they are decoded again.
BOOST_AUTO_TEST_CASE(a_quiet_clusters_rounds_take_digests_without_decoding_them) {
  const auto seed = shoal::test::test_seed();
  Cluster c(4, seed, {}, 0.0, 0.0);
  const auto totals = [&] {
    std::pair<std::uint64_t, std::uint64_t> in_and_same{0, 0};
    for (const auto& [name, node] : c.nodes) {
      in_and_same.first += node->stats().digests_in;
      in_and_same.second += node->stats().digests_in_same;
    }
    return in_and_same;
  };
  const auto converge = [&](const std::string& key) {
    for (int i = 0; i < 2'000; ++i) {
      c.step();
      if (c.nodes["n0"]->state().get(key).has_value() && c.all_equal(c.nodes["n0"]->state()))
        return true;
    }
    return false;
  };
  c.nodes["n1"]->put(c.now, "k1", "v");
  c.nodes["n2"]->put(c.now, "k2", "v");
  BOOST_TEST_REQUIRE(converge("k2"), "seed=" << seed);
  BOOST_TEST_REQUIRE(converge("k1"), "seed=" << seed);
  for (int i = 0; i < 40; ++i)  // 200 ms: the last acknowledgements and rounds in flight
    c.step();
  const auto quiet_from = totals();
  for (int i = 0; i < 200; ++i)  // 1 s: 10 rounds
    c.step();
  const auto quiet_to = totals();
  BOOST_TEST(quiet_to.first - quiet_from.first >= 4u * 10 * 2, "seed=" << seed);
  BOOST_TEST(quiet_to.second - quiet_from.second == quiet_to.first - quiet_from.first,
             "seed=" << seed);
  c.nodes["n3"]->put(c.now, "k3", "v");
  BOOST_TEST_REQUIRE(converge("k3"), "seed=" << seed);
  const auto after_write = totals();
  BOOST_TEST(after_write.first - quiet_to.first > after_write.second - quiet_to.second,
             "seed=" << seed);
}

BOOST_AUTO_TEST_CASE(hostile_messages_are_rejected_and_counted) {
  const auto seed = shoal::test::test_seed();
  auto rng = shoal::test::rng_for(seed);
  Replicator r("a#1", {}, 1, 0);
  for (int i = 0; i < 5'000; ++i) {
    std::string junk(rng() % 300, '\0');
    for (char& ch : junk)
      ch = static_cast<char>(rng());
    if (i % 2 == 0 && junk.size() > 3) junk.replace(0, 3, "\x94\x01\x01");
    r.on_message(0, "x", junk);
  }
  BOOST_TEST(r.stats().rejected > 4'000u);
  BOOST_TEST(r.state().size() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
