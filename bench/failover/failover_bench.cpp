// bench/failover: kill a node, time the failover. Starts N real `shoal agent` processes on
// 127.0.0.1, adds M supervised children (in-process workers, or `exec` children: `sleep`
// processes), picks a victim that runs about M/N of them, faults it (SIGKILL, SIGSTOP, or a
// graceful leave) and records, from a `watch` stream on every survivor (timestamps from the
// agents' own clocks, the host's wall clock): when each survivor declared the victim dead (or
// left), when each orphan was restarted (its new copy's registration, on the node that runs it),
// when each survivor's registry answered a live copy for every orphan, and every child start on
// every survivor (the `child started` events: an orphan started twice is a duplicate however
// short-lived its copy was). For `exec` children it also samples the OS process table for two
// processes of one child; after convergence and a quiet window (starts still counted) it checks
// that every orphan runs exactly once (none lost). It exits 1 if a scenario failed a check: a
// round that did not converge, an orphan lost or started twice, a registry conflict, an error.
//
// Then the victim is restored (resumed, or restarted as a replacement node with its map on disk
// wiped) and the next round picks another victim.
// Per scenario: p50/p90/p99/max over rounds of "detected" (every survivor's declaration),
// "restarted" (the last orphan's restart) and "converged" (the last survivor's registry to answer
// a live copy of the last orphan), all from the fault; lost and duplicate counts.
//
//   failover_bench [--quick] [--rounds R] [--only NAME] [--idle SECONDS]
//                  [--json out/failover_bench.json] [--data-dir DIR] [--shoal PATH]
//
// --idle S: once a scenario's cluster has settled, S seconds in which nothing is asked of the
// agents; each one's CPU use (% of a core) and resident memory are reported.
// --on-fault CMD: `sh -c CMD` is started 200 ms before each fault (a profiler: `perf record -a
// -o out/fault.perf -- sleep 3`); it must end by itself, and is waited for at the end.
// --log-level L: the agents' log level (default warn); their logs are DIR/<scenario>/<node>.log.
//
// Prints a table with the headline last and writes JSON (plots: bench/failover/plot.py). Only the
// processes it started are signalled, by pid; all traffic stays on 127.0.0.1.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/provenance.h"
#include "bin/rpc/client.h"
#include "bin/rpc/frame.h"
#include "bin/rpc/value.h"
#include "tests/support/host.h"

namespace {

using shoal::bin::rpc::connect_unix;
using shoal::bin::rpc::send_all;
using shoal::bin::rpc::Value;
namespace rpc = shoal::bin::rpc;

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

void sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

const Value& at(const Value& v, std::string_view key) {
  static const Value nil;
  const Value* e = v.find(key);
  return e != nullptr ? *e : nil;
}

// --- The agents' RPC ---

std::optional<Value> decode_reply(const std::string& body) {
  rpc::ValueLimits limits;
  limits.max_bytes = rpc::kMaxReplyBytes;
  limits.max_items = 10'000'000;
  auto v = rpc::decode_value(body, limits);
  if (!v) return std::nullopt;
  return std::move(*v);
}

// One request and its result; nullopt on any failure (the agent may be gone).
std::optional<Value> call(const std::string& sock, std::string_view cmd, Value args = Value::map(),
                          int timeout_ms = 20'000) {
  const int fd = connect_unix(sock);
  if (fd < 0) return std::nullopt;
  std::optional<Value> out;
  if (send_all(fd, rpc::frame(rpc::encode_request(cmd, std::move(args))))) {
    rpc::FrameReader reader(rpc::kMaxReplyBytes);
    char buf[64 * 1024];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!out && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      reader.feed(std::string_view(buf, static_cast<std::size_t>(n)));
      if (auto f = reader.take()) {
        auto v = decode_reply(*f);
        if (v && at(*v, "ok").as_bool()) out = at(*v, "result");
        break;
      }
    }
  }
  ::close(fd);
  return out;
}

struct Event {
  std::uint64_t time = 0;
  std::string type;   // member | name
  std::string event;  // failed, left, registered, moved, unregistered, conflict, ...
  std::string name;
  std::string node;  // name events: the holder's node
};

// A `watch` stream from one agent, read without blocking.
class Watch {
 public:
  bool open(const std::string& sock) {
    fd_ = connect_unix(sock);
    if (fd_ < 0) return false;
    Value args = Value::map();
    args.set("prefix", "");
    if (!send_all(fd_, rpc::frame(rpc::encode_request("watch", std::move(args))))) return false;
    ::fcntl(fd_, F_SETFL, O_NONBLOCK);
    return true;
  }
  ~Watch() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd() const { return fd_; }
  // Reads what is there; appends the events.
  void pump(std::vector<Event>& out) {
    char buf[256 * 1024];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      reader_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    }
    while (auto f = reader_.take()) {
      auto v = decode_reply(*f);
      if (!v) continue;
      const Value* e = v->find("event");
      if (e == nullptr) continue;
      out.push_back(Event{at(*e, "time").as_u64(), at(*e, "type").as_string(),
                          at(*e, "event").as_string(), at(*e, "name").as_string(),
                          at(*e, "node").as_string()});
    }
  }

 private:
  int fd_ = -1;
  rpc::FrameReader reader_{rpc::kMaxReplyBytes};
};

// --- Agents ---

std::string g_shoal;               // the binary
std::string g_on_fault;            // --on-fault: a shell command started just before each fault
std::string g_log_level = "warn";  // --log-level: the agents' (their logs are in the data dir)
std::string g_dir;                 // data dirs and logs

class Agent {
 public:
  // `dir`: this scenario's directory (each agent's data dir and log inside it).
  Agent(std::string dir, std::string name, std::uint16_t port, std::vector<std::string> seeds)
      : dir_(std::move(dir)), name_(std::move(name)), port_(port), seeds_(std::move(seeds)) {}
  ~Agent() { kill_now(); }

  void start() {
    const std::string data = dir_ + "/" + name_;
    std::vector<std::string> args{g_shoal,      "agent", "--name",      name_,
                                  "--bind",     addr(),  "--discovery", "seeds",
                                  "--data-dir", data,    "--log-level", g_log_level};
    for (const std::string& s : seeds_) {
      if (s != addr()) args.insert(args.end(), {"--join", s});
    }
    std::vector<char*> argv;
    for (std::string& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string log = dir_ + "/" + name_ + ".log";
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 2);
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    stopped_ = false;
  }
  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }
  // Forgets the map on disk: the victim comes back as a replacement node, as a new one would.
  void wipe_map() { std::filesystem::remove_all(dir_ + "/" + name_ + "/map"); }
  std::string sock() const { return dir_ + "/" + name_ + "/shoal.sock"; }
  const std::string& name() const { return name_; }
  pid_t pid() const { return pid_; }
  void signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
    stopped_ = sig == SIGSTOP;
  }
  // Reaps it if it exited; true if it still runs.
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }
  void wait_gone(int timeout_ms) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (running() && std::chrono::steady_clock::now() < end)
      sleep_ms(5);
    kill_now();
  }
  void kill_now() {
    if (pid_ <= 0) return;
    if (stopped_) ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  std::string dir_;
  std::string name_;
  std::uint16_t port_;
  std::vector<std::string> seeds_;
  pid_t pid_ = -1;
  bool stopped_ = false;
};

// CPU time (user + system, ms) and resident memory (KiB) of a process, from /proc.
struct Usage {
  double cpu_ms = 0;
  std::uint64_t rss_kib = 0;
};
std::optional<Usage> usage_of(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return std::nullopt;
  // Fields after the command (which may hold spaces): state is field 3, utime 14, stime 15.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 2));
  std::vector<std::string> f;
  for (std::string w; rest >> w;)
    f.push_back(w);
  if (f.size() < 13) return std::nullopt;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  Usage u;
  u.cpu_ms = (std::stod(f[11]) + std::stod(f[12])) * 1000.0 / ticks;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) u.rss_kib = std::stoull(line.substr(6));
  }
  return u;
}

// --- Statistics ---

double pct(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double rank = p / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(rank));
  const auto hi = static_cast<std::size_t>(std::ceil(rank));
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

Value stats_value(const std::vector<double>& v) {
  Value out = Value::map();
  out.set("n", v.size());
  out.set("p50", pct(v, 50));
  out.set("p90", pct(v, 90));
  out.set("p99", pct(v, 99));
  out.set("max", v.empty() ? NAN : *std::max_element(v.begin(), v.end()));
  return out;
}

// --- Scenarios ---

enum class Fault { kill, stop, leave };
const char* fault_name(Fault f) {
  return f == Fault::kill ? "SIGKILL" : f == Fault::stop ? "SIGSTOP" : "leave";
}

struct Scenario {
  std::string name;
  int nodes;
  int children;
  bool exec;
  Fault fault;
  bool load = false;  // a steady stream of registrations during the round
};

struct Round {
  std::string victim;
  std::size_t orphans = 0;
  std::vector<double> detected_ms;  // one per survivor
  double detected_all_ms = NAN;     // the last survivor's declaration
  double restarted_ms = NAN;        // the last orphan's restart
  double converged_ms = NAN;        // the last survivor's registry for the last orphan
  std::size_t lost = 0;
  std::size_t duplicates = 0;            // names seen with two live copies at once, any time
  std::size_t duplicates_converged = 0;  // ... after every survivor converged
  std::size_t conflicts = 0;             // registry conflict events
  // From the survivors' child events (every start is one): orphans started more than once, the
  // extra starts, and starts of children that were not the victim's (a move nobody asked for).
  std::size_t double_started = 0;
  std::size_t extra_starts = 0;
  std::size_t other_starts = 0;
  std::vector<std::string> double_examples;
  // Members other than the victim that some survivor suspected or declared failed.
  std::size_t false_suspicions = 0;
  std::size_t false_failures = 0;
  // CPU the agents used from the fault to convergence, in cores (2.0: both of a 2-core machine)...
  double cpu_cores = NAN;
  // ... and in the second before the fault (what the cluster was still doing when it came).
  double cpu_cores_before = NAN;
  std::vector<std::string> duplicate_examples;
  bool healthy = true;            // every agent's health score was 0 at the fault
  std::size_t registrations = 0;  // load: names registered during the round
  std::size_t registrations_missing = 0;
  // Restarts over time since the fault: (ms, survivor) per orphan.
  std::vector<std::pair<double, std::string>> restarts;
  // leave: per orphan, its old copy's stop on the victim to its new copy's start on a survivor
  // (ms; negative when the new copy started first, as with handoff overlap).
  std::vector<double> handoff_gaps_ms;
};

class Cluster {
 public:
  explicit Cluster(const Scenario& s) : s_(s) {
    const std::uint16_t base = shoal::test::free_ports(static_cast<std::uint16_t>(s.nodes));
    std::vector<std::string> seeds{"127.0.0.1:" + std::to_string(base),
                                   "127.0.0.1:" + std::to_string(base + 1)};
    // A directory of its own: agents keep their map in their data dirs, and a scenario must not
    // find the previous one's children there.
    const std::string dir = g_dir + "/" + s.name;
    std::filesystem::create_directories(dir);
    for (int i = 0; i < s.nodes; ++i) {
      agents_.push_back(std::make_unique<Agent>(dir, "n" + std::to_string(i),
                                                static_cast<std::uint16_t>(base + i), seeds));
    }
    token_ = std::to_string(700000000 + (wall_ms() % 1000) * 100000);
  }
  ~Cluster() {
    for (auto& a : agents_)
      a->kill_now();
    wait_helpers();
  }

  bool up() {
    for (auto& a : agents_)
      a->start();
    return wait_members(30'000);
  }

  // Every running agent sees every agent alive.
  bool wait_members(int timeout_ms, const std::string& except = {}) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < end) {
      bool all = true;
      for (auto& a : agents_) {
        if (a->name() == except) continue;
        Value args = Value::map();
        args.set("status", "alive");
        auto m = call(a->sock(), "members", std::move(args), 2000);
        all = all && m && m->as_array().size() == agents_.size();
        if (!all) break;
      }
      if (all) return true;
      sleep_ms(200);
    }
    return false;
  }

  // All the specs in one run-batch (the RPC takes up to 100,000 in one request).
  bool add_children() {
    constexpr int kBatch = 100'000;
    for (int first = 0; first < s_.children; first += kBatch) {
      Value specs = Value::array();
      for (int k = first; k < std::min(s_.children, first + kBatch); ++k) {
        Value spec = Value::map();
        spec.set("name", child(k));
        if (s_.exec) {
          Value argv = Value::array();
          argv.push("sleep");
          argv.push(token_ + std::to_string(k));
          spec.set("argv", std::move(argv));
          spec.set("shutdown_ms", 2000);
        } else {
          spec.set("worker", "idle");
        }
        specs.push(std::move(spec));
      }
      const std::uint64_t specs_count = specs.as_array().size();
      Value args = Value::map();
      args.set("children", std::move(specs));
      auto r = call(agents_[0]->sock(), "run-batch", std::move(args), 120'000);
      if (!r || at(*r, "added").as_u64() != specs_count) return false;
    }
    return true;
  }

  std::string child(int k) const { return "c" + std::to_string(k); }

  // Every agent's view: M children running, none pending; and the instances across all agents
  // add up to M with no name twice.
  bool settled(const std::string& except = {}) {
    for (auto& a : agents_) {
      if (a->name() == except) continue;
      Value args = Value::map();
      args.set("summary", true);
      auto sum = call(a->sock(), "ps", std::move(args), 5000);
      if (!sum) {
        unsettled_ = a->name() + " did not answer";
        return false;
      }
      if (at(*sum, "running").as_u64() != static_cast<std::uint64_t>(s_.children) ||
          at(*sum, "pending").as_u64() != 0) {
        unsettled_ = a->name() + " sees " + std::to_string(at(*sum, "running").as_u64()) +
                     " running, " + std::to_string(at(*sum, "pending").as_u64()) + " pending";
        return false;
      }
    }
    std::map<std::string, int> copies;
    for (auto& a : agents_) {
      if (a->name() == except) continue;
      Value args = Value::map();
      args.set("here", true);
      auto here = call(a->sock(), "ps", std::move(args), 5000);
      if (!here) {
        unsettled_ = a->name() + " did not answer";
        return false;
      }
      for (const Value& r : here->as_array()) {
        if (at(r, "status").as_string() != "running") {  // still moving
          unsettled_ =
              at(r, "name").as_string() + " is " + at(r, "status").as_string() + " on " + a->name();
          return false;
        }
        ++copies[at(r, "name").as_string()];
      }
    }
    if (copies.size() != static_cast<std::size_t>(s_.children)) {
      unsettled_ = std::to_string(copies.size()) + " children run";
      return false;
    }
    for (const auto& [n, c] : copies) {
      if (c != 1) {
        unsettled_ = n + " runs " + std::to_string(c) + " times";
        return false;
      }
    }
    return true;
  }

  bool wait_healthy(int timeout_ms) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < end) {
      bool all = true;
      for (auto& a : agents_) {
        auto info = call(a->sock(), "info", Value::map(), 5000);
        all = all && info && at(*info, "health").as_i64(1) == 0;
      }
      if (all) return true;
      sleep_ms(250);
    }
    return false;
  }

  bool wait_settled(int timeout_ms, const std::string& except = {}) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < end) {
      if (settled(except)) return true;
      sleep_ms(500);  // each look costs the agents a listing: not too often
    }
    return false;
  }

  // Children per node, from agent 0's registry (or another if 0 is `avoid`).
  std::map<std::string, std::vector<std::string>> placement(const std::string& avoid = {}) {
    std::map<std::string, std::vector<std::string>> out;
    for (auto& a : agents_) {
      if (a->name() == avoid) continue;
      auto ps = call(a->sock(), "ps", Value::map(), 30'000);
      if (!ps) continue;
      for (const Value& r : ps->as_array())
        out[at(r, "node").as_string()].push_back(at(r, "name").as_string());
      break;
    }
    return out;
  }

  Round run_round(const std::string& avoid_victim, bool keep_timeline);
  const std::string& unsettled() const { return unsettled_; }

  std::vector<std::unique_ptr<Agent>>& agents() { return agents_; }

 private:
  Agent* find(const std::string& name) {
    for (auto& a : agents_) {
      if (a->name() == name) return a.get();
    }
    return nullptr;
  }

  const Scenario& s_;
  std::vector<std::unique_ptr<Agent>> agents_;
  std::string unsettled_;       // why settled() said no, the last time it did
  std::vector<pid_t> helpers_;  // --on-fault commands, waited for at the end

 public:
  void wait_helpers() {
    for (pid_t p : helpers_)
      ::waitpid(p, nullptr, 0);
    helpers_.clear();
  }
  std::string token_;
};

Round Cluster::run_round(const std::string& avoid_victim, bool keep_timeline) {
  Round round;
  // From a steady state: every agent's local health score back to 0 (a busy start stretches the
  // probe timing, Lifeguard's way, until probes are answered in time again).
  round.healthy = wait_healthy(30'000);
  // The victim: the node whose share is closest to M/N (not the previous victim).
  auto where = placement();
  const double fair = static_cast<double>(s_.children) / s_.nodes;
  double best = 1e18;
  for (auto& a : agents_) {
    if (a->name() == avoid_victim) continue;
    const double d = std::fabs(static_cast<double>(where[a->name()].size()) - fair);
    if (d < best) {
      best = d;
      round.victim = a->name();
    }
  }
  Agent* victim = find(round.victim);
  const std::vector<std::string> orphan_list = where[round.victim];
  const std::set<std::string> orphans(orphan_list.begin(), orphan_list.end());
  round.orphans = orphans.size();
  std::vector<Agent*> survivors;
  for (auto& a : agents_) {
    if (a.get() != victim) survivors.push_back(a.get());
  }
  // Watch streams on every survivor, opened before the fault.
  std::vector<std::unique_ptr<Watch>> watches;
  for (Agent* a : survivors) {
    watches.push_back(std::make_unique<Watch>());
    watches.back()->open(a->sock());
  }
  std::vector<std::vector<Event>> events(survivors.size());
  // A leave: the victim's own stream too, for when each of its copies stopped.
  std::unique_ptr<Watch> victim_watch;
  std::vector<Event> victim_events;
  std::map<std::string, double> stopped_at;      // orphan -> its old copy's stop, ms after t0
  std::map<std::string, double> first_start_at;  // orphan -> its first start on a survivor
  if (s_.fault == Fault::leave) {
    victim_watch = std::make_unique<Watch>();
    victim_watch->open(victim->sock());
  }
  sleep_ms(50);  // the watch requests are served before the fault (no race: events are kept)

  // Load: registrations at a steady rate on a survivor, from another thread.
  std::atomic<bool> load_on{s_.load};
  std::atomic<std::size_t> registered{0};
  const std::string load_prefix = "load-" + round.victim + "-" + std::to_string(wall_ms()) + "-";
  std::thread loader;
  if (s_.load) {
    loader = std::thread([&, sock = survivors[0]->sock()] {
      while (load_on) {
        Value args = Value::map();
        args.set("name", load_prefix + std::to_string(registered.load()));
        if (call(sock, "register", std::move(args), 5000)) ++registered;
        sleep_ms(2);
      }
    });
    sleep_ms(1000);  // the stream runs before the fault too
  }

  // CPU time used so far by `agents` together, ms.
  auto cpu_ms = [](const std::vector<Agent*>& agents) {
    double ms = 0;
    for (Agent* a : agents) {
      if (auto u = usage_of(a->pid())) ms += u->cpu_ms;
    }
    return ms;
  };
  {
    std::vector<Agent*> everyone = survivors;
    everyone.push_back(victim);
    const double before = cpu_ms(everyone);
    const auto from = std::chrono::steady_clock::now();
    sleep_ms(1000);
    const double wall =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - from).count();
    round.cpu_cores_before = (cpu_ms(everyone) - before) / wall;
  }
  const double cpu_before = cpu_ms(survivors);
  if (!g_on_fault.empty()) {
    const pid_t helper = ::fork();
    if (helper == 0) {
      ::execl("/bin/sh", "sh", "-c", g_on_fault.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    if (helper > 0) helpers_.push_back(helper);
    sleep_ms(200);  // a profiler needs a moment to attach
  }
  const auto cpu_t0 = std::chrono::steady_clock::now();
  const std::uint64_t t0 = wall_ms();
  victim->signal(s_.fault == Fault::kill ? SIGKILL : s_.fault == Fault::stop ? SIGSTOP : SIGTERM);

  // Until every survivor's registry answers a live copy of every orphan (or 60 s).
  const std::set<std::string> survivor_names = [&] {
    std::set<std::string> n;
    for (Agent* a : survivors)
      n.insert(a->name());
    return n;
  }();
  std::map<std::string, double> restart_at;  // orphan -> ms after t0
  std::vector<std::map<std::string, double>> converged(survivors.size());
  std::vector<double> detected(survivors.size(), NAN);
  std::set<std::string> dup_names, dup_after, conflict_names;
  std::map<std::string, std::vector<std::string>> starts;  // child -> "node@ms" per start
  // Two copies at one instant, by looking: the OS process table (exec children) whenever called;
  // the survivors' local children only once converged (a listing costs each agent a pass over
  // every child: asked during the failover, it slows what is measured). Starts are counted from
  // the child events instead, which miss nothing.
  auto sample_duplicates = [&](bool after) {
    std::map<std::string, int> copies;
    std::map<std::string, std::string> seen_on;  // name -> "node:status ..." (for the report)
    for (Agent* a : after ? survivors : std::vector<Agent*>{}) {
      Value args = Value::map();
      args.set("here", true);
      auto here = call(a->sock(), "ps", std::move(args), 5000);
      if (!here) continue;
      for (const Value& r : here->as_array()) {
        ++copies[at(r, "name").as_string()];
        seen_on[at(r, "name").as_string()] += " " + a->name() + ":" + at(r, "status").as_string();
      }
    }
    for (const auto& [n, c] : copies) {
      if (c > 1 && round.duplicate_examples.size() < 3)
        round.duplicate_examples.push_back(n + " at +" + std::to_string(wall_ms() - t0) +
                                           " ms:" + seen_on[n]);
    }
    if (s_.exec) {
      for (const auto& [arg, procs] : shoal::test::all_sleepers()) {
        if (arg.starts_with(token_) && procs.size() > 1)
          copies["exec:" + arg] = static_cast<int>(procs.size());
      }
    }
    for (const auto& [n, c] : copies) {
      if (c > 1) (after ? dup_after : dup_names).insert(n);
    }
  };
  // Reads what the watch streams have (waiting up to 20 ms) and notes it.
  auto pump_events = [&] {
    std::vector<pollfd> fds;
    for (auto& w : watches)
      fds.push_back(pollfd{w->fd(), POLLIN, 0});
    ::poll(fds.data(), fds.size(), 20);
    if (victim_watch && victim_watch->fd() >= 0) {
      const std::size_t before = victim_events.size();
      victim_watch->pump(victim_events);
      for (std::size_t k = before; k < victim_events.size(); ++k) {
        const Event& e = victim_events[k];
        if (e.time >= t0 && e.type == "child" && e.event == "stopped" && orphans.contains(e.name))
          stopped_at.try_emplace(e.name, static_cast<double>(e.time - t0));
      }
    }
    for (std::size_t i = 0; i < watches.size(); ++i) {
      const std::size_t before = events[i].size();
      watches[i]->pump(events[i]);
      for (std::size_t k = before; k < events[i].size(); ++k) {
        const Event& e = events[i][k];
        if (e.time < t0) continue;
        const double ms = static_cast<double>(e.time - t0);
        if (e.type == "member" && e.name == round.victim &&
            (e.event == "failed" || e.event == "left") && std::isnan(detected[i])) {
          detected[i] = ms;
        }
        if (e.type == "member" && e.name != round.victim) {
          if (e.event == "suspect") ++round.false_suspicions;
          if (e.event == "failed") ++round.false_failures;
        }
        // Each start is reported by the node that runs the copy, and every survivor is watched.
        if (e.type == "child" && e.event == "started") {
          starts[e.name].push_back(e.node + "@" + std::to_string(e.time - t0));
          first_start_at.try_emplace(e.name, ms);
        }
        if (e.type != "name" || !orphans.contains(e.name)) continue;
        if (e.event == "conflict") conflict_names.insert(e.name);
        if ((e.event == "registered" || e.event == "moved" || e.event == "conflict") &&
            survivor_names.contains(e.node) && !converged[i].contains(e.name)) {
          converged[i][e.name] = ms;
          if (e.node == survivors[i]->name() && !restart_at.contains(e.name)) {
            restart_at[e.name] = ms;
            if (keep_timeline) round.restarts.emplace_back(ms, e.node);
          }
        }
      }
    }
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto last_sample = std::chrono::steady_clock::now();
  bool done = false;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    pump_events();
    done = true;
    for (std::size_t i = 0; i < survivors.size() && done; ++i)
      done = converged[i].size() == orphans.size();
    if (std::chrono::steady_clock::now() - last_sample > std::chrono::milliseconds(100) && !done) {
      sample_duplicates(false);
      last_sample = std::chrono::steady_clock::now();
    }
  }
  {
    const double cpu_after = cpu_ms(survivors);
    const double wall =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - cpu_t0)
            .count();
    round.cpu_cores = (cpu_after - cpu_before) / wall;
  }
  // After convergence: a quiet window of kQuietMs in which starts are still counted (a late
  // second copy counts as much as an early one), sampled now and then; then every orphan must
  // run exactly once.
  constexpr int kQuietMs = 2000;
  const auto quiet_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(kQuietMs);
  last_sample = std::chrono::steady_clock::time_point{};
  while (std::chrono::steady_clock::now() < quiet_end) {
    pump_events();
    if (std::chrono::steady_clock::now() - last_sample > std::chrono::milliseconds(400)) {
      sample_duplicates(true);
      last_sample = std::chrono::steady_clock::now();
    }
  }
  for (const auto& [name, copies_at] : starts) {
    if (!orphans.contains(name)) {
      round.other_starts += copies_at.size();
      continue;
    }
    if (copies_at.size() < 2) continue;
    ++round.double_started;
    round.extra_starts += copies_at.size() - 1;
    if (round.double_examples.size() < 3) {
      std::string line = name + " started on";
      for (const std::string& w : copies_at)
        line += " " + w;
      line += " (ms after the fault)";
      round.double_examples.push_back(std::move(line));
    }
  }
  std::map<std::string, int> running;
  for (Agent* a : survivors) {
    Value args = Value::map();
    args.set("here", true);
    if (auto here = call(a->sock(), "ps", std::move(args), 5000)) {
      for (const Value& r : here->as_array())
        ++running[at(r, "name").as_string()];
    }
  }
  for (const std::string& o : orphans) {
    if (running[o] == 0) ++round.lost;
  }
  if (s_.load) {
    load_on = false;
    loader.join();
    round.registrations = registered;
    // Every registration present on every survivor.
    for (Agent* a : survivors) {
      std::size_t seen = 0;
      const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (std::chrono::steady_clock::now() < end) {
        Value args = Value::map();
        args.set("prefix", load_prefix);
        auto names = call(a->sock(), "names", std::move(args), 10'000);
        seen = names ? names->as_array().size() : 0;
        if (seen >= round.registrations) break;
        sleep_ms(50);
      }
      round.registrations_missing += round.registrations - std::min(seen, round.registrations);
    }
  }
  for (std::size_t i = 0; i < survivors.size(); ++i) {
    if (!std::isnan(detected[i])) round.detected_ms.push_back(detected[i]);
  }
  if (round.detected_ms.size() == survivors.size()) {
    round.detected_all_ms = *std::max_element(round.detected_ms.begin(), round.detected_ms.end());
  }
  if (restart_at.size() == orphans.size() && !orphans.empty()) {
    double last = 0;
    for (const auto& [n, ms] : restart_at)
      last = std::max(last, ms);
    round.restarted_ms = last;
  }
  if (done && !orphans.empty()) {
    double last = 0;
    for (const auto& c : converged) {
      for (const auto& [n, ms] : c)
        last = std::max(last, ms);
    }
    round.converged_ms = last;
  }
  round.duplicates = dup_names.size();
  round.duplicates_converged = dup_after.size();
  round.conflicts = conflict_names.size();
  for (const auto& [name, stopped] : stopped_at) {
    if (auto started = first_start_at.find(name); started != first_start_at.end())
      round.handoff_gaps_ms.push_back(started->second - stopped);
  }
  for (auto& w : watches)
    w->close();
  if (victim_watch) victim_watch->close();

  // Restore the victim for the next round.
  if (s_.fault == Fault::stop) {
    victim->signal(SIGCONT);
  } else {
    victim->wait_gone(s_.fault == Fault::leave ? 20'000 : 1000);
    victim->wipe_map();
    victim->start();
  }
  return round;
}

struct Result {
  Scenario scenario;
  std::vector<Round> rounds;
  std::string error;
  // --idle: per agent, over the idle window once settled.
  std::vector<double> idle_cpu_pct;  // % of one core
  std::vector<double> rss_mib;
  // From the run-batch request to every agent seeing every child running; and each agent's RSS
  // growth from before the children to settled, per child spec it holds.
  double start_ms = NAN;
  std::vector<double> bytes_per_spec;
  // The same growth at the end of the idle window (--idle): what stays resident once the start's
  // transient buffers are freed and the agent has returned free heap to the OS.
  std::vector<double> bytes_per_spec_idle;
};

// Every agent's CPU use and memory over `seconds` of a settled cluster that nobody asks anything.
void measure_idle(Cluster& cluster, int seconds, Result& result) {
  std::vector<std::optional<Usage>> before;
  for (auto& a : cluster.agents())
    before.push_back(usage_of(a->pid()));
  const auto t0 = std::chrono::steady_clock::now();
  sleep_ms(seconds * 1000);
  const double wall =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  for (std::size_t i = 0; i < cluster.agents().size(); ++i) {
    auto after = usage_of(cluster.agents()[i]->pid());
    if (!before[i] || !after) continue;
    result.idle_cpu_pct.push_back((after->cpu_ms - before[i]->cpu_ms) / wall * 100.0);
    result.rss_mib.push_back(static_cast<double>(after->rss_kib) / 1024.0);
  }
}

Result run_scenario(const Scenario& s, int rounds, int idle_seconds) {
  Result result{s, {}, {}, {}, {}, NAN, {}, {}};
  Cluster cluster(s);
  if (!cluster.up()) {
    result.error = "the agents did not all see each other";
    return result;
  }
  std::vector<std::optional<Usage>> bare;
  for (auto& a : cluster.agents())
    bare.push_back(usage_of(a->pid()));
  const auto adding = std::chrono::steady_clock::now();
  if (!cluster.add_children() || !cluster.wait_settled(300'000)) {
    result.error = "the children did not all start (" + cluster.unsettled() + ")";
    return result;
  }
  result.start_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - adding).count();
  // Each agent's RSS growth since before the children, per child spec.
  const auto growth_per_spec = [&] {
    std::vector<double> out;
    for (std::size_t i = 0; i < cluster.agents().size(); ++i) {
      auto now = usage_of(cluster.agents()[i]->pid());
      if (!bare[i] || !now) continue;
      out.push_back((static_cast<double>(now->rss_kib) - static_cast<double>(bare[i]->rss_kib)) *
                    1024.0 / s.children);
    }
    return out;
  };
  result.bytes_per_spec = growth_per_spec();
  std::fprintf(stderr,
               "  %d children started from one run-batch in %.0f ms (settled as every agent "
               "sees it, polled every 0.5 s); RSS growth per child spec per agent p50 %.0f bytes\n",
               s.children, result.start_ms, pct(result.bytes_per_spec, 50));
  if (idle_seconds > 0) {
    measure_idle(cluster, idle_seconds, result);
    result.bytes_per_spec_idle = growth_per_spec();
    std::fprintf(stderr,
                 "  idle for %d s: CPU per agent p50 %.2f%% max %.2f%% of a core, RSS p50 %.1f MiB "
                 "max %.1f MiB; RSS growth per child spec per agent p50 %.0f bytes\n",
                 idle_seconds, pct(result.idle_cpu_pct, 50),
                 result.idle_cpu_pct.empty()
                     ? NAN
                     : *std::max_element(result.idle_cpu_pct.begin(), result.idle_cpu_pct.end()),
                 pct(result.rss_mib, 50),
                 result.rss_mib.empty()
                     ? NAN
                     : *std::max_element(result.rss_mib.begin(), result.rss_mib.end()),
                 pct(result.bytes_per_spec_idle, 50));
  }
  std::string previous;
  for (int r = 0; r < rounds; ++r) {
    Round round = cluster.run_round(previous, r == 0);
    std::fprintf(stderr,
                 "  %s round %d: victim %s, %zu orphans, detected %.0f ms, restarted %.0f ms, "
                 "converged %.0f ms, lost %zu, started twice %zu, other starts %zu, conflicts %zu, "
                 "two copies seen %zu (%zu after converging), others suspected %zu / failed "
                 "%zu, agents' CPU %.2f cores (%.2f in the second before)%s\n",
                 s.name.c_str(), r + 1, round.victim.c_str(), round.orphans, round.detected_all_ms,
                 round.restarted_ms, round.converged_ms, round.lost, round.double_started,
                 round.other_starts, round.conflicts, round.duplicates, round.duplicates_converged,
                 round.false_suspicions, round.false_failures, round.cpu_cores,
                 round.cpu_cores_before,
                 round.healthy ? "" : " (an agent's health score was not 0 at the fault)");
    if (!round.handoff_gaps_ms.empty()) {
      std::fprintf(stderr,
                   "    handoff gap (old copy stopped -> new copy started) over %zu orphans: p50 "
                   "%.0f ms, max %.0f ms\n",
                   round.handoff_gaps_ms.size(), pct(round.handoff_gaps_ms, 50),
                   *std::max_element(round.handoff_gaps_ms.begin(), round.handoff_gaps_ms.end()));
    }
    for (const std::string& d : round.duplicate_examples)
      std::fprintf(stderr, "    two copies: %s\n", d.c_str());
    for (const std::string& d : round.double_examples)
      std::fprintf(stderr, "    %s\n", d.c_str());
    previous = round.victim;
    result.rounds.push_back(std::move(round));
    if (r + 1 < rounds) {
      if (!cluster.wait_members(60'000) || !cluster.wait_settled(120'000)) {
        result.error = "the cluster did not settle after round " + std::to_string(r + 1) + " (" +
                       cluster.unsettled() + ")";
        return result;
      }
    }
  }
  return result;
}

std::string fmt_ms(double v) {
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int rounds = 5;
  int idle_seconds = 0;
  std::string only;
  std::string json_path = "out/failover_bench.json";
  std::string shoal_path;
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "failover_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--quick") {
      quick = true;
    } else if (a == "--rounds") {
      rounds = std::atoi(next().c_str());
    } else if (a == "--idle") {
      idle_seconds = std::atoi(next().c_str());
    } else if (a == "--log-level") {
      g_log_level = next();
    } else if (a == "--on-fault") {
      g_on_fault = next();
    } else if (a == "--only") {
      only = next();
    } else if (a == "--json") {
      json_path = next();
    } else if (a == "--shoal") {
      shoal_path = next();
    } else if (a == "--data-dir") {
      dir = next();
    } else {
      std::fprintf(stderr,
                   "usage: failover_bench [--quick] [--rounds R] [--only NAME] [--idle SECONDS] "
                   "[--on-fault CMD] [--log-level LEVEL] [--json PATH] [--shoal PATH] "
                   "[--data-dir DIR]\n");
      return 2;
    }
  }
  if (idle_seconds < 0 || idle_seconds > 3600) {
    std::fprintf(stderr, "failover_bench: --idle must be 0..3600 seconds\n");
    return 2;
  }
  if (rounds < 1 || rounds > 100) {
    std::fprintf(stderr, "failover_bench: --rounds must be 1..100\n");
    return 2;
  }
  if (shoal_path.empty()) {
    // Next to this binary: build/release/bench/failover_bench -> build/release/bin/shoal.
    char self[4096];
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    shoal_path = std::filesystem::path(self).parent_path().parent_path() / "bin" / "shoal";
  }
  if (::access(shoal_path.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "failover_bench: no shoal binary at %s (--shoal PATH)\n",
                 shoal_path.c_str());
    return 2;
  }
  g_shoal = shoal_path;
  if (dir.empty()) {
    char tmpl[] = "/tmp/shoal-failover-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  std::filesystem::create_directories(dir);
  g_dir = dir;
  std::signal(SIGPIPE, SIG_IGN);

  std::vector<Scenario> all = {
      {"kill-n5-m10000", 5, 10'000, false, Fault::kill},
      {"kill-n20-m10000", 20, 10'000, false, Fault::kill},
      {"kill-n5-m1000-exec", 5, 1'000, true, Fault::kill},
      {"stop-n5-m10000", 5, 10'000, false, Fault::stop},
      {"leave-n5-m10000", 5, 10'000, false, Fault::leave},
      {"kill-load-n5-m1000", 5, 1'000, false, Fault::kill, true},
      {"kill-n3-m10000", 3, 10'000, false, Fault::kill},
      {"kill-n10-m10000", 10, 10'000, false, Fault::kill},
      {"kill-n50-m10000", 50, 10'000, false, Fault::kill},
      {"kill-n100-m10000", 100, 10'000, false, Fault::kill},
      {"kill-n5-m100000", 5, 100'000, false, Fault::kill},
      {"kill-n5-m100", 5, 100, false, Fault::kill},
      {"kill-n5-m1000", 5, 1'000, false, Fault::kill},
  };
  if (quick) {
    all = {
        {"kill-n3-m1000", 3, 1'000, false, Fault::kill},
        {"kill-n3-m100-exec", 3, 100, true, Fault::kill},
        {"stop-n3-m1000", 3, 1'000, false, Fault::stop},
    };
    rounds = std::min(rounds, 2);
  }
  std::vector<Result> results;
  const auto started = std::chrono::steady_clock::now();
  for (const Scenario& s : all) {
    if (!only.empty() && s.name != only) continue;
    std::fprintf(stderr, "%s: %d agents, %d %s children, %s, %d rounds%s\n", s.name.c_str(),
                 s.nodes, s.children, s.exec ? "exec" : "worker", fault_name(s.fault), rounds,
                 s.load ? ", registrations streaming" : "");
    results.push_back(run_scenario(s, rounds, idle_seconds));
    if (!results.back().error.empty())
      std::fprintf(stderr, "  %s: %s\n", s.name.c_str(), results.back().error.c_str());
  }
  const double total_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  // The table.
  // rounds: converged/run (a round that never converged is in no percentile); lost: orphans not
  // running at the end; 2x: orphans started more than once (from start events); other: starts of
  // children that were not the victim's; confl: registry conflicts over orphans.
  std::printf("\n%-20s %3s %6s %-6s %-8s %6s | %-21s | %-25s | %-25s | %4s %4s %5s %5s\n",
              "scenario", "N", "M", "kind", "fault", "rounds", "detected p50/p99 ms",
              "restarted p50/p90/p99/max", "converged p50/p90/p99/max", "lost", "2x", "other",
              "confl");
  bool failed = false;
  Value json_scenarios = Value::array();
  for (const Result& r : results) {
    std::vector<double> det, rest, conv, gaps;
    std::size_t lost = 0, dups = 0, dups_after = 0, conflicts = 0, missing = 0, regs = 0;
    std::size_t doubled = 0, extra = 0, other = 0, suspicions = 0, false_failures = 0;
    for (const Round& x : r.rounds) {
      doubled += x.double_started;
      extra += x.extra_starts;
      other += x.other_starts;
      suspicions += x.false_suspicions;
      false_failures += x.false_failures;
      det.push_back(x.detected_all_ms);
      if (!std::isnan(x.restarted_ms)) rest.push_back(x.restarted_ms);
      if (!std::isnan(x.converged_ms)) conv.push_back(x.converged_ms);
      lost += x.lost;
      dups += x.duplicates;
      dups_after += x.duplicates_converged;
      conflicts += x.conflicts;
      missing += x.registrations_missing;
      regs += x.registrations;
      gaps.insert(gaps.end(), x.handoff_gaps_ms.begin(), x.handoff_gaps_ms.end());
    }
    std::erase_if(det, [](double d) { return std::isnan(d); });
    const Scenario& s = r.scenario;
    const std::string rounds_cell =
        std::to_string(conv.size()) + "/" + std::to_string(r.rounds.size());
    std::printf(
        "%-20s %3d %6d %-6s %-8s %6s | %9s / %-9s | %5s %5s %5s %5s | %5s %5s %5s %5s | %4zu "
        "%4zu %5zu %5zu\n",
        s.name.c_str(), s.nodes, s.children, s.exec ? "exec" : "worker", fault_name(s.fault),
        rounds_cell.c_str(), fmt_ms(pct(det, 50)).c_str(), fmt_ms(pct(det, 99)).c_str(),
        fmt_ms(pct(rest, 50)).c_str(), fmt_ms(pct(rest, 90)).c_str(), fmt_ms(pct(rest, 99)).c_str(),
        fmt_ms(rest.empty() ? NAN : *std::max_element(rest.begin(), rest.end())).c_str(),
        fmt_ms(pct(conv, 50)).c_str(), fmt_ms(pct(conv, 90)).c_str(), fmt_ms(pct(conv, 99)).c_str(),
        fmt_ms(conv.empty() ? NAN : *std::max_element(conv.begin(), conv.end())).c_str(), lost,
        doubled, other, conflicts);
    if (!r.error.empty()) std::printf("  (%s)\n", r.error.c_str());
    if (s.load)
      std::printf("  registrations during the rounds: %zu, missing on some survivor: %zu\n", regs,
                  missing);
    if (dups > 0)
      std::printf("  %s: %zu names were seen with two copies by polling (%zu after converging)\n",
                  s.name.c_str(), dups, dups_after);
    if (!gaps.empty()) {
      std::printf(
          "  %s: handoff gap (an orphan's old copy stopped -> its new copy started), %zu moves: "
          "p50 %s ms, p99 %s ms, max %s ms\n",
          s.name.c_str(), gaps.size(), fmt_ms(pct(gaps, 50)).c_str(), fmt_ms(pct(gaps, 99)).c_str(),
          fmt_ms(*std::max_element(gaps.begin(), gaps.end())).c_str());
    }
    if (suspicions > 0 || false_failures > 0)
      std::printf("  %s: members other than the victim suspected %zu times, declared failed %zu\n",
                  s.name.c_str(), suspicions, false_failures);
    // What the benchmark checks: every round converged, nothing lost, nothing started twice.
    const bool ok = r.error.empty() && conv.size() == r.rounds.size() && lost == 0 &&
                    doubled == 0 && dups_after == 0 && conflicts == 0;
    if (!ok) {
      failed = true;
      std::printf(
          "  %s: FAILED a check (rounds converged %zu/%zu, lost %zu, started twice %zu, "
          "conflicts %zu, two copies after converging %zu%s%s)\n",
          s.name.c_str(), conv.size(), r.rounds.size(), lost, doubled, conflicts, dups_after,
          r.error.empty() ? "" : ", ", r.error.c_str());
    }

    Value sc = Value::map();
    sc.set("name", s.name);
    sc.set("nodes", s.nodes);
    sc.set("children", s.children);
    sc.set("kind", s.exec ? "exec" : "worker");
    sc.set("fault", fault_name(s.fault));
    sc.set("load", s.load);
    sc.set("error", r.error);
    sc.set("detected_ms", stats_value(det));
    sc.set("restarted_ms", stats_value(rest));
    sc.set("converged_ms", stats_value(conv));
    if (!gaps.empty()) sc.set("handoff_gap_ms", stats_value(gaps));
    sc.set("lost", lost);
    sc.set("duplicates_before_converged", dups);
    sc.set("duplicates_after_converged", dups_after);
    sc.set("registry_conflicts", conflicts);
    sc.set("rounds_converged", conv.size());
    sc.set("orphans_started_twice", doubled);
    sc.set("extra_starts", extra);
    sc.set("other_starts", other);
    sc.set("other_members_suspected", suspicions);
    sc.set("other_members_failed", false_failures);
    sc.set("ok", ok);
    if (!r.idle_cpu_pct.empty()) {
      sc.set("idle_cpu_percent_of_a_core", stats_value(r.idle_cpu_pct));
      sc.set("rss_mib", stats_value(r.rss_mib));
    }
    sc.set("start_ms", r.start_ms);
    if (!r.bytes_per_spec.empty()) sc.set("rss_bytes_per_spec", stats_value(r.bytes_per_spec));
    if (!r.bytes_per_spec_idle.empty())
      sc.set("rss_bytes_per_spec_after_idle", stats_value(r.bytes_per_spec_idle));
    sc.set("registrations", regs);
    sc.set("registrations_missing", missing);
    Value rounds_v = Value::array();
    for (const Round& x : r.rounds) {
      Value rv = Value::map();
      rv.set("victim", x.victim);
      rv.set("orphans", x.orphans);
      Value d = Value::array();
      for (double v : x.detected_ms)
        d.push(v);
      rv.set("detected_ms", std::move(d));
      rv.set("restarted_ms", x.restarted_ms);
      rv.set("converged_ms", x.converged_ms);
      rv.set("lost", x.lost);
      rv.set("duplicates", x.duplicates);
      rv.set("duplicates_after_converged", x.duplicates_converged);
      rv.set("orphans_started_twice", x.double_started);
      rv.set("extra_starts", x.extra_starts);
      rv.set("other_starts", x.other_starts);
      rv.set("conflicts", x.conflicts);
      rv.set("other_members_suspected", x.false_suspicions);
      rv.set("other_members_failed", x.false_failures);
      rv.set("agents_cpu_cores", x.cpu_cores);
      rv.set("agents_cpu_cores_second_before", x.cpu_cores_before);
      if (!x.handoff_gaps_ms.empty()) rv.set("handoff_gap_ms", stats_value(x.handoff_gaps_ms));
      if (!x.restarts.empty()) {
        Value tl = Value::array();
        for (const auto& [ms, node] : x.restarts) {
          Value p = Value::array();
          p.push(ms);
          p.push(node);
          tl.push(std::move(p));
        }
        rv.set("timeline", std::move(tl));
      }
      rounds_v.push(std::move(rv));
    }
    sc.set("rounds", std::move(rounds_v));
    json_scenarios.push(std::move(sc));
  }
  Value doc = Value::map();
  doc.set("benchmark", "failover");
  const shoal::bench::Provenance from = shoal::bench::provenance(argc, argv);
  doc.set("commit", from.commit);
  doc.set("command", from.command);
  doc.set("date", from.date);
  doc.set("ok", !failed);
  doc.set("quick", quick);
  doc.set("rounds", rounds);
  doc.set("seconds", total_s);
  doc.set("scenarios", std::move(json_scenarios));
  std::filesystem::create_directories(std::filesystem::path(json_path).parent_path().empty()
                                          ? "."
                                          : std::filesystem::path(json_path).parent_path());
  std::ofstream(json_path) << rpc::to_json(doc, true) << "\n";
  std::printf("\nwrote %s (%.0f s)\n", json_path.c_str(), total_s);

  // The headline: the main target's scenario (or the first one run).
  const Result* head = nullptr;
  for (const Result& r : results) {
    if (r.scenario.name == "kill-n5-m10000") head = &r;
  }
  if (head == nullptr && !results.empty()) head = &results.front();
  if (head != nullptr) {
    std::vector<double> conv;
    std::size_t lost = 0, doubled = 0;
    for (const Round& x : head->rounds) {
      if (!std::isnan(x.converged_ms)) conv.push_back(x.converged_ms);
      lost += x.lost;
      doubled += x.double_started;
    }
    std::printf(
        "failover_bench: %s: every survivor converged on every orphan p50 %s ms, p99 %s ms after "
        "the fault (%zu/%zu rounds converged); lost %zu, started twice %zu%s\n",
        head->scenario.name.c_str(), fmt_ms(pct(conv, 50)).c_str(), fmt_ms(pct(conv, 99)).c_str(),
        conv.size(), head->rounds.size(), lost, doubled, failed ? "; FAILED (see above)" : "");
  }
  return failed ? 1 : 0;
}
