#pragma once

// NetLab: the fault tests' own little network, built from Linux network namespaces.
//
//   host 0 ns        host 1 ns              switch ns
//   eth0 10.213.0.1  eth0 10.213.0.2  ...   br0 (bridge) with ports p0, p1, ...
//        \________________\______________veth pairs____/
//
// Each host is a namespace with one veth interface (`eth0`, 10.213.0.(i+1)/24) whose peer is a
// port of a bridge in a switch namespace of its own. The addresses exist only inside these
// namespaces; nothing is routed anywhere else. Faults are applied in the switch namespace:
//   - partitions and one-way cuts: an nftables table of the bridge family that drops frames by
//     source and destination address;
//   - loss, delay and jitter (and so reordering): every bridged IPv4 packet goes through the
//     kernel's packet queue (br_netfilter + iptables NFQUEUE) to `shoal_fault_netem`, which drops
//     or holds each one (see tests/fault/netem_queue.cpp: the kernels we run on lack sch_netem);
//   - duplication: an nftables netdev rule on each port that copies frames to the destination's
//     port.
//
// Names carry the creating process's pid (`shoal-lab<pid>-<k>-...`); a lab left behind by a
// process that no longer exists (killed mid-test) is deleted by the next lab's constructor. The
// destructor deletes everything this lab created, also when a test fails; processes started in a
// host namespace must be ended before (their AgentProcess destructors do that).
//
// Needs root and the `ip`, `nft` and `iptables` commands: unavailable() says why not, and the
// tests skip with that message. Not thread-safe; one test thread drives it.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/agent_process.h"

namespace shoal::test {

struct Impairment {
  double loss = 0.0;       // probability that a packet is dropped
  int delay_ms = 0;        // added one-way delay
  int jitter_ms = 0;       // the delay varies uniformly by +- this much (reorders packets)
  double duplicate = 0.0;  // probability that a frame is delivered twice
  std::uint64_t seed = 0;  // of the loss and delay draws (printed in the netem log)
};

// What the netem helper did, from the line it prints as it stops.
struct NetemCounters {
  std::uint64_t seen = 0, dropped = 0, delayed = 0, overflow = 0;
  int exit_code = -1;  // the helper's exit status (0: it ran until it was told to stop)
};

class NetLab {
 public:
  // Why a lab cannot be built here (not root, a command missing), or nullopt if it can.
  static std::optional<std::string> unavailable();

  // Creates `hosts` host namespaces and the switch; throws std::runtime_error with the failing
  // command and its output if any step fails (after deleting what it created). `log_dir` gets
  // the netem helper's log.
  NetLab(std::size_t hosts, std::string log_dir);
  ~NetLab();
  NetLab(const NetLab&) = delete;
  NetLab& operator=(const NetLab&) = delete;

  std::size_t hosts() const { return hosts_; }
  // The namespace name of host i (for AgentProcess's netns argument).
  std::string ns(std::size_t host) const;
  // The switch's namespace (where frames between hosts can be watched or injected).
  std::string switch_ns() const { return prefix_ + "-sw"; }
  // Host i's address, "10.213.0.(i+1)".
  std::string ip(std::size_t host) const;

  // Splits the hosts into `groups`: frames between hosts of different groups are dropped; a host
  // in no group is cut off from all. Replaces any earlier partition or cut.
  void partition(const std::vector<std::vector<std::size_t>>& groups);
  // Drops frames from `from` to `to` only (the other direction still works). Adds to what is
  // cut already.
  void cut(std::size_t from, std::size_t to);
  // Removes every partition and cut.
  void heal();

  // Applies `imp` to every packet between hosts (replacing any earlier impairment); a default
  // Impairment removes them all.
  void impair(const Impairment& imp);
  // The last netem helper's log (its seed, and its counters once it stopped), empty if none ran.
  std::string netem_log() const;
  // Whether the helper of the current impairment still runs (false if none was started).
  bool netem_running() const;
  // The counters of the last helper that stopped (impair() with another impairment, or a
  // default one, stops it), or nullopt if none has stopped or it printed none.
  std::optional<NetemCounters> netem_counters() const { return netem_counters_; }

 private:
  void sh(const std::vector<std::string>& argv, const std::string& input = {}) const;
  void nft(const std::string& script) const;
  void stop_netem();
  void destroy();

  std::size_t hosts_;
  std::string log_dir_;
  std::string prefix_;                // "shoal-lab<pid>-<k>"
  std::vector<std::string> created_;  // namespaces, in creation order
  std::vector<std::pair<std::size_t, std::size_t>> cuts_;
  std::unique_ptr<AgentProcess> netem_;
  std::optional<NetemCounters> netem_counters_;
  std::string netem_log_path_;
  int netem_runs_ = 0;
};

}  // namespace shoal::test
