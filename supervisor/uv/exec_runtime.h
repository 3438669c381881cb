#pragma once

// ExecRuntime: runs the supervisor's `exec` children as OS processes on a libuv loop.
//
// A child is forked and exec'd by hand, not with uv_spawn, because it must never outlive its
// agent: before exec it asks the kernel for SIGKILL when its parent dies (PR_SET_PDEATHSIG, kept
// across exec) and checks that the parent did not die meanwhile, so a kill -9 of the agent takes
// its children with it and failover never leaves two copies. Each child leads its own process
// group (stop and kill reach what it started too). Its exit is watched through a pidfd on the
// loop. stdout and stderr go to <log_dir>/<name>.log, capped: past max_log_bytes the log is copied
// to <name>.log.1 and truncated.
//
// A child gets SHOAL_CHILD_NAME, SHOAL_NODE, SHOAL_HANDOFF (its spec's handoff: with "state", a
// SIGTERM that moves it gives it until its shutdown timeout to store its final state with
// `shoal checkpoint`), the options' env (the agent's SHOAL_RPC) and, when it has one,
// SHOAL_CHECKPOINT_FILE: the path of a file holding its last checkpoint, written before it starts.
// Other SHOAL_* variables of the agent's environment are not passed on.
//
// A node whose exec policy (exec_policy.h) is not "any" resolves a child's command before it starts
// it (PATH searched, symlinks resolved), refuses one its policy does not allow, and runs exactly
// the path it checked.
//
// Stop is polite: SIGTERM to the group, then SIGKILL after the spec's shutdown timeout.
//
// Loop-bound. close() kills every child (SIGKILL) and closes the handles.

#include <uv.h>

#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "supervisor/exec_policy.h"
#include "supervisor/supervisor.h"

namespace shoal::supervisor {

struct ExecRuntimeOptions {
  std::string node;            // this node's name, for SHOAL_NODE
  std::string log_dir;         // per-child logs
  std::string checkpoint_dir;  // checkpoint files handed to children
  std::size_t max_log_bytes = 1024 * 1024;
  // More NAME=VALUE entries for every child (the agent adds SHOAL_RPC, its socket).
  std::vector<std::string> env;
  // What this node lets the cluster run (the agent's --exec, --exec-allow).
  ExecPolicy policy;
};

// The absolute, canonical path `argv0` runs: PATH searched when it has no '/' (the first
// executable regular file), else taken relative to `cwd` (empty: this process's working
// directory); symlinks and ".." resolved. Or why there is none.
std::expected<std::string, std::string> resolve_executable(const std::string& argv0,
                                                           const std::string& cwd);
// What to run for `argv0` under `policy`: empty under "any" (the command as given, PATH searched
// at exec), else the resolved path (as above) the policy allows, which is what must be exec'd;
// or why the policy refuses it.
std::expected<std::string, std::string> allowed_executable(const ExecPolicy& policy,
                                                           const std::string& argv0,
                                                           const std::string& cwd);

class ExecRuntime {
 public:
  // `normal`: exit status 0. `how`: "exit status N" or "signal NAME".
  using ExitFn = std::function<void(const std::string& name, std::uint64_t id, bool normal,
                                    const std::string& how)>;

  // Creates the directories. Returns a one-line reason if it cannot.
  static std::expected<std::unique_ptr<ExecRuntime>, std::string> create(uv_loop_t* loop,
                                                                         ExecRuntimeOptions options,
                                                                         ExitFn on_exit);
  ~ExecRuntime();
  ExecRuntime(const ExecRuntime&) = delete;
  ExecRuntime& operator=(const ExecRuntime&) = delete;

  // Starts the child; returns its OS pid, or why it could not start.
  std::expected<int, std::string> start(const StartChild& start);
  // Stops it politely (SIGTERM, SIGKILL after the timeout). Its exit is reported as usual.
  void stop(const StopChild& stop);
  // The OS pid of a running child.
  std::optional<int> os_pid(const std::string& name) const;
  std::size_t size() const { return procs_.size(); }
  // Kills every child and closes every handle; `done` runs when all are closed.
  void close(std::function<void()> done);

 private:
  struct Proc;
  ExecRuntime(uv_loop_t* loop, ExecRuntimeOptions options, ExitFn on_exit);
  std::string log_path(const std::string& name) const;
  void reaped(Proc* proc);
  void release(Proc* proc);
  void check_logs();

  uv_loop_t* loop_;
  const ExecRuntimeOptions options_;
  ExitFn on_exit_;
  std::map<std::string, Proc*> procs_;  // by child name
  uv_timer_t log_timer_{};
  int open_handles_ = 0;
  bool closing_ = false;
  std::function<void()> on_closed_;
};

// A file name for a child name (which may hold any bytes): safe characters kept, the rest
// replaced, and a hash of the whole name appended when anything was replaced.
std::string file_name_for(const std::string& child);

}  // namespace shoal::supervisor
