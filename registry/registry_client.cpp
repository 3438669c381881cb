#include "registry/registry_client.h"

#include <memory>
#include <stdexcept>

namespace shoal::registry {

RegistryClient::RegistryClient(cluster::Executor& executor, Registry& registry,
                               std::function<std::uint64_t()> now,
                               std::function<void()> after_write)
    : executor_(executor),
      registry_(registry),
      now_(std::move(now)),
      after_write_(std::move(after_write)) {}

template <typename R, typename F>
std::future<R> RegistryClient::call(F fn) {
  auto promise = std::make_shared<std::promise<R>>();
  std::future<R> future = promise->get_future();
  const bool posted = executor_.post([promise, fn = std::move(fn)]() mutable {
    try {
      promise->set_value(fn());
    } catch (...) {
      promise->set_exception(std::current_exception());
    }
  });
  if (!posted) {
    promise->set_exception(
        std::make_exception_ptr(std::runtime_error("shoal: the loop is closed")));
  }
  return future;
}

std::future<std::expected<void, RegisterError>> RegistryClient::register_name(std::string name,
                                                                              Pid pid,
                                                                              std::string meta) {
  return call<std::expected<void, RegisterError>>(
      [this, name = std::move(name), pid = std::move(pid), meta = std::move(meta)] {
        auto result = registry_.register_name(now_(), name, pid, meta);
        if (after_write_) after_write_();
        return result;
      });
}

std::future<bool> RegistryClient::unregister(std::string name) {
  return call<bool>([this, name = std::move(name)] {
    const bool removed = registry_.unregister(now_(), name);
    if (after_write_) after_write_();
    return removed;
  });
}

std::future<std::optional<Registration>> RegistryClient::whereis(std::string name) {
  return call<std::optional<Registration>>(
      [this, name = std::move(name)] { return registry_.whereis(name); });
}

std::future<std::vector<std::pair<std::string, Registration>>> RegistryClient::names(
    std::string prefix, std::size_t limit) {
  return call<std::vector<std::pair<std::string, Registration>>>(
      [this, prefix = std::move(prefix), limit] { return registry_.names(prefix, limit); });
}

std::future<std::expected<void, RegisterError>> RegistryClient::join(std::string group, Pid pid,
                                                                     std::string meta) {
  return call<std::expected<void, RegisterError>>(
      [this, group = std::move(group), pid = std::move(pid), meta = std::move(meta)] {
        auto result = registry_.join(now_(), group, pid, meta);
        if (after_write_) after_write_();
        return result;
      });
}

std::future<bool> RegistryClient::leave(std::string group, Pid pid) {
  return call<bool>([this, group = std::move(group), pid = std::move(pid)] {
    const bool left = registry_.leave(now_(), group, pid);
    if (after_write_) after_write_();
    return left;
  });
}

std::future<std::vector<Registration>> RegistryClient::members(std::string group) {
  return call<std::vector<Registration>>(
      [this, group = std::move(group)] { return registry_.members(group); });
}

}  // namespace shoal::registry
