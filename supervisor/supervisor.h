#pragma once

// Supervisor: the distributed supervisor's core on one node, sans-IO.
//
// Child specs live in the replicated map ("c/" + name); every node places every spec with the same
// rendezvous hash over the same live view (supervisor/placement.h), so each child has one owner.
// The owner asks its runtime to start the child (StartChild, with the child's last checkpoint) and,
// once it runs, claims the child's registry name for the child's pid, so `whereis` answers the
// live copy. When a member dies, every survivor computes the new owners of its children from the
// view without it and starts its share: exactly one start per orphan once views agree.
//
// Copies started from disagreeing views (a partition, or views that differ for a moment) resolve
// through the registry: the name goes to the latest claim everywhere. A node whose copy lost the
// name stops it politely (StopChild: the runtime sends SIGTERM, or a worker's stop, and kills only
// after the spec's shutdown timeout), unless that node is the owner in its own view, which claims
// again: once views agree, only the owner claims, and exactly one copy runs.
//
// Moves. A child whose owner changed while it ran on a live node (a member joined or was
// reweighted, this node drains) moves as its spec's handoff says (child_spec.h):
//  - state: the copy here stops first; if it held the name, it may store a final checkpoint while
//    it stops (StopChild::handover). The new owner waits (LocalStatus::waiting) until no copy on a
//    live member holds the name and its map has no gap in a live member's batches (so the release
//    cannot have overtaken the final checkpoint), then starts from the checkpoint. It waits at
//    most the child's shutdown_ms + handoff_wait_ms, then starts anyway (a stuck old node).
//  - overlap: the copy here keeps running until the new owner's copy holds the name, then stops:
//    no gap, two copies for a moment, and the new one resumes from the last periodic checkpoint.
//
// Restarts: a child that exits is restarted after a backoff (permanent; transient only after an
// abnormal exit); one that is not restarted is removed from the cluster. More than max_restarts
// restarts within window_ms mark the child failed cluster-wide ("f/" + name): nobody starts it
// again until it is removed or added anew. Checkpoints ("k/" + name) are small blobs a running
// child stores; a copy started anywhere is handed the latest.
//
// Graceful leave: drain() marks the node draining in the map ("d/" + node#creation); every node
// then places children as if it were gone, and the copies move as their handoff says.
//
// Modes. `ap` (the default): any node starts what it owns in its own view, so both sides of a
// partition run copies, and after healing the registry leaves one. `quorum` (config.expect = the
// cluster size N): at most one copy at any instant, at the price of a slower failover:
//  - a node whose view (live members, itself included) is not a strict majority of N starts
//    nothing, and once it has been in the minority for fence_after_ms it stops every child it
//    runs (StopReason::no_quorum);
//  - a child that a member which left the view (not by a drain) owned starts elsewhere only
//    lease_ms + the child's shutdown_ms after it left: by then the cut-off member has noticed,
//    fenced itself and ended its copy. lease_ms must cover the time a cut-off node takes to see
//    its peers dead (at most the probe round over the cluster stretched by the health multiplier,
//    plus the longest suspicion timeout) plus fence_after_ms: quorum_lease_ms() computes that
//    bound from the membership timing;
//  - a child starts only once no other live member holds its name: a copy that moves (a join, a
//    drain) stops first and the new owner starts after (a gap of one stop, never two copies).
// What quorum mode cannot bound: a paused (SIGSTOP) agent cannot stop its exec children, which go
// on running; after lease_ms a copy starts elsewhere. Workers pause with their agent.
//
// Inputs carry the time; effects are drained with take_effects(). It writes through the registry
// and the replicator it is given, on the same loop. Not thread-safe.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <expected>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cluster/life.h"
#include "cluster/replicator.h"
#include "registry/registry.h"
#include "supervisor/child_spec.h"
#include "supervisor/placement.h"

namespace shoal::supervisor {

enum class Mode { ap, quorum };
const char* mode_name(Mode m);

struct SupervisorConfig {
  // Delay before the first restart after an exit; it doubles with each restart in the window.
  std::uint64_t restart_backoff_ms = 100;
  std::uint64_t max_backoff_ms = 5'000;
  // Largest checkpoint blob.
  std::size_t max_checkpoint_bytes = 64 * 1024;
  // An owner whose child's name went elsewhere claims it again at most this often.
  std::uint64_t reclaim_after_ms = 100;
  // Besides on every event, children are reconciled this often, so that nothing depends on an
  // event not being missed (a claim skipped by the rate limit above, say): up to sweep_batch of
  // them each time, in name order and round, so a node with more children than that covers them
  // all every ceil(count / sweep_batch) periods. (Each event, a view change and a wait that ends
  // still reconcile what they concern at once; a node with 20,000 children spent 9% of a core
  // idle reconciling all of them every period.)
  std::uint64_t reconcile_every_ms = 500;
  std::size_t sweep_batch = 1'000;
  SpecLimits limits;
  Mode mode = Mode::ap;
  // quorum: the expected cluster size; a strict majority of it must be in view.
  std::size_t expect = 0;
  // quorum: how long a node may be in the minority before it stops its children.
  std::uint64_t fence_after_ms = 2'000;
  // quorum: how long after a member left the view its children may start elsewhere (plus each
  // child's shutdown_ms). See quorum_lease_ms().
  std::uint64_t lease_ms = 15'000;
  // ap, handoff state: how long past the child's shutdown_ms a new owner waits for the old copy
  // to let go of the name before it starts anyway.
  std::uint64_t handoff_wait_ms = 5'000;
};

// The least safe lease for quorum mode: how long a node cut off from the others may take to see a
// majority gone, with probes stretched by the highest health multiplier and the longest suspicion
// timeout, plus fence_after_ms.
std::uint64_t quorum_lease_ms(std::size_t expect, std::uint64_t probe_interval_ms,
                              int awareness_max, double suspicion_mult, double suspicion_max_mult,
                              std::uint64_t fence_after_ms);

enum class StopReason { removed, lost_name, failed, moved, unplaced, no_quorum };
const char* stop_reason_name(StopReason r);

// Start `spec` as local instance `id` (the pid's local id), handing it `checkpoint` if any.
struct StartChild {
  ChildSpec spec;
  std::uint64_t id;
  std::optional<std::string> checkpoint;
};
// Stop instance `id` of child `name` politely; kill it after `shutdown_ms`. `handover`: a state
// handoff: the copy may store a final checkpoint while it stops, and its successor starts from it.
struct StopChild {
  std::string name;
  std::uint64_t id;
  StopReason reason;
  std::uint64_t shutdown_ms;
  bool handover = false;
};
using SupervisorEffect = std::variant<StartChild, StopChild>;

// waiting: this node owns the child and waits for the old copy of a state handoff to stop.
enum class LocalStatus { starting, running, stopping, backoff, waiting };
const char* local_status_name(LocalStatus s);

// A child instance on this node.
struct LocalChild {
  std::uint64_t id = 0;
  LocalStatus status = LocalStatus::starting;
  std::uint64_t since_ms = 0;          // entered this status
  std::deque<std::uint64_t> restarts;  // times of restarts within the window
  std::uint64_t restart_at = 0;        // backoff: when to start again
  std::uint32_t restart_count = 0;     // restarts here, ever
  std::string last_exit;               // how the previous instance ended
  std::uint64_t last_claim_ms = 0;
  std::string meta;           // registered with the name (on_started)
  bool handing_over = false;  // stopping for a state handoff: its final checkpoint is taken
};

// One child as this node sees it.
struct ChildInfo {
  ChildSpec spec;
  std::optional<std::string> owner;  // by placement in this node's view
  bool failed = false;
  std::optional<registry::Pid> pid;  // the live copy the registry answers
  std::optional<LocalChild> local;   // if an instance is here
};

struct SupervisorStats {
  std::uint64_t starts = 0;     // StartChild effects
  std::uint64_t restarts = 0;   // of those, restarts after an exit here
  std::uint64_t stops = 0;      // StopChild effects
  std::uint64_t failed = 0;     // children this node marked failed
  std::uint64_t bad_specs = 0;  // undecodable specs in the map (ignored)
  std::uint64_t failovers = 0;  // children this node took over from a member that left the view
  std::uint64_t fenced = 0;     // quorum: children stopped here for want of a majority
  std::uint64_t handoffs = 0;   // state handoffs: copies stopped here to hand their state on
  std::uint64_t handoff_timeouts = 0;  // new copies started without the old one's release
};

class Supervisor {
 public:
  Supervisor(cluster::Replicator& replicator, registry::Registry& registry, std::string self,
             std::uint64_t creation, SupervisorConfig config = {});

  // --- API ---
  // Adds (or replaces) a child spec cluster-wide.
  std::expected<void, std::string> add(std::uint64_t now_ms, const ChildSpec& spec);
  // Removes a child cluster-wide (its owner stops it). Returns false if it was not there.
  bool remove(std::uint64_t now_ms, std::string_view name);
  // Starts a graceful leave: this node is marked draining in the map, every node places children
  // as if it were gone, the new owners start their copies and take the names, and the copies
  // here stop once they lost their names (started there, then stopped here). drained() tells
  // when nothing runs here any more; then the node may leave the cluster.
  void drain(std::uint64_t now_ms);
  bool draining() const { return draining_self_; }
  bool drained() const { return draining_self_ && local_.empty(); }
  // Stores the checkpoint of a child running here, or of one stopping here to hand its state on.
  std::expected<void, std::string> checkpoint(std::uint64_t now_ms, std::string_view name,
                                              std::string_view blob);

  // --- Inputs ---
  // The live members with their tags (this node included). Draining members are left out of
  // placement.
  void set_members(std::uint64_t now_ms, View view);
  // Every change of the replicated map (specs, failure marks; other keys are ignored).
  void on_change(std::uint64_t now_ms, const cluster::ReplicaChange& change);
  // Every registry event of the node.
  void on_registry_event(std::uint64_t now_ms, const registry::RegistryEvent& event);
  // The runtime started instance `id`, or it ended (`normal`: exit status 0 / a worker's own
  // clean stop; `how` for people).
  // `meta` goes with the child's registration (the agent puts the OS pid and start time there, so
  // every node can list where and how the child runs); at most the registry's max_meta_bytes.
  void on_started(std::uint64_t now_ms, std::string_view name, std::uint64_t id,
                  std::string meta = {});
  void on_exited(std::uint64_t now_ms, std::string_view name, std::uint64_t id, bool normal,
                 std::string how);
  void on_timer(std::uint64_t now_ms);

  // --- Outputs ---
  // The earliest backoff restart or periodic reconciliation.
  std::uint64_t next_deadline() const;
  void take_effects(std::vector<SupervisorEffect>& out);

  // --- Reads ---
  std::vector<ChildInfo> children() const;
  std::optional<ChildSpec> spec(std::string_view name) const;
  // Every child spec, by name (cheaper than children(): no placement).
  const std::map<std::string, ChildSpec, std::less<>>& specs() const { return specs_; }
  std::size_t spec_count() const { return specs_.size(); }
  std::optional<std::string> checkpoint_of(std::string_view name) const;
  bool failed(std::string_view name) const;
  // Why a failed child was marked failed (the node's words), if it is.
  std::optional<std::string> failure(std::string_view name) const;
  // Why no member in the placement view may run `name` by its exec policy (exec_policy.h), if
  // that is so (not: a constraint no member satisfies). `ps` shows such a child failed with this
  // reason while it lasts; a member that allows it, joining, starts it.
  std::optional<std::string> refused(std::string_view name) const;
  const std::map<std::string, LocalChild, std::less<>>& local() const { return local_; }
  const SupervisorStats& stats() const { return stats_; }
  const std::string& self() const { return self_; }
  Mode mode() const { return config_.mode; }
  // ap: always; quorum: the view is a strict majority of the expected size.
  bool has_quorum() const;
  // quorum: the minority lasted fence_after_ms; every child here is stopped.
  bool fenced(std::uint64_t now_ms) const;

 private:
  registry::Pid pid_of(const LocalChild& child) const { return {self_, creation_, child.id}; }
  void reconcile_all(std::uint64_t now_ms);
  void reconcile(std::uint64_t now_ms, const std::string& name);
  void start(std::uint64_t now_ms, const ChildSpec& spec, LocalChild& child);
  void stop(std::uint64_t now_ms, const std::string& name, LocalChild& child, StopReason reason,
            bool handover = false);
  // Whether a new copy of `name` may take up its state: no copy on a live member (another life
  // than this node's) holds the name, and, for a state handoff, the map has every batch of each
  // live member up to the latest it has joined (an old copy's release never overtook its final
  // checkpoint).
  bool handed_over(const std::string& name, const ChildSpec& spec) const;
  void claim(std::uint64_t now_ms, const std::string& name, LocalChild& child);
  void mark_failed(std::uint64_t now_ms, const std::string& name, const std::string& why);
  // quorum: may a copy of `name` start here now? (Sets wake_at_ when it must wait for a lease.)
  bool may_start(std::uint64_t now_ms, const std::string& name, const ChildSpec& spec);
  void wake_at(std::uint64_t at) { wake_at_ = std::min(wake_at_, at); }
  // The view placement uses: the live members that are not draining; and the owners in it.
  void rebuild_placement_view();
  // Brings owners_ from placement over `before` to placement over placement_view_. Rendezvous
  // hashing moves only the children of members that went (placed again) and those a member that
  // came outscores (one score per newcomer), so a failover costs O(children), not
  // O(children x members); a member whose tags changed places everything again.
  void update_owners(const View& before);
  // Keeps mine_ (the children owners_ places here) in step with owners_.
  void note_mine(const std::string& name, bool mine);
  // The owner of `name` in placement_view_ (cached).
  std::optional<std::string> owner_of(std::string_view name) const;
  // `view` without the members marked draining.
  View placement_of(const View& view) const;

  cluster::Replicator& replicator_;
  registry::Registry& registry_;
  const std::string self_;
  const std::uint64_t creation_;
  const SupervisorConfig config_;
  View view_;                         // live members
  View placement_view_;               // live members that are not draining
  std::set<cluster::Life> draining_;  // lives marked draining in the map
  bool draining_self_ = false;
  std::map<std::string, ChildSpec, std::less<>> specs_;  // decoded from the map
  // place(spec, placement_view_) for every spec: the same keys as specs_.
  std::map<std::string, std::optional<std::string>, std::less<>> owners_;
  std::set<std::string, std::less<>> mine_;  // the children owners_ places on this node
  // The children that may have a failed/ key: every one the map has told of (on_change) or this
  // node marked. failed() looks in the map only for these: the reconciliation asks for every
  // child it holds, and almost none is failed.
  std::set<std::string, std::less<>> maybe_failed_;
  std::map<std::string, LocalChild, std::less<>> local_;
  // Children of local_ that entered backoff (some may have left it since: pruned by on_timer).
  std::set<std::string, std::less<>> backoff_;
  std::uint64_t next_id_ = 0;
  std::uint64_t next_reconcile_ = 0;
  // The periodic sweep's place: the last child it reconciled (empty: start from the first).
  std::string sweep_after_;
  void sweep(std::uint64_t now_ms);
  std::uint64_t wake_at_ = UINT64_MAX;  // a quorum lease, the fence or a handoff wait ends
  // quorum: members that left the view, not drained, and when; their children wait for the lease.
  struct Gone {
    MemberInfo info;
    std::uint64_t at_ms;
  };
  std::map<std::string, Gone, std::less<>> gone_;
  std::optional<std::uint64_t> minority_since_;
  std::uint64_t hold_until_ = 0;  // quorum: no start before (a majority regained; see set_members)
  std::vector<SupervisorEffect> effects_;
  SupervisorStats stats_;
};

}  // namespace shoal::supervisor
