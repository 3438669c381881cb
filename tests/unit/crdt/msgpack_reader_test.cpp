#include "crdt/msgpack_reader.h"

#include <boost/test/unit_test.hpp>
#include <msgpack.hpp>
#include <string>

using shoal::crdt::Errc;
using shoal::crdt::MsgReader;

namespace {

template <typename... T>
std::string packed(const T&... values) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  (pk.pack(values), ...);
  return std::string(buffer.data(), buffer.size());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(msgpack_reader)

BOOST_AUTO_TEST_CASE(reads_integers_in_every_width) {
  for (std::uint64_t v : {0ULL, 1ULL, 127ULL, 128ULL, 255ULL, 256ULL, 65535ULL, 65536ULL,
                          4294967295ULL, 4294967296ULL, 18446744073709551615ULL}) {
    const std::string bytes = packed(v);
    MsgReader r(bytes);
    BOOST_TEST(r.uint("v") == v);
    BOOST_TEST(r.ok());
    BOOST_TEST(r.remaining() == 0u);
  }
  // Positive values in signed formats are accepted; negative ones are not.
  const std::string int8_five = "\xd0\x05";
  MsgReader pos(int8_five);
  BOOST_TEST(pos.uint("v") == 5u);
  const std::string minus_three = packed(-3);
  MsgReader neg(minus_three);
  neg.uint("v");
  BOOST_TEST(!neg.ok());
  BOOST_TEST((neg.error().code == Errc::invalid));
}

BOOST_AUTO_TEST_CASE(integer_above_the_callers_bound_is_too_large) {
  const std::string bytes = packed(1000);
  MsgReader r(bytes);
  BOOST_TEST(r.uint("count", 999) == 0u);
  BOOST_TEST((r.error().code == Errc::too_large));
  BOOST_TEST(r.error().to_string() == "count: too large (1000 > 999)");
}

BOOST_AUTO_TEST_CASE(reads_bin_and_str_as_bytes) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  pk.pack_bin(3);
  pk.pack_bin_body("a\0b", 3);
  pk.pack(std::string(300, 'x'));
  MsgReader r(std::string_view(buffer.data(), buffer.size()));
  BOOST_TEST(r.bytes("bin", 10) == std::string_view("a\0b", 3));
  BOOST_TEST(r.bytes("str", 300) == std::string(300, 'x'));
  BOOST_TEST(r.ok());
}

BOOST_AUTO_TEST_CASE(array_count_beyond_the_remaining_bytes_is_truncated) {
  std::string bytes = "\xdd\x00\x01\x00\x00";  // array32 of 65536 elements, none present
  MsgReader r(bytes);
  BOOST_TEST(r.array("items", 100000) == 0u);
  BOOST_TEST((r.error().code == Errc::truncated));
}

BOOST_AUTO_TEST_CASE(first_failure_is_sticky_and_names_the_element) {
  const std::string bytes = packed(std::string("text"), 5);
  MsgReader r(bytes);
  r.at("entries", 3);
  BOOST_TEST(r.uint("counter") == 0u);
  BOOST_TEST((r.error().code == Errc::bad_type));
  BOOST_TEST(r.error().field == "entries[3].counter");
  BOOST_TEST(r.uint("next") == 0u);  // later reads return nothing and keep the first error
  BOOST_TEST(r.error().field == "entries[3].counter");
}

BOOST_AUTO_TEST_CASE(every_truncation_of_a_value_fails_cleanly) {
  const std::string full = packed(std::uint64_t{1} << 40, std::string(40, 'k'));
  for (std::size_t cut = 0; cut < full.size(); ++cut) {
    MsgReader r(std::string_view(full).substr(0, cut));
    r.uint("a");
    r.bytes("b", 100);
    BOOST_TEST(!r.ok());
    BOOST_TEST((r.error().code == Errc::truncated));
  }
}

BOOST_AUTO_TEST_SUITE_END()
