// The messaging wire (messaging/wire.h): every frame round-trips; hostile bytes are an error,
// never a crash.

#include "messaging/wire.h"

#include <boost/test/unit_test.hpp>

#include "tests/support/seed.h"

using namespace shoal::messaging;

namespace {

std::vector<Frame> every_frame() {
  return {Hello{"n1", 17, "n2", 18},
          Welcome{true},
          Send{3, 4, "payload"},
          Call{5, 6, 7, std::string_view("\0\1\2", 3)},
          Reply{6, "answer"},
          Failure{6, FailureCode::overloaded},
          Multicast{{1, 2, 3}, 9, "news"},
          Task{11, {"sh", "-c", "echo hi"}, 30'000},
          TaskOut{11, 2, "err"},
          TaskEnd{11, 137, "killed"}};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(messaging_wire)

BOOST_AUTO_TEST_CASE(every_frame_round_trips_in_one_batch) {
  std::string batch;
  for (const Frame& f : every_frame())
    append_frame(batch, f);
  FrameReader reader(batch);
  std::vector<Frame> back;
  while (!reader.done()) {
    auto f = reader.next();
    BOOST_TEST_REQUIRE(f.has_value(), (f ? "" : f.error().to_string()));
    back.push_back(*f);
  }
  BOOST_TEST_REQUIRE(back.size() == every_frame().size());
  BOOST_TEST(std::get<Hello>(back[0]).peer_creation == 18u);
  BOOST_TEST(std::get<Welcome>(back[1]).accepted);
  BOOST_TEST(std::get<Send>(back[2]).payload == "payload");
  BOOST_TEST(std::get<Call>(back[3]).payload == std::string_view("\0\1\2", 3));
  BOOST_TEST(std::get<Reply>(back[4]).call_id == 6u);
  BOOST_TEST((std::get<Failure>(back[5]).code == FailureCode::overloaded));
  BOOST_TEST((std::get<Multicast>(back[6]).to == std::vector<std::uint64_t>{1, 2, 3}));
  BOOST_TEST(std::get<Task>(back[7]).argv.at(2) == "echo hi");
  BOOST_TEST(std::get<TaskOut>(back[8]).stream == 2u);
  BOOST_TEST(std::get<TaskEnd>(back[9]).status == 137u);
  // The hot paths write the same bytes as append_frame.
  std::string a, b;
  append_send(a, 3, 4, "payload");
  append_frame(b, Send{3, 4, "payload"});
  BOOST_TEST(a == b);
}

BOOST_AUTO_TEST_CASE(hostile_batches_are_errors) {
  std::string good;
  append_frame(good, Send{1, 2, "x"});
  // Cut short, a length past the limit, an unknown type, trailing bytes inside a frame.
  BOOST_TEST(!FrameReader(std::string_view(good).substr(0, good.size() - 1)).next().has_value());
  BOOST_TEST(!FrameReader(std::string_view("\x7f\xff\xff\xff", 4)).next().has_value());
  std::string unknown("\0\0\0\x02\x91\x63", 6);  // [99]
  BOOST_TEST(!FrameReader(unknown).next().has_value());
  std::string trailing = good;
  trailing[3] = static_cast<char>(trailing[3] + 1);
  trailing += '\xc0';
  BOOST_TEST(!FrameReader(trailing).next().has_value());
  // A hello with an empty name, a task without a command.
  std::string bad;
  append_frame(bad, Hello{"", 1, "n2", 2});
  BOOST_TEST(!FrameReader(bad).next().has_value());
  bad.clear();
  append_frame(bad, Task{1, {}, 0});
  BOOST_TEST(!FrameReader(bad).next().has_value());
  // Random bytes: an error or a frame, never a crash.
  auto rng = shoal::test::rng_for(shoal::test::test_seed());
  for (int k = 0; k < 20'000; ++k) {
    std::string bytes = good;
    for (int flips = 0; flips < 3; ++flips)
      bytes[rng() % bytes.size()] = static_cast<char>(rng());
    FrameReader r(bytes);
    while (!r.done())
      (void)r.next();
  }
}

BOOST_AUTO_TEST_SUITE_END()
