#include "tests/support/agent_process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace shoal::test {

std::string shoal_binary() {
  return SHOAL_BINARY;
}

namespace {

std::vector<std::string> agent_argv(std::vector<std::string> args) {
  std::vector<std::string> argv{shoal_binary(), "agent"};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

}  // namespace

AgentProcess::AgentProcess(std::vector<std::string> args, std::string log_path, std::string netns)
    : AgentProcess(Program{}, agent_argv(std::move(args)), std::move(log_path), std::move(netns)) {}

std::unique_ptr<AgentProcess> AgentProcess::program(std::vector<std::string> argv,
                                                    std::string log_path, std::string netns) {
  return std::unique_ptr<AgentProcess>(
      new AgentProcess(Program{}, std::move(argv), std::move(log_path), std::move(netns)));
}

AgentProcess::AgentProcess(Program, std::vector<std::string> argv_storage, std::string log_path,
                           std::string netns)
    : log_path_(std::move(log_path)) {
  // Opened before the fork, so a missing namespace is this constructor's error, not the child's.
  int ns_fd = -1;
  if (!netns.empty()) {
    ns_fd = ::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
    if (ns_fd < 0) throw std::runtime_error("no network namespace " + netns);
  }
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
    if (ns_fd >= 0 && ::setns(ns_fd, CLONE_NEWNET) != 0) ::_exit(126);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fd);
  if (ns_fd >= 0) ::close(ns_fd);
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

CliRun run_cli(const std::vector<std::string>& args, const std::string& input,
               const std::vector<std::string>& env, std::chrono::milliseconds deadline) {
  std::vector<std::string> argv{shoal_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv, input, env, deadline);
}

CliRun run_program(const std::vector<std::string>& args, const std::string& input,
                   const std::vector<std::string>& env, std::chrono::milliseconds deadline) {
  std::vector<std::string> argv_storage = args;
  std::vector<char*> argv;
  for (std::string& a : argv_storage)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e)
    env_storage.emplace_back(*e);
  env_storage.insert(env_storage.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (std::string& e : env_storage)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  // The input is small (a checkpoint at most): written at once, then the pipe is closed.
  if (!input.empty() && ::write(in[1], input.data(), input.size()) < 0) {
    // The command may have exited without reading: its status says so.
  }
  ::close(in[1]);
  CliRun run;
  const auto end = std::chrono::steady_clock::now() + deadline;
  bool out_open = true;
  bool err_open = true;
  while (out_open || err_open) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd fds[2] = {{out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0}};
    if (::poll(fds, 2, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
      } else {
        (i == 0 ? run.out : run.err).append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  if (out_open || err_open) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return run;  // code -1: it did not end in time
  }
  ::waitpid(pid, &status, 0);
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

}  // namespace shoal::test
