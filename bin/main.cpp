// shoal: the agent daemon and the CLI that talks to it, as subcommands.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <expected>
#include <fstream>
#include <sstream>

#include <cstdlib>
#include <string>
#include <vector>

#include "bin/agent.h"
#include "bin/agent_state.h"
#include "bin/cli.h"

namespace {

std::string env_name(const std::string& flag) {
  std::string env = "SHOAL_";
  for (char c : flag)
    env += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return env;
}

bool given(const std::vector<std::string>& args, const std::string& flag) {
  for (const std::string& a : args) {
    if (a == "--" + flag || a.starts_with("--" + flag + "=")) return true;
  }
  return false;
}

// The config file (see parse_config()).
std::expected<shoal::bin::ConfigEntries, std::string> read_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::unexpected(path + ": cannot read it");
  std::ostringstream text;
  text << in.rdbuf();
  return shoal::bin::parse_config(text.str(), path);
}

// Appends one flag's value from the environment or the config file as arguments: "--flag VALUE"
// for an option, "--flag=VALUE" for a switch (--insecure: true/false, 1/0, yes/no, on/off).
void append_flag(std::vector<std::string>& out, const CLI::Option* opt, const std::string& flag,
                 const std::string& value) {
  if (opt->get_expected_max() == 0) {
    out.push_back("--" + flag + "=" + value);
  } else {
    out.insert(out.end(), {"--" + flag, value});
  }
}

// The agent's arguments with the environment and the config file folded in: for each flag of
// `agent` not on the command line, SHOAL_<FLAG> (SHOAL_BIND for --bind, SHOAL_DATA_DIR for
// --data-dir...) is added as if given there, then the config file's value if there was none.
// So flags win over the environment, which wins over the config file. Repeatable flags take a
// comma-separated list in the environment (SHOAL_JOIN=a:7946,b:7946), except --child.
std::expected<std::vector<std::string>, std::string> agent_arguments(int argc, char** argv,
                                                                     CLI::App* agent) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] != "agent") return args;
  std::string config;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) config = args[i + 1];
    if (args[i].starts_with("--config=")) config = args[i].substr(9);
  }
  if (const char* env = std::getenv("SHOAL_CONFIG"); config.empty() && env != nullptr) config = env;
  std::vector<std::pair<std::string, std::vector<std::string>>> from_file;
  if (!config.empty()) {
    auto read = read_config(config);
    if (!read) return std::unexpected("--config " + read.error());
    from_file = std::move(*read);
  }
  std::vector<std::string> extra;
  for (const CLI::Option* opt : agent->get_options()) {
    const std::string flag = opt->get_single_name();
    if (flag.empty() || flag == "help" || flag == "config") continue;
    if (given(args, flag)) continue;
    const char* value = std::getenv(env_name(flag).c_str());
    if (value != nullptr && *value != '\0') {
      const std::string v = value;
      const bool list = shoal::bin::repeatable_flag(flag) && flag != "child";
      std::size_t start = 0;
      for (;;) {
        const std::size_t comma = list ? v.find(',', start) : std::string::npos;
        const std::string item =
            v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!item.empty()) append_flag(extra, opt, flag, item);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      continue;
    }
    for (const auto& [key, values] : from_file) {
      if (key != flag) continue;
      for (const std::string& item : values)
        append_flag(extra, opt, flag, item);
    }
  }
  for (const auto& [key, values] : from_file) {
    if (agent->get_option_no_throw("--" + key) == nullptr || key == "config" || key == "help")
      return std::unexpected("--config " + config + ": unknown flag '" + key + "'");
  }
  args.insert(args.begin() + 1, extra.begin(), extra.end());
  return args;
}

// The `agent` subcommand and its flags, filled into `agent`. `config_file` only documents
// --config: agent_arguments() reads it before parsing.
CLI::App* add_agent_command(CLI::App& app, shoal::bin::AgentOptions& agent,
                            std::string& config_file) {
  CLI::App* run =
      app.add_subcommand("agent", "Run a node: joins the cluster and prints membership events");
  run->add_option("--name", agent.name,
                  "Node name, unique in the cluster (default: hostname:port)");
  run->add_option("--bind", agent.bind, "UDP and TCP address to bind, ip:port")
      ->capture_default_str();
  run->add_option("--advertise", agent.advertise,
                  "Address others reach this node at (default: --bind)");
  run->add_option("--join", agent.join, "Seed address ip:port to join through (repeatable)");
  run->add_option(
         "--discovery", agent.discovery,
         "How to find peers: multicast (and --join), seeds (--join only) or none (standalone)")
      ->check(CLI::IsMember({"multicast", "seeds", "none"}))
      ->capture_default_str();
  run->add_option("--multicast-group", agent.multicast_group,
                  "Multicast group ip:port for announcements (sent on the --bind interface only)")
      ->capture_default_str();
  run->add_option("--key-file", agent.key_file,
                  "Cluster keys, one per line (hex or base64); first is primary")
      ->check(CLI::ExistingFile);
  run->add_flag("--insecure", agent.insecure,
                "Allow a --bind address other hosts can reach without --key-file: anyone who "
                "reaches it can join and run commands on every node (warned at start and hourly)");
  run->add_option("--tag", agent.tags, "Node tag key=value (repeatable)");
  run->add_option("--exec", agent.exec,
                  "Whether the cluster may run commands on this node (exec children, shoal exec): "
                  "allow or deny (workers run either way)")
      ->check(CLI::IsMember({"allow", "deny"}))
      ->capture_default_str();
  run->add_option("--exec-allow", agent.exec_allow,
                  "Only commands whose resolved executable path matches this glob (fnmatch, "
                  "* does not cross '/'), e.g. /usr/bin/* (repeatable; advertised to the "
                  "cluster, which places children only where they may run)")
      ->allow_extra_args(false);
  run->add_option("--register", agent.register_names,
                  "Register this global name for the agent itself at start (repeatable)");
  run->add_option("--child", agent.children,
                  "Supervise an exec child cluster-wide: NAME=COMMAND ARGS... (repeatable; "
                  "runs on one node, restarted elsewhere if that node dies)");
  run->add_option("--worker", agent.workers,
                  "Supervise an in-process worker cluster-wide: NAME=TYPE, TYPE idle, counter "
                  "(checkpoints its count every second) or echo (answers calls with their "
                  "payload); repeatable");
  run->add_option("--mode", agent.mode,
                  "Supervisor mode: ap (any side of a partition restarts orphans) or quorum "
                  "(only a majority of --expect does; never two copies)")
      ->check(CLI::IsMember({"ap", "quorum"}))
      ->capture_default_str();
  run->add_option("--expect", agent.expect, "quorum mode: the cluster size N (a majority is > N/2)")
      ->check(CLI::Range(1u, 100'000u));
  run->add_option("--quorum-fence-ms", agent.quorum_fence_ms,
                  "quorum mode: ms without a majority before this node stops its children")
      ->check(CLI::Range(100u, 3'600'000u))
      ->capture_default_str();
  run->add_option("--quorum-lease-ms", agent.quorum_lease_ms,
                  "quorum mode: ms after a member vanished before its children start elsewhere "
                  "(plus their shutdown timeout; default: the safe bound from the probe timing)")
      ->check(CLI::Range(1u, 3'600'000u));
  run->add_option("--rpc", agent.rpc,
                  "Unix socket for the CLI, owner-only (default DATA-DIR/shoal.sock)");
  run->add_option("--data-dir", agent.data_dir,
                  "Directory for child logs and checkpoint files (default /tmp/shoal-NAME)");
  run->add_option("--fsync", agent.fsync,
                  "When the map on disk is fsync'd: snapshot (snapshots only: survives the agent's "
                  "crash), always (every log append too: survives the machine's), never")
      ->check(CLI::IsMember({"never", "snapshot", "always"}))
      ->capture_default_str();
  run->add_option("--log-level", agent.log_level, "debug, info, warn or error")
      ->capture_default_str();
  run->add_option("--stats-interval-ms", agent.stats_interval_ms,
                  "Log traffic counters every so many ms (0: never)");
  run->add_option("--probe-interval-ms", agent.probe_interval_ms,
                  "Probe interval (ms); default 200");
  run->add_option("--probe-timeout-ms", agent.probe_timeout_ms,
                  "Direct probe timeout (ms); default 80");

  run->add_option("--http", agent.http,
                  "Serve the dashboard (GET /), /metrics (Prometheus), /v1/members, /v1/names, "
                  "/v1/groups, /v1/children, /v1/info, /v1/events (Server-Sent Events), /health "
                  "on this ip:port (off by default)");
  run->add_option("--config", config_file,
                  "Read flags from a file: one `flag = value` per line (TOML or INI), e.g. "
                  "bind = \"127.0.0.1:7946\", tag = [\"zone=a\", \"rack=2\"]; flags and "
                  "SHOAL_<FLAG> environment variables win over it");
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shoal: a cluster substrate (membership, replicated registry, supervisor)", "shoal"};
  app.require_subcommand(1);
  app.footer(
      "Run `shoal COMMAND --help` for a command's flags; `shoal completion bash` prints a "
      "completion script.");
  app.set_version_flag("--version", std::string("shoal ") + shoal::bin::kShoalVersion);

  shoal::bin::AgentOptions agent;
  std::string config_file;
  CLI::App* run = add_agent_command(app, agent, config_file);
  shoal::bin::CliState cli;
  shoal::bin::add_cli_commands(app, cli);

  if (argc <= 1) {
    // No command: the usage, on stderr, as for any other bad usage.
    std::fputs(app.help().c_str(), stderr);
    return 2;
  }
  try {
    auto args = agent_arguments(argc, argv, run);
    if (!args) {
      std::fprintf(stderr, "shoal agent: %s\n", args.error().c_str());
      return 2;
    }
    std::reverse(args->begin(), args->end());  // CLI11 takes them last first
    app.parse(*args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Bad usage: one line, exit 2.
    std::fprintf(stderr, "shoal: %s (see --help)\n", e.what());
    return 2;
  }
  if (run->parsed()) {
    auto config = shoal::bin::parse_agent_options(agent, shoal::bin::hostname());
    if (!config) {
      std::fprintf(stderr, "shoal agent: %s\n", config.error().c_str());
      return 2;
    }
    return shoal::bin::run_agent(*config);
  }
  return cli.exit_code;
}
