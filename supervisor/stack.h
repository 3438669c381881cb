#pragma once

// Stack: one node's whole stack as one sans-IO core: membership and the map's replication
// (cluster::Node), the registry of names and groups, messaging, the supervisor, and the
// in-process workers.
// It is the one place where a layer's outputs become the next layer's inputs. The agent runs it on
// libuv (cluster/uv/uv_driver.h), the simulator runs many (cluster/sim/sim_cluster.h), the
// benches drive it directly; nothing above it wires the layers again.
//
// What happens when a member dies, in order:
//  1. Membership declares it failed (an input: a packet, a timer). The Node makes the live set the
//     replicator's peers at once; the Stack notes that the view changed and schedules a turn.
//  2. The turn hands the view down: first to the registry (the dead member's names stop
//     answering at once), then to messaging (the dead member's connection closes, the calls
//     waiting on it fail with nodedown), then to the supervisor (every survivor computes the new
//     owners of the dead member's children and starts its share), then the registry purges the
//     dead owners' entries (one node does it, chosen by rendezvous).
//  3. Then the map's changes, local writes and what peers sent, in order: each goes to the
//     registry (events: registered, moved, conflict...), then to the supervisor (child specs,
//     failure and draining marks), then the registry's events go to the supervisor (a child's
//     name that went elsewhere).
//  4. Then the supervisor's timers (restarts after backoff, reconciliation) and the workers' ticks.
//  5. Then the supervisor's effects: a worker's start or stop goes to the WorkerRuntime, whose
//     reports (started, exited, checkpoint) go back to the supervisor until both are quiet; an exec
//     child's goes out to the owner (StartChild, StopChild), whose OS runtime reports back with
//     on_child_started(), on_child_start_failed() and on_child_exited().
//
// Messages arrive with connection inputs (on_conn_*) at any time: one for a worker goes to it at
// once (WorkerRuntime::deliver), any other local receiver's goes out to the owner (Deliver: an exec
// child's mailbox, the CLI's); a call's end goes to the worker that made it, or out (CallDone).
// A worker's, and an exec child's, pid can receive from the moment it starts until it ends.
//
// A turn runs in on_timer(). An input that leaves work (a member event, a map change) makes
// next_deadline() its own time, so the driver runs the turn right after it sent what the input
// queued: the network goes first, and a bulk write's thousands of local changes never delay the
// batch that carries them.
//
// Outputs: the Node's and messaging's (Core::take_effects: datagrams, streams, connections, member
// events, user messages), and take_outputs(): exec children to start and stop, registry events,
// messages for the owner's receivers, calls and remote commands of the owner's, log lines, and
// Left once a graceful leave has been announced (the owner may stop after a few gossip rounds).
//
// Loop-bound, not thread-safe.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cluster/config.h"
#include "cluster/core.h"
#include "cluster/node.h"
#include "cluster/replicator.h"
#include "messaging/messenger.h"
#include "registry/registry.h"
#include "supervisor/supervisor.h"
#include "supervisor/worker.h"

namespace shoal::supervisor {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };
const char* level_name(LogLevel level);

struct StackConfig {
  cluster::MembershipConfig membership;
  cluster::ReplicatorConfig replication;
  registry::RegistryLimits registry;
  messaging::MessengerConfig messaging;
  SupervisorConfig supervisor;
  // A starting node places no child until it sees a peer or this long has passed with none, so
  // that a node that boots alone for a moment does not start every child. 0: place at once (a
  // standalone node).
  std::uint64_t startup_settle_ms = 2'000;
  // The live view is handed down on every membership change and at least this often; dead
  // owners' names are purged then.
  std::uint64_t refresh_every_ms = 5'000;
  // In-process workers are ticked this often.
  std::uint64_t worker_tick_ms = 100;
  // A graceful leave waits this long at most for the children here to move.
  std::uint64_t drain_timeout_ms = 15'000;
  // Log lines below this level are not made.
  LogLevel log_level = LogLevel::info;
};

// A line for the node's log: `component` as in the agent's log ("supervisor", "registry",
// "agent"), `text` the message and its key=value fields.
struct LogLine {
  LogLevel level;
  const char* component;
  std::string text;
};
// Membership's leave has been announced: the owner stops the node after a few gossip rounds.
struct Left {};
// A child instance's life on this node, for watchers (every start is one event: the failover
// benchmark counts copies from these). `detail`: stopping: the reason; stopped, exited,
// start_failed: how it ended.
struct ChildEvent {
  enum class Kind { started, stopping, stopped, exited, start_failed };
  Kind kind;
  std::string name;
  std::uint64_t id;
  std::string detail;
};
const char* child_event_name(ChildEvent::Kind kind);
using StackOutput = std::variant<StartChild, StopChild, registry::RegistryEvent, LogLine, Left,
                                 ChildEvent, messaging::Deliver, messaging::CallDone,
                                 messaging::TaskRequest, messaging::TaskEvent>;

struct StackStats {
  std::uint64_t turns = 0;
  std::uint64_t changes = 0;  // map changes handed to the layers
  std::uint64_t purged = 0;   // registry entries this node removed for dead owners
};

class Stack final : public cluster::Core {
 public:
  Stack(StackConfig config, cluster::NodeIdentity self, std::uint64_t seed, std::uint64_t now_ms);
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  // --- Core ---
  void on_packet(std::uint64_t now_ms, const cluster::Address& from,
                 std::string_view bytes) override;
  void on_unreachable(std::uint64_t now_ms, const cluster::Address& to) override;
  std::string on_stream_request(std::uint64_t now_ms, const cluster::Address& from,
                                std::string_view bytes) override;
  void on_stream_reply(std::uint64_t now_ms, std::uint64_t id, std::string_view bytes) override;
  void on_stream_failed(std::uint64_t now_ms, std::uint64_t id) override;
  void on_timer(std::uint64_t now_ms) override;
  void on_conn_up(std::uint64_t now_ms, cluster::ConnId id) override;
  void on_conn_accepted(std::uint64_t now_ms, cluster::ConnId id,
                        const cluster::Address& from) override;
  void on_conn_data(std::uint64_t now_ms, cluster::ConnId id, std::string_view bytes) override;
  void on_conn_sent(std::uint64_t now_ms, cluster::ConnId id, std::size_t bytes) override;
  void on_conn_down(std::uint64_t now_ms, cluster::ConnId id) override;
  void settle(std::uint64_t now_ms) override;
  bool pending() const override { return node_.pending() || messenger_.pending(); }
  void flush(std::uint64_t now_ms) override;
  std::uint64_t next_deadline() const override;
  void take_effects(std::vector<cluster::Effect>& out) override;
  // The layers consume every change: none is handed out.
  void take_changes(std::vector<cluster::ReplicaChange>&) override {}
  cluster::Membership& membership() override { return node_.membership(); }
  const cluster::Membership& membership() const override { return node_.membership(); }
  cluster::Replicator* replicator() override { return node_.replicator(); }
  const cluster::Replicator* replicator() const override { return node_.replicator(); }

  // --- Inputs from the runtime of exec children (the owner's) ---
  // Instance `id` of child `name` runs as OS process `os_pid`.
  void on_child_started(std::uint64_t now_ms, std::string_view name, std::uint64_t id, int os_pid);
  // It could not be started (`why`, for people).
  void on_child_start_failed(std::uint64_t now_ms, std::string_view name, std::uint64_t id,
                             std::string why);
  // It ended: `normal` for exit status 0; `how` for people ("exit status 1", "signal KILL").
  void on_child_exited(std::uint64_t now_ms, std::string_view name, std::uint64_t id, bool normal,
                       std::string how);

  // --- API ---
  // A graceful leave: the children here are handed over (Supervisor::drain), then membership's
  // leave is announced once none runs here, or after drain_timeout_ms (Left is output then).
  // `why` goes to the log.
  void leave(std::uint64_t now_ms, std::string_view why);
  bool leaving() const { return leaving_; }
  bool left() const { return left_; }
  // Calls `target` from local id `from`; `done` runs on the loop with the reply or the error (at
  // once when it fails at once). Calls made on messenger() directly end as CallDone outputs.
  using CallFn = std::function<void(messaging::CallResult)>;
  void call(std::uint64_t now_ms, const messaging::Target& target, std::uint64_t from,
            std::string_view payload, std::uint64_t timeout_ms, CallFn done);
  // The parts, for reads and API calls (then settle(now)). Writes through them are the node's
  // own: registry().register_name(...), supervisor().add(...).
  cluster::Node& node() { return node_; }
  const cluster::Node& node() const { return node_; }
  registry::Registry& registry() { return registry_; }
  const registry::Registry& registry() const { return registry_; }
  messaging::Messenger& messenger() { return messenger_; }
  const messaging::Messenger& messenger() const { return messenger_; }
  Supervisor& supervisor() { return supervisor_; }
  const Supervisor& supervisor() const { return supervisor_; }
  WorkerRuntime& workers() { return workers_; }
  const WorkerRuntime& workers() const { return workers_; }
  // True while the supervisor places children (see StackConfig::startup_settle_ms).
  bool placing() const { return placing_; }
  const StackStats& stats() const { return stats_; }

  // --- Outputs for the owner ---
  void take_outputs(std::vector<StackOutput>& out);

 private:
  // Drains the Node's effects and changes after an input (noting the work they leave), and hands
  // messaging's outputs to the workers or out.
  void route(std::uint64_t now);
  // Messaging's outputs: to the workers, or out. True if a worker took any.
  bool route_messages(std::uint64_t now);
  // Steps 2 to 5 of the header, and the graceful leave's progress.
  void turn(std::uint64_t now);
  void refresh_view(std::uint64_t now);
  void apply_changes(std::uint64_t now);
  // Hands the supervisor's effects to the workers (or out) and the workers' reports back, until
  // both are quiet.
  void drive(std::uint64_t now);
  bool worker_reports(std::uint64_t now);
  void check_drain(std::uint64_t now);
  void leave_now(std::uint64_t now);
  bool logs(LogLevel level) const { return level >= config_.log_level; }
  void log(LogLevel level, const char* component, std::string text);
  // Whether the supervisor's copy of `name` is instance `id` and being stopped (its exit then is
  // routine).
  bool stopping(std::string_view name, std::uint64_t id) const;
  // A child instance (worker or exec) ended: its mailbox closes, the log and the watchers hear
  // of it, the supervisor decides what next.
  void ended(std::uint64_t now, std::string_view name, std::uint64_t id, bool normal,
             std::string how);

  // Fixed after construction.
  const StackConfig config_;

  // Changed by inputs.
  cluster::Node node_;
  registry::Registry registry_;
  messaging::Messenger messenger_;
  Supervisor supervisor_;
  WorkerRuntime workers_;
  std::vector<cluster::Effect> effects_;                     // for the driver
  std::vector<cluster::ReplicaChange> changes_;              // waiting for the next turn
  std::vector<StackOutput> outputs_;                         // for the owner
  std::vector<messaging::MessengerOutput> message_scratch_;  // reused: no allocation per turn
  std::map<std::uint64_t, bool> exec_starting_;              // instance id -> handed a checkpoint
  std::map<std::uint64_t, CallFn> calls_;                    // call id -> who waits (call())
  std::uint64_t now_ = 0;                                    // the time of the latest input
  bool view_changed_ = true;
  bool placing_ = false;
  bool had_quorum_ = false;
  std::uint64_t settle_at_ = 0;  // the end of the startup settle
  std::uint64_t next_refresh_ = 0;
  std::uint64_t next_tick_ = 0;
  bool leaving_ = false;
  bool left_ = false;
  std::uint64_t drain_deadline_ = 0;
  StackStats stats_;
};

}  // namespace shoal::supervisor
