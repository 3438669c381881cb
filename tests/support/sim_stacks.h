#pragma once

// SimStacks: a simulated cluster whose nodes each run a whole supervisor::Stack (membership,
// replication, registry, supervisor, workers), and a fake OS for their exec children. A sim test of
// the upper layers is a SimStacks plus assertions: the layers are wired by the Stack, as in the
// agent; what is here is only the OS the agent's ExecRuntime would be.
//
// The fake OS: a start runs the child at once (unless the test made it crash on start: it then
// exits at once with status 1); a stop ends it at once, after storing a final checkpoint
// "final@NODE#ID" when the stop is a state handover (unless the node's runtime ignores SIGTERM:
// then the child ends at the kill after its shutdown timeout, delivered with the node's next
// input once that time has come); a killed node's children die with it (a
// child never outlives its agent); a remote command (shoal exec) prints its arguments on stdout
// and exits with status 0 at once. Registry events, and what messaging hands the owner, are kept
// per node. With SHOAL_SIM_TRACE set,
// every registry event and log line of every stack is printed with its virtual time.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cluster/sim/sim_cluster.h"
#include "supervisor/stack.h"

namespace shoal::test {

class SimStacks {
 public:
  // What one node's fake OS runs, and what it was asked to do.
  struct Runtime {
    std::map<std::string, std::uint64_t> running;  // child name -> instance id
    std::map<std::string, int> starts;
    std::map<std::string, int> stops;
    std::map<std::string, std::optional<std::string>> last_checkpoint;  // handed at the last start
    std::map<std::string, std::string> final_checkpoint;  // stored by the last handover stop here
    std::set<std::string> crash_on_start;                 // these exit at once
    std::set<std::string> ignore_stop;  // these never end when stopped (the OS is stuck)
    // The children here ignore SIGTERM: a stop ends one only at the kill after its shutdown
    // timeout (and it stores no final checkpoint).
    bool ignore_sigterm = false;
    std::map<std::string, std::vector<std::uint64_t>> started_at;  // virtual time of each start
  };

  // N stacks named n0..n{N-1}, joined through n0.
  SimStacks(std::size_t n, std::uint64_t seed, supervisor::StackConfig config = {},
            cluster::sim::SimNetConfig net = {});
  // The simulator's hooks point here.
  SimStacks(const SimStacks&) = delete;
  SimStacks& operator=(const SimStacks&) = delete;

 private:
  // Worker types every stack (and every later life) has; before `c`, which makes stacks.
  std::vector<std::pair<std::string, supervisor::WorkerFactory>> types_;

 public:
  cluster::sim::SimCluster c;

  // A worker type for every node's stack, now and after restarts.
  void add_worker_type(const std::string& type, supervisor::WorkerFactory factory);
  // What reached node i's owner: messages for ids that are not workers', the ends of calls made
  // through stack(i).messenger() directly, and the events of remote commands started there.
  std::vector<messaging::Deliver>& inbox(std::size_t i) { return inboxes_.at(i); }
  std::map<std::uint64_t, messaging::CallResult>& call_results(std::size_t i) {
    return call_results_.at(i);
  }
  std::vector<messaging::TaskEvent>& task_events(std::size_t i) { return task_events_.at(i); }

  supervisor::Stack& stack(std::size_t i);
  registry::Registry& reg(std::size_t i) { return stack(i).registry(); }
  supervisor::Supervisor& sup(std::size_t i) { return stack(i).supervisor(); }
  Runtime& rt(std::size_t i) { return runtimes_.at(i); }
  const Runtime& rt(std::size_t i) const { return runtimes_.at(i); }
  // Registry events node i's stack reported (in its current life).
  std::vector<registry::RegistryEvent>& events(std::size_t i) { return events_.at(i); }
  const supervisor::StackConfig& config() const { return config_; }

  // After API calls on node i's parts (reg(i).register_name(...), sup(i).add(...)).
  void settle(std::size_t i) { c.settle(i); }
  void settle_all();
  // Runs until pred() holds, checking every 10 ms of virtual time.
  bool wait(const std::function<bool()>& pred, std::uint64_t timeout_ms) {
    return c.wait_until(pred, timeout_ms, 10);
  }
  void kill(std::size_t i);
  // A new life of node i (a new stack), joined through `seeds`.
  void restart(std::size_t i, const std::vector<std::size_t>& seeds);

  // Copies of `name` running on running nodes in `among` (every running node if empty).
  int copies(const std::string& name, const std::vector<std::size_t>& among = {}) const;
  // The running node that runs `name`, or size() if none.
  std::size_t runner_of(const std::string& name) const;
  // Sum over every node's runtime of starts (or stops) of `name`.
  int total(const std::map<std::string, int> Runtime::*field, const std::string& name) const;
  // Every child in `names` runs exactly once, and every running node's registry answers that
  // copy's pid.
  bool settled(const std::vector<std::string>& names);

 private:
  // What node i's stack has for its owner: the fake OS's part.
  void serve(std::size_t i);
  void serve(std::size_t i, std::vector<supervisor::StackOutput>& outputs);

  // Stops of SIGTERM-ignoring children that end at `due` with a kill.
  struct PendingKill {
    std::uint64_t due;
    std::string name;
    std::uint64_t id;
  };

  const supervisor::StackConfig config_;
  std::vector<Runtime> runtimes_;
  std::vector<std::vector<PendingKill>> pending_kills_;  // per node
  std::vector<std::vector<registry::RegistryEvent>> events_;
  std::vector<std::vector<messaging::Deliver>> inboxes_;
  std::vector<std::map<std::uint64_t, messaging::CallResult>> call_results_;
  std::vector<std::vector<messaging::TaskEvent>> task_events_;
  const bool trace_;
};

}  // namespace shoal::test
