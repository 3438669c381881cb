#include "cluster/uv/uv_executor.h"

namespace shoal::cluster {

UvExecutor::UvExecutor(uv_loop_t* loop) {
  uv_async_init(loop, &async_, async_cb);
  async_.data = this;
}

bool UvExecutor::post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return false;
    queue_.push_back(std::move(task));
  }
  uv_async_send(&async_);  // thread-safe; wakes coalesce
  return true;
}

void UvExecutor::async_cb(uv_async_t* handle) {
  auto* self = static_cast<UvExecutor*>(handle->data);
  std::deque<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    if (self->closed_) return;
    batch.swap(self->queue_);
  }
  for (auto& task : batch)
    task();
}

void UvExecutor::close(std::function<void()> done) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    queue_.clear();
  }
  on_closed_ = std::move(done);
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), [](uv_handle_t* h) {
    auto* self = static_cast<UvExecutor*>(h->data);
    if (self->on_closed_) self->on_closed_();
  });
}

}  // namespace shoal::cluster
