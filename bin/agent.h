#pragma once

// `shoal agent`: runs one node. Flags -> AgentOptions -> the library; events go to stderr as one
// line each (time, level, component, message, key=value fields).

#include <string>
#include <vector>

#include "cluster/address.h"
#include "cluster/wire.h"

namespace shoal::bin {

inline constexpr const char* kShoalVersion = "0.1.0";

struct AgentOptions {
  std::string name;  // default: hostname:port
  std::string bind = "127.0.0.1:7946";
  std::string advertise;                // default: the bind address
  std::vector<std::string> join;        // seeds, ip:port
  std::string discovery = "multicast";  // multicast | seeds | none
  std::string multicast_group = "239.255.77.46:7900";
  std::string key_file;
  std::vector<std::string> tags;            // k=v
  std::vector<std::string> register_names;  // names the agent registers for itself at start
  // Supervised exec children added to the cluster at start, "NAME=COMMAND ARGS..." (until the
  // RPC's `shoal run`).
  std::vector<std::string> children;
  // Supervised in-process workers added at start, "NAME=TYPE" (built-in types: idle, counter).
  std::vector<std::string> workers;
  // Supervisor mode: "ap" or "quorum" (needs expect, the cluster size).
  std::string mode = "ap";
  unsigned expect = 0;
  // quorum: ms in the minority before this node stops its children (default 2000), and the lease
  // after which a vanished member's children start elsewhere (0: the safe bound computed from the
  // membership timing; see supervisor::quorum_lease_ms).
  unsigned quorum_fence_ms = 2'000;
  unsigned quorum_lease_ms = 0;
  // The RPC socket (default <data-dir>/shoal.sock).
  std::string rpc;
  std::string data_dir;
  // The map on disk: "snapshot" (fsync snapshots only), "always" (also every log append), "never".
  std::string fsync = "snapshot";
  // ip:port for the HTTP endpoint (metrics, JSON views, health); empty: off.
  std::string http;  // child logs and checkpoint files; default /tmp/shoal-<name>
  std::string log_level = "info";
  // ms between "stats" log lines (counters, for benchmarks and operators); 0: none.
  unsigned stats_interval_ms = 0;
  // Membership timing overrides (ms); 0 keeps the default.
  unsigned probe_interval_ms = 0;
  unsigned probe_timeout_ms = 0;
};

// Runs the agent until SIGTERM/SIGINT (graceful leave, exit 0) or a second signal. Returns the
// process exit code; prints a one-line reason to stderr on failure.
int run_agent(const AgentOptions& options);

}  // namespace shoal::bin
