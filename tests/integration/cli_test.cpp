// The shoal CLI against real agents on 127.0.0.1: every command's table and JSON, its errors and
// exit codes, the RPC socket's guards, and an exec child that stores a checkpoint through the CLI
// and gets it back after a failover.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bin/rpc/frame.h"
#include "tests/support/agent_process.h"
#include "tests/support/agents.h"
#include "tests/support/json.h"
#include "tests/support/seed.h"

using namespace std::chrono_literals;
using shoal::bin::rpc::Value;
using shoal::test::AgentProcess;
using shoal::test::Agents;
using shoal::test::CliRun;
using shoal::test::run_cli;

namespace {

std::string field(const Value& v, std::string_view key) {
  const Value* e = v.find(key);
  return e != nullptr ? e->as_string() : std::string();
}

// The row of `name` in a `ps`/`names` listing.
std::optional<Value> row(const Value& list, const std::string& name) {
  for (const Value& r : list.as_array()) {
    if (field(r, "name") == name) return r;
  }
  return std::nullopt;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One RPC request on the agent's socket, its whole reply.
std::optional<Value> rpc_call(const std::string& sock, std::string_view cmd, Value args) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
  std::optional<Value> out;
  const std::string bytes =
      shoal::bin::rpc::frame(shoal::bin::rpc::encode_request(cmd, std::move(args)));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size())) {
    shoal::bin::rpc::FrameReader reader(shoal::bin::rpc::kMaxReplyBytes);
    char buf[4096];
    ssize_t n;
    while (!out && (n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
      reader.feed(std::string_view(buf, static_cast<std::size_t>(n)));
      if (auto f = reader.take()) {
        shoal::bin::rpc::ValueLimits limits;
        limits.max_bytes = shoal::bin::rpc::kMaxReplyBytes;
        if (auto v = shoal::bin::rpc::decode_value(*f, limits)) out = std::move(*v);
      }
    }
  }
  ::close(fd);
  return out;
}

// A TCP connection to 127.0.0.1:port: its fd, or -1 (closed) if it could not connect.
int connect_local(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0) return fd;
  ::close(fd);
  return -1;
}

// Sends `request` to 127.0.0.1:port and returns everything the server answered before closing.
std::string http_exchange(std::uint16_t port, const std::string& request) {
  const int fd = connect_local(port);
  std::string out;
  if (fd >= 0 && ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) >= 0) {
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0)
      out.append(buf, static_cast<std::size_t>(n));
  }
  if (fd >= 0) ::close(fd);
  return out;
}

std::string http_get(std::uint16_t port, const std::string& path) {
  return http_exchange(port, "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
}

// The body of an HTTP answer.
std::string body_of(const std::string& answer) {
  const auto at = answer.find("\r\n\r\n");
  return at == std::string::npos ? std::string() : answer.substr(at + 4);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cli)

BOOST_AUTO_TEST_CASE(members_info_and_names_as_tables_and_json) {
  Agents a(3);
  for (int i = 0; i < 3; ++i)
    a.start(i, {"--tag", "zone=z" + std::to_string(i)});
  BOOST_TEST_REQUIRE(
      shoal::test::eventually([&] { return a.sees(0, 3) && a.sees(1, 3) && a.sees(2, 3); }, 20s));

  // members: JSON objects with name, addr, status, incarnation, tags; filters.
  auto members = a.json(1, {"members"});
  BOOST_REQUIRE(members.has_value());
  BOOST_REQUIRE_EQUAL(members->as_array().size(), 3u);
  for (const Value& m : members->as_array()) {
    BOOST_TEST(field(m, "name").starts_with("n"));
    BOOST_TEST(field(m, "addr").starts_with("127.0.0.1:"));
    BOOST_TEST(field(m, "status") == "alive");
    BOOST_TEST(m.find("incarnation")->is_number());
    BOOST_TEST(field(*m.find("tags"), "zone") == "z" + field(m, "name").substr(1));
  }
  auto zoned = a.json(0, {"members", "--tag", "zone=z2"});
  BOOST_REQUIRE(zoned.has_value());
  BOOST_REQUIRE_EQUAL(zoned->as_array().size(), 1u);
  BOOST_TEST(field(zoned->as_array()[0], "name") == "n2");
  const CliRun table = a.cli(0, {"members"});
  BOOST_TEST(table.code == 0);
  BOOST_TEST(table.out.starts_with("NAME"));
  BOOST_TEST(table.out.find("zone=z1") != std::string::npos, table.out);

  // info
  auto info = a.json(2, {"info"});
  BOOST_REQUIRE(info.has_value());
  BOOST_TEST(field(*info, "name") == "n2");
  BOOST_TEST(info->find("members")->find("alive")->as_u64() == 3u);
  BOOST_TEST(!field(*info, "version").empty());
  BOOST_TEST(field(*info, "rpc") == a.sock(2));

  // register on one agent; whereis and names answer on another.
  const CliRun reg = a.cli(0, {"register", "billing"});
  BOOST_TEST(reg.code == 0, reg.err);
  BOOST_TEST_REQUIRE(shoal::test::eventually(
      [&] {
        return a.cli(2, {"whereis", "billing"}).code == 0;
      },
      10s));
  auto where = a.json(2, {"whereis", "billing"});
  BOOST_REQUIRE(where.has_value());
  BOOST_TEST(field(*where, "node") == "n0");
  BOOST_TEST(field(*where, "pid").starts_with("<n0."));
  const CliRun taken = a.cli(1, {"register", "billing"});
  BOOST_TEST(taken.code == 1);
  BOOST_TEST(taken.err.find("billing") != std::string::npos, taken.err);
  a.cli(0, {"register", "billing-eu"});
  BOOST_TEST_REQUIRE(shoal::test::eventually(
      [&] {
        auto names = a.json(1, {"names", "--prefix", "billing"});
        return names && names->as_array().size() == 2;
      },
      10s));
  // Another agent cannot unregister n0's name; n0 can.
  BOOST_TEST(a.cli(1, {"unregister", "billing"}).code == 1);
  BOOST_TEST(a.cli(0, {"unregister", "billing"}).code == 0);
  BOOST_TEST(shoal::test::eventually(
      [&] {
        return a.cli(1, {"whereis", "billing"}).code == 1;
      },
      10s));
  const CliRun absent = a.cli(1, {"whereis", "billing"});
  BOOST_TEST(absent.err == "shoal: billing is not registered\n");

  // Groups.
  BOOST_TEST(a.cli(0, {"join-group", "workers"}).code == 0);
  BOOST_TEST(a.cli(2, {"join-group", "workers"}).code == 0);
  BOOST_TEST(shoal::test::eventually(
      [&] {
        auto g = a.json(1, {"group", "workers"});
        return g && g->as_array().size() == 2;
      },
      10s));
}

BOOST_AUTO_TEST_CASE(run_ps_stop_and_a_checkpoint_that_survives_a_failover) {
  const auto seed = shoal::test::test_seed();
  Agents a(3);
  for (int i = 0; i < 3; ++i)
    a.start(i);
  BOOST_TEST_REQUIRE(shoal::test::eventually([&] { return a.sees(0, 3) && a.sees(1, 3); }, 20s));
  // A child that records the checkpoint it was started with, then stores a new one through the
  // CLI (SHOAL_RPC and SHOAL_CHILD_NAME come from its agent), then sleeps.
  const std::string seen = a.dir + "/seen";
  const std::string script = "{ cat \"$SHOAL_CHECKPOINT_FILE\" 2>/dev/null; echo start; } >> " +
                             seen + "; echo v$$ | " + shoal::test::shoal_binary() +
                             " checkpoint >/dev/null && exec sleep 3600";
  const CliRun run = a.cli(1, {"run", "--name", "keeper", "--", "sh", "-c", script});
  BOOST_TEST_REQUIRE(run.code == 0, run.err);
  const CliRun worker = a.cli(1, {"run", "--name", "tally", "--worker", "counter"});
  BOOST_TEST(worker.code == 0, worker.err);
  const CliRun again = a.cli(2, {"run", "--name", "keeper", "--", "true"});
  BOOST_TEST(again.code == 1);
  BOOST_TEST(again.err.find("exists") != std::string::npos, again.err);
  BOOST_TEST(a.cli(0, {"run", "--name", "x", "--worker", "no-such"}).code == 1);

  // ps, from any agent: where each runs, its OS pid (exec), its status.
  std::string runner;
  long os_pid = 0;
  BOOST_TEST_REQUIRE(shoal::test::eventually(
      [&] {
        auto ps = a.json(0, {"ps"});
        if (!ps) return false;
        auto keeper = row(*ps, "keeper");
        auto tally = row(*ps, "tally");
        if (!keeper || !tally || field(*keeper, "status") != "running" ||
            field(*tally, "status") != "running" || !keeper->find("os_pid")->is_number()) {
          return false;
        }
        runner = field(*keeper, "node");
        os_pid = keeper->find("os_pid")->as_i64();
        return true;
      },
      20s));
  BOOST_TEST(::kill(static_cast<pid_t>(os_pid), 0) == 0);
  const CliRun ps_table = a.cli(2, {"ps"});
  BOOST_TEST(ps_table.out.find("keeper") != std::string::npos);
  BOOST_TEST(ps_table.out.find("worker:counter") != std::string::npos, ps_table.out);

  // The checkpoint is stored (by the child, on its node); then its node is killed.
  const int victim = runner[1] - '0';
  BOOST_TEST_REQUIRE(
      shoal::test::eventually([&] { return slurp(seen).find("start") != std::string::npos; }, 10s));
  // The child reached its sleep: the checkpoint was stored.
  BOOST_TEST_REQUIRE(shoal::test::eventually(
      [&] {
        std::ifstream cmd("/proc/" + std::to_string(os_pid) + "/cmdline");
        std::string line;
        std::getline(cmd, line);
        return line.starts_with("sleep");
      },
      10s));
  a[victim].signal(SIGKILL);
  const int survivor = victim == 0 ? 1 : 0;
  BOOST_TEST_REQUIRE(shoal::test::eventually(
                         [&] {
                           auto ps = a.json(survivor, {"ps"});
                           if (!ps) return false;
                           auto keeper = row(*ps, "keeper");
                           return keeper && field(*keeper, "status") == "running" &&
                                  field(*keeper, "node") != runner;
                         },
                         30s),
                     "seed=" << seed);
  // The new copy was handed the old copy's checkpoint: "v<old os pid>".
  BOOST_TEST_REQUIRE(shoal::test::eventually(
      [&] { return slurp(seen).find("v" + std::to_string(os_pid)) != std::string::npos; }, 10s));

  // A checkpoint from a node where the child does not run is refused with where it runs.
  auto ps = a.json(survivor, {"ps"});
  BOOST_REQUIRE(ps.has_value());
  const std::string now_on = field(*row(*ps, "keeper"), "node");
  const int elsewhere = 3 - victim - (now_on[1] - '0');
  const CliRun wrong = a.cli(elsewhere, {"checkpoint", "keeper"}, "x");
  BOOST_TEST(wrong.code == 1);
  BOOST_TEST(wrong.err.find("runs on " + now_on) != std::string::npos, wrong.err);

  // stop: several at once, an unknown one reported.
  const CliRun stop = a.cli(survivor, {"stop", "keeper", "tally", "ghost"});
  BOOST_TEST(stop.code == 1);
  BOOST_TEST(stop.err.find("ghost") != std::string::npos, stop.err);
  BOOST_TEST(shoal::test::eventually(
      [&] {
        auto list = a.json(elsewhere, {"ps"});
        return list && list->as_array().empty();
      },
      10s));
}

BOOST_AUTO_TEST_CASE(no_agent_socket_in_use_and_bad_frames) {
  Agents a(2);
  // No agent: one line with the way out, exit 2.
  const CliRun none = a.cli(0, {"members"});
  BOOST_TEST(none.code == 2);
  BOOST_TEST(none.err.find("no agent at " + a.sock(0)) != std::string::npos, none.err);
  BOOST_TEST(none.err.find("shoal agent") != std::string::npos);
  BOOST_TEST(std::count(none.err.begin(), none.err.end(), '\n') == 1);

  a.start(0);
  BOOST_TEST_REQUIRE(a[0].wait_for({"agent started"}, 10s));
  struct stat st {};
  BOOST_REQUIRE(::stat(a.sock(0).c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0600u);
  // A second agent on the same socket refuses to start, before it binds its port.
  AgentProcess second(
      {"--name", "other", "--bind", a.addr(1), "--discovery", "none", "--rpc", a.sock(0)},
      a.dir + "/other.log");
  BOOST_TEST(second.wait_exit(10s) == 1);
  BOOST_TEST(second.log().find("another process serves " + a.sock(0)) != std::string::npos,
             second.log());

  // Raw frames: garbage gets an error reply and the connection goes on; an oversized frame is
  // refused and the connection closed; the agent keeps serving.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, a.sock(0).c_str());
  BOOST_REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  shoal::bin::rpc::FrameReader reader(1 << 20);
  auto exchange = [&](const std::string& bytes) -> std::optional<Value> {
    if (::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) < 0) return std::nullopt;
    char buf[4096];
    for (;;) {
      if (auto f = reader.take()) return shoal::bin::rpc::decode_value(*f, {}).value_or(Value());
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return std::nullopt;
      reader.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    }
  };
  auto garbage = exchange(shoal::bin::rpc::frame("\xc1\xc1 not msgpack"));
  BOOST_REQUIRE(garbage.has_value());
  BOOST_TEST(!garbage->find("ok")->as_bool(true));
  BOOST_TEST(field(*garbage, "code") == "bad_request");
  auto unknown = exchange(shoal::bin::rpc::frame(shoal::bin::rpc::encode_request("fly", {})));
  BOOST_REQUIRE(unknown.has_value());
  BOOST_TEST(field(*unknown, "error") == "unknown command 'fly'");
  auto info = exchange(shoal::bin::rpc::frame(shoal::bin::rpc::encode_request("info", {})));
  BOOST_REQUIRE(info.has_value());
  BOOST_TEST(info->find("ok")->as_bool());
  auto huge = exchange(std::string("\x7f\xff\xff\xff", 4));
  BOOST_REQUIRE(huge.has_value());
  BOOST_TEST(field(*huge, "code") == "too_large");
  char byte;
  BOOST_TEST(::recv(fd, &byte, 1, 0) == 0);  // closed
  ::close(fd);
  BOOST_TEST(a.cli(0, {"info"}).code == 0);
  BOOST_TEST(a[0].running());
}

BOOST_AUTO_TEST_CASE(watch_streams_events_and_leave_hands_over_then_exits) {
  Agents a(2);
  a.start(0);
  a.start(1, {"--tag", "role=watched"});
  BOOST_TEST_REQUIRE(shoal::test::eventually([&] { return a.sees(0, 2) && a.sees(1, 2); }, 20s));
  // watch runs in the background, its JSON lines to a file; ended by its pid.
  const std::string out = a.dir + "/watch.out";
  const pid_t watcher = ::fork();
  BOOST_REQUIRE(watcher >= 0);
  if (watcher == 0) {
    std::FILE* f = std::freopen(out.c_str(), "w", stdout);
    (void)f;
    const std::string bin = shoal::test::shoal_binary();
    const std::string sock = a.sock(1);
    ::execl(bin.c_str(), bin.c_str(), "watch", "job", "--format", "json", "--rpc", sock.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Registrations until the watcher is connected and reports one (the first may precede it).
  int k = 0;
  const bool streamed = shoal::test::eventually(
      [&] {
        a.cli(0, {"register", "job-" + std::to_string(k++)});
        a.cli(0, {"register", "other-" + std::to_string(k)});
        return slurp(out).find("\"name\":\"job-") != std::string::npos;
      },
      20s);
  // A child placed on the watched node (only it has the tag): its start is an event there.
  BOOST_TEST(
      a.cli(0, {"run", "--name", "job-child", "--worker", "idle", "--constraint", "role=watched"})
          .code == 0);
  const bool child_seen = shoal::test::eventually(
      [&] { return slurp(out).find("\"type\":\"child\"") != std::string::npos; }, 20s);
  ::kill(watcher, SIGTERM);
  int status = 0;
  ::waitpid(watcher, &status, 0);
  BOOST_TEST_REQUIRE(streamed);
  BOOST_TEST(child_seen);
  std::istringstream lines(slurp(out));
  std::string line;
  int child_starts = 0;
  while (std::getline(lines, line)) {
    auto ev = shoal::test::parse_json(line);
    BOOST_REQUIRE(ev.has_value());
    BOOST_TEST(field(*ev, "name").starts_with("job-"), line);  // the prefix filters
    const std::string type = field(*ev, "type");
    BOOST_TEST((type == "name" || type == "child"), line);
    if (type == "child") {
      BOOST_TEST(field(*ev, "name") == "job-child", line);
      BOOST_TEST(field(*ev, "node") == "n1", line);
      child_starts += field(*ev, "event") == "started" ? 1 : 0;
    }
  }
  BOOST_TEST(child_starts == 1);
  BOOST_TEST(a.cli(0, {"stop", "job-child"}).code == 0);

  // leave: n1 hands over its child, leaves, the agent exits 0, and the CLI returns after that.
  BOOST_TEST(a.cli(1, {"run", "--name", "w", "--worker", "idle"}).code == 0);
  const CliRun leave = a.cli(1, {"leave"});
  BOOST_TEST(leave.code == 0, leave.err);
  BOOST_TEST(leave.out.find("left") != std::string::npos, leave.out);
  BOOST_TEST(a[1].wait_exit(10s) == 0);
  BOOST_TEST(shoal::test::eventually(
      [&] {
        auto m = a.json(0, {"members", "--status", "left"});
        auto ps = a.json(0, {"ps"});
        return m && m->as_array().size() == 1 && ps && ps->as_array().size() == 1 &&
               field(ps->as_array()[0], "node") == "n0" &&
               field(ps->as_array()[0], "status") == "running";
      },
      10s));
  BOOST_TEST(!std::filesystem::exists(a.sock(1)));  // removed on the way out
}

// handoff state (the default): `shoal leave` on the node that runs an exec child sends it SIGTERM;
// in its grace it stores its final count with `shoal checkpoint`, and its new copy on the other
// node starts from exactly that count. The child stores no other checkpoint: without the handoff
// its new copy would start from zero.
BOOST_AUTO_TEST_CASE(an_exec_child_moved_by_a_leave_resumes_from_its_final_checkpoint) {
  Agents a(2);
  a.start(0);
  a.start(1);
  BOOST_TEST_REQUIRE(shoal::test::eventually([&] { return a.sees(0, 2) && a.sees(1, 2); }, 20s));
  const std::string log = a.dir + "/counts";
  const std::string script =
      "n=0; [ -f \"$SHOAL_CHECKPOINT_FILE\" ] && n=$(cat \"$SHOAL_CHECKPOINT_FILE\"); "
      "echo \"resumed $n $SHOAL_HANDOFF\" >> " +
      log + "; trap 'printf %s $n | " + shoal::test::shoal_binary() +
      " checkpoint && echo \"final $n\" >> " + log +
      "; exit 0' TERM; while :; do n=$((n+1)); sleep 0.02; done";
  const CliRun run = a.cli(0, {"run", "--name", "counted", "--", "sh", "-c", script});
  BOOST_TEST_REQUIRE(run.code == 0, run.err);
  // Running for a while, so that its count is well above zero.
  std::string runner;
  BOOST_TEST_REQUIRE(shoal::test::eventually(
      [&] {
        auto ps = a.json(0, {"ps"});
        auto r = ps ? row(*ps, "counted") : std::nullopt;
        if (!r || field(*r, "status") != "running" || !r->find("uptime_ms")->is_number())
          return false;
        runner = field(*r, "node");
        return r->find("uptime_ms")->as_i64() >= 500;
      },
      20s));
  BOOST_TEST(field(*row(*a.json(0, {"ps"}), "counted"), "handoff") == "state");
  const int leaver = runner == "n0" ? 0 : 1;
  const CliRun leave = a.cli(leaver, {"leave"});
  BOOST_TEST_REQUIRE(leave.code == 0, leave.err);
  BOOST_TEST(a[leaver].wait_exit(20s) == 0);
  // The log: "resumed 0 state", "final N", "resumed N state".
  std::vector<std::string> lines;
  BOOST_TEST_REQUIRE(shoal::test::eventually(
                         [&] {
                           std::istringstream in(slurp(log));
                           lines.clear();
                           for (std::string line; std::getline(in, line);)
                             lines.push_back(line);
                           return lines.size() >= 3;
                         },
                         20s),
                     slurp(log));
  BOOST_TEST(lines[0] == "resumed 0 state");
  BOOST_TEST_REQUIRE(lines[1].starts_with("final "), slurp(log));
  const std::string final_count = lines[1].substr(6);
  BOOST_TEST(std::stol(final_count) > 0);
  BOOST_TEST(lines[2] == "resumed " + final_count + " state", slurp(log));
  const int other = 1 - leaver;
  auto ps = a.json(other, {"ps"});
  BOOST_REQUIRE(ps.has_value());
  BOOST_TEST(field(*row(*ps, "counted"), "node") == "n" + std::to_string(other));
  BOOST_TEST(a.cli(other, {"stop", "counted"}).code == 0);
}

// Exec policies: n0 runs no command, n1 only executables under /usr/bin. Children and `shoal exec`
// go where they may run; a command no member allows is refused when added, and a child that was
// runnable shows as failed, with the reason, once no member may run it.
BOOST_AUTO_TEST_CASE(exec_policies_place_commands_only_where_they_may_run) {
  Agents a(2);
  a.start(0, {"--exec", "deny"});
  a.start(1, {"--exec-allow", "/usr/bin/*"});
  BOOST_TEST_REQUIRE(shoal::test::eventually([&] { return a.sees(0, 2) && a.sees(1, 2); }, 20s));
  const CliRun members = a.cli(0, {"members"});
  BOOST_TEST(members.out.find("shoal.exec=none") != std::string::npos, members.out);
  BOOST_TEST(members.out.find("shoal.exec=/usr/bin/*") != std::string::npos, members.out);
  // Eight children: by hash about half would land on n0; all run on n1.
  std::vector<std::string> names;
  for (int k = 0; k < 8; ++k) {
    names.push_back("nap-" + std::to_string(k));
    const CliRun r = a.cli(0, {"run", "--name", names.back(), "--", "sleep", "3600"});
    BOOST_TEST_REQUIRE(r.code == 0, r.err);
  }
  BOOST_TEST_REQUIRE(shoal::test::eventually(
      [&] {
        auto ps = a.json(0, {"ps"});
        if (!ps || ps->as_array().size() != names.size()) return false;
        for (const Value& r : ps->as_array()) {
          if (field(r, "status") != "running" || field(r, "node") != "n1") return false;
        }
        return true;
      },
      20s));
  // A command outside /usr/bin: nobody may run it, so it is refused at once, with the reason.
  const std::string tool = a.dir + "/tool.sh";
  { std::ofstream(tool) << "#!/bin/sh\nexec sleep 3600\n"; }
  ::chmod(tool.c_str(), 0755);
  const CliRun refused = a.cli(1, {"run", "--name", "tool", "--", tool});
  BOOST_TEST(refused.code == 1);
  BOOST_TEST(refused.err.find("no live member's exec policy allows " + tool) != std::string::npos,
             refused.err);
  // shoal exec --key goes to a node that may run the command; --node to one that may not fails.
  const CliRun where = a.cli(0, {"exec", "--key", "any-key", "--", "sh", "-c", "echo $SHOAL_NODE"});
  BOOST_TEST(where.code == 0, where.err);
  BOOST_TEST(where.out == "n1\n", where.out);
  const CliRun denied = a.cli(1, {"exec", "--node", "n0", "--", "true"});
  BOOST_TEST(denied.code != 0);
  BOOST_TEST(denied.err.find("exec policy") != std::string::npos, denied.err);
  const CliRun outside = a.cli(0, {"exec", "--node", "n1", "--", tool});
  BOOST_TEST(outside.code != 0);
  BOOST_TEST(outside.err.find("does not allow " + tool) != std::string::npos, outside.err);
  // n1 dies: no live member may run the children any more; ps says so.
  a[1].signal(SIGKILL);
  BOOST_TEST(shoal::test::eventually(
                 [&] {
                   auto ps = a.json(0, {"ps"});
                   if (!ps || ps->as_array().size() != names.size()) return false;
                   for (const Value& r : ps->as_array()) {
                     if (field(r, "status") != "failed" ||
                         field(r, "last_exit").find("exec policy allows /usr/bin/sleep") ==
                             std::string::npos)
                       return false;
                   }
                   return true;
                 },
                 20s),
             a.cli(0, {"ps"}).out);
}

BOOST_AUTO_TEST_CASE(http_serves_metrics_json_views_and_health) {
  Agents a(2);
  const std::uint16_t port = shoal::test::free_ports(1);
  a.start(0, {"--http", "127.0.0.1:" + std::to_string(port)});
  a.start(1);
  BOOST_TEST_REQUIRE(shoal::test::eventually([&] { return a.sees(0, 2) && a.sees(1, 2); }, 20s));
  BOOST_TEST(a.cli(1, {"run", "--name", "w", "--worker", "idle"}).code == 0);
  BOOST_TEST(a.cli(1, {"join-group", "g"}).code == 0);
  std::string metrics;
  BOOST_TEST_REQUIRE(shoal::test::eventually(
                         [&] {
                           metrics = http_get(port, "/metrics");
                           return metrics.find("shoal_children{status=\"running\"} 1\n") !=
                                      std::string::npos &&
                                  metrics.find("shoal_groups 1\n") != std::string::npos;
                         },
                         10s),
                     metrics);
  BOOST_TEST(metrics.starts_with("HTTP/1.1 200 OK\r\n"));
  // A call from n0 to no name: counted by outcome.
  BOOST_TEST(a.cli(0, {"call", "nobody", "x"}).code == 1);
  BOOST_TEST_REQUIRE(shoal::test::eventually(
                         [&] {
                           metrics = http_get(port, "/metrics");
                           return metrics.find("shoal_calls_total{outcome=\"noproc\"} 1\n") !=
                                  std::string::npos;
                         },
                         10s),
                     metrics);
  for (const char* line :
       {"shoal_members{status=\"alive\"} 2\n", "# TYPE shoal_probe_rtt_seconds histogram\n",
        "shoal_probe_rtt_seconds_bucket{le=\"+Inf\"}", "shoal_packets_total{direction=\"in\"}",
        "shoal_rejected_packets_total{reason=\"auth\"} 0\n", "shoal_failovers_total 0\n",
        "shoal_names 1\n", "shoal_info{name=\"n0\"", "shoal_calls_total{outcome=\"ok\"} 0\n",
        "# TYPE shoal_message_bytes_total counter\n", "shoal_message_queue_bytes 0\n"}) {
    BOOST_TEST(metrics.find(line) != std::string::npos, line);
  }
  auto members = shoal::test::parse_json(body_of(http_get(port, "/v1/members?status=alive")));
  BOOST_REQUIRE(members.has_value());
  BOOST_TEST(members->as_array().size() == 2u);
  auto children = shoal::test::parse_json(body_of(http_get(port, "/v1/children")));
  BOOST_REQUIRE(children.has_value());
  BOOST_REQUIRE_EQUAL(children->as_array().size(), 1u);
  BOOST_TEST(field(children->as_array()[0], "name") == "w");
  auto names = shoal::test::parse_json(body_of(http_get(port, "/v1/names?prefix=w&limit=5")));
  BOOST_REQUIRE(names.has_value());
  BOOST_TEST(names->as_array().size() == 1u);
  const std::string health = http_get(port, "/health");
  BOOST_TEST(health.starts_with("HTTP/1.1 200"));
  BOOST_TEST(body_of(health).find("\"status\":\"ok\"") != std::string::npos);
  // Bad requests get their status and the agent goes on.
  BOOST_TEST(http_get(port, "/nope").starts_with("HTTP/1.1 404"));
  BOOST_TEST(http_get(port, "/v1/names?limit=x").starts_with("HTTP/1.1 400"));
  BOOST_TEST(http_exchange(port, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
  BOOST_TEST(http_exchange(port, "garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
  BOOST_TEST(http_exchange(port, "GET /" + std::string(9000, 'a')).starts_with("HTTP/1.1 431"));
  // A complete head over the limit is refused too, however many reads it arrives in (the
  // server reads 4 KiB at a time).
  BOOST_TEST(
      http_exchange(port, "GET /health HTTP/1.1\r\nX-Pad: " + std::string(12'000, 'a') + "\r\n\r\n")
          .starts_with("HTTP/1.1 431"));
  BOOST_TEST(http_get(port, "/health").starts_with("HTTP/1.1 200"));
  // Slow clients holding more than every slot (64) cannot starve /health: the longest-waiting
  // one is closed to make room.
  std::vector<int> idle;
  for (int i = 0; i < 70; ++i) {
    const int fd = connect_local(port);
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(::send(fd, "GET /", 5, MSG_NOSIGNAL) == 5);
    idle.push_back(fd);
  }
  BOOST_TEST(http_get(port, "/health").starts_with("HTTP/1.1 200"));
  timeval wait{10, 0};
  ::setsockopt(idle[0], SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  char byte = 0;
  // The oldest was closed: end of stream, or a reset when it was closed before the server read
  // its bytes. A timeout (EAGAIN) means it is still open.
  const ssize_t got = ::recv(idle[0], &byte, 1, 0);
  const int why = errno;
  BOOST_TEST((got == 0 || (got < 0 && why == ECONNRESET)), "recv " << got << " errno " << why);
  for (int fd : idle)
    ::close(fd);
  // The port in use: a second agent says so and exits before it starts.
  AgentProcess second({"--name", "x", "--bind", a.addr(1), "--discovery", "none", "--http",
                       "127.0.0.1:" + std::to_string(port), "--data-dir", a.dir + "/x"},
                      a.dir + "/x.log");
  BOOST_TEST(second.wait_exit(10s) == 1);
  BOOST_TEST(second.log().find("--http: cannot listen on TCP 127.0.0.1:" + std::to_string(port) +
                               ": address already in use") != std::string::npos,
             second.log());
}

BOOST_AUTO_TEST_CASE(flags_win_over_the_environment_which_wins_over_the_config_file) {
  Agents a(1);
  const std::string config = a.dir + "/agent.toml";
  std::ofstream(config) << "# shoal agent settings\n[agent]\nname = \"from-file\"\nbind = \""
                        << a.addr(0)
                        << "\"\ndiscovery = seeds\ntag = [\"zone=file\", \"rack=r9\"]\n"
                        << "data_dir = \"" << a.data(0) << "\"\n";
  auto started = [&](const std::vector<std::string>& env, const std::vector<std::string>& flags) {
    std::vector<std::string> args{"agent", "--config", config};
    args.insert(args.end(), flags.begin(), flags.end());
    // The agent runs until killed: run_cli's deadline ends it; what it logged is what we check.
    const CliRun r = run_cli(args, {}, env, 5000ms);
    return r.err;
  };
  const std::string from_file = started({}, {});
  BOOST_TEST(from_file.find("agent started name=from-file addr=" + a.addr(0)) != std::string::npos,
             from_file);
  const std::string from_env = started({"SHOAL_NAME=from-env"}, {});
  BOOST_TEST(from_env.find("agent started name=from-env ") != std::string::npos, from_env);
  const std::string from_flag = started({"SHOAL_NAME=from-env"}, {"--name", "from-flag"});
  BOOST_TEST(from_flag.find("agent started name=from-flag ") != std::string::npos, from_flag);
  // Errors in the file: one line, exit 2, nothing started.
  std::ofstream(a.dir + "/bad.toml") << "name = \"n\"\nbogus = 1\n";
  const CliRun bad = run_cli({"agent", "--config", a.dir + "/bad.toml"});
  BOOST_TEST(bad.code == 2);
  BOOST_TEST(bad.err == "shoal agent: --config " + a.dir + "/bad.toml: unknown flag 'bogus'\n");
  const CliRun missing = run_cli({"agent", "--config", a.dir + "/none.toml"});
  BOOST_TEST(missing.code == 2);
  BOOST_TEST(missing.err.find("cannot read it") != std::string::npos, missing.err);
  const CliRun bad_env = run_cli({"agent", "--discovery", "none"}, {}, {"SHOAL_BIND=garbage"});
  BOOST_TEST(bad_env.code == 2);
  BOOST_TEST(bad_env.err.find("--bind") != std::string::npos, bad_env.err);
}

BOOST_AUTO_TEST_CASE(usage_names_the_program_and_bash_completes_commands_and_flags) {
  // No command: the usage on stderr, exit 2; --help on stdout, exit 0.
  const CliRun none = run_cli({});
  BOOST_TEST(none.code == 2);
  BOOST_TEST(none.err.find("Usage: shoal [OPTIONS] SUBCOMMAND") != std::string::npos, none.err);
  const CliRun help = run_cli({"--help"});
  BOOST_TEST(help.code == 0);
  BOOST_TEST(help.out.find("Usage: shoal [OPTIONS] SUBCOMMAND") != std::string::npos, help.out);
  BOOST_TEST(run_cli({"run", "--help"}).out.find("Usage: shoal run [OPTIONS]") !=
             std::string::npos);
  // The bash script, sourced, completes a subcommand, a subcommand's flags, and nothing of its
  // own after `--`.
  const CliRun script = run_cli({"completion", "bash"});
  BOOST_TEST_REQUIRE(script.code == 0, script.err);
  const auto complete = [&](const std::string& words, int cword) {
    const CliRun r = shoal::test::run_program({"/bin/bash", "-c",
                                               script.out + "\nCOMP_WORDS=(" + words +
                                                   "); COMP_CWORD=" + std::to_string(cword) +
                                                   "; _shoal; echo \"${COMPREPLY[*]}\""});
    BOOST_TEST(r.code == 0, r.err);
    return r.out;
  };
  BOOST_TEST(complete("shoal ru", 1) == "run\n");
  BOOST_TEST(complete("shoal wh", 1) == "whereis\n");
  BOOST_TEST(complete("shoal run --na", 2) == "--name\n");
  BOOST_TEST(complete("shoal agent --exec-a", 2) == "--exec-allow\n");
  BOOST_TEST(complete("shoal run --name x -- --na", 5) == "\n");
  const CliRun zsh = run_cli({"completion", "zsh"});
  BOOST_TEST(zsh.code == 0);
  BOOST_TEST(zsh.out.find("bashcompinit") != std::string::npos);
  const CliRun fish = run_cli({"completion", "fish"});
  BOOST_TEST(fish.code == 2);
}

BOOST_AUTO_TEST_CASE(an_agent_refuses_a_reachable_address_without_a_key_unless_told_insecure) {
  Agents a(1);
  const std::string any = "0.0.0.0:" + a.addr(0).substr(a.addr(0).rfind(':') + 1);
  const std::vector<std::string> standalone{"agent", "--discovery", "none", "--data-dir",
                                            a.data(0)};
  auto with = [&](std::vector<std::string> more) {
    std::vector<std::string> args = standalone;
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };
  // Refused before anything is bound: one line, exit 2, how to make a key.
  for (const CliRun& r :
       {run_cli(with({"--bind", any})), run_cli(standalone, {}, {"SHOAL_BIND=" + any})}) {
    BOOST_TEST(r.code == 2);
    BOOST_TEST(r.err.find("no --key-file is set") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("shoal keys generate") != std::string::npos, r.err);
    BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') == 1, r.err);
  }
  // --insecure (or SHOAL_INSECURE=1) overrides it, with a warning. A standalone node (no seeds,
  // no multicast, no HTTP) only listens on 0.0.0.0 and sends nothing; the deadline ends it.
  for (const CliRun& r : {run_cli(with({"--bind", any, "--insecure"}), {}, {}, 3000ms),
                          run_cli(with({"--bind", any}), {}, {"SHOAL_INSECURE=1"}, 3000ms)}) {
    BOOST_TEST(r.err.find("warn agent insecure: no cluster key on " + any) != std::string::npos,
               r.err);
    BOOST_TEST(r.err.find("agent started") != std::string::npos, r.err);
  }
}

BOOST_AUTO_TEST_CASE(keys_rotate_across_the_cluster_without_a_partition) {
  Agents a(3);
  const CliRun gen1 = run_cli({"keys", "generate"});
  const CliRun gen2 = run_cli({"keys", "generate"});
  BOOST_REQUIRE_EQUAL(gen1.code, 0);
  BOOST_REQUIRE_EQUAL(gen1.out.size(), 65u);  // 64 hex digits and a newline
  BOOST_TEST(gen1.out != gen2.out);
  const std::string old_key = gen1.out.substr(0, 64);
  const std::string new_key = gen2.out.substr(0, 64);
  for (int i = 0; i < 3; ++i) {
    const std::string file = a.dir + "/key" + std::to_string(i);
    std::ofstream(file) << old_key << "\n";
    a.start(i, {"--key-file", file});
  }
  BOOST_TEST_REQUIRE(
      shoal::test::eventually([&] { return a.sees(0, 3) && a.sees(1, 3) && a.sees(2, 3); }, 20s));
  // Not primary before it is installed everywhere.
  const CliRun early = a.cli(0, {"keys", "use", new_key});
  BOOST_TEST(early.code == 1);
  BOOST_TEST(early.err.find("installed on 0 of 3 members") != std::string::npos, early.err);
  for (const char* op : {"install", "use"}) {
    const CliRun r = a.cli(0, {"keys", op, new_key});
    BOOST_TEST(r.code == 0, op << ": " << r.err);
    BOOST_TEST(r.out.find("done on every live member") != std::string::npos, r.out);
  }
  const CliRun remove = a.cli(1, {"keys", "remove", old_key});
  BOOST_TEST(remove.code == 0, remove.err);
  auto keys = a.json(2, {"keys", "list"});
  BOOST_REQUIRE(keys.has_value());
  BOOST_REQUIRE_EQUAL(keys->find("keys")->as_array().size(), 1u);
  const Value& only = keys->find("keys")->as_array()[0];
  BOOST_TEST(only.find("members")->as_u64() == 3u);
  BOOST_TEST(only.find("primary_on")->as_u64() == 3u);
  // Everyone still hears everyone, and each key file now holds the new key only.
  BOOST_TEST(shoal::test::eventually([&] { return a.sees(0, 3) && a.sees(2, 3); }, 5s));
  for (int i = 0; i < 3; ++i) {
    const std::string file = slurp(a.dir + "/key" + std::to_string(i));
    BOOST_TEST(file.find(new_key) != std::string::npos, file);
    BOOST_TEST(file.find(old_key) == std::string::npos, file);
  }
  // A bad key is refused by the CLI itself.
  const CliRun bad = a.cli(0, {"keys", "install", "not-a-key"});
  BOOST_TEST(bad.code == 2);
}

BOOST_AUTO_TEST_CASE(keys_need_an_encrypted_cluster) {
  Agents a(1);
  a.start(0);
  BOOST_TEST_REQUIRE(a[0].wait_for({"agent started"}, 10s));
  const CliRun r = a.cli(0, {"keys", "install", std::string(64, 'a')});
  BOOST_TEST(r.code == 1);
  BOOST_TEST(r.err.find("without encryption") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(batches_start_and_stop_many_children_in_one_request) {
  Agents a(2);
  a.start(0);
  a.start(1);
  BOOST_TEST_REQUIRE(shoal::test::eventually([&] { return a.sees(0, 2) && a.sees(1, 2); }, 20s));
  Value specs = Value::array();
  Value names = Value::array();
  for (int k = 0; k < 200; ++k) {
    Value spec = Value::map();
    spec.set("name", "b" + std::to_string(k));
    spec.set("worker", k % 2 == 0 ? "idle" : "counter");
    specs.push(std::move(spec));
    names.push("b" + std::to_string(k));
  }
  Value bad = Value::map();
  bad.set("name", "");
  bad.set("worker", "idle");
  specs.push(std::move(bad));
  names.push("ghost");
  Value args = Value::map();
  args.set("children", std::move(specs));
  auto reply = rpc_call(a.sock(0), "run-batch", std::move(args));
  BOOST_REQUIRE(reply.has_value());
  BOOST_REQUIRE(reply->find("ok")->as_bool());
  const Value& result = *reply->find("result");
  BOOST_TEST(result.find("added")->as_u64() == 200u);
  BOOST_REQUIRE_EQUAL(result.find("errors")->as_array().size(), 1u);
  BOOST_TEST(field(result.find("errors")->as_array()[0], "error").find("name") !=
             std::string::npos);
  auto count_running = [&](int i) {
    auto ps = a.json(i, {"ps"});
    std::size_t n = 0;
    if (ps) {
      for (const Value& r : ps->as_array())
        n += field(r, "status") == "running" ? 1 : 0;
    }
    return n;
  };
  BOOST_TEST_REQUIRE(shoal::test::eventually([&] { return count_running(1) == 200; }, 20s));
  Value stop_args = Value::map();
  stop_args.set("names", std::move(names));
  auto stopped = rpc_call(a.sock(1), "stop-batch", std::move(stop_args));
  BOOST_REQUIRE(stopped.has_value());
  BOOST_TEST(stopped->find("result")->find("stopped")->as_u64() == 200u);
  BOOST_TEST(stopped->find("result")->find("missing")->as_array().size() == 1u);
  BOOST_TEST(shoal::test::eventually(
      [&] {
        auto ps = a.json(0, {"ps"});
        return ps && ps->as_array().empty();
      },
      20s));
}

BOOST_AUTO_TEST_SUITE_END()
