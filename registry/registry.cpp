#include "registry/registry.h"

#include <msgpack.hpp>

#include "crdt/msgpack_reader.h"

namespace shoal::registry {

namespace {

constexpr std::string_view kNames = "n/";
constexpr std::string_view kGroups = "g/";

struct Sink {
  std::string& out;
  void write(const char* data, std::size_t size) { out.append(data, size); }
};

std::string name_key(std::string_view name) {
  return std::string(kNames) + std::string(name);
}

std::string group_prefix(std::string_view group) {
  std::string key(kGroups);
  key += group;
  key += '\0';
  return key;
}

std::uint64_t mix(std::string_view a, std::string_view b) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : a)
    h = (h ^ c) * 1099511628211ULL;
  h = (h ^ 0xff) * 1099511628211ULL;
  for (unsigned char c : b)
    h = (h ^ c) * 1099511628211ULL;
  return h ^ (h >> 31);
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
  Sink sink{out};
  msgpack::packer<Sink> pk(sink);
  pk.pack_array(4);
  pk.pack_str(static_cast<std::uint32_t>(r.pid.node.size()));
  pk.pack_str_body(r.pid.node.data(), static_cast<std::uint32_t>(r.pid.node.size()));
  pk.pack_uint64(r.pid.creation);
  pk.pack_uint64(r.pid.id);
  pk.pack_bin(static_cast<std::uint32_t>(r.meta.size()));
  pk.pack_bin_body(r.meta.data(), static_cast<std::uint32_t>(r.meta.size()));
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
    : replicator_(replicator), self_(std::move(self_node)), limits_(limits) {}

bool Registry::known_dead(const Pid& pid) const {
  // An older life of a live node is dead for certain; so is a life this node saw in its view
  // that is gone from it. A life it never saw may be alive and not met yet: a node that just
  // started (its map restored from disk, or filled by a peer) must not purge what its peers hold.
  auto it = live_.find(pid.node);
  if (it != live_.end() && it->second > pid.creation) return true;
  return seen_.contains(std::pair<std::string, std::uint64_t>{pid.node, pid.creation});
}

bool Registry::live(const Pid& pid) const {
  auto it = live_.find(pid.node);
  return it != live_.end() && it->second == pid.creation;
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
  replicator_.put(now_ms, name_key(name),
                  encode_registration(Registration{pid, std::string(meta)}));
  return {};
}

std::expected<std::optional<Pid>, RegisterError> Registry::claim(std::uint64_t now_ms,
                                                                 std::string_view name,
                                                                 const Pid& pid,
                                                                 std::string_view meta) {
  if (auto bad = check(name, meta)) return std::unexpected(*bad);
  std::optional<Pid> previous;
  if (auto holder = whereis(name); holder && holder->pid != pid) previous = holder->pid;
  replicator_.put(now_ms, name_key(name),
                  encode_registration(Registration{pid, std::string(meta)}));
  return previous;
}

bool Registry::unregister(std::uint64_t now_ms, std::string_view name) {
  return replicator_.remove(now_ms, name_key(name));
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
  replicator_.put(now_ms, group_prefix(group) + pid.to_string(),
                  encode_registration(Registration{pid, std::string(meta)}));
  return {};
}

bool Registry::leave(std::uint64_t now_ms, std::string_view group, const Pid& pid) {
  return replicator_.remove(now_ms, group_prefix(group) + pid.to_string());
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

void Registry::set_members(std::map<std::string, std::uint64_t, std::less<>> live) {
  live_ = std::move(live);
  for (const auto& [node, creation] : live_)
    seen_.emplace(node, creation);
}

std::size_t Registry::purge(std::uint64_t now_ms) {
  // Owners (node#creation) of entries whose pid is not live, and whether this node cleans up
  // after each: the live member with the highest rendezvous hash does.
  std::map<std::pair<std::string, std::uint64_t>, bool> dead;
  auto visit = [&](std::string_view, const crdt::VersionView& v) {
    auto reg = decode_registration(v.value);
    if (reg && !live(reg->pid) && known_dead(reg->pid))
      dead.emplace(std::pair{reg->pid.node, reg->pid.creation}, false);
    return true;
  };
  replicator_.state().scan(kNames, visit);
  replicator_.state().scan(kGroups, visit);
  // Lives that are gone and hold nothing more need not be remembered (bounded by churn).
  std::erase_if(seen_, [&](const std::pair<std::string, std::uint64_t>& life) {
    auto it = live_.find(life.first);
    return (it == live_.end() || it->second != life.second) && !dead.contains(life);
  });
  for (auto& [owner, mine] : dead) {
    const std::string id = owner.first + "#" + std::to_string(owner.second);
    std::uint64_t best = 0;
    std::string chosen;
    for (const auto& [node, creation] : live_) {
      const std::uint64_t h = mix(id, node);
      if (chosen.empty() || h > best) {
        best = h;
        chosen = node;
      }
    }
    mine = chosen == self_;
  }
  std::size_t removed = 0;
  for (const auto& [owner, mine] : dead) {
    if (!mine) continue;
    removed +=
        replicator_.remove_where(now_ms, [&](std::string_view key, const crdt::VersionView& v) {
          if (!key.starts_with(kNames) && !key.starts_with(kGroups)) return false;
          auto reg = decode_registration(v.value);
          return reg && reg->pid.node == owner.first && reg->pid.creation == owner.second;
        });
  }
  return removed;
}

Registry::WatchId Registry::watch(std::string prefix, WatchFn fn) {
  const WatchId id = next_watch_++;
  watches_.emplace(id, Watch{std::move(prefix), std::move(fn)});
  return id;
}

bool Registry::unwatch(WatchId id) {
  return watches_.erase(id) > 0;
}

void Registry::on_change(const cluster::ReplicaChange& change, std::vector<RegistryEvent>& out) {
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
  if (!change.key.starts_with(kNames) && !change.key.starts_with(kGroups)) return;
  std::optional<Registration> before;
  std::optional<Registration> after;
  if (change.before) before = decode_registration(*change.before);
  if (change.after) after = decode_registration(*change.after);
  const bool own_before = before && before->pid.node == self_;
  const bool own_after = after && after->pid.node == self_;
  if (own_before && own_after == false && own_entries_ > 0) --own_entries_;
  if (own_after && !own_before) ++own_entries_;

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
