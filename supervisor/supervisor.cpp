#include "supervisor/supervisor.h"

#include <algorithm>

#include "cluster/key_spaces.h"
#include "cluster/life.h"
#include "cluster/timing.h"
#include "crdt/msgpack_reader.h"
#include "crdt/msgpack_writer.h"
#include "supervisor/exec_policy.h"

namespace shoal::supervisor {

namespace {

constexpr std::string_view kSpecs = cluster::keys::kChild;
constexpr std::string_view kFailed = cluster::keys::kFailed;
constexpr std::string_view kCheckpoints = cluster::keys::kCheckpoint;
constexpr std::string_view kDraining = cluster::keys::kDraining;

std::string key(std::string_view space, std::string_view name) {
  std::string k(space);
  k += name;
  return k;
}

// Instance ids start high, apart from the small ids other local registrations use.
constexpr std::uint64_t kFirstInstance = std::uint64_t{1} << 32;
// quorum: how often a node that waits for its map to catch up with its peers looks again (a
// replication round).
constexpr std::uint64_t kSyncRecheckMs = 100;

}  // namespace

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::removed:
      return "removed";
    case StopReason::lost_name:
      return "lost_name";
    case StopReason::failed:
      return "failed";
    case StopReason::moved:
      return "moved";
    case StopReason::unplaced:
      return "unplaced";
    case StopReason::no_quorum:
      return "no_quorum";
  }
  return "unknown";
}

const char* mode_name(Mode m) {
  return m == Mode::quorum ? "quorum" : "ap";
}

std::uint64_t quorum_lease_ms(std::size_t expect, std::uint64_t probe_interval_ms,
                              int awareness_max, double suspicion_mult, double suspicion_max_mult,
                              std::uint64_t fence_after_ms) {
  const std::size_t n = std::max<std::size_t>(expect, 2);
  // Every peer probed once at the slowest rate, then the longest suspicion timeout.
  const std::uint64_t slowest_probe =
      probe_interval_ms * static_cast<std::uint64_t>(std::max(awareness_max, 0) + 1);
  const auto longest_suspicion =
      static_cast<std::uint64_t>(suspicion_max_mult * static_cast<double>(cluster::suspicion_min_ms(
                                                          suspicion_mult, n, probe_interval_ms)));
  return slowest_probe * (n - 1) + longest_suspicion + fence_after_ms;
}

const char* local_status_name(LocalStatus s) {
  switch (s) {
    case LocalStatus::starting:
      return "starting";
    case LocalStatus::running:
      return "running";
    case LocalStatus::stopping:
      return "stopping";
    case LocalStatus::backoff:
      return "restarting";
    case LocalStatus::waiting:
      return "handoff";
  }
  return "unknown";
}

Supervisor::Supervisor(cluster::Replicator& replicator, registry::Registry& registry,
                       std::string self, std::uint64_t creation, SupervisorConfig config)
    : replicator_(replicator),
      registry_(registry),
      self_(std::move(self)),
      creation_(creation),
      config_(config),
      next_id_(kFirstInstance) {
  // Specs already in the map (a node that starts late, or a restart).
  replicator_.state().scan(kSpecs, [&](std::string_view k, const crdt::VersionView& v) {
    if (auto spec = decode_spec(v.value, config_.limits)) {
      std::string name(k.substr(kSpecs.size()));
      owners_.emplace(name, std::nullopt);  // no view yet: nobody owns it
      specs_.emplace(std::move(name), std::move(*spec));
    } else {
      ++stats_.bad_specs;
    }
    return true;
  });
  replicator_.state().scan(kDraining, [&](std::string_view k, const crdt::VersionView&) {
    if (auto life = cluster::Life::parse(k.substr(kDraining.size()))) draining_.insert(*life);
    return true;
  });
}

// --- API ---

void Supervisor::drain(std::uint64_t now_ms) {
  if (draining_self_) return;
  draining_self_ = true;
  const cluster::Life me{self_, creation_};
  replicator_.put(now_ms, key(kDraining, me.key()), "1");
  draining_.insert(me);
  rebuild_placement_view();
  reconcile_all(now_ms);
}

View Supervisor::placement_of(const View& view) const {
  View out;
  for (const auto& [name, info] : view) {
    if (!draining_.contains(cluster::Life{name, info.creation})) out.emplace(name, info);
  }
  return out;
}

void Supervisor::rebuild_placement_view() {
  View before = std::move(placement_view_);
  placement_view_ = placement_of(view_);
  update_owners(before);
}

void Supervisor::update_owners(const View& before) {
  const View& after = placement_view_;
  bool went = false;
  std::vector<const View::value_type*> came;
  bool retag = false;
  for (const auto& [name, info] : before) {
    auto it = after.find(name);
    if (it == after.end()) {
      went = true;
    } else if (it->second.tags != info.tags) {
      retag = true;
    }
  }
  for (const auto& member : after) {
    if (!before.contains(member.first)) came.push_back(&member);
  }
  if (!went && came.empty() && !retag) return;
  auto owner_it = owners_.begin();
  for (const auto& [name, spec] : specs_) {
    // owners_ has the keys of specs_, in the same order (were it not, the child is placed anew).
    const bool cached = owner_it != owners_.end() && owner_it->first == name;
    if (!cached) owner_it = owners_.try_emplace(name).first;
    std::optional<std::string>& owner = owner_it->second;
    const std::optional<std::string> was = owner;
    ++owner_it;
    auto now_there = was ? after.find(*was) : after.end();
    if (!cached || retag || (was && now_there == after.end()) || (!was && !came.empty())) {
      owner = place(spec, after);
    } else if (was) {
      const Score current = score(name, *was, now_there->second.tags);
      for (const View::value_type* m : came) {
        if (!eligible(spec, m->second.tags)) continue;
        if (beats(score(name, m->first, m->second.tags), m->first, current, *was)) {
          owner = place(spec, after);  // the best of the newcomers (and never a tie missed)
          break;
        }
      }
    }
    const bool mine_now = owner && *owner == self_;
    if ((was && *was == self_) != mine_now) note_mine(name, mine_now);
    // A failover: the owner left the live view (not a drain) and this node takes over.
    if (was && mine_now && *was != self_ && !view_.contains(*was)) ++stats_.failovers;
  }
}

void Supervisor::note_mine(const std::string& name, bool mine) {
  if (mine) {
    mine_.insert(name);
  } else {
    mine_.erase(name);
  }
}

std::optional<std::string> Supervisor::owner_of(std::string_view name) const {
  auto it = owners_.find(name);
  return it != owners_.end() ? it->second : std::nullopt;
}

std::expected<void, std::string> Supervisor::add(std::uint64_t now_ms, const ChildSpec& spec) {
  if (auto bad = validate(spec, config_.limits)) return std::unexpected(*bad);
  replicator_.remove(now_ms, key(kFailed, spec.name));  // added anew: no longer failed
  replicator_.put(now_ms, key(kSpecs, spec.name), encode_spec(spec));
  // The change comes back through on_change(), which places it.
  return {};
}

bool Supervisor::remove(std::uint64_t now_ms, std::string_view name) {
  const bool had = replicator_.remove(now_ms, key(kSpecs, name));
  replicator_.remove(now_ms, key(kFailed, name));
  replicator_.remove(now_ms, key(kCheckpoints, name));
  return had;
}

std::expected<void, std::string> Supervisor::checkpoint(std::uint64_t now_ms, std::string_view name,
                                                        std::string_view blob) {
  auto it = local_.find(name);
  const bool running = it != local_.end() && it->second.status == LocalStatus::running;
  const bool handing_over =
      it != local_.end() && it->second.status == LocalStatus::stopping && it->second.handing_over;
  if (!running && !handing_over) {
    if (it != local_.end() && it->second.status == LocalStatus::stopping) {
      return std::unexpected(std::string(name) +
                             " is stopping here without handing its state on (it lost its name, "
                             "moves with handoff overlap, or is removed): checkpoint refused");
    }
    return std::unexpected(std::string(name) + " is not running on this node");
  }
  if (blob.size() > config_.max_checkpoint_bytes) {
    return std::unexpected("a checkpoint is at most " +
                           std::to_string(config_.max_checkpoint_bytes) + " bytes");
  }
  replicator_.put(now_ms, key(kCheckpoints, name), blob);
  return {};
}

// --- Inputs ---

void Supervisor::set_members(std::uint64_t now_ms, View view) {
  if (config_.mode == Mode::quorum) {
    // Members that left the view without draining: their children wait for the lease.
    for (const auto& [name, info] : view_) {
      auto now_there = view.find(name);
      const bool drained = draining_.contains(cluster::Life{name, info.creation});
      if (name != self_ && !drained &&
          (now_there == view.end() || now_there->second.creation != info.creation)) {
        gone_.insert_or_assign(name, Gone{info, now_ms});
      }
    }
    std::uint64_t longest = 0;
    for (const auto& [name, spec] : specs_)
      longest = std::max(longest, spec.shutdown_ms);
    for (auto it = gone_.begin(); it != gone_.end();) {
      const bool back = view.contains(it->first);
      const bool over = now_ms >= it->second.at_ms + config_.lease_ms + longest;
      it = back || over ? gone_.erase(it) : std::next(it);
    }
  }
  const bool first_view = view_.empty();
  // The Stack hands the view down every few seconds whether or not it changed; an unchanged one
  // needs no reconciliation of every child here (the periodic sweep still comes round).
  const bool unchanged = !first_view && view == view_;
  view_ = std::move(view);
  if (config_.mode == Mode::quorum) {
    if (has_quorum()) {
      if (minority_since_ || first_view) {
        // In a majority again (a partition healed, or this node started): views may still
        // disagree for a while, and a member this node does not see yet may run a child it would
        // start. It starts nothing for the lease, the time views take to agree (found by the
        // fault lab: a healed minority node saw one majority member before the other and started
        // the child that other one ran).
        hold_until_ = now_ms + config_.lease_ms;
        wake_at(hold_until_);
      }
      minority_since_.reset();
    } else if (!minority_since_) {
      minority_since_ = now_ms;
      wake_at(now_ms + config_.fence_after_ms);
    }
  }
  // Draining marks of lives that are gone are dropped (anyone may; removing twice is harmless).
  std::vector<cluster::Life> stale;
  for (const cluster::Life& life : draining_) {
    auto it = view_.find(life.name);
    if (it == view_.end() || it->second.creation != life.creation) stale.push_back(life);
  }
  bool dropped = false;
  for (const cluster::Life& life : stale) {
    if (life != cluster::Life{self_, creation_}) {
      replicator_.remove(now_ms, key(kDraining, life.key()));
      draining_.erase(life);
      dropped = true;
    }
  }
  rebuild_placement_view();
  if (!unchanged || dropped) reconcile_all(now_ms);
}

void Supervisor::on_change(std::uint64_t now_ms, const cluster::ReplicaChange& change) {
  std::string name;
  if (change.key.starts_with(kSpecs)) {
    name = change.key.substr(kSpecs.size());
    std::optional<ChildSpec> spec;
    if (change.after) {
      if (auto decoded = decode_spec(*change.after, config_.limits)) spec = std::move(*decoded);
    }
    if (spec && spec->name == name) {
      auto owner = place(*spec, placement_view_);
      note_mine(name, owner && *owner == self_);
      owners_.insert_or_assign(name, std::move(owner));
      specs_[name] = std::move(*spec);
    } else {
      if (change.after) ++stats_.bad_specs;
      specs_.erase(name);
      owners_.erase(name);
      note_mine(name, false);
    }
  } else if (change.key.starts_with(kFailed)) {
    name = change.key.substr(kFailed.size());
    if (change.after) {
      maybe_failed_.insert(name);
    } else if (!replicator_.state().get(change.key)) {
      maybe_failed_.erase(name);
    }
  } else if (change.key.starts_with(kCheckpoints)) {
    // A final checkpoint that came late (its batch was lost and sent again) ends a wait.
    name = change.key.substr(kCheckpoints.size());
    auto it = local_.find(name);
    if (it == local_.end() || it->second.status != LocalStatus::waiting) return;
  } else if (change.key.starts_with(kDraining)) {
    auto life = cluster::Life::parse(std::string_view(change.key).substr(kDraining.size()));
    if (!life) return;
    if (change.after) {
      draining_.insert(*life);
    } else {
      draining_.erase(*life);
    }
    rebuild_placement_view();
    reconcile_all(now_ms);
    return;
  } else {
    return;
  }
  reconcile(now_ms, name);
}

void Supervisor::on_registry_event(std::uint64_t now_ms, const registry::RegistryEvent& event) {
  auto it = local_.find(event.name);
  if (it == local_.end()) return;
  LocalChild& child = it->second;
  if (child.status == LocalStatus::waiting) {
    reconcile(now_ms, it->first);  // the old copy may have let go of the name
    return;
  }
  if (child.status != LocalStatus::running) return;
  const registry::Pid mine = pid_of(child);
  if (event.pid && *event.pid == mine) return;  // ours holds it (a conflict we won)
  if (event.kind == registry::RegistryEventKind::registered) return;
  // The name went to another copy, or was removed.
  reconcile(now_ms, it->first);
}

void Supervisor::on_started(std::uint64_t now_ms, std::string_view name, std::uint64_t id,
                            std::string meta) {
  auto it = local_.find(name);
  if (it == local_.end() || it->second.id != id || it->second.status != LocalStatus::starting)
    return;
  it->second.status = LocalStatus::running;
  it->second.since_ms = now_ms;
  it->second.meta = std::move(meta);
  claim(now_ms, it->first, it->second);
}

void Supervisor::on_exited(std::uint64_t now_ms, std::string_view name, std::uint64_t id,
                           bool normal, std::string how) {
  auto it = local_.find(name);
  if (it == local_.end() || it->second.id != id) return;  // an instance we forgot already
  LocalChild& child = it->second;
  const std::string child_name = it->first;
  registry_.release(now_ms, child_name, pid_of(child));  // a copy that ended lets go of its name
  if (child.status == LocalStatus::stopping) {
    local_.erase(it);
    reconcile(now_ms, child_name);  // e.g. stopped for a move that was undone meanwhile
    return;
  }
  child.last_exit = std::move(how);
  auto spec = specs_.find(child_name);
  if (spec == specs_.end()) {
    local_.erase(it);
    return;
  }
  const Restart policy = spec->second.restart;
  if (policy == Restart::temporary || (policy == Restart::transient && normal)) {
    // Done for good: the child leaves the cluster.
    local_.erase(it);
    remove(now_ms, child_name);
    return;
  }
  child.restarts.push_back(now_ms);
  while (!child.restarts.empty() && now_ms - child.restarts.front() >= spec->second.window_ms)
    child.restarts.pop_front();
  if (child.restarts.size() > spec->second.max_restarts) {
    const std::string why = std::to_string(child.restarts.size()) + " exits within " +
                            std::to_string(spec->second.window_ms) +
                            " ms, the last: " + child.last_exit;
    local_.erase(it);
    mark_failed(now_ms, child_name, why);
    return;
  }
  const std::uint32_t shift =
      static_cast<std::uint32_t>(std::min<std::size_t>(child.restarts.size() - 1, 16));
  child.status = LocalStatus::backoff;
  child.since_ms = now_ms;
  backoff_.insert(child_name);
  child.restart_at = now_ms + std::min(config_.max_backoff_ms, config_.restart_backoff_ms << shift);
}

void Supervisor::on_timer(std::uint64_t now_ms) {
  if (now_ms >= wake_at_) {
    // Reconcile everything now (sets wake_at_ again where still waiting).
    wake_at_ = UINT64_MAX;
    next_reconcile_ = now_ms + config_.reconcile_every_ms;
    reconcile_all(now_ms);
  } else if (now_ms >= next_reconcile_) {
    next_reconcile_ = now_ms + config_.reconcile_every_ms;
    sweep(now_ms);
  }
  std::vector<std::string> due;
  for (auto it = backoff_.begin(); it != backoff_.end();) {
    auto child = local_.find(*it);
    if (child == local_.end() || child->second.status != LocalStatus::backoff) {
      it = backoff_.erase(it);  // restarted or gone meanwhile
      continue;
    }
    if (child->second.restart_at <= now_ms) due.push_back(*it);
    ++it;
  }
  for (const std::string& name : due)
    reconcile(now_ms, name);
}

// --- Outputs ---

std::uint64_t Supervisor::next_deadline() const {
  std::uint64_t next = std::min(next_reconcile_, wake_at_);
  for (const std::string& name : backoff_) {
    auto child = local_.find(name);
    if (child != local_.end() && child->second.status == LocalStatus::backoff)
      next = std::min(next, child->second.restart_at);
  }
  return next;
}

void Supervisor::take_effects(std::vector<SupervisorEffect>& out) {
  for (SupervisorEffect& e : effects_)
    out.push_back(std::move(e));
  effects_.clear();
}

// --- Reads ---

bool Supervisor::has_quorum() const {
  return config_.mode == Mode::ap || view_.size() * 2 > config_.expect;
}

bool Supervisor::fenced(std::uint64_t now_ms) const {
  return minority_since_ && now_ms >= *minority_since_ + config_.fence_after_ms;
}

std::optional<ChildSpec> Supervisor::spec(std::string_view name) const {
  auto it = specs_.find(name);
  if (it == specs_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Supervisor::checkpoint_of(std::string_view name) const {
  auto v = replicator_.state().get(key(kCheckpoints, name));
  if (!v) return std::nullopt;
  return std::string(v->value);
}

std::optional<std::string> Supervisor::failure(std::string_view name) const {
  auto v = replicator_.state().get(key(kFailed, name));
  if (!v) return std::nullopt;
  crdt::MsgReader r(v->value);
  r.array_of("failure", 3);
  const std::string node(r.bytes("node", 255));
  r.uint("at");
  const std::string why(r.bytes("why", 4096));
  if (!r.ok()) return std::string("failed");
  return why + " (marked on " + node + ")";
}

std::optional<std::string> Supervisor::refused(std::string_view name) const {
  auto spec = specs_.find(name);
  if (spec == specs_.end() || owner_of(name)) return std::nullopt;
  std::vector<const cluster::Tags*> members;
  members.reserve(placement_view_.size());
  for (const auto& [member, info] : placement_view_)
    members.push_back(&info.tags);
  return refused_everywhere(spec->second, members);
}

bool Supervisor::failed(std::string_view name) const {
  return maybe_failed_.contains(name) && replicator_.state().get(key(kFailed, name)).has_value();
}

std::vector<ChildInfo> Supervisor::children() const {
  std::vector<ChildInfo> out;
  out.reserve(specs_.size());
  for (const auto& [name, spec] : specs_) {
    ChildInfo info{spec, owner_of(name), failed(name), std::nullopt, std::nullopt};
    if (auto where = registry_.whereis(name)) info.pid = where->pid;
    if (auto it = local_.find(name); it != local_.end()) info.local = it->second;
    out.push_back(std::move(info));
  }
  return out;
}

// --- The reconciliation ---

void Supervisor::reconcile_all(std::uint64_t now_ms) {
  // reconcile() does nothing for a child that is neither placed here nor has an instance here,
  // so only those are looked at: the children this node owns and those it runs (a merge of two
  // sorted sequences, in name order).
  std::vector<std::string> names;
  names.reserve(mine_.size() + local_.size());
  auto local_it = local_.begin();
  for (const std::string& name : mine_) {
    for (; local_it != local_.end() && local_it->first < name; ++local_it)
      names.push_back(local_it->first);
    if (local_it != local_.end() && local_it->first == name) ++local_it;
    names.push_back(name);
  }
  for (; local_it != local_.end(); ++local_it)
    names.push_back(local_it->first);
  for (const std::string& name : names)
    reconcile(now_ms, name);
}

void Supervisor::sweep(std::uint64_t now_ms) {
  // The next sweep_batch names of mine_ and local_ (merged, in order) after sweep_after_.
  std::vector<std::string> names;
  auto m = mine_.upper_bound(sweep_after_);
  auto l = local_.upper_bound(sweep_after_);
  while (names.size() < std::max<std::size_t>(config_.sweep_batch, 1) &&
         (m != mine_.end() || l != local_.end())) {
    if (l == local_.end() || (m != mine_.end() && *m < l->first)) {
      names.push_back(*m++);
    } else {
      if (m != mine_.end() && *m == l->first) ++m;
      names.push_back((l++)->first);
    }
  }
  const bool wrapped = m == mine_.end() && l == local_.end();
  sweep_after_ = wrapped || names.empty() ? std::string() : names.back();
  for (const std::string& name : names)
    reconcile(now_ms, name);
}

void Supervisor::reconcile(std::uint64_t now_ms, const std::string& name) {
  auto spec_it = specs_.find(name);
  auto local_it = local_.find(name);
  if (spec_it == specs_.end()) {
    // Removed from the cluster: stop what runs here.
    if (local_it == local_.end()) return;
    if (local_it->second.status == LocalStatus::backoff) {
      local_.erase(local_it);
    } else if (local_it->second.status != LocalStatus::stopping) {
      stop(now_ms, name, local_it->second, StopReason::removed);
    }
    return;
  }
  const ChildSpec& spec = spec_it->second;
  const bool is_failed = failed(name);
  const std::optional<std::string> owner = owner_of(name);
  const bool mine = owner && *owner == self_ && !is_failed;
  const bool quorum = config_.mode == Mode::quorum;

  if (local_it == local_.end()) {
    if (!mine || !may_start(now_ms, name, spec)) return;
    LocalChild& child = local_[name];
    if (!quorum && spec.handoff == Handoff::state && !handed_over(name, spec)) {
      // The old copy stops first and hands its state on.
      child.status = LocalStatus::waiting;
      child.since_ms = now_ms;
      wake_at(now_ms + spec.shutdown_ms + config_.handoff_wait_ms);
      return;
    }
    start(now_ms, spec, child);
    return;
  }
  LocalChild& child = local_it->second;
  if (quorum && fenced(now_ms)) {
    // In the minority too long: the majority may start these after its lease.
    if (child.status == LocalStatus::backoff || child.status == LocalStatus::waiting) {
      local_.erase(local_it);
    } else if (child.status != LocalStatus::stopping) {
      if (child.status == LocalStatus::running || child.status == LocalStatus::starting)
        ++stats_.fenced;
      stop(now_ms, name, child, StopReason::no_quorum);
    }
    return;
  }
  switch (child.status) {
    case LocalStatus::stopping:
      return;  // on_exited() reconciles again
    case LocalStatus::backoff:
      if (!mine) {
        local_.erase(local_it);
      } else if (child.restart_at <= now_ms && may_start(now_ms, name, spec)) {
        ++stats_.restarts;
        ++child.restart_count;
        start(now_ms, spec, child);
      }
      return;
    case LocalStatus::waiting: {
      if (!mine) {
        local_.erase(local_it);
        return;
      }
      const std::uint64_t give_up = child.since_ms + spec.shutdown_ms + config_.handoff_wait_ms;
      if (handed_over(name, spec)) {
        start(now_ms, spec, child);
      } else if (now_ms >= give_up) {
        ++stats_.handoff_timeouts;
        start(now_ms, spec, child);
      } else {
        wake_at(give_up);
      }
      return;
    }
    case LocalStatus::starting:
      if (is_failed) stop(now_ms, name, child, StopReason::failed);
      return;  // on_started() claims the name
    case LocalStatus::running:
      break;
  }
  if (is_failed) {
    stop(now_ms, name, child, StopReason::failed);
    return;
  }
  if (!owner) {
    stop(now_ms, name, child, StopReason::unplaced);
    return;
  }
  const std::optional<registry::Registration> holder = registry_.whereis(name);
  const registry::Pid me = pid_of(child);
  const bool holds = holder && holder->pid == me;
  if (mine) {
    // The owner's copy must hold the name; take it back if it went elsewhere.
    if (!holds) claim(now_ms, name, child);
    return;
  }
  // quorum, or a state handoff: not the owner, so stop first; the owner starts once the name is
  // free. Only the copy that holds the name hands its state on (another copy's would overwrite
  // it).
  if (quorum || spec.handoff == Handoff::state) {
    const bool handover = holds && spec.handoff == Handoff::state;
    if (handover) ++stats_.handoffs;
    stop(now_ms, name, child, StopReason::moved, handover);
    return;
  }
  // Not the owner: run until the owner's copy holds the name (no gap), then stop.
  if (holder && holder->pid.node == *owner) {
    stop(now_ms, name, child, StopReason::moved);
  } else if (holder && !holds) {
    stop(now_ms, name, child, StopReason::lost_name);
  }
}

bool Supervisor::may_start(std::uint64_t now_ms, const std::string& name, const ChildSpec& spec) {
  if (config_.mode == Mode::ap) return true;
  if (!has_quorum()) return false;
  if (now_ms < hold_until_) {
    wake_at(hold_until_);
    return false;
  }
  // A map that has not caught up with every live member may not know who runs the child now: a
  // partition just healed, or this node just started. It waits until it has (found by the fault
  // lab: a healed minority node started a child its majority peer still ran).
  for (const auto& [member, info] : view_) {
    if (member != self_ && !replicator_.synced_with(cluster::Life{member, info.creation}.key())) {
      wake_at(now_ms + kSyncRecheckMs);
      return false;
    }
  }
  // Another live member's copy holds the name: it stops first.
  if (!handed_over(name, spec)) return false;
  if (gone_.empty()) return true;
  // Was it a gone member's? Placement over the view with the gone members still in it says.
  View with_gone = placement_view_;
  for (const auto& [member, gone] : gone_)
    with_gone.emplace(member, gone.info);
  const std::optional<std::string> before = place(spec, with_gone);
  if (!before) return true;
  auto g = gone_.find(*before);
  if (g == gone_.end()) return true;
  const std::uint64_t free_at = g->second.at_ms + config_.lease_ms + spec.shutdown_ms;
  if (now_ms >= free_at) return true;
  wake_at(free_at);
  return false;
}

void Supervisor::start(std::uint64_t now_ms, const ChildSpec& spec, LocalChild& child) {
  child.id = next_id_++;
  child.status = LocalStatus::starting;
  child.since_ms = now_ms;
  ++stats_.starts;
  effects_.push_back(StartChild{spec, child.id, checkpoint_of(spec.name)});
}

void Supervisor::stop(std::uint64_t now_ms, const std::string& name, LocalChild& child,
                      StopReason reason, bool handover) {
  child.status = LocalStatus::stopping;
  child.since_ms = now_ms;
  child.handing_over = handover;
  ++stats_.stops;
  auto spec = specs_.find(name);
  const std::uint64_t grace = spec != specs_.end() ? spec->second.shutdown_ms : 5'000;
  effects_.push_back(StopChild{name, child.id, reason, grace, handover});
}

bool Supervisor::handed_over(const std::string& name, const ChildSpec& spec) const {
  if (auto holder = registry_.whereis(name); holder && holder->pid.node != self_) {
    auto member = view_.find(holder->pid.node);
    if (member != view_.end() && member->second.creation == holder->pid.creation) return false;
  }
  if (spec.handoff != Handoff::state) return true;
  const crdt::Replica& replica = replicator_.replica();
  for (const auto& [member, info] : view_) {
    if (member != self_ && replica.gap(cluster::Life{member, info.creation}.key())) return false;
  }
  return true;
}

void Supervisor::claim(std::uint64_t now_ms, const std::string& name, LocalChild& child) {
  if (child.last_claim_ms != 0 && now_ms - child.last_claim_ms < config_.reclaim_after_ms) return;
  child.last_claim_ms = now_ms;
  (void)registry_.claim(now_ms, name, pid_of(child), child.meta);
}

void Supervisor::mark_failed(std::uint64_t now_ms, const std::string& name,
                             const std::string& why) {
  ++stats_.failed;
  std::string value;
  crdt::MsgWriter w(value);
  w.array(3);
  w.str(self_);
  w.uint(now_ms);
  w.str(why);
  replicator_.put(now_ms, key(kFailed, name), value);
  maybe_failed_.insert(name);
}

}  // namespace shoal::supervisor
