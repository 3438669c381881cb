#pragma once

// Registry: global names and groups of pids over the replicated map, like Erlang's :global and
// pg, or Horde.Registry. Local and non-blocking (AP): reads answer from the local replica, writes
// are deltas that replication spreads (eagerly, then by anti-entropy).
//
// Key spaces of the shared map (values: msgpack [node, creation, id, meta]):
//   "n/" + name                       a unique name
//   "g/" + group + "\0" + pid text    one member of a group
//   "p/" + node + "\0" + creation    a life presumed dead, whose entries were purged (below)
//
// Dead members. set_members() hands down membership's live view (node name -> creation). A read
// never returns a pid whose node is not in it, or whose creation is not the live one (a pid from
// before a restart), even before the entries are removed. purge() removes such entries as one
// delta per dead owner; which live node does it is decided by rendezvous hashing over the view, so
// normally exactly one does (and if views disagree, two do, harmlessly). Only owners known to be
// dead are purged: an older life of a live node, a life that left, or a life this node saw alive
// that has left its view. A node that has just started has met nobody yet; it purges nothing of
// its peers (else a rolling restart would have each restarted node wipe the others' live names).
//
// Presumed dead. A life that left the view without leaving (declared failed) may be alive on the
// far side of a partition. Its entries are purged all the same (its names stop answering on this
// side, as :global's do), and the purger marks the life: "p/" + node + "\0" + creation. When that
// life returns it finds its marker and puts again every name and group membership it registered
// and still holds (not removed here since, nor taken by a later claim of another pid), then
// removes the marker. Each put is a version the purge did not see, so it survives the purge's
// removal whichever reaches a node first (the map is add-wins). A name another pid claimed later
// during the split is not put again; one it claimed earlier is: when a partition heals, the two
// sides' versions meet before their views do, and each side may purge the other's (even, for a
// moment, its own side's, when a merged view says they died), so an older claim can be all that
// is left; the latest claim must still win, as in any conflict. Names the
// supervisor claims for its children are not kept here: the supervisor claims them itself. One
// limit: a name this node holds that another node unregistered (Registry::unregister() on a name
// it does not hold; the agent refuses that) comes back if this life is later presumed dead and
// returns. Markers of a life gone for certain (it restarted, or left) are removed by the node
// responsible for it, and so are markers older than RegistryLimits::presumed_dead_keep_ms.
//
// Conflicts. Concurrent registrations of one name (in a partition, say) converge on the same winner
// everywhere (the map's LWW order: hybrid logical clock, then replica id). When a change leaves
// more than one version of a name, a conflict event names the winner and each losing pid, so
// whoever owns a loser can stop it; the losing versions stay until a later write replaces them.
//
// Loop-bound, like the replicator it writes to; not thread-safe.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/life.h"
#include "cluster/replicator.h"
#include "registry/pid.h"

namespace shoal::registry {

struct RegistryLimits {
  std::size_t max_name_bytes = 255;
  std::size_t max_meta_bytes = 1024;
  // Most names and group memberships held by pids of this node.
  std::size_t max_entries_per_node = 1'000'000;
  // How long the entries of a life declared failed can come back if it returns (a partition
  // heals): its markers are removed after this. 24 h, like Serf's reconnect timeout.
  std::uint64_t presumed_dead_keep_ms = 24ULL * 3600 * 1000;
};

enum class RegisterErrc { already_registered, bad_name, meta_too_large, too_many_entries };

struct RegisterError {
  RegisterErrc code;
  std::optional<Pid> holder;  // for already_registered
  std::string message;        // one line, for people
};

struct Registration {
  Pid pid;
  std::string meta;
};

enum class RegistryEventKind { registered, unregistered, moved, conflict };
const char* event_name(RegistryEventKind kind);

struct RegistryEvent {
  RegistryEventKind kind;
  std::string name;             // the name (unique names only)
  std::optional<Pid> pid;       // the holder after the change (the winner, for conflicts)
  std::optional<Pid> previous;  // the holder before
  std::vector<Pid> losers;      // conflict: the other registrations of the name
};

class Registry {
 public:
  // `self_node` is this node's name: its pids count against max_entries_per_node.
  Registry(cluster::Replicator& replicator, std::string self_node, RegistryLimits limits = {});

  // --- Names ---
  // Registers `name` for `pid`. Fails with already_registered (and the holder) if a live pid
  // holds it; registering the same pid again updates its meta.
  std::expected<void, RegisterError> register_name(std::uint64_t now_ms, std::string_view name,
                                                   const Pid& pid, std::string_view meta = {});
  // Takes `name` for `pid` whoever holds it (the supervisor, for a child it owns): the latest
  // claim wins everywhere, and the previous holder's node hears "moved" (or "conflict", when the
  // claims were concurrent). Returns the live pid it took the name from, if any.
  std::expected<std::optional<Pid>, RegisterError> claim(std::uint64_t now_ms,
                                                         std::string_view name, const Pid& pid,
                                                         std::string_view meta = {});
  // Removes `name`. Returns false if it was not registered.
  bool unregister(std::uint64_t now_ms, std::string_view name);
  // Removes the versions of `name` that `pid` put (live or not: a pid whose process ended lets go
  // of its name), whether or not they win; a concurrent claim of another pid stays and holds the
  // name. Returns whether there was one.
  bool release(std::uint64_t now_ms, std::string_view name, const Pid& pid);
  std::optional<Registration> whereis(std::string_view name) const;
  // Live registrations whose name starts with `prefix`, in name order, at most `limit`.
  std::vector<std::pair<std::string, Registration>> names(std::string_view prefix,
                                                          std::size_t limit) const;

  // --- Groups ---
  std::expected<void, RegisterError> join(std::uint64_t now_ms, std::string_view group,
                                          const Pid& pid, std::string_view meta = {});
  bool leave(std::uint64_t now_ms, std::string_view group, const Pid& pid);
  std::vector<Registration> members(std::string_view group) const;
  // The groups with at least one live member, in name order.
  std::vector<std::string> groups() const;

  // --- Membership and maintenance ---
  using Life = cluster::Life;
  // The live members: node name -> creation (this node included), and the lives that left the
  // cluster on purpose (status left: gone for certain, unlike failed ones).
  void set_members(std::map<std::string, std::uint64_t, std::less<>> live,
                   std::set<Life> departed = {});
  // Removes the entries of dead owners this node is responsible for, and markers no longer
  // needed; puts back this life's entries that a peer purged. Returns entries removed.
  std::size_t purge(std::uint64_t now_ms);

  // Turns a change of the map into registry events (appended to `out`, and handed to matching
  // watchers). Feed every ReplicaChange of the node, local and remote. A marker for this life
  // (see "Presumed dead") is acted on here, at `now_ms`.
  void on_change(std::uint64_t now_ms, const cluster::ReplicaChange& change,
                 std::vector<RegistryEvent>& out);

  // --- Watches ---
  using WatchId = std::uint64_t;
  using WatchFn = std::function<void(const RegistryEvent&)>;
  // Calls `fn` (on the loop, from on_change) for every event of a name starting with `prefix`
  // (a whole name watches that name, and names it prefixes). Returns an id for unwatch().
  WatchId watch(std::string prefix, WatchFn fn);
  // Returns false if `id` was not watching.
  bool unwatch(WatchId id);

  // Entries (names and group memberships) whose winning pid belongs to this node.
  std::size_t own_entries() const { return own_entries_; }
  // Entries this life put back after a peer purged them (see "Presumed dead").
  std::uint64_t restored() const { return restored_; }

 private:
  bool live(const Pid& pid) const;
  // A pid of this node's current life (any of this node's, before the first set_members()).
  bool own(const Pid& pid) const;
  // The life is gone for certain: an older life of a live node, or one that left.
  bool certainly_dead(const Life& life) const;
  // Puts again what this life holds (a peer presumed it dead and purged it), and removes the
  // marker that said so.
  void restore(std::uint64_t now_ms);
  void note_put(std::string_view key, const Pid& pid, std::string value);
  // The events one change of the map means (appended to `out`).
  void classify(const cluster::ReplicaChange& change, std::vector<RegistryEvent>& out);
  std::optional<RegisterError> check(std::string_view name, std::string_view meta) const;

  cluster::Replicator& replicator_;
  const std::string self_;
  const RegistryLimits limits_;
  std::map<std::string, std::uint64_t, std::less<>> live_;
  std::set<Life> seen_;      // node lives ever in the live view
  std::set<Life> departed_;  // lives that left on purpose
  // Names and memberships this life registered and has not removed or seen taken by a later
  // claim of another pid: what it puts again when a peer presumed it dead.
  struct Held {
    std::string value;
    crdt::Timestamp ts;  // of the version this node put last
  };
  std::map<std::string, Held, std::less<>> held_;
  std::size_t own_entries_ = 0;
  // The lives that hold entries (names and group memberships: the winning versions), with how
  // many: purge() finds the dead holders here instead of decoding every entry.
  std::map<Life, std::size_t> holders_;
  void count_holder(const std::optional<Registration>& reg, int delta);
  std::uint64_t restored_ = 0;
  struct Watch {
    std::string prefix;
    WatchFn fn;
  };
  std::map<WatchId, Watch> watches_;
  WatchId next_watch_ = 1;
};

// The value format of registry entries, exposed for tests and tools.
std::string encode_registration(const Registration& r);
std::optional<Registration> decode_registration(std::string_view bytes);

}  // namespace shoal::registry
