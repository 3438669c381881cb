#pragma once

// UvExecutor: an Executor on a libuv loop. post() may be called from any thread; the tasks run on
// the loop's thread, in order, woken by one uv_async_t. close() (on the loop's thread) stops it:
// later posts are refused, tasks already queued are dropped, and `done` runs once the handle is
// closed.

#include <uv.h>

#include <deque>
#include <functional>
#include <mutex>

#include "cluster/executor.h"

namespace shoal::cluster {

class UvExecutor final : public Executor {
 public:
  // REQUIRES: called on the loop's thread.
  explicit UvExecutor(uv_loop_t* loop);
  bool post(std::function<void()> task) override;
  void close(std::function<void()> done);

 private:
  static void async_cb(uv_async_t* handle);

  uv_async_t async_{};
  std::mutex mutex_;
  std::deque<std::function<void()>> queue_;  // guarded by mutex_
  bool closed_ = false;                      // guarded by mutex_
  std::function<void()> on_closed_;
};

}  // namespace shoal::cluster
