#include "registry/registry.h"

#include "cluster/key_spaces.h"
#include "crdt/hash.h"
#include "crdt/msgpack_reader.h"
#include "crdt/msgpack_writer.h"

namespace shoal::registry {

namespace {

constexpr std::string_view kNames = cluster::keys::kName;
constexpr std::string_view kGroups = cluster::keys::kGroup;
constexpr std::string_view kMarkers = cluster::keys::kPresumedDead;

std::string name_key(std::string_view name) {
  return std::string(kNames) + std::string(name);
}

std::string group_prefix(std::string_view group) {
  std::string key(kGroups);
  key += group;
  key += '\0';
  return key;
}

bool registry_key(std::string_view key) {
  return key.starts_with(kNames) || key.starts_with(kGroups);
}

// "p/" + node + "\0" + creation: the marker of one life presumed dead.
std::string marker_key(std::string_view node, std::uint64_t creation) {
  std::string key(kMarkers);
  key += node;
  key += '\0';
  key += std::to_string(creation);
  return key;
}

std::optional<cluster::Life> parse_marker(std::string_view key) {
  if (!key.starts_with(kMarkers)) return std::nullopt;
  key.remove_prefix(kMarkers.size());
  const std::size_t a = key.find('\0');
  if (a == std::string_view::npos || a == 0 || key.size() - a - 1 > 20 || a + 1 == key.size())
    return std::nullopt;
  std::uint64_t creation = 0;
  for (char c : key.substr(a + 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    creation = creation * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return cluster::Life{std::string(key.substr(0, a)), creation};
}

}  // namespace

const char* event_name(RegistryEventKind kind) {
  switch (kind) {
    case RegistryEventKind::registered:
      return "registered";
    case RegistryEventKind::unregistered:
      return "unregistered";
    case RegistryEventKind::moved:
      return "moved";
    case RegistryEventKind::conflict:
      return "conflict";
  }
  return "unknown";
}

std::string encode_registration(const Registration& r) {
  std::string out;
  crdt::MsgWriter pk(out);
  pk.array(4);
  pk.str(r.pid.node);
  pk.uint(r.pid.creation);
  pk.uint(r.pid.id);
  pk.bin(r.meta);
  return out;
}

std::optional<Registration> decode_registration(std::string_view bytes) {
  crdt::MsgReader r(bytes);
  r.array_of("registration", 4);
  Registration out;
  out.pid.node = std::string(r.bytes("node", 255));
  out.pid.creation = r.uint("creation");
  out.pid.id = r.uint("id");
  out.meta = std::string(r.bytes("meta", 1 << 20));
  if (!r.ok() || r.remaining() != 0 || out.pid.node.empty()) return std::nullopt;
  return out;
}

Registry::Registry(cluster::Replicator& replicator, std::string self_node, RegistryLimits limits)
    : replicator_(replicator), self_(std::move(self_node)), limits_(limits) {
  // Entries already in the map (from disk); later ones are counted as they change.
  auto visit = [&](std::string_view, const crdt::VersionView& v) {
    count_holder(decode_registration(v.value), 1);
    return true;
  };
  replicator_.state().scan(kNames, visit);
  replicator_.state().scan(kGroups, visit);
}

void Registry::count_holder(const std::optional<Registration>& reg, int delta) {
  if (!reg) return;
  const Life life{reg->pid.node, reg->pid.creation};
  if (delta > 0) {
    ++holders_[life];
    return;
  }
  auto it = holders_.find(life);
  if (it != holders_.end() && --it->second == 0) holders_.erase(it);
}

bool Registry::certainly_dead(const Life& life) const {
  auto it = live_.find(life.name);
  return (it != live_.end() && it->second > life.creation) || departed_.contains(life);
}

bool Registry::live(const Pid& pid) const {
  auto it = live_.find(pid.node);
  return it != live_.end() && it->second == pid.creation;
}

bool Registry::own(const Pid& pid) const {
  if (pid.node != self_) return false;
  auto it = live_.find(self_);
  return it == live_.end() || it->second == pid.creation;
}

void Registry::note_put(std::string_view key, const Pid& pid, std::string value) {
  if (!own(pid)) return;
  if (held_.size() >= limits_.max_entries_per_node) {
    // Entries another node removed stay here (a purge and an unregister from elsewhere look
    // alike); at the limit, those the map no longer has go.
    std::erase_if(held_, [&](const auto& entry) { return !replicator_.state().get(entry.first); });
  }
  auto put = replicator_.state().get(key);  // the version just put: the winner
  held_.insert_or_assign(std::string(key), Held{std::move(value), put ? put->ts : 0});
}

std::optional<RegisterError> Registry::check(std::string_view name, std::string_view meta) const {
  if (name.empty() || name.size() > limits_.max_name_bytes) {
    return RegisterError{RegisterErrc::bad_name, std::nullopt,
                         "a name is 1 to " + std::to_string(limits_.max_name_bytes) + " bytes"};
  }
  if (meta.size() > limits_.max_meta_bytes) {
    return RegisterError{RegisterErrc::meta_too_large, std::nullopt,
                         "meta is at most " + std::to_string(limits_.max_meta_bytes) + " bytes"};
  }
  if (own_entries_ >= limits_.max_entries_per_node) {
    return RegisterError{RegisterErrc::too_many_entries, std::nullopt,
                         "this node holds " + std::to_string(own_entries_) + " entries, the limit"};
  }
  return std::nullopt;
}

std::expected<void, RegisterError> Registry::register_name(std::uint64_t now_ms,
                                                           std::string_view name, const Pid& pid,
                                                           std::string_view meta) {
  if (auto bad = check(name, meta)) return std::unexpected(*bad);
  if (auto holder = whereis(name); holder && holder->pid != pid) {
    return std::unexpected(
        RegisterError{RegisterErrc::already_registered, holder->pid,
                      std::string(name) + " is held by " + holder->pid.to_string()});
  }
  const std::string key = name_key(name);
  std::string value = encode_registration(Registration{pid, std::string(meta)});
  replicator_.put(now_ms, key, value);
  note_put(key, pid, std::move(value));
  return {};
}

std::expected<std::optional<Pid>, RegisterError> Registry::claim(std::uint64_t now_ms,
                                                                 std::string_view name,
                                                                 const Pid& pid,
                                                                 std::string_view meta) {
  if (auto bad = check(name, meta)) return std::unexpected(*bad);
  std::optional<Pid> previous;
  if (auto holder = whereis(name); holder && holder->pid != pid) previous = holder->pid;
  const std::string key = name_key(name);
  held_.erase(key);  // the claimant (the supervisor) keeps the name itself
  replicator_.put(now_ms, key, encode_registration(Registration{pid, std::string(meta)}));
  return previous;
}

bool Registry::unregister(std::uint64_t now_ms, std::string_view name) {
  const std::string key = name_key(name);
  held_.erase(key);
  return replicator_.remove(now_ms, key);
}

bool Registry::release(std::uint64_t now_ms, std::string_view name, const Pid& pid) {
  const std::string key = name_key(name);
  const auto put_by_pid = [&](std::string_view, const crdt::VersionView& v) {
    auto reg = decode_registration(v.value);
    return reg && reg->pid == pid;
  };
  if (!replicator_.remove_if(now_ms, key, put_by_pid)) return false;
  if (auto mine = held_.find(key); mine != held_.end()) {
    auto reg = decode_registration(mine->second.value);
    if (reg && reg->pid == pid) held_.erase(mine);
  }
  return true;
}

std::optional<Registration> Registry::whereis(std::string_view name) const {
  auto v = replicator_.state().get(name_key(name));
  if (!v) return std::nullopt;
  auto reg = decode_registration(v->value);
  if (!reg || !live(reg->pid)) return std::nullopt;
  return reg;
}

std::vector<std::pair<std::string, Registration>> Registry::names(std::string_view prefix,
                                                                  std::size_t limit) const {
  std::vector<std::pair<std::string, Registration>> out;
  replicator_.state().scan(name_key(prefix), [&](std::string_view key, const crdt::VersionView& v) {
    auto reg = decode_registration(v.value);
    if (reg && live(reg->pid))
      out.emplace_back(std::string(key.substr(kNames.size())), std::move(*reg));
    return out.size() < limit;
  });
  return out;
}

std::expected<void, RegisterError> Registry::join(std::uint64_t now_ms, std::string_view group,
                                                  const Pid& pid, std::string_view meta) {
  if (auto bad = check(group, meta)) return std::unexpected(*bad);
  const std::string key = group_prefix(group) + pid.to_string();
  std::string value = encode_registration(Registration{pid, std::string(meta)});
  replicator_.put(now_ms, key, value);
  note_put(key, pid, std::move(value));
  return {};
}

bool Registry::leave(std::uint64_t now_ms, std::string_view group, const Pid& pid) {
  const std::string key = group_prefix(group) + pid.to_string();
  held_.erase(key);
  return replicator_.remove(now_ms, key);
}

std::vector<Registration> Registry::members(std::string_view group) const {
  std::vector<Registration> out;
  replicator_.state().scan(group_prefix(group), [&](std::string_view, const crdt::VersionView& v) {
    auto reg = decode_registration(v.value);
    if (reg && live(reg->pid)) out.push_back(std::move(*reg));
    return true;
  });
  return out;
}

std::vector<std::string> Registry::groups() const {
  std::vector<std::string> out;
  replicator_.state().scan(kGroups, [&](std::string_view key, const crdt::VersionView& v) {
    const std::string_view rest = key.substr(kGroups.size());
    const std::string_view group = rest.substr(0, rest.find('\0'));
    auto reg = decode_registration(v.value);
    if (reg && live(reg->pid) && (out.empty() || out.back() != group)) out.emplace_back(group);
    return true;
  });
  return out;
}

void Registry::set_members(std::map<std::string, std::uint64_t, std::less<>> live,
                           std::set<Life> departed) {
  live_ = std::move(live);
  for (const auto& [node, creation] : live_)
    seen_.emplace(node, creation);
  departed_ = std::move(departed);
}

std::size_t Registry::purge(std::uint64_t now_ms) {
  // Lives whose entries are not live (certain: removed; presumed: removed, and marked), and
  // lives whose markers are no longer needed; for each, whether this node is the one to act.
  enum class Fate { certain, presumed, unmark };
  std::map<std::pair<Life, Fate>, bool> todo;
  for (const auto& [life, count] : holders_) {
    if (live(Pid{life.name, life.creation, 0})) continue;
    if (certainly_dead(life)) {
      todo.emplace(std::pair{life, Fate::certain}, false);
    } else if (seen_.contains(life)) {
      todo.emplace(std::pair{life, Fate::presumed}, false);
    }
  }
  bool marked_self = false;
  replicator_.state().scan(kMarkers, [&](std::string_view key, const crdt::VersionView& v) {
    auto life = parse_marker(key);
    if (!life) return true;
    if (live(Pid{life->name, life->creation, 0})) {
      marked_self |= life->name == self_;  // the owner acts on its marker; others wait
    } else if (certainly_dead(*life) ||
               crdt::physical_ms(v.ts) + limits_.presumed_dead_keep_ms < now_ms) {
      todo.emplace(std::pair{std::move(*life), Fate::unmark}, false);
    }
    return true;
  });
  // Normally acted on as it arrives, in on_change().
  if (marked_self) restore(now_ms);

  // Lives that are gone and hold nothing more need not be remembered (bounded by churn).
  std::erase_if(seen_, [&](const Life& life) {
    auto it = live_.find(life.name);
    return (it == live_.end() || it->second != life.creation) &&
           !todo.contains({life, Fate::presumed}) && !todo.contains({life, Fate::certain});
  });
  for (auto& [what, responsible] : todo) {
    const std::string id = what.first.key();
    std::uint64_t best = 0;
    std::string chosen;
    for (const auto& [node, creation] : live_) {
      const std::uint64_t h = crdt::rendezvous(id, node);
      if (chosen.empty() || h > best) {
        best = h;
        chosen = node;
      }
    }
    responsible = chosen == self_;
  }
  std::size_t removed = 0;
  for (const auto& [what, responsible] : todo) {
    if (!responsible) continue;
    const auto& [life, fate] = what;
    if (fate == Fate::unmark) {
      replicator_.remove(now_ms, marker_key(life.name, life.creation));
      continue;
    }
    removed +=
        replicator_.remove_where(now_ms, [&](std::string_view key, const crdt::VersionView& v) {
          if (!registry_key(key)) return false;
          auto reg = decode_registration(v.value);
          return reg && reg->pid.node == life.name && reg->pid.creation == life.creation;
        });
    if (fate == Fate::presumed) replicator_.put(now_ms, marker_key(life.name, life.creation), {});
  }
  return removed;
}

void Registry::restore(std::uint64_t now_ms) {
  for (auto it = held_.begin(); it != held_.end();) {
    auto current = replicator_.state().get(it->first);
    std::optional<Registration> holder =
        current ? decode_registration(current->value) : std::nullopt;
    // Claimed after ours during the split: that claim took the name, as a later claim does
    // outside a split, even if this node does not yet see its holder alive (views merge after
    // the versions meet); putting ours again would replace it here.
    if (holder && !own(holder->pid) && current->ts > it->second.ts) {
      it = held_.erase(it);
      continue;
    }
    // Ours, gone (the purge's removal came first), or an older claim that won only because ours
    // was purged: put it again, as a version the purge did not see, stamped with our claim's own
    // time. A fresh stamp would make it newer than a later claim made on the far side of the
    // split that has not reached this node yet, and it would win the conflict there.
    replicator_.put_at(now_ms, it->second.ts, it->first, it->second.value);
    ++restored_;
    ++it;
  }
  auto self = live_.find(self_);
  if (self != live_.end()) replicator_.remove(now_ms, marker_key(self_, self->second));
}

Registry::WatchId Registry::watch(std::string prefix, WatchFn fn) {
  const WatchId id = next_watch_++;
  watches_.emplace(id, Watch{std::move(prefix), std::move(fn)});
  return id;
}

bool Registry::unwatch(WatchId id) {
  return watches_.erase(id) > 0;
}

void Registry::on_change(std::uint64_t now_ms, const cluster::ReplicaChange& change,
                         std::vector<RegistryEvent>& out) {
  if (change.key.starts_with(kMarkers)) {
    auto self = live_.find(self_);
    if (change.after && self != live_.end() && change.key == marker_key(self_, self->second))
      restore(now_ms);
    return;
  }
  const std::size_t first = out.size();
  classify(change, out);
  if (watches_.empty()) return;
  for (std::size_t i = first; i < out.size(); ++i) {
    for (const auto& [id, w] : watches_) {
      if (std::string_view(out[i].name).starts_with(w.prefix)) w.fn(out[i]);
    }
  }
}

void Registry::classify(const cluster::ReplicaChange& change, std::vector<RegistryEvent>& out) {
  // Other layers keep their own key spaces in the map (child specs, checkpoints).
  if (!registry_key(change.key)) return;
  std::optional<Registration> before;
  std::optional<Registration> after;
  if (change.before) before = decode_registration(*change.before);
  if (change.after) after = decode_registration(*change.after);
  count_holder(before, -1);
  count_holder(after, 1);
  const bool own_before = before && before->pid.node == self_;
  const bool own_after = after && after->pid.node == self_;
  if (own_before && own_after == false && own_entries_ > 0) --own_entries_;
  if (own_after && !own_before) ++own_entries_;
  // Taken by another live pid with a later claim (moved, or won a conflict): no longer ours to put
  // back. An older version that wins only because ours was purged takes nothing: after a
  // partition, both sides' versions meet before the views do, and each side may purge the other's
  // (or, for a moment, its own side's owners', when a merged view says they died); the owners put
  // theirs back (restore()) and the latest claim wins, as in any conflict.
  if (after && !own(after->pid) && live(after->pid)) {
    auto mine = held_.find(change.key);
    auto winner = replicator_.state().get(change.key);
    if (mine != held_.end() && winner && winner->ts > mine->second.ts) held_.erase(mine);
  }

  if (!change.key.starts_with(kNames)) return;
  const std::string name = change.key.substr(kNames.size());
  const std::optional<Pid> was = before ? std::optional<Pid>(before->pid) : std::nullopt;
  const std::optional<Pid> now = after ? std::optional<Pid>(after->pid) : std::nullopt;
  if (change.versions > 1 && now) {
    RegistryEvent e{RegistryEventKind::conflict, name, now, was, {}};
    replicator_.state().versions(change.key, [&](const crdt::VersionView& v) {
      auto reg = decode_registration(v.value);
      if (reg && reg->pid != *now) e.losers.push_back(reg->pid);
    });
    out.push_back(std::move(e));
    return;
  }
  if (!was && now) {
    out.push_back(RegistryEvent{RegistryEventKind::registered, name, now, std::nullopt, {}});
  } else if (was && !now) {
    out.push_back(RegistryEvent{RegistryEventKind::unregistered, name, std::nullopt, was, {}});
  } else if (was && now && *was != *now) {
    out.push_back(RegistryEvent{RegistryEventKind::moved, name, now, was, {}});
  }
}

}  // namespace shoal::registry
