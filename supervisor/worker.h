#pragma once

// In-process workers: the supervisor's `worker` children, run on the node's loop.
//
// The embedding program registers worker types with factories (WorkerRuntime::add_type); a child
// spec of kind `worker` names one. A worker is started with its last checkpoint, may store a new
// one (WorkerContext::checkpoint) and end itself (WorkerContext::exit), sends, calls and publishes
// to names, groups and pids and receives messages and calls (on_message, WorkerContext::reply), is
// ticked with the time, and is asked to stop when the supervisor stops it (it may finish its work
// first: the runtime reports the exit once the worker called exit(), or forces it after the
// spec's shutdown timeout). A stop that moves the child with handoff state (child_spec.h) is a
// handover: a checkpoint the worker stores before it exits is what its next copy starts from.
//
// WorkerRuntime is sans-IO like the supervisor: the driver passes the time, forwards StartChild /
// StopChild effects of worker children to it, calls tick() from a timer, and hands the
// supervisor what it reports (started, exited, checkpoints). Not thread-safe.
//
// Built in: "idle" (runs until stopped), "counter" (counts once per tick interval and checkpoints
// its count every second and on a handover, so a failover resumes from the last checkpoint and a
// graceful move from the final count) and "echo" (answers every call with its payload, and counts
// what it is sent).

#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "messaging/messenger.h"
#include "supervisor/supervisor.h"

namespace shoal::supervisor {

// A message to a worker. The views live as long as the on_message() call.
struct Message {
  registry::Pid from;
  std::string_view payload;
  // Set for a call: answer it with WorkerContext::reply() (now or later), once.
  std::optional<messaging::ReplyTo> reply_to;
};

class WorkerContext {
 public:
  virtual ~WorkerContext() = default;
  virtual const std::string& name() const = 0;
  virtual std::uint64_t now() const = 0;
  // This copy's pid: its child name is registered to it while it runs (and holds the name).
  virtual registry::Pid self() const = 0;
  // Stores a checkpoint (the supervisor bounds its size).
  virtual void checkpoint(std::string_view blob) = 0;
  // Ends the worker: `normal` as an exec child's exit status 0.
  virtual void exit(bool normal, std::string how) = 0;
  // True once a stop asked this copy to hand its state on (see above): store the final state
  // with checkpoint() before exit(). A checkpoint of a stopping copy that is not handing over is
  // refused (its successor may already run).
  virtual bool handing_over() const = 0;

  // Messaging (semantics: messaging/messenger.h), from this copy's pid.
  virtual std::expected<void, messaging::CallError> send(const messaging::Target& to,
                                                         std::string_view payload) = 0;
  // `done` runs on the loop with the reply or the error, unless the worker ended first.
  using CallFn = std::function<void(WorkerContext& ctx, messaging::CallResult result)>;
  virtual void call(const messaging::Target& to, std::string_view payload, std::uint64_t timeout_ms,
                    CallFn done) = 0;
  virtual std::expected<std::size_t, messaging::CallError> publish(std::string_view group,
                                                                   std::string_view payload) = 0;
  virtual void reply(const messaging::ReplyTo& to, std::string_view payload) = 0;
  // Makes this copy a member of `group` (publish to the group reaches it), or no longer one.
  virtual bool join(std::string_view group) = 0;
  virtual bool leave(std::string_view group) = 0;
};

class Worker {
 public:
  virtual ~Worker() = default;
  // Called once; `checkpoint`: the last one stored by any copy of this child.
  virtual void start(WorkerContext& ctx, const std::optional<std::string>& checkpoint) = 0;
  // Asked to stop; call ctx.exit() when done (at once, by default).
  virtual void stop(WorkerContext& ctx) { ctx.exit(true, "stopped"); }
  // A message sent or a call made to this copy's pid (or name, or a group it joined).
  virtual void on_message(WorkerContext& /*ctx*/, const Message& /*msg*/) {}
  virtual void on_tick(WorkerContext& /*ctx*/) {}
  // Whether on_tick is wanted. One that says no costs nothing per tick while it runs (a node
  // holding 20,000 idle workers would otherwise call all of them ten times a second).
  virtual bool ticks() const { return true; }
};

using WorkerFactory = std::function<std::unique_ptr<Worker>()>;

struct WorkerReport {
  enum class Kind { started, exited, checkpoint };
  Kind kind;
  std::string name;
  std::uint64_t id;
  bool normal = true;  // exited
  std::string text;    // exited: how; checkpoint: the blob
};

class WorkerRuntime {
 public:
  // Registers "idle", "counter" and "echo".
  WorkerRuntime();
  ~WorkerRuntime();
  WorkerRuntime(const WorkerRuntime&) = delete;
  WorkerRuntime& operator=(const WorkerRuntime&) = delete;
  // Adds (or replaces) a worker type.
  void add_type(std::string type, WorkerFactory factory);
  // The messenger and registry the workers talk through, and this node's life (the Stack gives
  // them). Without, a worker's messaging calls fail with noproc.
  void attach(messaging::Messenger* messenger, registry::Registry* registry, cluster::Life self);
  bool has_type(std::string_view type) const { return types_.contains(std::string(type)); }

  void start(std::uint64_t now_ms, const StartChild& start);
  void stop(std::uint64_t now_ms, const StopChild& stop);
  // Hands a message for local id `to` to the worker with that instance id; false if none runs.
  bool deliver(std::uint64_t now_ms, const messaging::Deliver& d);
  // A call one of the workers made ended; false if it was not a worker's.
  bool on_call_done(std::uint64_t now_ms, const messaging::CallDone& done);
  // Ticks every worker that ticks(), and forces stops past their timeout.
  void tick(std::uint64_t now_ms);

  std::size_t size() const { return running_.size(); }
  // Whether tick() has anything to do.
  bool ticking() const { return !ticking_.empty(); }
  bool runs(std::string_view name) const { return running_.contains(name); }
  bool runs_instance(std::uint64_t id) const { return by_id_.contains(id); }
  void take_reports(std::vector<WorkerReport>& out);

 private:
  struct Running;
  void finish(Running& r, bool normal, std::string how);
  void reap();

  std::map<std::string, WorkerFactory, std::less<>> types_;
  std::map<std::string, std::unique_ptr<Running>, std::less<>> running_;
  std::map<std::uint64_t, Running*> by_id_;  // instance id -> running worker
  // What tick() visits: the running workers that tick, and those asked to stop (their timeout).
  std::set<std::string, std::less<>> ticking_;
  struct PendingCall {
    std::uint64_t worker;  // instance id
    WorkerContext::CallFn done;
  };
  std::map<std::uint64_t, PendingCall> calls_;  // messenger call id -> who waits
  messaging::Messenger* messenger_ = nullptr;
  registry::Registry* registry_ = nullptr;
  cluster::Life self_;
  std::vector<WorkerReport> reports_;
  std::vector<std::string> finished_;  // ended, to be erased by reap()
  std::uint64_t now_ = 0;
};

}  // namespace shoal::supervisor
