#include "tests/fault/net_lab.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

using namespace std::chrono_literals;

namespace shoal::test {

namespace {

// The full path of a system command, or "" if it is not installed.
std::string tool(const std::string& name) {
  for (const char* dir : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) {
    const std::string path = std::string(dir) + "/" + name;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return {};
}

std::string netem_binary() {
  return SHOAL_FAULT_NETEM;
}

// Deletes labs whose creating process is gone (a test killed before its destructors ran).
void sweep_stale_labs(const std::string& ip) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/run/netns", ec)) {
    const std::string name = entry.path().filename();
    const std::string head = "shoal-lab";
    if (name.rfind(head, 0) != 0) continue;
    const auto dash = name.find('-', head.size());
    if (dash == std::string::npos) continue;
    const pid_t owner = static_cast<pid_t>(
        std::strtol(name.substr(head.size(), dash - head.size()).c_str(), nullptr, 10));
    if (owner <= 0 || (::kill(owner, 0) != 0 && errno == ESRCH))
      run_program({ip, "netns", "del", name}, {}, {}, 10s);
  }
}

}  // namespace

std::optional<std::string> NetLab::unavailable() {
  if (::geteuid() != 0) return "the fault lab needs root (network namespaces)";
  for (const char* name : {"ip", "nft", "iptables"}) {
    if (tool(name).empty())
      return std::string("the fault lab needs `") + name +
             "` (Debian: iproute2, nftables, iptables; scripts/deps.sh installs them)";
  }
  const CliRun probe = run_program({tool("ip"), "netns", "list"}, {}, {}, 10s);
  if (probe.code != 0) return "`ip netns` does not work here: " + probe.err;
  return std::nullopt;
}

NetLab::NetLab(std::size_t hosts, std::string log_dir)
    : hosts_(hosts), log_dir_(std::move(log_dir)) {
  if (hosts_ == 0 || hosts_ > 200) throw std::invalid_argument("NetLab: 1..200 hosts");
  static int labs = 0;
  prefix_ = "shoal-lab" + std::to_string(::getpid()) + "-" + std::to_string(labs++);
  const std::string ip_cmd = tool("ip");
  sweep_stale_labs(ip_cmd);
  try {
    const std::string sw = prefix_ + "-sw";
    sh({ip_cmd, "netns", "add", sw});
    created_.push_back(sw);
    sh({ip_cmd, "-n", sw, "link", "set", "lo", "up"});
    sh({ip_cmd, "-n", sw, "link", "add", "br0", "type", "bridge"});
    sh({ip_cmd, "-n", sw, "link", "set", "br0", "up"});
    for (std::size_t i = 0; i < hosts_; ++i) {
      const std::string h = ns(i);
      sh({ip_cmd, "netns", "add", h});
      created_.push_back(h);
      const std::string port = "p" + std::to_string(i);
      sh({ip_cmd, "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns",
          h});
      sh({ip_cmd, "-n", sw, "link", "set", port, "master", "br0", "up"});
      sh({ip_cmd, "-n", h, "addr", "add", ip(i) + "/24", "dev", "eth0"});
      sh({ip_cmd, "-n", h, "link", "set", "eth0", "up"});
      sh({ip_cmd, "-n", h, "link", "set", "lo", "up"});
    }
    nft("table bridge shoal_lab {\n"
        "  chain cuts { type filter hook forward priority 0; policy accept; }\n"
        "}\n");
  } catch (...) {
    destroy();
    throw;
  }
}

NetLab::~NetLab() {
  destroy();
}

std::string NetLab::ns(std::size_t host) const {
  return prefix_ + "-h" + std::to_string(host);
}

std::string NetLab::ip(std::size_t host) const {
  return "10.213.0." + std::to_string(host + 1);
}

void NetLab::sh(const std::vector<std::string>& argv, const std::string& input) const {
  const CliRun r = run_program(argv, input, {}, 30s);
  if (r.code != 0) {
    std::string cmd;
    for (const std::string& a : argv)
      cmd += (cmd.empty() ? "" : " ") + a;
    throw std::runtime_error("NetLab: `" + cmd + "` failed (" + std::to_string(r.code) +
                             "): " + r.err + r.out);
  }
}

void NetLab::nft(const std::string& script) const {
  sh({tool("ip"), "netns", "exec", prefix_ + "-sw", tool("nft"), "-f", "-"}, script);
}

void NetLab::partition(const std::vector<std::vector<std::size_t>>& groups) {
  cuts_.clear();
  std::vector<int> group_of(hosts_, -1);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    for (std::size_t h : groups[g]) {
      if (h >= hosts_)
        throw std::invalid_argument("NetLab::partition: no host " + std::to_string(h));
      group_of[h] = static_cast<int>(g);
    }
  }
  for (std::size_t a = 0; a < hosts_; ++a) {
    for (std::size_t b = 0; b < hosts_; ++b) {
      if (a != b && (group_of[a] < 0 || group_of[a] != group_of[b])) cuts_.emplace_back(a, b);
    }
  }
  std::ostringstream script;
  script << "flush chain bridge shoal_lab cuts\n";
  for (const auto& [a, b] : cuts_)
    script << "add rule bridge shoal_lab cuts ip saddr " << ip(a) << " ip daddr " << ip(b)
           << " drop\n";
  nft(script.str());
}

void NetLab::cut(std::size_t from, std::size_t to) {
  if (from >= hosts_ || to >= hosts_) throw std::invalid_argument("NetLab::cut: no such host");
  cuts_.emplace_back(from, to);
  nft("add rule bridge shoal_lab cuts ip saddr " + ip(from) + " ip daddr " + ip(to) + " drop\n");
}

void NetLab::heal() {
  cuts_.clear();
  nft("flush chain bridge shoal_lab cuts\n");
}

void NetLab::impair(const Impairment& imp) {
  const std::string sw = prefix_ + "-sw";
  const std::string ip_cmd = tool("ip");
  stop_netem();
  sh({ip_cmd, "netns", "exec", sw, tool("iptables"), "-F", "FORWARD"});
  nft("table netdev shoal_dup {}\ndelete table netdev shoal_dup\n");
  if (imp.loss > 0 || imp.delay_ms > 0 || imp.jitter_ms > 0) {
    const std::string log = log_dir_ + "/netem" + std::to_string(netem_runs_++) + ".log";
    netem_log_path_ = log;
    netem_ =
        AgentProcess::program({netem_binary(), "--queue", "0", "--loss", std::to_string(imp.loss),
                               "--delay", std::to_string(imp.delay_ms), "--jitter",
                               std::to_string(imp.jitter_ms), "--seed", std::to_string(imp.seed)},
                              log, sw);
    if (!netem_->wait_for({"netem: ready"}, 10s))
      throw std::runtime_error("NetLab: the netem helper did not start:\n" + netem_->log());
    // Bridged IPv4 goes through iptables (br_netfilter), and from there to the helper's queue.
    // With --queue-bypass, packets pass untouched whenever no helper listens.
    sh({ip_cmd, "netns", "exec", sw, "sh", "-c",
        "echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables"});
    sh({ip_cmd, "netns", "exec", sw, tool("iptables"), "-A", "FORWARD", "-j", "NFQUEUE",
        "--queue-num", "0", "--queue-bypass"});
  }
  if (imp.duplicate > 0) {
    // Per mille; each port copies frames for host j straight to port j.
    const int per_mille = static_cast<int>(imp.duplicate * 1000);
    std::ostringstream script;
    script << "table netdev shoal_dup {\n";
    for (std::size_t i = 0; i < hosts_; ++i) {
      script << "  chain in" << i << " {\n    type filter hook ingress device p" << i
             << " priority 0;\n";
      for (std::size_t j = 0; j < hosts_; ++j) {
        if (i != j)
          script << "    ip daddr " << ip(j) << " numgen random mod 1000 < " << per_mille
                 << " dup to p" << j << "\n";
      }
      script << "  }\n";
    }
    script << "}\n";
    nft(script.str());
  }
}

std::string NetLab::netem_log() const {
  std::ifstream in(netem_log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool NetLab::netem_running() const {
  return netem_ && netem_->running();
}

void NetLab::stop_netem() {
  if (!netem_) return;
  netem_->signal(SIGTERM);
  NetemCounters c;
  c.exit_code = netem_->wait_exit(10s);
  if (c.exit_code < 0) netem_->signal(SIGKILL);
  netem_.reset();
  netem_counters_.reset();
  std::istringstream in(netem_log());
  for (std::string line; std::getline(in, line);) {
    unsigned long long seed = 0, seen = 0, dropped = 0, delayed = 0, overflow = 0;
    if (std::sscanf(line.c_str(),
                    "netem: seed=%llu seen=%llu dropped=%llu delayed=%llu overflow=%llu", &seed,
                    &seen, &dropped, &delayed, &overflow) == 5) {
      c.seen = seen;
      c.dropped = dropped;
      c.delayed = delayed;
      c.overflow = overflow;
      netem_counters_ = c;
    }
  }
}

void NetLab::destroy() {
  stop_netem();
  const std::string ip_cmd = tool("ip");
  for (auto it = created_.rbegin(); it != created_.rend(); ++it)
    run_program({ip_cmd, "netns", "del", *it}, {}, {}, 30s);
  created_.clear();
}

}  // namespace shoal::test
