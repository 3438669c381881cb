#pragma once

// Executor: runs tasks on the thread that owns a loop. Code on other threads enters the loop-bound
// cores (membership, replicator, registry) only through one, so the cores stay single-threaded.
// cluster/uv/UvExecutor implements it with a uv_async_t; tests may run tasks inline.

#include <functional>

namespace shoal::cluster {

class Executor {
 public:
  virtual ~Executor() = default;
  // Queues `task` to run on the loop's thread, in posting order. Thread-safe. Returns false (and
  // drops the task) once the executor is closed.
  virtual bool post(std::function<void()> task) = 0;
};

}  // namespace shoal::cluster
