#include "supervisor/uv/exec_runtime.h"
#include "crdt/hash.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

extern char** environ;

namespace shoal::supervisor {

namespace {

int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return std::string("signal ") + (name != nullptr ? name : std::to_string(WTERMSIG(status)));
  }
  return "status " + std::to_string(status);
}

bool write_file(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

}  // namespace

std::string file_name_for(const std::string& child) {
  std::string out;
  bool replaced = child.empty() || child[0] == '.';
  for (char c : child) {
    const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.';
    out += safe ? c : '_';
    replaced = replaced || !safe;
  }
  if (out.size() > 180) {
    out.resize(180);
    replaced = true;
  }
  if (replaced) {
    const std::uint64_t h = crdt::fnv1a(child);
    char suffix[20];
    std::snprintf(suffix, sizeof suffix, "-%016llx", static_cast<unsigned long long>(h));
    out += suffix;
  }
  return out;
}

struct ExecRuntime::Proc {
  ExecRuntime* owner;
  std::string name;
  std::uint64_t id;
  pid_t pid;
  int pidfd;
  int log_fd;
  std::string log_path;
  bool killed = false;
  uv_poll_t poll{};
  uv_timer_t kill_timer{};
  int open = 0;
};

ExecRuntime::ExecRuntime(uv_loop_t* loop, ExecRuntimeOptions options, ExitFn on_exit)
    : loop_(loop), options_(std::move(options)), on_exit_(std::move(on_exit)) {}

std::expected<std::unique_ptr<ExecRuntime>, std::string> ExecRuntime::create(
    uv_loop_t* loop, ExecRuntimeOptions options, ExitFn on_exit) {
  for (const std::string* dir : {&options.log_dir, &options.checkpoint_dir}) {
    std::error_code ec;
    std::filesystem::create_directories(*dir, ec);
    if (ec) return std::unexpected("cannot create " + *dir + ": " + ec.message());
  }
  std::unique_ptr<ExecRuntime> self(new ExecRuntime(loop, std::move(options), std::move(on_exit)));
  uv_timer_init(loop, &self->log_timer_);
  self->log_timer_.data = self.get();
  ++self->open_handles_;
  uv_timer_start(
      &self->log_timer_, [](uv_timer_t* t) { static_cast<ExecRuntime*>(t->data)->check_logs(); },
      2000, 2000);
  return self;
}

ExecRuntime::~ExecRuntime() {
  // close() should have run; if not, no child outlives us anyway.
  for (auto& [name, proc] : procs_) {
    ::kill(-proc->pid, SIGKILL);
  }
}

std::string ExecRuntime::log_path(const std::string& name) const {
  return options_.log_dir + "/" + file_name_for(name) + ".log";
}

std::expected<std::string, std::string> resolve_executable(const std::string& argv0,
                                                           const std::string& cwd) {
  namespace fs = std::filesystem;
  if (argv0.empty()) return std::unexpected(std::string("an empty command"));
  std::error_code ec;
  fs::path found;
  if (argv0.find('/') != std::string::npos) {
    found = argv0;
    if (found.is_relative()) found = (cwd.empty() ? fs::current_path(ec) : fs::path(cwd)) / found;
  } else {
    const char* env_path = std::getenv("PATH");
    std::string_view dirs = env_path != nullptr ? env_path : "/usr/local/bin:/usr/bin:/bin";
    while (found.empty()) {
      const std::size_t colon = dirs.find(':');
      const std::string dir(dirs.substr(0, colon));
      const fs::path candidate = fs::path(dir.empty() ? "." : dir) / argv0;
      if (fs::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0)
        found = candidate.is_relative() ? fs::current_path(ec) / candidate : candidate;
      if (colon == std::string_view::npos) break;
      dirs.remove_prefix(colon + 1);
    }
    if (found.empty()) return std::unexpected("no executable '" + argv0 + "' on PATH");
  }
  fs::path canonical = fs::canonical(found, ec);
  if (ec) return std::unexpected("cannot resolve " + found.string() + ": " + ec.message());
  return canonical.string();
}

std::expected<std::string, std::string> allowed_executable(const ExecPolicy& policy,
                                                           const std::string& argv0,
                                                           const std::string& cwd) {
  if (policy.mode == ExecPolicy::Mode::any) return std::string();
  if (policy.mode == ExecPolicy::Mode::none)
    return std::unexpected(
        std::string("the exec policy of this node allows no command (--exec deny)"));
  auto path = resolve_executable(argv0, cwd);
  if (!path || admits(policy, *path)) return path;
  return std::unexpected("the exec policy of this node does not allow " + *path +
                         " (--exec-allow " + encode_exec_policy(policy) + ")");
}

std::expected<int, std::string> ExecRuntime::start(const StartChild& start) {
  const ChildSpec& spec = start.spec;
  if (closing_) return std::unexpected("the runtime is closing");
  if (procs_.contains(spec.name)) return std::unexpected(spec.name + " is already running here");
  if (spec.kind != ChildKind::exec || spec.argv.empty())
    return std::unexpected(spec.name + " is not an exec child");
  // Under a policy, the path checked is the path run (no second PATH search after the check).
  auto allowed = allowed_executable(options_.policy, spec.argv[0], spec.cwd);
  if (!allowed) return std::unexpected(allowed.error());
  const std::string checked = std::move(*allowed);

  // Everything the child needs is prepared before fork: after it, the child only makes system
  // calls that are safe there.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "SHOAL_", 6) != 0) env_strings.emplace_back(*e);
  }
  env_strings.push_back("SHOAL_CHILD_NAME=" + spec.name);
  env_strings.push_back("SHOAL_NODE=" + options_.node);
  env_strings.push_back(std::string("SHOAL_HANDOFF=") + handoff_name(spec.handoff));
  for (const std::string& e : options_.env)
    env_strings.push_back(e);
  if (start.checkpoint) {
    const std::string path = options_.checkpoint_dir + "/" + file_name_for(spec.name);
    if (!write_file(path, *start.checkpoint))
      return std::unexpected("cannot write the checkpoint file " + path);
    env_strings.push_back("SHOAL_CHECKPOINT_FILE=" + path);
  }
  for (const std::string& e : spec.env)
    env_strings.push_back(e);
  std::vector<char*> envp;
  for (std::string& e : env_strings)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = spec.argv;
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log = log_path(spec.name);
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log_fd < 0) return std::unexpected("cannot open " + log + ": " + std::strerror(errno));
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  const pid_t parent = ::getpid();
  // A pipe that tells the parent whether exec failed (it closes on a successful exec).
  int status_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) {
    ::close(log_fd);
    if (devnull >= 0) ::close(devnull);
    return std::unexpected(std::string("pipe: ") + std::strerror(errno));
  }

  const pid_t pid = ::fork();
  if (pid == 0) {
    // The child. Only async-signal-safe calls from here on.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the agent died before the line above
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    int err = 0;
    if (cwd != nullptr && ::chdir(cwd) != 0) {
      err = errno;
    } else {
      if (checked.empty()) {
        ::execvpe(argv[0], argv.data(), envp.data());
      } else {
        ::execve(checked.c_str(), argv.data(), envp.data());
      }
      err = errno;
    }
    (void)!::write(status_pipe[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(status_pipe[1]);
  if (devnull >= 0) ::close(devnull);
  if (pid < 0) {
    const int err = errno;
    ::close(status_pipe[0]);
    ::close(log_fd);
    return std::unexpected(std::string("fork: ") + std::strerror(err));
  }
  int child_err = 0;
  const ssize_t n = ::read(status_pipe[0], &child_err, sizeof child_err);
  ::close(status_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof child_err)) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(log_fd);
    return std::unexpected("cannot run " + spec.argv[0] + ": " + std::strerror(child_err));
  }
  const int pidfd = pidfd_open(pid);
  if (pidfd < 0) {
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::close(log_fd);
    return std::unexpected(std::string("pidfd_open: ") + std::strerror(errno));
  }
  auto* proc = new Proc{this, spec.name, start.id, pid, pidfd, log_fd, log, false, {}, {}, 2};
  procs_[spec.name] = proc;
  uv_poll_init(loop_, &proc->poll, pidfd);
  proc->poll.data = proc;
  uv_timer_init(loop_, &proc->kill_timer);
  proc->kill_timer.data = proc;
  uv_poll_start(&proc->poll, UV_READABLE, [](uv_poll_t* h, int, int) {
    auto* p = static_cast<Proc*>(h->data);
    p->owner->reaped(p);
  });
  return static_cast<int>(pid);
}

void ExecRuntime::stop(const StopChild& stop) {
  auto it = procs_.find(stop.name);
  if (it == procs_.end() || it->second->id != stop.id) return;
  Proc* proc = it->second;
  ::kill(-proc->pid, SIGTERM);
  uv_timer_start(
      &proc->kill_timer,
      [](uv_timer_t* t) {
        auto* p = static_cast<Proc*>(t->data);
        p->killed = true;
        ::kill(-p->pid, SIGKILL);
      },
      std::max<std::uint64_t>(stop.shutdown_ms, 1), 0);
}

std::optional<int> ExecRuntime::os_pid(const std::string& name) const {
  auto it = procs_.find(name);
  if (it == procs_.end()) return std::nullopt;
  return static_cast<int>(it->second->pid);
}

void ExecRuntime::reaped(Proc* proc) {
  int status = 0;
  const pid_t r = ::waitpid(proc->pid, &status, WNOHANG);
  if (r == 0) return;  // not yet (spurious wake-up)
  // Whatever the leader left in its group goes with it.
  ::kill(-proc->pid, SIGKILL);
  const bool normal = r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  const std::string how =
      r > 0 ? describe(status) : "lost (" + std::string(std::strerror(errno)) + ")";
  const std::string name = proc->name;
  const std::uint64_t id = proc->id;
  release(proc);
  if (on_exit_ && !closing_) on_exit_(name, id, normal, how);
}

void ExecRuntime::release(Proc* proc) {
  procs_.erase(proc->name);
  uv_poll_stop(&proc->poll);
  uv_timer_stop(&proc->kill_timer);
  ::close(proc->log_fd);
  auto on_close = [](uv_handle_t* h) {
    auto* p = static_cast<Proc*>(h->data);
    if (--p->open == 0) {
      ::close(p->pidfd);
      ExecRuntime* owner = p->owner;
      delete p;
      if (owner->closing_ && owner->procs_.empty() && owner->open_handles_ == 0 &&
          owner->on_closed_) {
        auto done = std::move(owner->on_closed_);
        owner->on_closed_ = nullptr;
        done();
      }
    }
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&proc->poll), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&proc->kill_timer), on_close);
}

void ExecRuntime::check_logs() {
  for (auto& [name, proc] : procs_) {
    struct stat st {};
    if (::fstat(proc->log_fd, &st) != 0 ||
        static_cast<std::size_t>(st.st_size) <= options_.max_log_bytes)
      continue;
    // Copy and truncate: the child keeps writing (O_APPEND) to the same file, now empty.
    std::error_code ec;
    std::filesystem::copy_file(proc->log_path, proc->log_path + ".1",
                               std::filesystem::copy_options::overwrite_existing, ec);
    (void)!::ftruncate(proc->log_fd, 0);
  }
}

void ExecRuntime::close(std::function<void()> done) {
  if (closing_) return;
  closing_ = true;
  on_closed_ = std::move(done);
  std::vector<Proc*> all;
  for (auto& [name, proc] : procs_)
    all.push_back(proc);
  for (Proc* proc : all) {
    ::kill(-proc->pid, SIGKILL);
    ::waitpid(proc->pid, nullptr, 0);
    release(proc);
  }
  uv_timer_stop(&log_timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&log_timer_), [](uv_handle_t* h) {
    auto* self = static_cast<ExecRuntime*>(h->data);
    if (--self->open_handles_ == 0 && self->procs_.empty() && self->on_closed_) {
      auto cb = std::move(self->on_closed_);
      self->on_closed_ = nullptr;
      cb();
    }
  });
}

}  // namespace shoal::supervisor
