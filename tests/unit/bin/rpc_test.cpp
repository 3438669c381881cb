// The RPC's data model (Value: msgpack and JSON), its framing and request decoding, with hostile
// input.

#include <boost/test/unit_test.hpp>
#include <msgpack.hpp>
#include <string>

#include "bin/rpc/frame.h"
#include "bin/rpc/value.h"
#include "tests/support/json.h"
#include "tests/support/seed.h"

using namespace shoal::bin::rpc;

namespace {

Value sample() {
  Value tags = Value::map();
  tags.set("role", "db");
  Value list = Value::array();
  list.push(1);
  list.push(-2);
  list.push(2.5);
  list.push(nullptr);
  list.push(true);
  Value v = Value::map();
  v.set("name", "n1");
  v.set("big", 18'000'000'000'000'000'000ull);
  v.set("neg", -9'000'000'000'000'000'000ll);
  v.set("tags", tags);
  v.set("list", list);
  v.set("bytes", std::string("a\0b\xff", 4));
  return v;
}

template <typename Fill>
std::string packed(Fill fill) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  fill(pk);
  return std::string(buf.data(), buf.size());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rpc_value)

BOOST_AUTO_TEST_CASE(values_survive_msgpack_round_trips) {
  const Value v = sample();
  auto back = decode_value(encode_value(v), ValueLimits{});
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST((*back == v));
  BOOST_TEST(back->find("big")->as_u64() == 18'000'000'000'000'000'000ull);
  BOOST_TEST(back->find("neg")->as_i64() == -9'000'000'000'000'000'000ll);
  BOOST_TEST(back->find("tags")->find("role")->as_string() == "db");
  BOOST_TEST(back->find("missing") == nullptr);
}

BOOST_AUTO_TEST_CASE(typed_reads_fall_back_on_other_types) {
  const Value s("text");
  BOOST_TEST(s.as_u64(7) == 7u);
  BOOST_TEST(Value(-1).as_u64(7) == 7u);
  BOOST_TEST(Value(3u).as_i64() == 3);
  BOOST_TEST(Value(5).as_string().empty());
  BOOST_TEST(Value(5).as_map().empty());
  BOOST_TEST(Value(5).find("x") == nullptr);
}

BOOST_AUTO_TEST_CASE(hostile_msgpack_is_refused_with_a_reason) {
  ValueLimits limits;
  auto expect_error = [&](const std::string& bytes, const std::string& part) {
    auto v = decode_value(bytes, limits);
    BOOST_TEST_REQUIRE(!v.has_value());
    BOOST_TEST(v.error().find(part) != std::string::npos, v.error());
  };
  expect_error("", "empty");
  expect_error(encode_value(Value(1)) + "x", "trailing");
  expect_error(encode_value(sample()).substr(0, 20), "truncated");
  // A map keyed by an integer.
  expect_error(packed([](auto& pk) {
                 pk.pack_map(1);
                 pk.pack(1);
                 pk.pack(2);
               }),
               "not a string");
  // An array that claims a billion elements in a few bytes.
  expect_error(packed([](auto& pk) { pk.pack_array(1'000'000'000); }), "not msgpack");
  // Nested deeper than the limit.
  expect_error(packed([](auto& pk) {
                 for (int i = 0; i < 40; ++i)
                   pk.pack_array(1);
                 pk.pack(0);
               }),
               "not msgpack");
  limits.max_bytes = 10;
  expect_error(encode_value(sample()), "too large");
}

BOOST_AUTO_TEST_CASE(random_bytes_never_crash_the_decoder) {
  const auto seed = shoal::test::test_seed();
  auto rng = shoal::test::rng_for(seed);
  const std::string good = encode_value(sample());
  std::size_t accepted = 0;
  for (int i = 0; i < 20'000; ++i) {
    std::string bytes = good;
    // Flip a few bytes of a valid encoding, or take random bytes.
    if (i % 2 == 0) {
      for (int k = 0; k < 3; ++k)
        bytes[rng() % bytes.size()] = static_cast<char>(rng());
    } else {
      bytes.resize(1 + rng() % 64);
      for (char& c : bytes)
        c = static_cast<char>(rng());
    }
    accepted += decode_value(bytes, ValueLimits{}).has_value() ? 1 : 0;
  }
  BOOST_TEST_MESSAGE("accepted " << accepted << " of 20000 mangled inputs");
  BOOST_TEST(accepted < 20'000u);
}

BOOST_AUTO_TEST_CASE(json_output_parses_back_to_the_same_value) {
  Value v = sample();
  v.set("bytes", "plain");  // JSON strings are text: binary is checked below
  for (bool pretty : {false, true}) {
    auto back = shoal::test::parse_json(to_json(v, pretty));
    BOOST_REQUIRE(back.has_value());
    BOOST_TEST((*back == v), to_json(v, pretty));
  }
  BOOST_TEST(to_json(Value::array()) == "[]");
  BOOST_TEST(to_json(Value::map()) == "{}");
}

BOOST_AUTO_TEST_CASE(json_escapes_quotes_controls_and_invalid_utf8) {
  BOOST_TEST(to_json(Value("a\"b\\c\nd\x01")) == R"("a\"b\\c\nd\u0001")");
  BOOST_TEST(to_json(Value("caf\xc3\xa9")) == "\"caf\xc3\xa9\"");  // valid UTF-8 stays
  BOOST_TEST(to_json(Value("bad\xff\xc3")) == R"("bad\u00ff\u00c3")");
  BOOST_TEST(to_json(Value(std::string("nul\0", 4))) == R"("nul\u0000")");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(rpc_frame)

BOOST_AUTO_TEST_CASE(frames_are_split_and_joined_at_any_byte) {
  const std::string a = frame("first");
  const std::string b = frame(std::string(70'000, 'x'));
  const std::string c = frame("");
  const std::string stream = a + b + c;
  FrameReader reader(kMaxRequestBytes);
  std::vector<std::string> got;
  for (std::size_t i = 0; i < stream.size(); i += 997) {
    reader.feed(std::string_view(stream).substr(i, 997));
    while (auto f = reader.take())
      got.push_back(*f);
  }
  BOOST_REQUIRE_EQUAL(got.size(), 3u);
  BOOST_TEST(got[0] == "first");
  BOOST_TEST(got[1].size() == 70'000u);
  BOOST_TEST(got[2].empty());
  BOOST_TEST(reader.buffered() == 0u);
  BOOST_TEST(!reader.failed());
}

BOOST_AUTO_TEST_CASE(an_oversized_frame_fails_the_reader_for_good) {
  FrameReader reader(100);
  reader.feed(frame(std::string(101, 'x')));
  BOOST_TEST(!reader.take().has_value());
  BOOST_TEST(reader.failed());
  BOOST_TEST(reader.announced() == 101u);
  reader.feed(frame("ok"));
  BOOST_TEST(!reader.take().has_value());
  BOOST_TEST(reader.buffered() == 0u);  // nothing more is kept
}

BOOST_AUTO_TEST_CASE(requests_decode_and_bad_ones_say_why) {
  Value args = Value::map();
  args.set("name", "web");
  auto req = decode_request(encode_request("whereis", args));
  BOOST_REQUIRE(req.has_value());
  BOOST_TEST(req->cmd == "whereis");
  BOOST_TEST(req->args.find("name")->as_string() == "web");

  auto error_of = [](const Value& v) {
    auto r = decode_request(encode_value(v));
    return r ? std::string("(accepted)") : r.error();
  };
  Value no_version = Value::map();
  no_version.set("cmd", "info");
  BOOST_TEST(error_of(no_version).find("protocol version") != std::string::npos);
  Value no_cmd = Value::map();
  no_cmd.set("v", kVersion);
  BOOST_TEST(error_of(no_cmd).find("cmd") != std::string::npos);
  Value bad_args = no_cmd;
  bad_args.set("cmd", "info");
  bad_args.set("args", 3);
  BOOST_TEST(error_of(bad_args).find("args") != std::string::npos);
  BOOST_TEST(error_of(Value(5)).find("not a map") != std::string::npos);
  BOOST_TEST(!decode_request("\xc1").has_value());
}

BOOST_AUTO_TEST_CASE(replies_carry_results_events_and_errors) {
  auto ok = decode_value(encode_ok(Value("r")), ValueLimits{});
  BOOST_REQUIRE(ok.has_value());
  BOOST_TEST(ok->find("ok")->as_bool());
  BOOST_TEST(ok->find("result")->as_string() == "r");
  auto err = decode_value(encode_error("not_found", "no such name"), ValueLimits{});
  BOOST_REQUIRE(err.has_value());
  BOOST_TEST(!err->find("ok")->as_bool(true));
  BOOST_TEST(err->find("code")->as_string() == "not_found");
  BOOST_TEST(err->find("error")->as_string() == "no such name");
  auto ev = decode_value(encode_event(Value(1)), ValueLimits{});
  BOOST_REQUIRE(ev.has_value());
  BOOST_TEST(ev->find("event")->as_u64() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
