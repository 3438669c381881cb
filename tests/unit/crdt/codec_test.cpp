#include "crdt/codec.h"

#include <boost/test/unit_test.hpp>
#include <msgpack.hpp>

#include "tests/support/seed.h"
#include "tests/unit/crdt/random_ops.h"

using shoal::crdt::AwLwwMap;
using shoal::crdt::decode;
using shoal::crdt::DecodeLimits;
using shoal::crdt::encode;
using shoal::crdt::Errc;
using shoal::crdt::from_ms;
using shoal::test::random_op;
using shoal::test::Writer;

namespace {

// A few random maps of every kind: states, single deltas and delta intervals.
std::vector<AwLwwMap> random_maps(std::mt19937_64& rng) {
  std::vector<Writer> writers{{"node-a:7946.1", {}, 1000, {}}, {"node-b:7946.2", {}, 1000, {}}};
  const int ops = 1 + static_cast<int>(rng() % 80);
  for (int i = 0; i < ops; ++i)
    random_op(rng, writers[rng() % 2], writers, 1 + static_cast<int>(rng() % 20));
  std::vector<AwLwwMap> out{writers[0].state, writers[1].state};
  if (!writers[0].deltas.empty())
    out.push_back(writers[0].deltas[rng() % writers[0].deltas.size()]);
  AwLwwMap interval(AwLwwMap::Kind::delta);
  for (const AwLwwMap& d : writers[1].deltas)
    interval.join(d);
  out.push_back(interval);
  AwLwwMap complete(AwLwwMap::Kind::delta);
  complete.join(writers[0].state);
  out.push_back(complete);
  return out;
}

// The one-entry delta the benchmark measures: a 16-byte key and a pid-like msgpack value.
std::string pid_value() {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  pk.pack_array(3);
  pk.pack(std::string("node-03:7946"));
  pk.pack(std::uint64_t{1732312345123});
  pk.pack(std::uint64_t{42});
  return std::string(buffer.data(), buffer.size());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(codec)

BOOST_AUTO_TEST_CASE(random_maps_of_every_kind_round_trip) {
  const auto seed = shoal::test::test_seed();
  for (std::uint64_t round = 0; round < 300; ++round) {
    auto rng = shoal::test::rng_for(seed + round);
    BOOST_TEST_CONTEXT("seed=" << seed << " round=" << round) {
      for (const AwLwwMap& map : random_maps(rng)) {
        const std::string bytes = encode(map);
        auto back = decode(bytes);
        BOOST_TEST_REQUIRE(back.has_value(), (back ? "" : back.error().to_string()));
        BOOST_TEST((*back == map));
        BOOST_TEST(encode(*back) == bytes);  // the encoding is canonical
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(encoding_is_plain_msgpack) {
  AwLwwMap map;
  map.put("n1", from_ms(5), "key", "value");
  const std::string bytes = encode(map);
  msgpack::object_handle handle = msgpack::unpack(bytes.data(), bytes.size());
  const msgpack::object& root = handle.get();
  BOOST_TEST_REQUIRE((root.type == msgpack::type::ARRAY));
  BOOST_TEST(root.via.array.size == 5u);
  BOOST_TEST(root.via.array.ptr[0].as<int>() == 1);  // format
  BOOST_TEST(root.via.array.ptr[2].via.array.ptr[0].as<std::string>() == "n1");
}

BOOST_AUTO_TEST_CASE(one_entry_put_delta_is_small) {
  AwLwwMap map;
  for (int i = 0; i < 100000; ++i)
    map.put("node-03:7946", from_ms(1), "warmup", "x");  // counter > 2^16
  const AwLwwMap delta =
      map.put("node-03:7946", from_ms(1732312345123), "0123456789abcdef", pid_value());
  const std::string bytes = encode(delta);
  BOOST_TEST_MESSAGE("one-entry delta: " << bytes.size() << " bytes");
  BOOST_TEST(bytes.size() <= 96u);
  auto back = decode(bytes);
  BOOST_TEST_REQUIRE(back.has_value());
  BOOST_TEST((*back == delta));
}

BOOST_AUTO_TEST_CASE(mutated_truncated_and_random_buffers_never_crash) {
  const auto seed = shoal::test::test_seed();
  auto rng = shoal::test::rng_for(seed);
  std::size_t decoded = 0;
  std::size_t rejected = 0;
  auto attempt = [&](std::string_view bytes) {
    auto result = decode(bytes);
    if (result) {
      ++decoded;
      // Whatever decodes is a valid map: it re-encodes and decodes to the same thing.
      auto again = decode(encode(*result));
      BOOST_TEST_REQUIRE(again.has_value());
      BOOST_TEST((*again == *result));
    } else {
      ++rejected;
      BOOST_TEST(!result.error().to_string().empty());
    }
  };
  for (int round = 0; round < 400; ++round) {
    BOOST_TEST_CONTEXT("seed=" << seed << " round=" << round) {
      const std::vector<AwLwwMap> maps = random_maps(rng);
      const std::string good = encode(maps[rng() % maps.size()]);
      for (std::size_t cut = 0; cut < good.size(); cut += 1 + good.size() / 16) {
        attempt(std::string_view(good).substr(0, cut));
      }
      for (int m = 0; m < 20; ++m) {
        std::string bad = good;
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int f = 0; f < flips; ++f) {
          const std::size_t at = rng() % bad.size();
          switch (rng() % 3) {
            case 0:
              bad[at] = static_cast<char>(rng());
              break;
            case 1:
              bad[at] = static_cast<char>(bad[at] ^ (1 << (rng() % 8)));
              break;
            default:
              bad.insert(at, 1, static_cast<char>(0xdd));
              break;  // a huge array header
          }
        }
        attempt(bad);
      }
      attempt(shoal::test::random_bytes(rng, 200));
    }
  }
  BOOST_TEST_MESSAGE("decoded " << decoded << ", rejected " << rejected);
  BOOST_TEST(rejected > 0u);
}

BOOST_AUTO_TEST_CASE(errors_name_the_field) {
  AwLwwMap map;
  map.put("r", from_ms(1), "a", "1");
  map.put("r", from_ms(1), "b", "2");
  std::string bytes = encode(map);

  auto truncated = decode(std::string_view(bytes).substr(0, bytes.size() - 1));
  BOOST_TEST_REQUIRE(!truncated.has_value());
  BOOST_TEST((truncated.error().code == Errc::truncated));
  BOOST_TEST(truncated.error().field == "entries[1].value");

  DecodeLimits tight;
  tight.max_entries = 1;
  auto too_many = decode(bytes, tight);
  BOOST_TEST_REQUIRE(!too_many.has_value());
  BOOST_TEST((too_many.error().code == Errc::too_large));
  BOOST_TEST(too_many.error().field == "entries");

  std::string newer = bytes;
  newer[1] = 2;  // format version 2
  auto version = decode(newer);
  BOOST_TEST_REQUIRE(!version.has_value());
  BOOST_TEST((version.error().code == Errc::bad_version));

  auto trailing = decode(bytes + '\0');
  BOOST_TEST_REQUIRE(!trailing.has_value());
  BOOST_TEST((trailing.error().code == Errc::invalid));
}

BOOST_AUTO_TEST_CASE(keys_out_of_order_are_rejected) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  pk.pack_array(5);
  pk.pack(1);
  pk.pack(0);
  pk.pack_array(1);
  pk.pack(std::string("r"));
  pk.pack_array(0);
  pk.pack_array(2);
  for (const char* key : {"b", "a"}) {
    pk.pack_array(5);
    pk.pack_bin(1);
    pk.pack_bin_body(key, 1);
    pk.pack(key[0] == 'b' ? 1 : 2);
    pk.pack(0);
    pk.pack(7);
    pk.pack_bin(0);
  }
  auto result = decode(std::string_view(buffer.data(), buffer.size()));
  BOOST_TEST_REQUIRE(!result.has_value());
  BOOST_TEST(result.error().field == "entries[1].key");
}

BOOST_AUTO_TEST_SUITE_END()
