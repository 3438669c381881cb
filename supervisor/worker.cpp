#include "supervisor/worker.h"

#include <charconv>

namespace shoal::supervisor {

namespace {

class IdleWorker : public Worker {
 public:
  void start(WorkerContext&, const std::optional<std::string>&) override {}
};

// Counts one per tick; checkpoints "count=N" every second. (Not on stop: a copy is stopped once
// another runs, which a later checkpoint from here would set back.)
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
    ctx.exit(true, "stopped at count=" + std::to_string(count_) + " (resumed from " +
                       std::to_string(resumed_from_) + ")");
  }

 private:
  std::uint64_t count_ = 0;
  std::uint64_t resumed_from_ = 0;
  std::uint64_t last_checkpoint_ms_ = 0;
};

}  // namespace

struct WorkerRuntime::Running : WorkerContext {
  WorkerRuntime* owner;
  std::string child;
  std::uint64_t id;
  std::unique_ptr<Worker> worker;
  bool done = false;
  std::uint64_t stop_deadline = 0;  // 0: not stopping

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
};

WorkerRuntime::WorkerRuntime() {
  add_type("idle", [] { return std::make_unique<IdleWorker>(); });
  add_type("counter", [] { return std::make_unique<CounterWorker>(); });
}

WorkerRuntime::~WorkerRuntime() = default;

void WorkerRuntime::add_type(std::string type, WorkerFactory factory) {
  types_[std::move(type)] = std::move(factory);
}

void WorkerRuntime::finish(Running& r, bool normal, std::string how) {
  r.done = true;
  finished_.push_back(r.child);
  reports_.push_back({WorkerReport::Kind::exited, r.child, r.id, normal, std::move(how)});
}

void WorkerRuntime::reap() {
  for (const std::string& name : finished_) {
    auto it = running_.find(name);
    if (it != running_.end() && it->second->done) running_.erase(it);
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
  running_[spec.name] = std::move(r);
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
  r.worker->stop(r);
  reap();
}

bool WorkerRuntime::send(std::uint64_t now_ms, std::string_view name, std::string_view payload) {
  now_ = now_ms;
  auto it = running_.find(name);
  if (it == running_.end() || it->second->done) return false;
  it->second->worker->on_message(*it->second, payload);
  reap();
  return true;
}

void WorkerRuntime::tick(std::uint64_t now_ms) {
  now_ = now_ms;
  for (auto& [name, r] : running_) {
    if (r->done) continue;
    if (r->stop_deadline != 0 && now_ms >= r->stop_deadline) {
      finish(*r, false, "killed after the shutdown timeout");
      continue;
    }
    r->worker->on_tick(*r);
  }
  reap();
}

void WorkerRuntime::take_reports(std::vector<WorkerReport>& out) {
  for (WorkerReport& r : reports_)
    out.push_back(std::move(r));
  reports_.clear();
}

}  // namespace shoal::supervisor
