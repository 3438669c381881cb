#pragma once

// The agent's state, shared by its files. Each group of fields has one owner, the file that
// changes it; the others only read it:
//   node       agent.cpp       the libuv driver and the stack it runs, exec children, map on disk
//   endpoints  agent_rpc.cpp   the RPC socket and its watch streams; agent_http.cpp the HTTP one
//   messaging  agent_messaging.cpp  mailboxes, calls and commands the RPC clients wait for
//   discovery  agent.cpp       multicast announcements, seed resolution
//   life       agent.cpp       signals, the periodic reports, the final close
// Loop-bound: everything here runs on the agent's one loop.

#include <fmt/format.h>
#include <unistd.h>
#include <uv.h>

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <deque>
#include <expected>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "bin/agent.h"
#include "bin/agent_config.h"
#include "bin/http/server.h"
#include "bin/rpc/server.h"
#include "bin/rpc/value.h"
#include "cluster/map_store.h"
#include "cluster/uv/multicast_discovery.h"
#include "cluster/uv/seed_resolver.h"
#include "cluster/uv/uv_driver.h"
#include "supervisor/stack.h"
#include "supervisor/uv/exec_runtime.h"

namespace shoal::bin {

using cluster::wall_clock_ms;

// 2026-11-23T17:40:01.123Z
inline std::string timestamp() {
  const std::uint64_t ms = wall_clock_ms();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, ms % 1000);
}

// One line per event on stderr: "TIME LEVEL COMPONENT message key=value...".
struct Logger {
  using Level = supervisor::LogLevel;
  Level threshold = Level::info;

  bool enabled(Level level) const { return level >= threshold; }
  void line(Level level, std::string_view component, std::string_view text) const {
    if (!enabled(level)) return;
    std::string out =
        fmt::format("{} {} {} {}\n", timestamp(), supervisor::level_name(level), component, text);
    std::fputs(out.c_str(), stderr);
    std::fflush(stderr);
  }
  template <typename... Args>
  void log(Level level, std::string_view component, fmt::format_string<Args...> f,
           Args&&... args) const {
    if (enabled(level)) line(level, component, fmt::format(f, std::forward<Args>(args)...));
  }
};

inline std::string hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

struct Agent {
  Agent(uv_loop_t* l, const AgentConfig& c) : loop(l), config(c) { log.threshold = c.log_level; }

  // Fixed after start.
  uv_loop_t* loop;
  const AgentConfig& config;
  Logger log;
  std::uint64_t started_ms = 0;  // now() at start

  struct Node {
    std::unique_ptr<cluster::UvDriver> driver;
    supervisor::Stack* stack = nullptr;  // the driver's core
    std::unique_ptr<supervisor::ExecRuntime> runtime;
    std::unique_ptr<cluster::MapStore> store;
    bool store_failed = false;
  } node;

  struct Endpoints {
    std::unique_ptr<rpc::RpcServer> rpc;
    std::unique_ptr<http::HttpServer> http;
    std::map<rpc::ClientId, std::string> watchers;  // `watch` streams: client -> name prefix
    std::uint64_t next_local_id = 0;                // ids of pids the agent holds itself
    // Someone wants the events: a `watch` client or an HTTP event stream.
    bool watched() const { return !watchers.empty() || (http && http->streams() > 0); }
  } endpoints;

  struct Messaging {
    // What a local pid that is no worker's receives (agent_messaging.cpp has the rules).
    struct Mailbox {
      std::deque<messaging::Deliver> queue;
      std::size_t bytes = 0;
      std::optional<rpc::ClientId> reader;     // a `recv` stream
      std::uint64_t left = 0;                  // messages the reader still wants (0: all)
      std::string child;                       // an exec child's name ("": a recv client's)
      std::vector<std::string> names, groups;  // registered for a recv client
    };
    struct Task;                                       // a command run here for a peer
    std::map<std::uint64_t, Mailbox> mailboxes;        // by local id
    std::map<rpc::ClientId, std::uint64_t> receivers;  // recv stream -> mailbox
    std::map<std::uint64_t, std::pair<rpc::ClientId, std::string>> calls;  // call -> client, whom
    std::map<std::uint64_t, rpc::ClientId> tasks;                    // exec: task -> its stream
    std::map<std::pair<std::string, std::uint64_t>, Task*> running;  // (origin, task) run here
    std::uint64_t dropped = 0;  // sends that found no mailbox, or a full one
  } messaging;

  struct Discovery {
    std::unique_ptr<cluster::UvMulticastDiscovery> multicast;
    std::unique_ptr<cluster::UvSeedResolver> resolver;
    uv_timer_t resolve_timer{};
  } discovery;

  struct Life {
    uv_signal_t sigterm{};
    uv_signal_t sigint{};
    int signals = 0;
    uv_timer_t leave_timer{};     // closes everything a little after the leave was announced
    uv_timer_t report_timer{};    // snapshots, the supervisor summary, rejected traffic
    uv_timer_t stats_timer{};     // --stats-interval-ms
    uv_timer_t insecure_timer{};  // the hourly warning of --insecure
    std::pair<std::size_t, std::size_t> reported_children{SIZE_MAX, SIZE_MAX};
    std::uint64_t reported_auth = 0;
    std::uint64_t reported_malformed = 0;
    std::uint64_t reported_replay = 0;
    unsigned trim_ticks = 0;  // report ticks since the heap was last looked at (agent.cpp)
  } life;

  // The time of the node's core (the driver's clock: wall-clock ms, monotonic).
  std::uint64_t now() const { return node.driver->now(); }
  supervisor::Stack& stack() { return *node.stack; }
  const supervisor::Stack& stack() const { return *node.stack; }
  const cluster::Membership& membership() const { return node.stack->membership(); }
  registry::Registry& registry() { return node.stack->registry(); }
  supervisor::Supervisor& supervisor() { return node.stack->supervisor(); }
  // After API calls on the stack from outside a driver callback: route, send, re-arm.
  void settle() { node.driver->settle(); }
  // Children running here: exec processes and workers.
  std::size_t children_here() const {
    return (node.runtime ? node.runtime->size() : 0) + node.stack->workers().size();
  }
};

// Starts a graceful leave (hand the children over, leave the cluster, exit 0); `why` goes to the
// log. (agent.cpp)
void begin_leave(Agent& agent, std::string_view why);
// The RPC commands (agent_rpc.cpp): one request, and a client that went away.
void handle_rpc(Agent& agent, rpc::ClientId client, rpc::Request request);
void rpc_closed(Agent& agent, rpc::ClientId client);
// Runs a read-only RPC command (members, names, ps, info...) and returns its result.
std::expected<rpc::Value, std::string> query(Agent& agent, std::string_view cmd,
                                             const rpc::Value& args);
// Sends an event to the `watch` clients and the HTTP event streams whose prefix `subject` (a
// name) starts with.
void rpc_event(Agent& agent, const std::string& subject, const rpc::Value& event);
// The --http endpoint's answer to GET `path`, and an event for its event streams (agent_http.cpp).
http::Response http_request(Agent& agent, const std::string& path, const std::string& query);
void http_event(Agent& agent, const std::string& subject, const rpc::Value& event);
// Key rotation (agent_keys.cpp).
void publish_keys(Agent& agent);
std::expected<void, std::string> apply_key_op(Agent& agent, std::string_view op,
                                              const cluster::Key& key);
void broadcast_key_op(Agent& agent, std::string_view op, const cluster::Key& key);
std::map<std::string, std::pair<std::size_t, std::size_t>> key_census(Agent& agent,
                                                                      std::size_t& members);
void on_user_message(Agent& agent, const cluster::UserMessage& message);
// Messaging (agent_messaging.cpp): the RPC commands send, call, publish, recv, reply and exec
// (true if `request` was one of them: it is answered, or will be), a client that went away,
// what the stack hands over (true if `output` was messaging's), exec children's mailboxes, and
// the end of the commands run here.
bool handle_messaging_rpc(Agent& agent, rpc::ClientId client, const rpc::Request& request);
void messaging_client_closed(Agent& agent, rpc::ClientId client);
bool on_messaging_output(Agent& agent, supervisor::StackOutput& output);
void open_child_mailbox(Agent& agent, const std::string& child, std::uint64_t id);
void close_child_mailbox(Agent& agent, std::uint64_t id);
// A `recv` client's pid: its names and groups let go, its mailbox closed.
void release_receiver(Agent& agent, std::uint64_t id);
void close_messaging(Agent& agent);

}  // namespace shoal::bin
