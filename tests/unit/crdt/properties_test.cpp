// Randomized property tests of the replicated map: the semilattice laws of join, deltas against
// states, convergence under loss, duplication and reordering once anti-entropy has run, and
// compaction of the causal context. Every case prints its seed; SHOAL_SEED=N replays it.

#include <algorithm>
#include <boost/test/unit_test.hpp>

#include "crdt/codec.h"
#include "crdt/replica.h"
#include "tests/support/seed.h"
#include "tests/unit/crdt/random_ops.h"

using shoal::crdt::AwLwwMap;
using shoal::crdt::Replica;
using shoal::crdt::ReplicaConfig;
using shoal::crdt::VersionView;
using shoal::test::random_op;
using shoal::test::Writer;

namespace {

// Three writers that interleave random operations and sometimes join each other's deltas.
std::vector<Writer> random_writers(std::mt19937_64& rng, int ops, int keys) {
  std::vector<Writer> writers{
      {"alpha", {}, 1000, {}}, {"beta", {}, 1000, {}}, {"gamma", {}, 1000, {}}};
  for (int i = 0; i < ops; ++i) {
    Writer& w = writers[rng() % writers.size()];
    random_op(rng, w, writers, keys);
  }
  return writers;
}

AwLwwMap joined(std::initializer_list<const AwLwwMap*> maps) {
  AwLwwMap out;
  for (const AwLwwMap* m : maps)
    out.join(*m);
  return out;
}

// Invariant 2 as readers see it: the winner precedes every sibling.
void check_winners(const AwLwwMap& map) {
  map.scan("", [&](std::string_view key, const VersionView& winner) {
    map.versions(key, [&](const VersionView& v) {
      const bool is_winner = v.replica == winner.replica && v.counter == winner.counter;
      if (!is_winner) {
        const bool precedes = winner.ts != v.ts ? winner.ts > v.ts : winner.replica > v.replica;
        BOOST_TEST(precedes, "winner of " << key << " does not precede a sibling");
      }
    });
    return true;
  });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(crdt_properties)

BOOST_AUTO_TEST_CASE(join_is_commutative_associative_and_idempotent) {
  const auto seed = shoal::test::test_seed();
  for (std::uint64_t round = 0; round < 300; ++round) {
    auto rng = shoal::test::rng_for(seed + round);
    BOOST_TEST_CONTEXT("seed=" << seed << " round=" << round) {
      auto w =
          random_writers(rng, 1 + static_cast<int>(rng() % 60), 1 + static_cast<int>(rng() % 12));
      const AwLwwMap& a = w[0].state;
      const AwLwwMap& b = w[1].state;
      const AwLwwMap& c = w[2].state;
      BOOST_TEST((joined({&a, &b}) == joined({&b, &a})));
      const AwLwwMap ab = joined({&a, &b});
      const AwLwwMap bc = joined({&b, &c});
      BOOST_TEST((joined({&ab, &c}) == joined({&a, &bc})));
      AwLwwMap twice = a;
      BOOST_TEST(!twice.join(a));
      BOOST_TEST((twice == a));
      AwLwwMap abab = ab;
      abab.join(a);
      abab.join(b);
      BOOST_TEST((abab == ab));
      check_winners(joined({&a, &b, &c}));
    }
  }
}

BOOST_AUTO_TEST_CASE(joining_all_deltas_equals_joining_all_states) {
  const auto seed = shoal::test::test_seed();
  for (std::uint64_t round = 0; round < 300; ++round) {
    auto rng = shoal::test::rng_for(seed + round);
    BOOST_TEST_CONTEXT("seed=" << seed << " round=" << round) {
      auto w =
          random_writers(rng, 1 + static_cast<int>(rng() % 80), 1 + static_cast<int>(rng() % 12));
      const AwLwwMap states = joined({&w[0].state, &w[1].state, &w[2].state});
      std::vector<const AwLwwMap*> deltas;
      for (const Writer& writer : w) {
        for (const AwLwwMap& d : writer.deltas)
          deltas.push_back(&d);
      }
      // In any order, with duplicates, straight into a state...
      std::vector<const AwLwwMap*> shuffled = deltas;
      for (std::size_t i = 0; i < deltas.size() / 3; ++i)
        shuffled.push_back(deltas[rng() % deltas.size()]);
      std::shuffle(shuffled.begin(), shuffled.end(), rng);
      AwLwwMap direct;
      for (const AwLwwMap* d : shuffled)
        direct.join(*d);
      BOOST_TEST((direct == states));
      // ...or first into delta intervals (as anti-entropy batches them), then into a state.
      AwLwwMap via_intervals;
      for (std::size_t start = 0; start < shuffled.size();) {
        const std::size_t len = 1 + rng() % 7;
        AwLwwMap interval(AwLwwMap::Kind::delta);
        for (std::size_t i = start; i < std::min(shuffled.size(), start + len); ++i)
          interval.join(*shuffled[i]);
        via_intervals.join(interval);
        start += len;
      }
      BOOST_TEST((via_intervals == states));
    }
  }
}

BOOST_AUTO_TEST_CASE(concurrent_put_beats_a_remove_that_did_not_see_it) {
  const auto seed = shoal::test::test_seed();
  for (std::uint64_t round = 0; round < 200; ++round) {
    auto rng = shoal::test::rng_for(seed + round);
    BOOST_TEST_CONTEXT("seed=" << seed << " round=" << round) {
      auto w = random_writers(rng, static_cast<int>(rng() % 40), 4);
      AwLwwMap& a = w[0].state;
      AwLwwMap& b = w[1].state;
      a.join(b);
      b.join(a);
      // Both know every key; now a puts while b removes the same key, concurrently.
      const AwLwwMap put =
          a.put("alpha", shoal::crdt::from_ms(rng() % 5000), "contested", "a-wins");
      b.join(AwLwwMap(a));  // b may even have seen an older version...
      const AwLwwMap again =
          a.put("alpha", shoal::crdt::from_ms(rng() % 5000), "contested", "still-a");
      const AwLwwMap removal = b.remove("contested");  // ...but not `again`
      a.join(removal);
      b.join(again);
      BOOST_TEST((a == b));
      BOOST_TEST(a.get("contested").value().value == "still-a");
      (void)put;
    }
  }
}

BOOST_AUTO_TEST_CASE(lww_winner_is_the_same_on_every_replica_in_every_order) {
  const auto seed = shoal::test::test_seed();
  for (std::uint64_t round = 0; round < 200; ++round) {
    auto rng = shoal::test::rng_for(seed + round);
    BOOST_TEST_CONTEXT("seed=" << seed << " round=" << round) {
      // Five replicas put the same key concurrently, timestamps often tied.
      std::vector<AwLwwMap> replicas(5);
      std::vector<AwLwwMap> deltas;
      for (int i = 0; i < 5; ++i) {
        deltas.push_back(replicas[i].put("r" + std::to_string(i), shoal::crdt::from_ms(rng() % 3),
                                         "name", "pid-of-r" + std::to_string(i)));
      }
      std::string winner;
      for (auto& replica : replicas) {
        std::vector<std::size_t> order{0, 1, 2, 3, 4};
        std::shuffle(order.begin(), order.end(), rng);
        for (std::size_t i : order)
          replica.join(deltas[i]);
        const std::string got(replica.get("name").value().value);
        if (winner.empty()) winner = got;
        BOOST_TEST(got == winner);
        BOOST_TEST(replica.versions("name") == 5u);
        check_winners(replica);
      }
    }
  }
}

// A lossy, duplicating, reordering network between Replicas that carries encoded maps.
struct Message {
  enum class Kind { batches, state, digest } kind;
  std::string from;
  std::string to;
  std::vector<std::pair<std::string, shoal::crdt::Seq>> tags;  // origin and number per map
  std::vector<std::string> maps;                               // encoded
  shoal::crdt::Digest digest;  // digest: the sender's; state: what it covers
};

// No entry lost, ever: replicas exchange batches, digests and full states over a network that
// loses a quarter of the messages, duplicates and reorders them, with small logs (so lagging
// replicas need full states) and small batches and messages (so syncs are partial). Once anti-
// entropy runs on a reliable network, every replica holds the join of everything anyone wrote.
BOOST_AUTO_TEST_CASE(replicas_converge_under_loss_duplication_and_reordering) {
  const auto seed = shoal::test::test_seed();
  for (std::uint64_t round = 0; round < 40; ++round) {
    auto rng = shoal::test::rng_for(seed + round);
    BOOST_TEST_CONTEXT("seed=" << seed << " round=" << round) {
      ReplicaConfig config;
      config.max_log_entries = 8 + rng() % 64;  // small: some neighbours need the full state
      config.max_batch_entries = 1 + rng() % 8;
      config.max_message_entries = 1 + rng() % 16;
      config.window_entries = 1 + rng() % 32;
      config.resend_after_ms = 20;
      config.forward_delay_ms = rng() % 20;
      const int n = 3 + static_cast<int>(rng() % 3);
      std::vector<Replica> replicas;
      for (int i = 0; i < n; ++i)
        replicas.emplace_back("node-" + std::to_string(i), config);
      for (int i = 0; i < n; ++i) {
        for (int j = 0; j < n; ++j) {
          if (i != j) replicas[i].track(replicas[j].id());
        }
      }
      auto index_of = [&](const std::string& id) {
        for (int i = 0; i < n; ++i) {
          if (replicas[i].id() == id) return i;
        }
        return -1;
      };
      std::vector<Message> pool;
      // Every replica's state joined after each of its mutations: the join of everything anyone
      // ever wrote, which every replica must end up holding.
      AwLwwMap reference;
      std::uint64_t now = 1000;
      bool reliable = false;
      auto send = [&](Message m) {
        if (!reliable && rng() % 100 < 25) return;             // lost
        if (!reliable && rng() % 100 < 10) pool.push_back(m);  // duplicated
        pool.push_back(std::move(m));
      };
      auto push = [&](int i, int j) {
        auto out = replicas[i].outgoing(replicas[j].id(), now);
        if (!out) return false;
        Message m{Message::Kind::batches, replicas[i].id(), replicas[j].id(), {}, {}, {}};
        if (out->state) {
          m.kind = Message::Kind::state;
          m.maps.push_back(shoal::crdt::encode(*out->state));
          m.digest = out->covers;
        } else {
          for (const auto& b : out->batches) {
            m.tags.emplace_back(b.origin, b.seq);
            m.maps.push_back(*b.bytes);
          }
        }
        send(std::move(m));
        return true;
      };
      auto send_digest = [&](int i, int j) {
        send(Message{Message::Kind::digest,
                     replicas[i].id(),
                     replicas[j].id(),
                     {},
                     {},
                     replicas[i].digest()});
      };
      auto deliver = [&](const Message& m) {
        const int to = index_of(m.to);
        const int from = index_of(m.from);
        Replica& r = replicas[to];
        if (m.kind == Message::Kind::digest) {
          r.on_digest(m.from, m.digest, now);
          push(to, from);
          return;
        }
        for (std::size_t k = 0; k < m.maps.size(); ++k) {
          auto decoded = shoal::crdt::decode(m.maps[k]);
          BOOST_TEST_REQUIRE(decoded.has_value());
          if (m.kind == Message::Kind::state) {
            r.join_state(*decoded, m.digest, now);
          } else {
            r.join_batch(m.tags[k].first, m.tags[k].second, *decoded,
                         std::make_shared<const std::string>(m.maps[k]), now);
          }
        }
        send_digest(to, from);  // the acknowledgement
      };
      auto deliver_one = [&] {
        const std::size_t pick = rng() % pool.size();
        Message m = std::move(pool[pick]);
        pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(pick));
        deliver(m);
      };

      const int steps = 300 + static_cast<int>(rng() % 300);
      for (int step = 0; step < steps; ++step) {
        now += rng() % 3;
        const int roll = static_cast<int>(rng() % 100);
        const int i = static_cast<int>(rng() % n);
        const int j = static_cast<int>(rng() % n);
        if (roll < 35) {
          const std::string key = "k" + std::to_string(rng() % 40);
          replicas[i].put(now, key, replicas[i].id());
          reference.join(replicas[i].state());
          if (rng() % 2 == 0) {
            replicas[i].flush();  // and an eager push to one random peer
            if (j != i) push(i, j);
          }
        } else if (roll < 45) {
          // Removals stay in the open batch until the next flush or a full batch seals it.
          replicas[i].remove("k" + std::to_string(rng() % 40));
          reference.join(replicas[i].state());
        } else if (roll < 65) {
          if (j != i) send_digest(i, j);  // a round: j answers with what i lacks
        } else if (!pool.empty()) {
          deliver_one();
        }
      }
      // Anti-entropy on a reliable network until nobody has anything to send.
      reliable = true;
      for (auto& r : replicas)
        r.flush();
      for (int pass = 0; pass < 2000; ++pass) {
        now += 25;  // past the resend and forward delays
        for (int i = 0; i < n; ++i) {
          for (int j = 0; j < n; ++j) {
            if (i != j) send_digest(i, j);
          }
        }
        while (!pool.empty())
          deliver_one();
        bool equal = true;
        for (int i = 0; i < n; ++i)
          equal = equal && replicas[i].state() == reference;
        if (equal) break;
      }
      for (int i = 0; i < n; ++i)
        BOOST_TEST((replicas[i].state() == reference));
      for (int i = 0; i < n; ++i) {
        BOOST_TEST(replicas[i].log_entries() <=
                   std::max<std::size_t>(config.max_log_entries, config.max_batch_entries));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(context_compacts_to_one_entry_per_replica_after_full_exchange) {
  const auto seed = shoal::test::test_seed();
  auto rng = shoal::test::rng_for(seed);
  std::vector<Writer> writers{{"a", {}, 1000, {}}, {"b", {}, 1000, {}}, {"c", {}, 1000, {}}};
  std::vector<std::size_t> delivered(3 * 3, 0);  // delivered[from * 3 + to]
  std::vector<Writer> none;
  for (int step = 0; step < 6000; ++step) {
    const std::size_t w = rng() % 3;
    random_op(rng, writers[w], none, 50);
    // Deliver a random prefix of pending deltas from a random sender to a random receiver, so
    // receivers see every sender's deltas in order but at different times.
    const std::size_t from = rng() % 3;
    const std::size_t to = rng() % 3;
    if (from == to) continue;
    std::size_t& next = delivered[from * 3 + to];
    const std::size_t upto = next + rng() % (writers[from].deltas.size() - next + 1);
    for (; next < upto; ++next)
      writers[to].state.join(writers[from].deltas[next]);
  }
  for (std::size_t from = 0; from < 3; ++from) {
    for (std::size_t to = 0; to < 3; ++to) {
      if (from == to) continue;
      std::size_t& next = delivered[from * 3 + to];
      for (; next < writers[from].deltas.size(); ++next)
        writers[to].state.join(writers[from].deltas[next]);
    }
  }
  for (const Writer& w : writers) {
    BOOST_TEST_CONTEXT("seed=" << seed << " replica=" << w.id) {
      BOOST_TEST(w.state.context().nonempty_replicas() == 3u);
      BOOST_TEST(w.state.context().cloud_size() == 0u);
      BOOST_TEST((w.state == writers[0].state));
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
