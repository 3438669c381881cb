#include "tests/support/agent_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace shoal::test {

std::string shoal_binary() {
  return SHOAL_BINARY;
}

AgentProcess::AgentProcess(std::vector<std::string> args, std::string log_path)
    : log_path_(std::move(log_path)) {
  std::vector<std::string> argv_storage{shoal_binary(), "agent"};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  const int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + log_path_);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(fd, 2);
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fd);
}

AgentProcess::~AgentProcess() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait_exit(std::chrono::milliseconds(5000));
  }
}

std::string AgentProcess::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::size_t AgentProcess::count(const std::vector<std::string>& parts) const {
  std::istringstream in(log());
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    bool all = true;
    for (const std::string& p : parts)
      all = all && line.find(p) != std::string::npos;
    n += all ? 1 : 0;
  }
  return n;
}

bool AgentProcess::wait_for(const std::vector<std::string>& parts,
                            std::chrono::milliseconds deadline) const {
  return eventually([&] { return count(parts) > 0; }, deadline);
}

void AgentProcess::signal(int sig) const {
  ::kill(pid_, sig);
}

bool AgentProcess::running() {
  if (reaped_) return false;
  if (::waitpid(pid_, &status_, WNOHANG) == pid_) reaped_ = true;
  return !reaped_;
}

int AgentProcess::wait_exit(std::chrono::milliseconds deadline) {
  if (!eventually([&] { return !running(); }, deadline)) return -1;
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
}

std::uint16_t free_ports(std::uint16_t count) {
  std::random_device rd;  // tests only: pick a port range no other test run is likely to hold
  std::mt19937 rng(rd());
  for (int attempt = 0; attempt < 200; ++attempt) {
    const auto base = static_cast<std::uint16_t>(20000 + rng() % 40000);
    bool ok = true;
    for (std::uint16_t i = 0; i < count && ok; ++i) {
      for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
        const int fd = ::socket(AF_INET, type, 0);
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(static_cast<std::uint16_t>(base + i));
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok = ok && ::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0;
        ::close(fd);
      }
    }
    if (ok) return base;
  }
  throw std::runtime_error("no free port range on 127.0.0.1");
}

}  // namespace shoal::test
