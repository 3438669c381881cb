#include "supervisor/worker.h"

#include <charconv>

namespace shoal::supervisor {

namespace {

class IdleWorker : public Worker {
 public:
  void start(WorkerContext&, const std::optional<std::string>&) override {}
  bool ticks() const override { return false; }
};

// Counts one per tick; checkpoints "count=N" every second, and on a handover (only then: a copy
// stopped otherwise may have a successor running, which a checkpoint from here would set back).
class CounterWorker : public Worker {
 public:
  void start(WorkerContext& ctx, const std::optional<std::string>& checkpoint) override {
    if (checkpoint && checkpoint->starts_with("count=")) {
      const std::string_view digits = std::string_view(*checkpoint).substr(6);
      std::from_chars(digits.data(), digits.data() + digits.size(), count_);
    }
    resumed_from_ = count_;
    last_checkpoint_ms_ = ctx.now();
  }
  void on_tick(WorkerContext& ctx) override {
    ++count_;
    if (ctx.now() - last_checkpoint_ms_ >= 1000) {
      last_checkpoint_ms_ = ctx.now();
      ctx.checkpoint("count=" + std::to_string(count_));
    }
  }
  void stop(WorkerContext& ctx) override {
    if (ctx.handing_over()) ctx.checkpoint("count=" + std::to_string(count_));
    ctx.exit(true, "stopped at count=" + std::to_string(count_) + " (resumed from " +
                       std::to_string(resumed_from_) + ")");
  }

 private:
  std::uint64_t count_ = 0;
  std::uint64_t resumed_from_ = 0;
  std::uint64_t last_checkpoint_ms_ = 0;
};

// Answers every call with its payload; counts the rest ("received=N" in its checkpoint, every
// second when it changed).
class EchoWorker : public Worker {
 public:
  void start(WorkerContext& ctx, const std::optional<std::string>&) override {
    last_checkpoint_ms_ = ctx.now();
  }
  void on_message(WorkerContext& ctx, const Message& msg) override {
    if (msg.reply_to) {
      ctx.reply(*msg.reply_to, msg.payload);
    } else {
      ++received_;
    }
  }
  void on_tick(WorkerContext& ctx) override {
    if (received_ != checkpointed_ && ctx.now() - last_checkpoint_ms_ >= 1000) {
      last_checkpoint_ms_ = ctx.now();
      checkpointed_ = received_;
      ctx.checkpoint("received=" + std::to_string(received_));
    }
  }

 private:
  std::uint64_t received_ = 0;
  std::uint64_t checkpointed_ = 0;
  std::uint64_t last_checkpoint_ms_ = 0;
};

}  // namespace

struct WorkerRuntime::Running : WorkerContext {
  WorkerRuntime* owner;
  std::string child;
  std::uint64_t id;
  std::unique_ptr<Worker> worker;
  bool done = false;
  bool handover = false;
  std::uint64_t stop_deadline = 0;  // 0: not stopping

  bool handing_over() const override { return handover; }
  const std::string& name() const override { return child; }
  std::uint64_t now() const override { return owner->now_; }
  void checkpoint(std::string_view blob) override {
    if (!done)
      owner->reports_.push_back(
          {WorkerReport::Kind::checkpoint, child, id, true, std::string(blob)});
  }
  void exit(bool normal, std::string how) override {
    if (!done) owner->finish(*this, normal, std::move(how));
  }
  registry::Pid self() const override { return {owner->self_.name, owner->self_.creation, id}; }
  std::expected<void, messaging::CallError> send(const messaging::Target& to,
                                                 std::string_view payload) override {
    if (owner->messenger_ == nullptr || done) return std::unexpected(messaging::CallError::noproc);
    return owner->messenger_->send(owner->now_, to, id, payload);
  }
  void call(const messaging::Target& to, std::string_view payload, std::uint64_t timeout_ms,
            CallFn fn) override {
    if (owner->messenger_ == nullptr || done) {
      fn(*this, std::unexpected(messaging::CallError::noproc));
      return;
    }
    auto started = owner->messenger_->call(owner->now_, to, id, payload, timeout_ms);
    if (!started) {
      fn(*this, std::unexpected(started.error()));
      return;
    }
    owner->calls_[*started] = PendingCall{id, std::move(fn)};
  }
  std::expected<std::size_t, messaging::CallError> publish(std::string_view group,
                                                           std::string_view payload) override {
    if (owner->messenger_ == nullptr || done) return std::unexpected(messaging::CallError::noproc);
    return owner->messenger_->publish(owner->now_, group, id, payload);
  }
  void reply(const messaging::ReplyTo& to, std::string_view payload) override {
    if (owner->messenger_ != nullptr) owner->messenger_->reply(owner->now_, to, payload);
  }
  bool join(std::string_view group) override {
    return owner->registry_ != nullptr && !done &&
           owner->registry_->join(owner->now_, group, self()).has_value();
  }
  bool leave(std::string_view group) override {
    return owner->registry_ != nullptr && owner->registry_->leave(owner->now_, group, self());
  }
};

WorkerRuntime::WorkerRuntime() {
  add_type("idle", [] { return std::make_unique<IdleWorker>(); });
  add_type("counter", [] { return std::make_unique<CounterWorker>(); });
  add_type("echo", [] { return std::make_unique<EchoWorker>(); });
}

void WorkerRuntime::attach(messaging::Messenger* messenger, registry::Registry* registry,
                           cluster::Life self) {
  messenger_ = messenger;
  registry_ = registry;
  self_ = std::move(self);
}

WorkerRuntime::~WorkerRuntime() = default;

void WorkerRuntime::add_type(std::string type, WorkerFactory factory) {
  types_[std::move(type)] = std::move(factory);
}

void WorkerRuntime::finish(Running& r, bool normal, std::string how) {
  r.done = true;
  by_id_.erase(r.id);
  std::erase_if(calls_, [&](const auto& c) { return c.second.worker == r.id; });
  finished_.push_back(r.child);
  reports_.push_back({WorkerReport::Kind::exited, r.child, r.id, normal, std::move(how)});
}

void WorkerRuntime::reap() {
  for (const std::string& name : finished_) {
    auto it = running_.find(name);
    if (it != running_.end() && it->second->done) {
      running_.erase(it);
      ticking_.erase(name);
    }
  }
  finished_.clear();
}

void WorkerRuntime::start(std::uint64_t now_ms, const StartChild& start) {
  now_ = now_ms;
  const ChildSpec& spec = start.spec;
  auto type = types_.find(spec.worker_type);
  if (spec.kind != ChildKind::worker || type == types_.end() || running_.contains(spec.name)) {
    const std::string why = spec.kind != ChildKind::worker ? "not a worker child"
                            : type == types_.end()
                                ? "no worker type '" + spec.worker_type + "' on this node"
                                : "already running here";
    reports_.push_back({WorkerReport::Kind::exited, spec.name, start.id, false, why});
    return;
  }
  auto r = std::make_unique<Running>();
  r->owner = this;
  r->child = spec.name;
  r->id = start.id;
  r->worker = type->second();
  Running& ref = *r;
  by_id_[start.id] = &ref;
  running_[spec.name] = std::move(r);
  if (ref.worker->ticks()) ticking_.insert(spec.name);
  reports_.push_back({WorkerReport::Kind::started, spec.name, start.id, true, {}});
  ref.worker->start(ref, start.checkpoint);
  reap();
}

void WorkerRuntime::stop(std::uint64_t now_ms, const StopChild& stop) {
  now_ = now_ms;
  auto it = running_.find(stop.name);
  if (it == running_.end() || it->second->id != stop.id || it->second->done) return;
  Running& r = *it->second;
  r.stop_deadline = now_ms + std::max<std::uint64_t>(stop.shutdown_ms, 1);
  r.handover = stop.handover;
  ticking_.insert(r.child);
  r.worker->stop(r);
  reap();
}

bool WorkerRuntime::deliver(std::uint64_t now_ms, const messaging::Deliver& d) {
  now_ = now_ms;
  auto it = by_id_.find(d.to);
  if (it == by_id_.end() || it->second->done) return false;
  Running& r = *it->second;
  r.worker->on_message(r, Message{d.from, d.payload, d.reply_to});
  reap();
  return true;
}

bool WorkerRuntime::on_call_done(std::uint64_t now_ms, const messaging::CallDone& done) {
  now_ = now_ms;
  auto it = calls_.find(done.call_id);
  if (it == calls_.end()) return false;
  PendingCall call = std::move(it->second);
  calls_.erase(it);
  auto w = by_id_.find(call.worker);
  if (w != by_id_.end() && !w->second->done) call.done(*w->second, done.result);
  reap();
  return true;
}

void WorkerRuntime::tick(std::uint64_t now_ms) {
  now_ = now_ms;
  // Workers only start and stop between ticks (never from on_tick), so ticking_ holds still.
  for (const std::string& name : ticking_) {
    auto it = running_.find(name);
    if (it == running_.end()) continue;
    const std::unique_ptr<Running>& r = it->second;
    if (r->done) continue;
    if (r->stop_deadline != 0 && now_ms >= r->stop_deadline) {
      finish(*r, false, "killed after the shutdown timeout");
      continue;
    }
    if (r->worker->ticks()) r->worker->on_tick(*r);
  }
  reap();
}

void WorkerRuntime::take_reports(std::vector<WorkerReport>& out) {
  for (WorkerReport& r : reports_)
    out.push_back(std::move(r));
  reports_.clear();
}

}  // namespace shoal::supervisor
