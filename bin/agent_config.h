#pragma once

// The agent's configuration, in two steps. AgentOptions holds the flags as given (strings, as the
// command line, the environment and the config file say them; bin/main.cpp folds the three).
// parse_agent_options() turns them into an AgentConfig, or a one-line reason naming the flag: a
// pure function (it reads no file and no clock), so every rule is unit-tested
// (tests/unit/bin/agent_config_test.cpp). The agent reads the key file and binds sockets later,
// with errors of their own.

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cluster/address.h"
#include "cluster/map_store.h"
#include "cluster/uv/seed_resolver.h"
#include "cluster/wire.h"
#include "shoal/version.h"
#include "supervisor/child_spec.h"
#include "supervisor/exec_policy.h"
#include "supervisor/stack.h"

namespace shoal::bin {

inline constexpr const char* kShoalVersion = SHOAL_VERSION_STRING;  // the project's version

// The flags of `shoal agent`, as given. Defaults are the documented ones.
struct AgentOptions {
  std::string name;  // default: hostname:port
  std::string bind = "127.0.0.1:7946";
  std::string advertise;                // default: the bind address
  std::vector<std::string> join;        // seeds, host:port
  std::string discovery = "multicast";  // multicast | seeds | none
  std::string multicast_group = "239.255.77.46:7900";
  std::string key_file;
  bool insecure = false;                    // allows a non-loopback --bind without --key-file
  std::vector<std::string> tags;            // k=v
  std::vector<std::string> register_names;  // names the agent registers for itself at start
  std::vector<std::string> children;        // "NAME=COMMAND ARGS..."
  std::vector<std::string> workers;         // "NAME=TYPE"
  std::string exec = "allow";               // allow | deny: commands the cluster may run here
  std::vector<std::string> exec_allow;      // globs: only these executables (implies allow)
  std::string mode = "ap";                  // ap | quorum
  unsigned expect = 0;
  unsigned quorum_fence_ms = 2'000;
  unsigned quorum_lease_ms = 0;  // 0: the safe bound
  std::string rpc;
  std::string data_dir;
  std::string fsync = "snapshot";  // never | snapshot | always
  std::string http;
  std::string log_level = "info";
  unsigned stats_interval_ms = 0;
  unsigned probe_interval_ms = 0;  // 0: the default
  unsigned probe_timeout_ms = 0;
};

enum class Discovery { multicast, seeds, none };

// What the agent runs with: every flag checked and typed.
struct AgentConfig {
  std::string name;
  cluster::Address bind;
  std::optional<cluster::Address> advertise;
  std::vector<cluster::SeedSpec> seeds;
  Discovery discovery = Discovery::multicast;
  cluster::Address multicast_group;
  std::string key_file;  // empty: no encryption
  // Set when --insecure let a node bind a non-loopback address without a key: the agent warns at
  // start and every hour. False in every other case (the flag changes nothing there).
  bool insecure = false;
  cluster::Tags tags;
  std::vector<std::string> register_names;
  std::vector<supervisor::ChildSpec> children;  // exec children and workers added at start
  // What this node lets the cluster run (advertised in the tag "shoal.exec" unless it is any).
  supervisor::ExecPolicy exec_policy;
  std::string data_dir;
  std::string rpc_path;
  cluster::StoreOptions::Fsync fsync = cluster::StoreOptions::Fsync::snapshot;
  std::string http;  // ip:port, empty: off
  supervisor::LogLevel log_level = supervisor::LogLevel::info;
  std::uint64_t stats_interval_ms = 0;
  // Membership timing, the supervisor's mode and lease, the stack's startup settle (0 when
  // discovery is none: a standalone node places at once).
  supervisor::StackConfig stack;
  // quorum: the least safe lease for this timing; a configured lease below it is warned about.
  std::uint64_t safe_lease_ms = 0;
};

// `hostname` names the node when --name is not given ("hostname:port").
std::expected<AgentConfig, std::string> parse_agent_options(const AgentOptions& options,
                                                            const std::string& hostname);

std::optional<supervisor::LogLevel> parse_log_level(std::string_view text);

// The agent's flags that may be given more than once (and as a list in the config file).
bool repeatable_flag(std::string_view flag);

// The config file: one `flag = value` per line, TOML/INI style. A value is a "quoted string" (with
// \" and \\ escapes), a bare word or number, or a list ["a", "b"] (repeatable flags only). '#'
// and ';' start comments; a [section] header is allowed and ignored; '_' in a flag reads as '-'.
// Returns the (flag, values) pairs in file order, or a reason naming `path` and the line.
using ConfigEntries = std::vector<std::pair<std::string, std::vector<std::string>>>;
std::expected<ConfigEntries, std::string> parse_config(std::string_view text,
                                                       const std::string& path);

}  // namespace shoal::bin
