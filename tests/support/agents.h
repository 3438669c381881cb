#pragma once

// Agents: real `shoal agent` processes n0..n(k-1) on consecutive loopback ports, joined through n0,
// each with its data dir (and so its RPC socket), and the CLI pointed at one of them. For the
// integration tests (tests/integration/).

#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bin/rpc/value.h"
#include "tests/support/agent_process.h"
#include "tests/support/host.h"
#include "tests/support/json.h"

namespace shoal::test {

// Agents n0..n(k-1) on consecutive loopback ports, each with its data dir (and so its socket).
struct Agents {
  std::string dir;
  std::uint16_t base;
  std::vector<std::unique_ptr<AgentProcess>> procs;

  explicit Agents(int n) : base(shoal::test::free_ports(static_cast<std::uint16_t>(n))) {
    char tmpl[] = "/tmp/shoal-cli-XXXXXX";
    dir = ::mkdtemp(tmpl);
    procs.resize(static_cast<std::size_t>(n));
  }
  std::string addr(int i) const { return "127.0.0.1:" + std::to_string(base + i); }
  std::string data(int i) const { return dir + "/d" + std::to_string(i); }
  std::string sock(int i) const { return data(i) + "/shoal.sock"; }
  AgentProcess& start(int i, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{
        "--name", "n" + std::to_string(i), "--bind", addr(i), "--discovery", "seeds", "--data-dir",
        data(i)};
    if (i != 0) args.insert(args.end(), {"--join", addr(0)});
    args.insert(args.end(), extra.begin(), extra.end());
    procs[static_cast<std::size_t>(i)] =
        std::make_unique<AgentProcess>(args, dir + "/n" + std::to_string(i) + ".log");
    return *procs[static_cast<std::size_t>(i)];
  }
  AgentProcess& operator[](int i) { return *procs[static_cast<std::size_t>(i)]; }
  // `shoal ARGS --rpc <agent i's socket>`.
  CliRun cli(int i, std::vector<std::string> args, const std::string& input = {}) const {
    // After the (sub)command, before a "--".
    args.insert(args.begin() + (args[0] == "keys" ? 2 : 1), {"--rpc", sock(i)});
    return shoal::test::run_cli(args, input);
  }
  std::optional<bin::rpc::Value> json(int i, std::vector<std::string> args) const {
    args.insert(args.begin() + (args[0] == "keys" ? 2 : 1), {"--format", "json"});
    const CliRun r = cli(i, args);
    if (r.code != 0) return std::nullopt;
    return shoal::test::parse_json(r.out);
  }
  // Agent i lists `n` alive members.
  bool sees(int i, std::size_t n) const {
    auto m = json(i, {"members", "--status", "alive"});
    return m && m->as_array().size() == n;
  }
};

}  // namespace shoal::test
