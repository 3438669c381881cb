// shoal::Node (include/shoal/shoal.h): a supervisor::Stack run by a cluster::UvDriver on a loop
// of its own, on a thread of its own. Every public call is posted to that thread through a
// UvExecutor and waited for; worker callbacks run there.

#include <uv.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>
#include <utility>

#include "cluster/uv/uv_driver.h"
#include "cluster/uv/uv_executor.h"
#include "cluster/wire.h"
#include "shoal/shoal.h"
#include "supervisor/exec_policy.h"
#include "supervisor/stack.h"

namespace shoal {

static_assert(SHOAL_WIRE_VERSION == cluster::kWireVersion);

namespace {

// The node's own pid's local id (workers' ids start at 2^32).
constexpr std::uint64_t kSelfId = 1;
// After the leave is announced, the loop runs this long so that the announcement spreads.
constexpr std::uint64_t kLeaveLingerMs = 500;
// Worker types travel as tags, so that placement picks only nodes that have the type.
constexpr std::string_view kWorkerTagPrefix = "shoal.worker.";

std::unexpected<Error> fail(Errc code, std::string message) {
  return std::unexpected(Error{code, std::move(message)});
}

Pid pid_of(const registry::Pid& p) {
  return Pid{p.node, p.creation, p.id};
}
registry::Pid pid_of(const Pid& p) {
  return registry::Pid{p.node, p.creation, p.id};
}

Error error_of(messaging::CallError e) {
  switch (e) {
    case messaging::CallError::noproc:
      return {Errc::noproc, "no such name, or it holds no live process"};
    case messaging::CallError::nodedown:
      return {Errc::nodedown, "the target's node went away"};
    case messaging::CallError::timeout:
      return {Errc::timeout, "no reply in time"};
    case messaging::CallError::overloaded:
      return {Errc::overloaded, "too much is queued for the target's node"};
    case messaging::CallError::too_large:
      return {Errc::too_large, "the payload is over the limit"};
  }
  return {Errc::noproc, "unknown messaging error"};
}

// g++ 12 reports the error of a moved-in std::expected as maybe uninitialized once this is
// inlined into a std::function (a false positive: it is read only when has_value() is false).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
Result<std::string> result_of(messaging::CallResult r) {
  if (r.has_value()) return std::move(*r);
  return std::unexpected(error_of(r.error()));
}
#pragma GCC diagnostic pop

MemberStatus status_of(cluster::MemberStatus s) {
  switch (s) {
    case cluster::MemberStatus::alive:
      return MemberStatus::alive;
    case cluster::MemberStatus::suspect:
      return MemberStatus::suspect;
    case cluster::MemberStatus::dead:
      return MemberStatus::failed;
    case cluster::MemberStatus::left:
      return MemberStatus::left;
  }
  return MemberStatus::failed;
}

Member member_of(const cluster::MemberState& m) {
  Member out{m.name, m.addr.to_string(), status_of(m.status), m.incarnation, {}};
  for (const auto& [k, v] : m.tags)
    out.tags.emplace(k, v);
  return out;
}

// The user's WorkerContext, over the supervisor's, for the length of one callback.
class Context final : public WorkerContext {
 public:
  explicit Context(supervisor::WorkerContext& inner) : inner_(inner) {}
  const std::string& name() const override { return inner_.name(); }
  Pid self() const override { return pid_of(inner_.self()); }
  std::uint64_t now_ms() const override { return inner_.now(); }
  Result<void> checkpoint(std::string_view blob) override {
    // The supervisor would refuse it, and say so only in its log: the caller hears it here. A
    // node's supervisor runs with the default limit (start() does not change it).
    static const std::size_t limit = supervisor::SupervisorConfig{}.max_checkpoint_bytes;
    if (blob.size() > limit)
      return fail(Errc::too_large, "a checkpoint is at most " + std::to_string(limit) + " bytes");
    inner_.checkpoint(blob);
    return {};
  }
  void exit(bool normal, std::string how) override { inner_.exit(normal, std::move(how)); }
  bool handing_over() const override { return inner_.handing_over(); }
  Result<void> send(std::string_view name, std::string_view payload) override {
    auto sent = inner_.send(messaging::Target::of_name(std::string(name)), payload);
    if (!sent) return std::unexpected(error_of(sent.error()));
    return {};
  }
  void call(std::string_view name, std::string_view payload, std::chrono::milliseconds timeout,
            std::function<void(WorkerContext&, Result<std::string>)> done) override {
    inner_.call(
        messaging::Target::of_name(std::string(name)), payload,
        static_cast<std::uint64_t>(std::max<std::int64_t>(timeout.count(), 1)),
        [done = std::move(done)](supervisor::WorkerContext& ctx, messaging::CallResult result) {
          Context outer(ctx);
          done(outer, result_of(result));
        });
  }
  Result<std::size_t> publish(std::string_view group, std::string_view payload) override {
    auto sent = inner_.publish(group, payload);
    if (!sent) return std::unexpected(error_of(sent.error()));
    return *sent;
  }
  void reply(const std::string& reply_token, std::string_view payload) override {
    if (auto to = messaging::ReplyTo::parse(reply_token)) inner_.reply(*to, payload);
  }
  bool join(std::string_view group) override { return inner_.join(group); }
  bool leave(std::string_view group) override { return inner_.leave(group); }

 private:
  supervisor::WorkerContext& inner_;
};

// A user's Worker as one of the supervisor's.
class Adapter final : public supervisor::Worker {
 public:
  explicit Adapter(std::unique_ptr<shoal::Worker> worker) : worker_(std::move(worker)) {}
  void start(supervisor::WorkerContext& ctx,
             const std::optional<std::string>& checkpoint) override {
    Context outer(ctx);
    worker_->start(outer, checkpoint);
  }
  void stop(supervisor::WorkerContext& ctx) override {
    Context outer(ctx);
    worker_->stop(outer);
  }
  void on_message(supervisor::WorkerContext& ctx, const supervisor::Message& msg) override {
    Context outer(ctx);
    Message m{pid_of(msg.from), msg.payload, std::nullopt};
    if (msg.reply_to) m.reply_token = msg.reply_to->token();
    worker_->on_message(outer, m);
  }
  void on_tick(supervisor::WorkerContext& ctx) override {
    Context outer(ctx);
    worker_->on_tick(outer);
  }

 private:
  std::unique_ptr<shoal::Worker> worker_;
};

}  // namespace

const char* version() {
  return SHOAL_VERSION_STRING;
}

int wire_version() {
  return static_cast<int>(cluster::kWireVersion);
}

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::bad_option:
      return "bad_option";
    case Errc::bind_failed:
      return "bind_failed";
    case Errc::insecure:
      return "insecure";
    case Errc::already_registered:
      return "already_registered";
    case Errc::too_many:
      return "too_many";
    case Errc::noproc:
      return "noproc";
    case Errc::nodedown:
      return "nodedown";
    case Errc::timeout:
      return "timeout";
    case Errc::overloaded:
      return "overloaded";
    case Errc::too_large:
      return "too_large";
    case Errc::wrong_thread:
      return "wrong_thread";
    case Errc::stopped:
      return "stopped";
  }
  return "unknown";
}

std::string Pid::to_string() const {
  return pid_of(*this).to_string();
}

const char* status_name(MemberStatus status) {
  switch (status) {
    case MemberStatus::alive:
      return "alive";
    case MemberStatus::suspect:
      return "suspect";
    case MemberStatus::failed:
      return "failed";
    case MemberStatus::left:
      return "left";
  }
  return "unknown";
}

struct Node::Impl {
  NodeOptions options;
  uv_loop_t loop{};
  std::unique_ptr<cluster::UvDriver> driver;
  supervisor::Stack* stack = nullptr;  // the driver owns it
  std::unique_ptr<cluster::UvExecutor> executor;
  uv_timer_t linger{};
  std::thread thread;
  std::atomic<std::thread::id> loop_thread;
  std::atomic<bool> closing{false};
  std::promise<void> ended;  // set when the loop has ended (every handle closed)
  std::future<void> ended_future = ended.get_future();
  registry::Pid self;
  std::string address;

  std::uint64_t now() const { return driver->now(); }

  // Runs `fn` on the node's thread and waits for its result.
  template <class T>
  Result<T> on_loop(std::function<Result<T>()> fn) {
    if (std::this_thread::get_id() == loop_thread)
      return fail(Errc::wrong_thread, "a blocking Node method called on the node's thread");
    if (closing.load()) return fail(Errc::stopped, "the node has stopped");
    auto promise = std::make_shared<std::promise<Result<T>>>();
    std::future<Result<T>> future = promise->get_future();
    const bool posted = executor->post([this, promise, fn = std::move(fn)] {
      promise->set_value(fn());
      driver->settle();
    });
    if (!posted) return fail(Errc::stopped, "the node has stopped");
    try {
      return future.get();
    } catch (const std::future_error&) {  // the loop closed with the task queued
      return fail(Errc::stopped, "the node has stopped");
    }
  }

  // What the stack has for its owner. Embedded nodes run no exec children (their exec policy,
  // advertised in their tags, is "none", so placement gives them none).
  bool on_output() {
    std::vector<supervisor::StackOutput> outputs;
    stack->take_outputs(outputs);
    bool fed = false;
    for (supervisor::StackOutput& o : outputs) {
      if (auto* start = std::get_if<supervisor::StartChild>(&o)) {
        stack->on_child_start_failed(now(), start->spec.name, start->id,
                                     "an embedded node runs no exec children");
        fed = true;
      } else if (auto* line = std::get_if<supervisor::LogLine>(&o)) {
        if (options.log)
          options.log(supervisor::level_name(line->level), line->component, line->text);
      } else if (auto* task = std::get_if<messaging::TaskRequest>(&o)) {
        stack->messenger().task_end(now(), task->origin, task->task_id, 127,
                                    "an embedded node runs no commands");
        fed = true;
      } else if (std::holds_alternative<supervisor::Left>(o)) {
        uv_timer_start(
            &linger, [](uv_timer_t* t) { static_cast<Impl*>(t->data)->close_all(); },
            kLeaveLingerMs, 0);
      }
    }
    return fed;
  }

  // Closes every handle (on the loop's thread); the loop then ends.
  void close_all() {
    if (closing.exchange(true)) return;
    executor->close([] {});
    driver->close([this] { uv_close(reinterpret_cast<uv_handle_t*>(&linger), nullptr); });
  }
};

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Node>> Node::start(NodeOptions options) {
  if (options.name.empty() || options.name.size() > cluster::kMaxNameBytes)
    return fail(Errc::bad_option, "name: a node name is 1 to 255 bytes");
  auto bind = cluster::Address::parse(options.bind);
  if (!bind) return fail(Errc::bad_option, "bind: " + bind.error());
  std::optional<cluster::Address> advertise;
  if (!options.advertise.empty()) {
    auto a = cluster::Address::parse(options.advertise);
    if (!a) return fail(Errc::bad_option, "advertise: " + a.error());
    advertise = *a;
  }
  std::vector<cluster::Address> seeds;
  for (const std::string& s : options.seeds) {
    auto a = cluster::Address::parse(s);
    if (!a) return fail(Errc::bad_option, "seeds: " + s + ": " + a.error());
    seeds.push_back(*a);
  }
  cluster::Keyring keyring;
  for (const std::string& k : options.keys) {
    auto key = cluster::Keyring::parse_key(k);
    if (!key) return fail(Errc::bad_option, "keys: " + key.error());
    keyring.install(*key);
  }
  if (!keyring.keys().empty()) keyring.use(keyring.keys().front());
  if (!bind->is_loopback() && !keyring.enabled() && !options.insecure) {
    return fail(Errc::insecure,
                "bind " + options.bind +
                    " is reachable from other hosts and no keys are set: anyone who reaches it "
                    "could join (set keys, or insecure = true to allow it)");
  }

  supervisor::StackConfig config;
  config.startup_settle_ms = static_cast<std::uint64_t>(options.startup_settle.count());
  if (options.mode == NodeOptions::Mode::quorum) {
    if (options.expect == 0)
      return fail(Errc::bad_option, "expect: quorum mode needs the cluster size");
    const cluster::MembershipConfig& m = config.membership;
    supervisor::SupervisorConfig& s = config.supervisor;
    s.mode = supervisor::Mode::quorum;
    s.expect = options.expect;
    s.lease_ms =
        supervisor::quorum_lease_ms(options.expect, m.probe_interval_ms, m.awareness_max,
                                    m.suspicion_mult, m.suspicion_max_mult, s.fence_after_ms);
  } else if (options.expect != 0) {
    return fail(Errc::bad_option, "expect: only quorum mode uses it");
  }
  cluster::Tags tags;
  for (const auto& [k, v] : options.tags) {
    if (k.starts_with("shoal."))
      return fail(Errc::bad_option, "tags: keys starting with \"shoal.\" are shoal's own");
    tags.emplace(k, v);
  }
  for (const auto& [type, factory] : options.workers) {
    if (type.empty() || !factory)
      return fail(Errc::bad_option, "workers: a type needs a name and a factory");
    tags.emplace(std::string(kWorkerTagPrefix) + type, "1");
  }
  tags.emplace(std::string(supervisor::kExecPolicyTag),
               supervisor::encode_exec_policy({supervisor::ExecPolicy::Mode::none, {}}));
  if (auto bad = cluster::tags_fit(options.name, advertise.value_or(*bind), tags,
                                   config.membership.max_packet_bytes)) {
    return fail(Errc::bad_option, *bad);
  }

  auto impl = std::make_unique<Impl>();
  Impl* self = impl.get();
  impl->options = std::move(options);
  if (int rc = uv_loop_init(&impl->loop); rc != 0)
    return fail(Errc::bind_failed, std::string("uv_loop_init: ") + uv_strerror(rc));
  const std::uint64_t creation = cluster::wall_clock_ms();
  cluster::UvDriverOptions driver_options;
  driver_options.bind = *bind;
  if (advertise) driver_options.advertise = *advertise;
  driver_options.keyring = std::move(keyring);
  const std::uint64_t seed = creation ^ reinterpret_cast<std::uintptr_t>(self);
  auto driver = cluster::UvDriver::start(
      &impl->loop, std::move(driver_options),
      [self, config, creation, seed, tags](const cluster::Address& addr, std::uint64_t now) {
        auto stack = std::make_unique<supervisor::Stack>(
            config, cluster::NodeIdentity{self->options.name, addr, creation, tags}, seed, now);
        self->stack = stack.get();
        return stack;
      },
      [self](const cluster::MemberEvent& e) {
        if (!self->options.on_member_event) return;
        Member m{e.name, e.addr.to_string(), MemberStatus::alive, e.incarnation, {}};
        for (const auto& [k, v] : e.tags)
          m.tags.emplace(k, v);
        if (e.kind == cluster::EventKind::suspect) m.status = MemberStatus::suspect;
        if (e.kind == cluster::EventKind::failed) m.status = MemberStatus::failed;
        if (e.kind == cluster::EventKind::left) m.status = MemberStatus::left;
        // The two enums list the same kinds in the same order.
        self->options.on_member_event(
            MemberEvent{static_cast<MemberEvent::Kind>(e.kind), std::move(m)});
      });
  if (!driver) {
    uv_loop_close(&impl->loop);
    return fail(Errc::bind_failed, driver.error());
  }
  impl->driver = std::move(*driver);
  impl->driver->on_output([self] { return self->on_output(); });
  impl->address = impl->driver->address().to_string();
  impl->self = registry::Pid{impl->options.name, creation, kSelfId};
  for (const auto& [type, factory] : impl->options.workers) {
    impl->stack->workers().add_type(type,
                                    [factory] { return std::make_unique<Adapter>(factory()); });
  }
  impl->executor = std::make_unique<cluster::UvExecutor>(&impl->loop);
  uv_timer_init(&impl->loop, &impl->linger);
  impl->linger.data = self;
  if (!bind->is_loopback() && impl->options.keys.empty() && impl->options.log) {
    impl->options.log("warn", "shoal",
                      "insecure: no cluster key on " + impl->address +
                          ": anyone who reaches it can join the cluster and send to its names");
  }
  if (!seeds.empty()) impl->driver->join(std::move(seeds));
  impl->driver->settle();
  impl->thread = std::thread([self] {
    self->loop_thread.store(std::this_thread::get_id());
    uv_run(&self->loop, UV_RUN_DEFAULT);
    self->closing.store(true);
    self->ended.set_value();
  });
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

Node::~Node() {
  leave();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->driver.reset();
  impl_->executor.reset();
  uv_loop_close(&impl_->loop);
}

const std::string& Node::name() const {
  return impl_->options.name;
}

std::string Node::address() const {
  return impl_->address;
}

Pid Node::pid() const {
  return pid_of(impl_->self);
}

Result<void> Node::join(const std::vector<std::string>& seeds) {
  std::vector<cluster::Address> addrs;
  for (const std::string& s : seeds) {
    auto a = cluster::Address::parse(s);
    if (!a) return fail(Errc::bad_option, "seeds: " + s + ": " + a.error());
    addrs.push_back(*a);
  }
  return impl_->on_loop<void>([this, addrs]() mutable -> Result<void> {
    impl_->driver->join(std::move(addrs));
    return {};
  });
}

Result<std::vector<Member>> Node::members() {
  return impl_->on_loop<std::vector<Member>>([this]() -> Result<std::vector<Member>> {
    std::vector<Member> out;
    for (const auto& [name, m] : impl_->stack->membership().members())
      out.push_back(member_of(m));
    std::sort(out.begin(), out.end(),
              [](const Member& a, const Member& b) { return a.name < b.name; });
    return out;
  });
}

Result<void> Node::register_name(std::string_view name, std::string_view meta) {
  return impl_->on_loop<void>(
      [this, name = std::string(name), meta = std::string(meta)]() -> Result<void> {
        auto done = impl_->stack->registry().register_name(impl_->now(), name, impl_->self, meta);
        if (done) return {};
        const registry::RegisterError& e = done.error();
        switch (e.code) {
          case registry::RegisterErrc::already_registered:
            return fail(Errc::already_registered, e.message);
          case registry::RegisterErrc::too_many_entries:
            return fail(Errc::too_many, e.message);
          case registry::RegisterErrc::bad_name:
          case registry::RegisterErrc::meta_too_large:
            break;
        }
        return fail(Errc::bad_option, e.message);
      });
}

Result<bool> Node::unregister(std::string_view name) {
  return impl_->on_loop<bool>([this, name = std::string(name)]() -> Result<bool> {
    return impl_->stack->registry().release(impl_->now(), name, impl_->self);
  });
}

Result<std::optional<Pid>> Node::whereis(std::string_view name) {
  return impl_->on_loop<std::optional<Pid>>(
      [this, name = std::string(name)]() -> Result<std::optional<Pid>> {
        auto reg = impl_->stack->registry().whereis(name);
        if (!reg) return std::optional<Pid>();
        return std::optional<Pid>(pid_of(reg->pid));
      });
}

Result<std::vector<std::pair<std::string, Pid>>> Node::names(std::string_view prefix,
                                                             std::size_t limit) {
  using Names = std::vector<std::pair<std::string, Pid>>;
  return impl_->on_loop<Names>([this, prefix = std::string(prefix), limit]() -> Result<Names> {
    Names out;
    for (auto& [name, reg] : impl_->stack->registry().names(prefix, limit))
      out.emplace_back(std::move(name), pid_of(reg.pid));
    return out;
  });
}

Result<void> Node::run(const ChildOptions& child) {
  if (child.worker_type.empty()) return fail(Errc::bad_option, "worker_type: a child needs one");
  supervisor::ChildSpec spec;
  spec.name = child.name;
  spec.kind = supervisor::ChildKind::worker;
  spec.worker_type = child.worker_type;
  switch (child.restart) {
    case ChildOptions::Restart::permanent:
      spec.restart = supervisor::Restart::permanent;
      break;
    case ChildOptions::Restart::transient:
      spec.restart = supervisor::Restart::transient;
      break;
    case ChildOptions::Restart::temporary:
      spec.restart = supervisor::Restart::temporary;
      break;
  }
  spec.max_restarts = child.max_restarts;
  spec.window_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(child.window.count(), 1));
  spec.shutdown_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(child.shutdown.count(), 0));
  spec.handoff = child.handoff == ChildOptions::Handoff::state ? supervisor::Handoff::state
                                                               : supervisor::Handoff::overlap;
  for (const auto& [k, v] : child.constraints)
    spec.constraints.emplace(k, v);
  spec.constraints.emplace(std::string(kWorkerTagPrefix) + child.worker_type, "1");
  if (auto bad = supervisor::validate(spec)) return fail(Errc::bad_option, *bad);
  return impl_->on_loop<void>([this, spec]() -> Result<void> {
    auto added = impl_->stack->supervisor().add(impl_->now(), spec);
    if (!added) return fail(Errc::bad_option, added.error());
    return {};
  });
}

Result<bool> Node::remove(std::string_view name) {
  return impl_->on_loop<bool>([this, name = std::string(name)]() -> Result<bool> {
    return impl_->stack->supervisor().remove(impl_->now(), name);
  });
}

Result<std::vector<Child>> Node::children() {
  return impl_->on_loop<std::vector<Child>>([this]() -> Result<std::vector<Child>> {
    std::vector<Child> out;
    for (const supervisor::ChildInfo& c : impl_->stack->supervisor().children()) {
      Child child{c.spec.name, c.spec.worker_type, c.owner, std::nullopt, c.failed};
      if (c.pid) child.pid = pid_of(*c.pid);
      out.push_back(std::move(child));
    }
    return out;
  });
}

Result<void> Node::send(std::string_view name, std::string_view payload) {
  return impl_->on_loop<void>(
      [this, name = std::string(name), payload = std::string(payload)]() -> Result<void> {
        auto sent = impl_->stack->messenger().send(impl_->now(), messaging::Target::of_name(name),
                                                   kSelfId, payload);
        if (!sent) return std::unexpected(error_of(sent.error()));
        return {};
      });
}

Result<std::string> Node::call(std::string_view name, std::string_view payload,
                               std::chrono::milliseconds timeout) {
  // The call is started on the loop; its reply (or error) comes back through a promise.
  auto reply = std::make_shared<std::promise<Result<std::string>>>();
  std::future<Result<std::string>> future = reply->get_future();
  auto started = impl_->on_loop<void>([this, reply, timeout, name = std::string(name),
                                       payload = std::string(payload)]() -> Result<void> {
    impl_->stack->call(
        impl_->now(), messaging::Target::of_name(name), kSelfId, payload,
        static_cast<std::uint64_t>(std::max<std::int64_t>(timeout.count(), 1)),
        [reply](messaging::CallResult r) { reply->set_value(result_of(std::move(r))); });
    return {};
  });
  if (!started) return std::unexpected(started.error());
  try {
    return future.get();
  } catch (const std::future_error&) {  // the node stopped with the call pending
    return fail(Errc::stopped, "the node stopped during the call");
  }
}

Result<std::size_t> Node::publish(std::string_view group, std::string_view payload) {
  return impl_->on_loop<std::size_t>(
      [this, group = std::string(group), payload = std::string(payload)]() -> Result<std::size_t> {
        auto sent = impl_->stack->messenger().publish(impl_->now(), group, kSelfId, payload);
        if (!sent) return std::unexpected(error_of(sent.error()));
        return *sent;
      });
}

void Node::leave(std::chrono::milliseconds timeout) {
  Impl& impl = *impl_;
  if (!impl.thread.joinable() || std::this_thread::get_id() == impl.loop_thread) return;
  // A graceful leave: the children here move, then the leave is announced (Left), then
  // close_all() after the linger. Past `timeout`, the handles are closed anyway.
  const bool posted = impl.executor->post([&impl] {
    if (!impl.stack->leaving()) impl.stack->leave(impl.now(), "Node::leave()");
    impl.driver->settle();
  });
  if (posted && impl.ended_future.wait_for(timeout + std::chrono::milliseconds(kLeaveLingerMs)) !=
                    std::future_status::ready) {
    impl.executor->post([&impl] { impl.close_all(); });
  }
  impl.thread.join();
}

}  // namespace shoal
