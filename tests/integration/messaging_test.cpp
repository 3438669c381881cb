// Messaging between real agents on 127.0.0.1, through the CLI: send, call, publish, recv and reply
// across nodes; an exec child that serves calls from its mailbox; remote commands; a call whose
// target's node is killed fails with nodedown, not at its timeout.

#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/agent_process.h"
#include "tests/support/agents.h"

using namespace std::chrono_literals;
using shoal::test::AgentProcess;
using shoal::test::Agents;
using shoal::test::CliRun;
using shoal::test::eventually;

namespace {

std::string field(const shoal::bin::rpc::Value& v, std::string_view key) {
  const shoal::bin::rpc::Value* e = v.find(key);
  return e != nullptr ? e->as_string() : std::string();
}

// The node a registered name is on, as agent i sees it ("" if none).
std::string node_of(const Agents& a, int i, const std::string& name) {
  auto w = a.json(i, {"whereis", name});
  return w ? field(*w, "node") : std::string();
}

// Three agents that see each other, with an echo worker on n1.
struct Three : Agents {
  Three() : Agents(3) {
    for (int i = 0; i < 3; ++i)
      start(i, {"--tag", "node=n" + std::to_string(i)});
    BOOST_REQUIRE(eventually([&] { return sees(0, 3) && sees(1, 3) && sees(2, 3); }, 30s));
    BOOST_REQUIRE(
        cli(0, {"run", "--name", "echo", "--worker", "echo", "--constraint", "node=n1"}).code == 0);
    BOOST_REQUIRE(eventually([&] { return node_of(*this, 2, "echo") == "n1"; }, 30s));
  }
};

// `shoal recv` in the background (a process of its own, with its output in a file).
struct Receiver {
  std::unique_ptr<AgentProcess> proc;
  std::string out;
  Receiver(const Agents& a, int i, std::vector<std::string> args) {
    out = a.dir + "/recv-" + std::to_string(i) + "-" + std::to_string(::getpid()) + ".out";
    std::vector<std::string> argv{shoal::test::shoal_binary(), "recv", "--rpc", a.sock(i)};
    argv.insert(argv.end(), args.begin(), args.end());
    // The log of AgentProcess is its stderr; recv prints on stdout: a shell sends it there.
    std::string cmd;
    for (const std::string& s : argv)
      cmd += "'" + s + "' ";
    proc = AgentProcess::program({"/bin/sh", "-c", "exec " + cmd + " 1>&2"}, out);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(messaging)

BOOST_AUTO_TEST_CASE(calls_and_sends_cross_nodes_and_errors_have_their_codes) {
  Three a;
  const CliRun r = a.cli(2, {"call", "echo", "hello there"});
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(r.out == "hello there\n");
  // stdin as the message.
  const CliRun s = a.cli(0, {"call", "echo", "-"}, "from stdin");
  BOOST_TEST(s.out == "from stdin\n");
  // Nobody by that name: exit 1, the code's name on stderr.
  const CliRun none = a.cli(2, {"call", "nobody", "x"});
  BOOST_TEST(none.code == 1);
  BOOST_TEST(none.err.find("noproc") != std::string::npos, none.err);
  const CliRun none2 = a.cli(2, {"send", "nobody", "x"});
  BOOST_TEST(none2.code == 1);
  // A pid of the echo worker, by its printed form.
  auto where = a.json(0, {"whereis", "echo"});
  BOOST_REQUIRE(where.has_value());
  const CliRun by_pid = a.cli(0, {"call", field(*where, "pid"), "by pid"});
  BOOST_TEST(by_pid.out == "by pid\n", by_pid.err);
  // A timeout out of range is bad usage.
  BOOST_TEST(a.cli(0, {"call", "echo", "x", "--timeout", "0"}).code == 2);
}

BOOST_AUTO_TEST_CASE(recv_holds_a_name_while_it_runs_and_gets_sends_and_calls) {
  Three a;
  Receiver recv(a, 1, {"--name", "inbox", "--count", "3"});
  BOOST_REQUIRE(eventually([&] { return node_of(a, 2, "inbox") == "n1"; }, 30s));
  BOOST_TEST(a.cli(2, {"send", "inbox", "one"}).code == 0);
  BOOST_TEST(a.cli(0, {"send", "inbox", "two\nlines"}).code == 0);
  // A call: its line carries a token; a reply from anyone holding it ends the call.
  CliRun answered;
  std::thread caller([&] { answered = a.cli(2, {"call", "inbox", "ping", "--timeout", "20000"}); });
  std::string token;
  const bool got_call = eventually(
      [&] {
        const std::string log = recv.proc->log();
        const auto at = log.find("call <n2.");
        if (at == std::string::npos) return false;
        const std::string line = log.substr(at, log.find('\n', at) - at);
        // call FROM TOKEN DATA
        const auto t0 = line.find(' ', 5) + 1;
        token = line.substr(t0, line.find(' ', t0) - t0);
        return true;
      },
      30s);
  if (got_call) BOOST_TEST(a.cli(1, {"reply", token, "pong"}).code == 0);
  caller.join();
  BOOST_REQUIRE(got_call);
  BOOST_TEST(answered.code == 0, answered.err);
  BOOST_TEST(answered.out == "pong\n");
  BOOST_TEST(recv.proc->wait_exit(20s) == 0);  // --count 3
  const std::string log = recv.proc->log();
  BOOST_TEST(log.find("send <n2.") != std::string::npos, log);
  BOOST_TEST(log.find(" - one\n") != std::string::npos, log);
  BOOST_TEST(log.find(" - two\\nlines\n") != std::string::npos, log);
  // Gone with its client: the name is let go.
  BOOST_TEST(eventually([&] { return node_of(a, 0, "inbox").empty(); }, 30s));
  BOOST_TEST(a.cli(0, {"send", "inbox", "late"}).code == 1);
}

BOOST_AUTO_TEST_CASE(publish_reaches_every_receiver_in_the_group) {
  Three a;
  Receiver r0(a, 0, {"--group", "news", "--count", "1"});
  Receiver r1(a, 1, {"--group", "news", "--count", "1"});
  Receiver r2(a, 2, {"--group", "news", "--count", "1", "--format", "json"});
  BOOST_REQUIRE(eventually(
      [&] {
        auto g = a.json(0, {"group", "news"});
        return g && g->as_array().size() == 3;
      },
      30s));
  const CliRun p = a.cli(1, {"publish", "news", "extra!"});
  BOOST_TEST(p.code == 0, p.err);
  BOOST_TEST(p.out == "3\n");
  for (auto* r : {&r0, &r1, &r2})
    BOOST_TEST(r->proc->wait_exit(20s) == 0);
  BOOST_TEST(r0.proc->log().find("extra!") != std::string::npos);
  BOOST_TEST(r2.proc->log().find("\"data\":\"extra!\"") != std::string::npos, r2.proc->log());
  BOOST_TEST(a.cli(1, {"publish", "nobody-listens", "x"}).code == 1);
}

BOOST_AUTO_TEST_CASE(an_exec_child_serves_calls_from_its_mailbox) {
  Three a;
  // A shell server: each call's line gives the token; it answers "hello, DATA".
  const std::string serve =
      "'" + shoal::test::shoal_binary() +
      "' recv | while read -r kind from token data; do [ \"$kind\" = call ] && '" +
      shoal::test::shoal_binary() + "' reply \"$token\" \"hello, $data\"; done";
  BOOST_REQUIRE(a.cli(0, {"run", "--name", "greeter", "--constraint", "node=n2", "--", "/bin/sh",
                          "-c", serve})
                    .code == 0);
  BOOST_REQUIRE(eventually([&] { return node_of(a, 0, "greeter") == "n2"; }, 30s));
  CliRun r;
  BOOST_TEST(eventually(
      [&] {
        r = a.cli(0, {"call", "greeter", "world", "--timeout", "2000"});
        return r.code == 0;
      },
      30s));
  BOOST_TEST(r.out == "hello, world\n", r.err);
}

BOOST_AUTO_TEST_CASE(exec_runs_a_command_once_on_the_node_asked_and_returns_its_status) {
  Three a;
  // The command's parent is the agent of the node asked.
  const CliRun r = a.cli(
      0, {"exec", "--node", "n2", "--", "/bin/sh", "-c", "echo $PPID; echo oops >&2; exit 7"});
  BOOST_TEST(r.code == 7);
  BOOST_TEST(r.out == std::to_string(a[2].pid()) + "\n");
  BOOST_TEST(r.err.find("oops") != std::string::npos);
  // --key runs where a child of that name would be placed: the same node for the same key.
  const CliRun k1 = a.cli(0, {"exec", "--key", "bucket-7", "--", "/bin/true"});
  const CliRun k2 = a.cli(2, {"exec", "--key", "bucket-7", "--format", "json", "--", "/bin/true"});
  BOOST_TEST(k1.code == 0);
  BOOST_TEST(k2.code == 0);
  auto started = shoal::test::parse_json(k2.out.substr(0, k2.out.find('\n')));
  BOOST_REQUIRE(started.has_value());
  BOOST_TEST(!field(*started, "node").empty());
  // A command that does not exist, one that runs past its timeout, a node that does not exist.
  BOOST_TEST(a.cli(0, {"exec", "--node", "n1", "--", "/nonexistent/cmd"}).code == 127);
  const CliRun slow = a.cli(0, {"exec", "--node", "n1", "--timeout", "300", "--", "sleep", "30"});
  BOOST_TEST(slow.code == 137, slow.err);
  BOOST_TEST(a.cli(0, {"exec", "--node", "n9", "--", "/bin/true"}).code == 1);
}

BOOST_AUTO_TEST_CASE(a_call_whose_node_dies_fails_with_nodedown_at_once) {
  Three a;
  // A receiver that never answers, on n1; the caller on n0 waits up to a minute.
  Receiver mute(a, 1, {"--name", "mute"});
  BOOST_REQUIRE(eventually([&] { return node_of(a, 0, "mute") == "n1"; }, 30s));
  CliRun r;
  const auto t0 = std::chrono::steady_clock::now();
  std::thread caller([&] { r = a.cli(0, {"call", "mute", "hello?", "--timeout", "60000"}); });
  BOOST_REQUIRE(
      eventually([&] { return mute.proc->log().find("call <n0.") != std::string::npos; }, 30s));
  a[1].signal(SIGKILL);
  caller.join();
  const auto waited = std::chrono::steady_clock::now() - t0;
  BOOST_TEST(r.code == 1);
  BOOST_TEST(r.err.find("nodedown") != std::string::npos, r.err);
  BOOST_TEST(waited < 30s);  // the failure detector's time, far from the timeout
}

BOOST_AUTO_TEST_SUITE_END()
