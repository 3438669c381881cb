// shoal: the agent daemon and the CLI that talks to it, as subcommands.

#include <CLI/CLI.hpp>

#include "bin/agent.h"
#include "bin/cli.h"

int main(int argc, char** argv) {
  CLI::App app{"shoal: a cluster substrate (membership, replicated registry, supervisor)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "shoal 0.1.0");

  shoal::bin::AgentOptions agent;
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
  run->add_option("--tag", agent.tags, "Node tag key=value (repeatable)");
  run->add_option("--register", agent.register_names,
                  "Register this global name for the agent itself at start (repeatable)");
  run->add_option("--child", agent.children,
                  "Supervise an exec child cluster-wide: NAME=COMMAND ARGS... (repeatable; "
                  "runs on one node, restarted elsewhere if that node dies)");
  run->add_option("--worker", agent.workers,
                  "Supervise an in-process worker cluster-wide: NAME=TYPE, TYPE idle or counter "
                  "(counter checkpoints its count every second; repeatable)");
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
  run->add_option("--log-level", agent.log_level, "debug, info, warn or error")
      ->capture_default_str();
  run->add_option("--stats-interval-ms", agent.stats_interval_ms,
                  "Log traffic counters every so many ms (0: never)");
  run->add_option("--probe-interval-ms", agent.probe_interval_ms,
                  "Probe interval (ms); default 200");
  run->add_option("--probe-timeout-ms", agent.probe_timeout_ms,
                  "Direct probe timeout (ms); default 80");

  shoal::bin::CliState cli;
  shoal::bin::add_cli_commands(app, cli);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (run->parsed()) return shoal::bin::run_agent(agent);
  return cli.exit_code;
}
