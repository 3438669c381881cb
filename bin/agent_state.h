#pragma once

// The agent's state, shared by its files: agent.cpp (startup, the loop, signals) and
// agent_rpc.cpp (the RPC commands). Loop-bound: everything here runs on the agent's one loop.

#include <fmt/format.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <expected>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "bin/agent.h"
#include "bin/http/server.h"
#include "bin/rpc/server.h"
#include "bin/rpc/value.h"
#include "cluster/map_store.h"
#include "cluster/uv/multicast_discovery.h"
#include "cluster/uv/seed_resolver.h"
#include "cluster/uv/uv_membership.h"
#include "registry/registry.h"
#include "supervisor/supervisor.h"
#include "supervisor/uv/exec_runtime.h"
#include "supervisor/worker.h"

namespace shoal::bin {

inline std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// 2026-11-23T17:40:01.123Z
inline std::string timestamp() {
  const std::uint64_t ms = wall_ms();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, ms % 1000);
}

inline int level_rank(const std::string& level) {
  if (level == "debug") return 0;
  if (level == "info") return 1;
  if (level == "warn") return 2;
  if (level == "error") return 3;
  return -1;
}

struct Logger {
  int threshold = 1;
  template <typename... Args>
  void log(int rank, const char* level, const char* component, fmt::format_string<Args...> f,
           Args&&... args) const {
    if (rank < threshold) return;
    std::string line = fmt::format("{} {} {} ", timestamp(), level, component);
    line += fmt::format(f, std::forward<Args>(args)...);
    line += '\n';
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
  }
};

inline std::string hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

struct Agent;
void registry_tick_impl(uv_timer_t* timer);
// Starts a graceful leave (drain, then leave the cluster, then exit 0); `why` goes to the log.
void begin_leave(Agent* agent, const std::string& why);
// The RPC commands (agent_rpc.cpp): one request, and a client that went away.
void handle_rpc(Agent& agent, rpc::ClientId client, rpc::Request request);
void rpc_closed(Agent& agent, rpc::ClientId client);
// Runs a read-only RPC command (members, names, ps, info...) and returns its result.
std::expected<rpc::Value, std::string> query(Agent& agent, std::string_view cmd,
                                             const rpc::Value& args);
// The --http endpoint's answer to GET `path` (agent_http.cpp).
http::Response http_request(Agent& agent, const std::string& path, const std::string& query);
// Key rotation (agent_keys.cpp).
void publish_keys(Agent& agent);
std::expected<void, std::string> apply_key_op(Agent& agent, std::string_view op,
                                              const cluster::Key& key);
void broadcast_key_op(Agent& agent, std::string_view op, const cluster::Key& key);
std::map<std::string, std::pair<std::size_t, std::size_t>> key_census(Agent& agent,
                                                                      std::size_t& members);
void on_user_message(Agent& agent, const cluster::UserMessage& message);
// Sends an event to the `watch` clients whose prefix `subject` (a name) starts with.
void rpc_event(Agent& agent, const std::string& subject, const rpc::Value& event);
// The registration meta of a child that runs here (see agent_rpc.cpp).
std::string child_meta(std::optional<int> os_pid, std::uint64_t restarts, bool worker);

// Longest a graceful leave waits for the children to move before stopping them.
constexpr std::uint64_t kDrainTimeoutMs = 15'000;
// A starting node places no child until it sees a peer or this long has passed with none: children
// are not started on every node that boots alone for a moment (a node with --discovery none and no
// seeds places at once).
constexpr std::uint64_t kStartupSettleMs = 2'000;

struct Agent {
  uv_loop_t* loop = nullptr;
  std::unique_ptr<cluster::UvMembership> membership;
  std::unique_ptr<cluster::UvMulticastDiscovery> discovery;
  std::unique_ptr<cluster::UvSeedResolver> resolver;
  std::unique_ptr<registry::Registry> registry;
  std::unique_ptr<supervisor::Supervisor> supervisor;
  std::unique_ptr<supervisor::ExecRuntime> runtime;
  std::unique_ptr<cluster::MapStore> store;  // the map on disk (data dir)
  bool store_failed = false;
  supervisor::WorkerRuntime workers;
  uv_timer_t worker_timer{};  // ticks the in-process workers
  bool worker_reports();
  std::size_t children_here() const { return (runtime ? runtime->size() : 0) + workers.size(); }
  uv_timer_t supervisor_timer{};  // the supervisor's next restart
  uv_timer_t drain_timer{};       // graceful leave: waits for the children to be handed over
  std::uint64_t drain_deadline = 0;
  bool left = false;  // the membership leave has begun
  void drive_supervisor();
  uv_timer_t registry_timer{};  // refreshes the live view and purges dead owners' names
  uv_timer_t settle_timer{};    // the end of the startup settle (kStartupSettleMs)
  bool placing = false;         // the supervisor has been given a view
  bool had_quorum = false;      // quorum mode: as last logged
  bool view_changed = true;
  static void registry_tick(uv_timer_t* timer) { registry_tick_impl(timer); }
  uv_timer_t resolve_timer{};
  uv_signal_t sigterm{};
  uv_signal_t sigint{};
  uv_timer_t leave_timer{};
  uv_timer_t report_timer{};  // logs rejected traffic once a second when there was some
  std::pair<std::size_t, std::size_t> reported_children{SIZE_MAX, SIZE_MAX};  // children, here
  uv_timer_t stats_timer{};                                                   // --stats-interval-ms
  std::uint64_t reported_auth = 0;
  std::uint64_t reported_malformed = 0;
  std::uint64_t reported_replay = 0;
  int signals = 0;
  bool leaving = false;  // begin_leave() ran
  Logger log;

  // The RPC socket, and what its clients asked for.
  std::unique_ptr<rpc::RpcServer> rpc;
  std::unique_ptr<http::HttpServer> http;         // --http
  std::map<rpc::ClientId, std::string> watchers;  // `watch` streams: client -> key prefix
  std::uint64_t started_ms = 0;                   // uv_now() at start
  std::uint64_t next_local_id = 0;                // ids of pids the agent holds itself
  std::string data_dir;
  std::string key_file;  // --key-file: rewritten after a key rotation
  std::string mode = "ap";
};

}  // namespace shoal::bin
