#include "supervisor/stack.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "cluster/key_spaces.h"

namespace shoal::supervisor {

namespace {

bool live(cluster::MemberStatus s) {
  return s == cluster::MemberStatus::alive || s == cluster::MemberStatus::suspect;
}

// Passes over the layers within one turn before the rest waits for the next: bounds the work of
// one call whatever the layers do.
constexpr int kMaxPasses = 64;

}  // namespace

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "info";
}

const char* child_event_name(ChildEvent::Kind kind) {
  switch (kind) {
    case ChildEvent::Kind::started:
      return "started";
    case ChildEvent::Kind::stopping:
      return "stopping";
    case ChildEvent::Kind::stopped:
      return "stopped";
    case ChildEvent::Kind::exited:
      return "exited";
    case ChildEvent::Kind::start_failed:
      return "start_failed";
  }
  return "unknown";
}

Stack::Stack(StackConfig config, cluster::NodeIdentity self, std::uint64_t seed,
             std::uint64_t now_ms)
    : config_(std::move(config)),
      node_(config_.membership, config_.replication, self, seed, now_ms),
      registry_(*node_.replicator(), self.name, config_.registry),
      messenger_(config_.messaging, cluster::Life{self.name, self.creation}, registry_),
      supervisor_(*node_.replicator(), registry_, self.name, self.creation, config_.supervisor),
      now_(now_ms),
      placing_(config_.startup_settle_ms == 0),
      settle_at_(now_ms + config_.startup_settle_ms),
      next_refresh_(now_ms),
      next_tick_(now_ms + config_.worker_tick_ms) {
  workers_.attach(&messenger_, &registry_, cluster::Life{self.name, self.creation});
  route(now_ms);
}

// --- Core inputs: the Node takes them, then route() notes what they left for a turn ---

void Stack::on_packet(std::uint64_t now_ms, const cluster::Address& from, std::string_view bytes) {
  node_.on_packet(now_ms, from, bytes);
  route(now_ms);
}

void Stack::on_unreachable(std::uint64_t now_ms, const cluster::Address& to) {
  node_.on_unreachable(now_ms, to);
  route(now_ms);
}

std::string Stack::on_stream_request(std::uint64_t now_ms, const cluster::Address& from,
                                     std::string_view bytes) {
  std::string reply = node_.on_stream_request(now_ms, from, bytes);
  route(now_ms);
  return reply;
}

void Stack::on_stream_reply(std::uint64_t now_ms, std::uint64_t id, std::string_view bytes) {
  node_.on_stream_reply(now_ms, id, bytes);
  route(now_ms);
}

void Stack::on_stream_failed(std::uint64_t now_ms, std::uint64_t id) {
  node_.on_stream_failed(now_ms, id);
  route(now_ms);
}

void Stack::on_timer(std::uint64_t now_ms) {
  node_.on_timer(now_ms);
  messenger_.on_timer(now_ms);
  route(now_ms);
  turn(now_ms);
}

void Stack::on_conn_up(std::uint64_t now_ms, cluster::ConnId id) {
  messenger_.on_conn_up(now_ms, id);
  route(now_ms);
}

void Stack::on_conn_accepted(std::uint64_t now_ms, cluster::ConnId id,
                             const cluster::Address& from) {
  messenger_.on_conn_accepted(now_ms, id, from);
  route(now_ms);
}

void Stack::on_conn_data(std::uint64_t now_ms, cluster::ConnId id, std::string_view bytes) {
  messenger_.on_conn_data(now_ms, id, bytes);
  route(now_ms);
}

void Stack::on_conn_sent(std::uint64_t now_ms, cluster::ConnId id, std::size_t bytes) {
  messenger_.on_conn_sent(now_ms, id, bytes);
  route(now_ms);
}

void Stack::on_conn_down(std::uint64_t now_ms, cluster::ConnId id) {
  messenger_.on_conn_down(now_ms, id);
  route(now_ms);
}

void Stack::settle(std::uint64_t now_ms) {
  route(now_ms);
}

void Stack::flush(std::uint64_t now_ms) {
  node_.flush(now_ms);
  route(now_ms);
  messenger_.flush(now_ms);
  route(now_ms);
}

std::uint64_t Stack::next_deadline() const {
  // Work left by an input runs at once.
  if (view_changed_ || !changes_.empty()) return now_;
  std::uint64_t next = std::min({node_.next_deadline(), next_refresh_, messenger_.next_deadline()});
  if (!placing_) next = std::min(next, settle_at_);
  if (!left_) next = std::min(next, supervisor_.next_deadline());
  if (workers_.ticking()) next = std::min(next, next_tick_);
  if (leaving_ && !left_) next = std::min(next, drain_deadline_);
  return next;
}

void Stack::take_effects(std::vector<cluster::Effect>& out) {
  if (out.empty()) {
    out.swap(effects_);
    return;
  }
  for (cluster::Effect& e : effects_)
    out.push_back(std::move(e));
  effects_.clear();
}

void Stack::take_outputs(std::vector<StackOutput>& out) {
  if (out.empty()) {
    out.swap(outputs_);
    return;
  }
  for (StackOutput& o : outputs_)
    out.push_back(std::move(o));
  outputs_.clear();
}

// --- Routing and the turn ---

void Stack::route(std::uint64_t now) {
  now_ = std::max(now_, now);
  node_.settle(now);
  const std::size_t first = effects_.size();
  node_.take_effects(effects_);
  for (std::size_t i = first; i < effects_.size(); ++i) {
    if (std::holds_alternative<cluster::MemberEvent>(effects_[i])) view_changed_ = true;
  }
  node_.take_changes(changes_);
  // A worker that took a message may have sent more, ended, or asked for a checkpoint.
  for (int pass = 0; pass < kMaxPasses && route_messages(now); ++pass)
    drive(now);
  messenger_.take_effects(effects_);
}

bool Stack::route_messages(std::uint64_t now) {
  std::vector<messaging::MessengerOutput>& outputs = message_scratch_;
  outputs.clear();
  messenger_.take_outputs(outputs);
  bool workers = false;
  for (messaging::MessengerOutput& o : outputs) {
    if (auto* d = std::get_if<messaging::Deliver>(&o)) {
      if (workers_.deliver(now, *d)) {
        workers = true;
      } else {
        outputs_.emplace_back(std::move(*d));
      }
    } else if (auto* done = std::get_if<messaging::CallDone>(&o)) {
      if (workers_.on_call_done(now, *done)) {
        workers = true;
      } else if (auto waiting = calls_.find(done->call_id); waiting != calls_.end()) {
        CallFn fn = std::move(waiting->second);
        calls_.erase(waiting);
        fn(std::move(done->result));
      } else {
        outputs_.emplace_back(std::move(*done));
      }
    } else if (auto* task = std::get_if<messaging::TaskRequest>(&o)) {
      outputs_.emplace_back(std::move(*task));
    } else if (auto* event = std::get_if<messaging::TaskEvent>(&o)) {
      outputs_.emplace_back(std::move(*event));
    }
  }
  outputs.clear();
  return workers;
}

void Stack::turn(std::uint64_t now) {
  ++stats_.turns;
  if (!placing_ && now >= settle_at_ && !left_) {
    log(LogLevel::info, "supervisor",
        fmt::format("placing children (no peer seen in {} ms)", config_.startup_settle_ms));
    placing_ = true;
    view_changed_ = true;
  }
  if (view_changed_ || now >= next_refresh_) refresh_view(now);
  apply_changes(now);
  if (!left_ && now >= supervisor_.next_deadline()) supervisor_.on_timer(now);
  if (workers_.ticking() && now >= next_tick_) {
    workers_.tick(now);
    next_tick_ = now + config_.worker_tick_ms;
  }
  drive(now);
  check_drain(now);
  route(now);
}

void Stack::refresh_view(std::uint64_t now) {
  view_changed_ = false;
  next_refresh_ = now + config_.refresh_every_ms;
  if (left_) return;
  std::map<std::string, std::uint64_t, std::less<>> lives;
  std::set<cluster::Life> departed;
  View view;
  for (const auto& [name, m] : node_.membership().members()) {
    if (live(m.status)) {
      lives[name] = m.creation;
      view[name] = MemberInfo{m.creation, m.tags};
    } else if (m.status == cluster::MemberStatus::left) {
      departed.insert(cluster::Life{name, m.creation});
    }
  }
  const bool alone = lives.size() <= 1;
  registry_.set_members(std::move(lives), std::move(departed));
  messaging::PeerView peers;
  for (const auto& [name, m] : node_.membership().members()) {
    if (live(m.status) && name != node_.membership().name())
      peers.emplace(name, messaging::PeerInfo{m.creation, m.addr});
  }
  messenger_.set_members(now, std::move(peers));
  placing_ = placing_ || !alone;
  if (placing_) {
    const std::size_t seen = view.size();
    supervisor_.set_members(now, std::move(view));
    if (supervisor_.mode() == Mode::quorum && supervisor_.has_quorum() != had_quorum_) {
      had_quorum_ = supervisor_.has_quorum();
      log(had_quorum_ ? LogLevel::info : LogLevel::warn, "supervisor",
          had_quorum_ ? fmt::format("quorum members={}", seen)
                      : fmt::format("no quorum members={} (starting nothing; children stop if "
                                    "this lasts)",
                                    seen));
    }
  }
  if (const std::size_t purged = registry_.purge(now); purged > 0) {
    stats_.purged += purged;
    log(LogLevel::info, "registry",
        fmt::format("purged entries={} (owners no longer alive)", purged));
  }
}

void Stack::apply_changes(std::uint64_t now) {
  std::vector<cluster::ReplicaChange> changes;
  changes.swap(changes_);
  stats_.changes += changes.size();
  // A change makes about one event: room for them at once, not grown step by step through a bulk
  // write's 100,000 changes.
  std::vector<registry::RegistryEvent> events;
  events.reserve(changes.size());
  for (const cluster::ReplicaChange& change : changes) {
    const std::size_t first = events.size();
    registry_.on_change(now, change, events);
    if (left_) continue;
    if (logs(LogLevel::debug) && change.key.starts_with(cluster::keys::kChild)) {
      log(LogLevel::debug, "supervisor",
          fmt::format("child spec {} name={}", change.after ? "added" : "removed",
                      std::string_view(change.key).substr(cluster::keys::kChild.size())));
    }
    supervisor_.on_change(now, change);
    for (std::size_t i = first; i < events.size(); ++i)
      supervisor_.on_registry_event(now, events[i]);
  }
  outputs_.reserve(outputs_.size() + events.size());
  for (registry::RegistryEvent& e : events)
    outputs_.emplace_back(std::move(e));
}

void Stack::drive(std::uint64_t now) {
  if (left_) return;
  for (int pass = 0; pass < kMaxPasses; ++pass) {
    std::vector<SupervisorEffect> effects;
    supervisor_.take_effects(effects);
    for (SupervisorEffect& e : effects) {
      if (auto* start = std::get_if<StartChild>(&e)) {
        if (start->spec.kind == ChildKind::worker) {
          messenger_.open(start->id);
          workers_.start(now, *start);
        } else {
          exec_starting_[start->id] = start->checkpoint.has_value();
          outputs_.emplace_back(std::move(*start));
        }
      } else if (auto* stop = std::get_if<StopChild>(&e)) {
        log(LogLevel::info, "supervisor",
            fmt::format("stopping name={} reason={}{}", stop->name, stop_reason_name(stop->reason),
                        stop->handover ? " handover=state" : ""));
        outputs_.emplace_back(ChildEvent{ChildEvent::Kind::stopping, stop->name, stop->id,
                                         stop_reason_name(stop->reason)});
        if (workers_.runs(stop->name)) {
          workers_.stop(now, *stop);
        } else {
          outputs_.emplace_back(std::move(*stop));
        }
      }
    }
    // What the workers reported (started, exited, checkpoints) may give the supervisor more to do.
    if (!worker_reports(now) && effects.empty()) break;
  }
}

bool Stack::stopping(std::string_view name, std::uint64_t id) const {
  auto it = supervisor_.local().find(name);
  return it != supervisor_.local().end() && it->second.id == id &&
         it->second.status == LocalStatus::stopping;
}

bool Stack::worker_reports(std::uint64_t now) {
  std::vector<WorkerReport> reports;
  workers_.take_reports(reports);
  for (WorkerReport& r : reports) {
    switch (r.kind) {
      case WorkerReport::Kind::started:
        log(LogLevel::info, "supervisor", fmt::format("started name={} worker=yes", r.name));
        outputs_.emplace_back(ChildEvent{ChildEvent::Kind::started, r.name, r.id, {}});
        if (auto it = supervisor_.local().find(r.name); it != supervisor_.local().end()) {
          supervisor_.on_started(
              now, r.name, r.id,
              encode_child_meta({std::nullopt, now, it->second.restart_count, ChildKind::worker}));
        }
        break;
      case WorkerReport::Kind::exited:
        ended(now, r.name, r.id, r.normal, std::move(r.text));
        break;
      case WorkerReport::Kind::checkpoint:
        if (auto stored = supervisor_.checkpoint(now, r.name, r.text); !stored) {
          log(LogLevel::warn, "supervisor",
              fmt::format("checkpoint refused name={} reason=\"{}\"", r.name, stored.error()));
        } else if (logs(LogLevel::debug)) {
          log(LogLevel::debug, "supervisor",
              fmt::format("checkpoint name={} bytes={}", r.name, r.text.size()));
        }
        break;
    }
  }
  return !reports.empty();
}

// --- The exec runtime's reports ---

void Stack::on_child_started(std::uint64_t now_ms, std::string_view name, std::uint64_t id,
                             int os_pid) {
  now_ = std::max(now_, now_ms);
  auto handed = exec_starting_.find(id);
  const bool checkpoint = handed != exec_starting_.end() && handed->second;
  if (handed != exec_starting_.end()) exec_starting_.erase(handed);
  log(LogLevel::info, "supervisor",
      fmt::format("started name={} os_pid={} checkpoint={}", name, os_pid,
                  checkpoint ? "yes" : "no"));
  outputs_.emplace_back(ChildEvent{ChildEvent::Kind::started, std::string(name), id, {}});
  messenger_.open(id);
  auto it = supervisor_.local().find(name);
  const std::uint64_t restarts = it != supervisor_.local().end() ? it->second.restart_count : 0;
  supervisor_.on_started(now_ms, name, id,
                         encode_child_meta({os_pid, now_ms, restarts, ChildKind::exec}));
  drive(now_ms);
  route(now_ms);
}

void Stack::on_child_start_failed(std::uint64_t now_ms, std::string_view name, std::uint64_t id,
                                  std::string why) {
  now_ = std::max(now_, now_ms);
  exec_starting_.erase(id);
  messenger_.close(id);
  log(LogLevel::warn, "supervisor", fmt::format("cannot start name={} reason=\"{}\"", name, why));
  outputs_.emplace_back(ChildEvent{ChildEvent::Kind::start_failed, std::string(name), id, why});
  supervisor_.on_exited(now_ms, name, id, false, std::move(why));
  drive(now_ms);
  route(now_ms);
}

void Stack::ended(std::uint64_t now, std::string_view name, std::uint64_t id, bool normal,
                  std::string how) {
  // A stop the supervisor asked for is routine; any other exit is worth a warning.
  const bool asked = stopping(name, id);
  messenger_.close(id);
  log(normal || asked ? LogLevel::info : LogLevel::warn, "supervisor",
      fmt::format("{} name={} how=\"{}\"", asked ? "stopped" : "exited", name, how));
  outputs_.emplace_back(ChildEvent{asked ? ChildEvent::Kind::stopped : ChildEvent::Kind::exited,
                                   std::string(name), id, how});
  supervisor_.on_exited(now, name, id, normal, std::move(how));
}

void Stack::on_child_exited(std::uint64_t now_ms, std::string_view name, std::uint64_t id,
                            bool normal, std::string how) {
  now_ = std::max(now_, now_ms);
  ended(now_ms, name, id, normal, std::move(how));
  drive(now_ms);
  check_drain(now_ms);
  route(now_ms);
}

void Stack::call(std::uint64_t now_ms, const messaging::Target& target, std::uint64_t from,
                 std::string_view payload, std::uint64_t timeout_ms, CallFn done) {
  auto id = messenger_.call(now_ms, target, from, payload, timeout_ms);
  if (!id) {
    done(std::unexpected(id.error()));
    return;
  }
  calls_.emplace(*id, std::move(done));
  route(now_ms);
}

// --- Graceful leave ---

void Stack::leave(std::uint64_t now_ms, std::string_view why) {
  if (leaving_) return;
  leaving_ = true;
  now_ = std::max(now_, now_ms);
  if (supervisor_.local().empty()) {
    log(LogLevel::info, "agent", fmt::format("leaving {}", why));
    leave_now(now_ms);
    route(now_ms);
    return;
  }
  // Hand the children over first: the others start them and take their names, then the copies
  // here stop; only then does the node leave (or when the handoff takes too long).
  log(LogLevel::info, "agent",
      fmt::format("draining {} children={}", why, supervisor_.local().size()));
  drain_deadline_ = now_ms + config_.drain_timeout_ms;
  supervisor_.drain(now_ms);
  drive(now_ms);
  check_drain(now_ms);
  route(now_ms);
}

void Stack::check_drain(std::uint64_t now) {
  if (!leaving_ || left_) return;
  // Done once nothing runs here and every peer has what this node wrote: the final checkpoints
  // and releases of the children it handed over (a peer that lacked a batch could no longer get
  // it from here).
  const cluster::Replicator* replicator = node_.replicator();
  const bool done = supervisor_.local().empty() &&
                    (replicator == nullptr || replicator->replica().acknowledged());
  if (!done && now < drain_deadline_) return;
  if (done) {
    log(LogLevel::info, "agent", "leaving (children handed over)");
  } else {
    std::string lacking;
    if (replicator != nullptr) {
      for (const std::string& peer : replicator->replica().unacknowledged())
        lacking += (lacking.empty() ? "" : ",") + peer;
    }
    log(LogLevel::warn, "agent",
        fmt::format("leaving (handoff timed out: children here={}, peers without all of this "
                    "node's writes: {}; stopping the rest)",
                    supervisor_.local().size(), lacking.empty() ? "none" : lacking));
  }
  leave_now(now);
}

void Stack::leave_now(std::uint64_t now) {
  left_ = true;
  node_.membership().leave(now);
  outputs_.emplace_back(Left{});
}

void Stack::log(LogLevel level, const char* component, std::string text) {
  if (!logs(level)) return;
  outputs_.emplace_back(LogLine{level, component, std::move(text)});
}

}  // namespace shoal::supervisor
