#pragma once

// AgentProcess: a real `shoal agent` started by a test, its stderr captured to a file. Tests wait
// on conditions in that log with generous deadlines (never fixed sleeps) and end only the
// processes they started, by pid.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/host.h"

namespace shoal::test {

class AgentProcess {
 public:
  // Starts `shoal agent` with `args` (after "agent"); stderr goes to `log_path`. With `netns`,
  // the process runs in that network namespace (/run/netns/NETNS; the fault lab's hosts).
  AgentProcess(std::vector<std::string> args, std::string log_path, std::string netns = {});
  // Starts any program: `argv[0]` is its path (a fault-lab helper, say).
  static std::unique_ptr<AgentProcess> program(std::vector<std::string> argv, std::string log_path,
                                               std::string netns = {});
  ~AgentProcess();  // SIGKILLs the process if it still runs
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  pid_t pid() const { return pid_; }
  // The whole log so far.
  std::string log() const;
  // Number of log lines containing every one of `parts`.
  std::size_t count(const std::vector<std::string>& parts) const;
  // Waits until a log line contains every one of `parts`. Returns false at the deadline.
  bool wait_for(const std::vector<std::string>& parts, std::chrono::milliseconds deadline) const;
  void signal(int sig) const;
  // Waits for the process to exit; returns its exit status (or -1 at the deadline).
  int wait_exit(std::chrono::milliseconds deadline);
  bool running();

 private:
  struct Program {};
  AgentProcess(Program, std::vector<std::string> argv, std::string log_path, std::string netns);

  pid_t pid_ = -1;
  std::string log_path_;
  bool reaped_ = false;
  int status_ = 0;
};

// What a CLI command did.
struct CliRun {
  int code = -1;  // exit status; 128 + signal if killed; -1 if it did not end within the deadline
  std::string out;
  std::string err;
};

// Runs `shoal ARGS...` with `input` on stdin and `env` ("NAME=value") added to the environment;
// waits at most `deadline` (then kills it).
CliRun run_cli(const std::vector<std::string>& args, const std::string& input = {},
               const std::vector<std::string>& env = {},
               std::chrono::milliseconds deadline = std::chrono::milliseconds(60'000));

// Runs the program `argv` (argv[0] a path) the same way.
CliRun run_program(const std::vector<std::string>& argv, const std::string& input = {},
                   const std::vector<std::string>& env = {},
                   std::chrono::milliseconds deadline = std::chrono::milliseconds(60'000));

// The path of the shoal binary under test.
std::string shoal_binary();

// Polls `pred` every 10 ms until it holds or `deadline` passes. Returns pred().
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds deadline);

}  // namespace shoal::test

#include "tests/support/agent_process_inl.h"
