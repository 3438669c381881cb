#pragma once

// MessagingClient: messaging for threads outside the loop (an embedding program's own threads),
// like registry::RegistryClient for the registry. Every operation is posted to the stack's loop
// through an Executor and answered with a std::future, or a callback that runs on the loop. The
// Stack stays single-threaded. Messages go from local id `from` of this node (the client's pid:
// <node.creation.from>); receiving is a worker's job (WorkerRuntime::add_type).
//
// The Stack must outlive the client's pending operations; an operation posted after the executor
// closed yields a future holding std::runtime_error("shoal: the loop is closed").

#include <cstdint>
#include <expected>
#include <functional>
#include <future>
#include <string>

#include "cluster/executor.h"
#include "supervisor/stack.h"

namespace shoal::supervisor {

class MessagingClient {
 public:
  // `now` gives the loop's time (called on the loop); `after` runs on the loop after every
  // operation (the driver's settle(): what it queued goes out).
  MessagingClient(cluster::Executor& executor, Stack& stack, std::uint64_t from,
                  std::function<std::uint64_t()> now, std::function<void()> after);

  std::future<std::expected<void, messaging::CallError>> send(messaging::Target target,
                                                              std::string payload);
  std::future<messaging::CallResult> call(messaging::Target target, std::string payload,
                                          std::uint64_t timeout_ms = 0);
  // The same, `done` running on the loop.
  void call(messaging::Target target, std::string payload, std::uint64_t timeout_ms,
            std::function<void(messaging::CallResult)> done);
  std::future<std::expected<std::size_t, messaging::CallError>> publish(std::string group,
                                                                        std::string payload);

 private:
  // Runs `fn` on the loop; false if the loop is closed.
  bool post(std::function<void()> fn);

  cluster::Executor& executor_;
  Stack& stack_;
  const std::uint64_t from_;
  std::function<std::uint64_t()> now_;
  std::function<void()> after_;
};

}  // namespace shoal::supervisor
