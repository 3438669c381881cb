#include "supervisor/messaging_client.h"

#include <memory>
#include <stdexcept>

namespace shoal::supervisor {

namespace {

template <typename R>
void closed(const std::shared_ptr<std::promise<R>>& promise) {
  promise->set_exception(std::make_exception_ptr(std::runtime_error("shoal: the loop is closed")));
}

}  // namespace

MessagingClient::MessagingClient(cluster::Executor& executor, Stack& stack, std::uint64_t from,
                                 std::function<std::uint64_t()> now, std::function<void()> after)
    : executor_(executor),
      stack_(stack),
      from_(from),
      now_(std::move(now)),
      after_(std::move(after)) {}

bool MessagingClient::post(std::function<void()> fn) {
  return executor_.post([this, fn = std::move(fn)] {
    fn();
    if (after_) after_();
  });
}

std::future<std::expected<void, messaging::CallError>> MessagingClient::send(
    messaging::Target target, std::string payload) {
  using R = std::expected<void, messaging::CallError>;
  auto promise = std::make_shared<std::promise<R>>();
  auto future = promise->get_future();
  if (!post([this, promise, target = std::move(target), payload = std::move(payload)] {
        promise->set_value(stack_.messenger().send(now_(), target, from_, payload));
      })) {
    closed(promise);
  }
  return future;
}

void MessagingClient::call(messaging::Target target, std::string payload, std::uint64_t timeout_ms,
                           std::function<void(messaging::CallResult)> done) {
  post([this, target = std::move(target), payload = std::move(payload), timeout_ms,
        done = std::move(done)]() mutable {
    stack_.call(now_(), target, from_, payload, timeout_ms, std::move(done));
  });
}

std::future<messaging::CallResult> MessagingClient::call(messaging::Target target,
                                                         std::string payload,
                                                         std::uint64_t timeout_ms) {
  auto promise = std::make_shared<std::promise<messaging::CallResult>>();
  auto future = promise->get_future();
  if (!post([this, promise, target = std::move(target), payload = std::move(payload), timeout_ms] {
        stack_.call(now_(), target, from_, payload, timeout_ms,
                    [promise](messaging::CallResult r) { promise->set_value(std::move(r)); });
      })) {
    closed(promise);
  }
  return future;
}

std::future<std::expected<std::size_t, messaging::CallError>> MessagingClient::publish(
    std::string group, std::string payload) {
  using R = std::expected<std::size_t, messaging::CallError>;
  auto promise = std::make_shared<std::promise<R>>();
  auto future = promise->get_future();
  if (!post([this, promise, group = std::move(group), payload = std::move(payload)] {
        promise->set_value(stack_.messenger().publish(now_(), group, from_, payload));
      })) {
    closed(promise);
  }
  return future;
}

}  // namespace shoal::supervisor
