#pragma once

// In-process workers: the supervisor's `worker` children, run on the node's loop.
//
// The embedding program registers worker types with factories (WorkerRuntime::add_type); a child
// spec of kind `worker` names one. A worker is started with its last checkpoint, may store a new
// one (WorkerContext::checkpoint) and end itself (WorkerContext::exit), receives messages, is
// ticked with the time, and is asked to stop when the supervisor stops it (it may finish its work
// first: the runtime reports the exit once the worker called exit(), or forces it after the
// spec's shutdown timeout).
//
// WorkerRuntime is sans-IO like the supervisor: the driver passes the time, forwards StartChild /
// StopChild effects of worker children to it, calls tick() from a timer, and hands the
// supervisor what it reports (started, exited, checkpoints). Not thread-safe.
//
// Built in: "idle" (runs until stopped) and "counter" (counts once per tick interval and
// checkpoints its count every second, so a failover resumes from the last checkpoint).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "supervisor/supervisor.h"

namespace shoal::supervisor {

class WorkerContext {
 public:
  virtual ~WorkerContext() = default;
  virtual const std::string& name() const = 0;
  virtual std::uint64_t now() const = 0;
  // Stores a checkpoint (the supervisor bounds its size).
  virtual void checkpoint(std::string_view blob) = 0;
  // Ends the worker: `normal` as an exec child's exit status 0.
  virtual void exit(bool normal, std::string how) = 0;
};

class Worker {
 public:
  virtual ~Worker() = default;
  // Called once; `checkpoint`: the last one stored by any copy of this child.
  virtual void start(WorkerContext& ctx, const std::optional<std::string>& checkpoint) = 0;
  // Asked to stop; call ctx.exit() when done (at once, by default).
  virtual void stop(WorkerContext& ctx) { ctx.exit(true, "stopped"); }
  virtual void on_message(WorkerContext& /*ctx*/, std::string_view /*payload*/) {}
  virtual void on_tick(WorkerContext& /*ctx*/) {}
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
  // Registers "idle" and "counter".
  WorkerRuntime();
  ~WorkerRuntime();
  WorkerRuntime(const WorkerRuntime&) = delete;
  WorkerRuntime& operator=(const WorkerRuntime&) = delete;
  // Adds (or replaces) a worker type.
  void add_type(std::string type, WorkerFactory factory);
  bool has_type(std::string_view type) const { return types_.contains(std::string(type)); }

  void start(std::uint64_t now_ms, const StartChild& start);
  void stop(std::uint64_t now_ms, const StopChild& stop);
  // Delivers a message to a running worker; false if none by that name runs here.
  bool send(std::uint64_t now_ms, std::string_view name, std::string_view payload);
  // Ticks every worker, and forces stops past their timeout.
  void tick(std::uint64_t now_ms);

  std::size_t size() const { return running_.size(); }
  bool runs(std::string_view name) const { return running_.contains(name); }
  void take_reports(std::vector<WorkerReport>& out);

 private:
  struct Running;
  void finish(Running& r, bool normal, std::string how);
  void reap();

  std::map<std::string, WorkerFactory, std::less<>> types_;
  std::map<std::string, std::unique_ptr<Running>, std::less<>> running_;
  std::vector<WorkerReport> reports_;
  std::vector<std::string> finished_;  // ended, to be erased by reap()
  std::uint64_t now_ = 0;
};

}  // namespace shoal::supervisor
