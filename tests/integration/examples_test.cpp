// The seeds' three programs rebuilt on shoal (examples/): each script starts its own agents on
// 127.0.0.1, runs the program, checks what it must (it exits non-zero otherwise), and stops what it
// started. Here each runs against the shoal under test, on free ports, and its output is checked.

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <string>

#include "tests/support/agent_process.h"
#include "tests/support/host.h"

using namespace std::chrono_literals;

namespace {

shoal::test::CliRun run_example(const std::string& name, std::uint16_t ports) {
  char tmpl[] = "/tmp/shoal-example-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  return shoal::test::run_program(
      {"/bin/bash", std::string(SHOAL_SOURCE_DIR) + "/examples/" + name + "/run.sh"}, {},
      {"SHOAL=" + shoal::test::shoal_binary(),
       "SHOAL_EXAMPLE_PORT=" + std::to_string(shoal::test::free_ports(ports)),
       "SHOAL_EXAMPLE_DIR=" + dir},
      180s);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(examples)

BOOST_AUTO_TEST_CASE(the_global_stack_server_survives_its_nodes_death) {
  const auto r = run_example("stack_server", 4);
  BOOST_TEST(r.code == 0, r.out << r.err);
  BOOST_TEST(r.out.find("resumed from its checkpoint") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("(on node3): [\"1\", \"2\", \"4\"]") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("stack server example: ok") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_router_runs_each_key_on_the_node_it_belongs_to) {
  const auto r = run_example("router", 3);
  BOOST_TEST(r.code == 0, r.out << r.err);
  BOOST_TEST(r.out.find("apples: 39ac5969 computed on node") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("exit 3, stderr: no such bucket") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("router example: ok") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_download_tracker_keeps_publishing_through_a_failover) {
  const auto r = run_example("download_tracker", 3);
  BOOST_TEST(r.code == 0, r.out << r.err);
  BOOST_TEST(r.out.find("download complete") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("download tracker example: ok") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
