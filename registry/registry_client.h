#pragma once

// RegistryClient: the thread-safe facade of a Registry, for callers outside the loop's thread
// (an embedding program's worker threads, say). Every call is posted to the loop through an
// Executor and answered by a std::future; the Registry itself stays single-threaded. After a
// write, the client also flushes the replicator, so the change goes out in the same loop turn.
//
// The Registry and Replicator must outlive the client's pending calls; a call posted after the
// executor closed yields a future holding std::runtime_error("shoal: the loop is closed").

#include <future>
#include <optional>
#include <string>
#include <vector>

#include "cluster/executor.h"
#include "registry/registry.h"

namespace shoal::registry {

class RegistryClient {
 public:
  // `now` gives the loop's time in ms (called on the loop); `after_write` runs on the loop after
  // every write (the agent flushes and settles its driver there).
  RegistryClient(cluster::Executor& executor, Registry& registry,
                 std::function<std::uint64_t()> now, std::function<void()> after_write);

  std::future<std::expected<void, RegisterError>> register_name(std::string name, Pid pid,
                                                                std::string meta = {});
  std::future<bool> unregister(std::string name);
  std::future<std::optional<Registration>> whereis(std::string name);
  std::future<std::vector<std::pair<std::string, Registration>>> names(std::string prefix,
                                                                       std::size_t limit);
  std::future<std::expected<void, RegisterError>> join(std::string group, Pid pid,
                                                       std::string meta = {});
  std::future<bool> leave(std::string group, Pid pid);
  std::future<std::vector<Registration>> members(std::string group);

 private:
  template <typename R, typename F>
  std::future<R> call(F fn);

  cluster::Executor& executor_;
  Registry& registry_;
  std::function<std::uint64_t()> now_;
  std::function<void()> after_write_;
};

}  // namespace shoal::registry
