// Key rotation across the cluster (`shoal keys`), as Serf does it: install the new key
// everywhere, make it primary everywhere, then remove the old one; no moment in which two members
// cannot read each other.
//
// An operation given to one agent is applied there, then broadcast to the others as a user
// message (sealed with the cluster keys like every packet, so only members can send one), which
// apply it too. Every agent publishes the fingerprints of its keys in the replicated map
// ("K/" + node: {"primary": fp, "keys": [fp...]}), so `keys list` counts, for each key, the live
// members that hold it and that seal with it, and the CLI can wait until all members agree. With
// --key-file the agent rewrites that file after each change (atomically, mode 0600), so a restart
// keeps the rotated keys.

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "bin/agent_state.h"
#include "cluster/key_spaces.h"

namespace shoal::bin {

namespace {

using rpc::Value;

constexpr std::string_view kKeysSpace = cluster::keys::kKeyring;

std::expected<void, std::string> persist(const Agent& a, const cluster::Keyring& ring) {
  if (a.config.key_file.empty()) return {};
  const std::string tmp = a.config.key_file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return std::unexpected("cannot write " + tmp);
    out << "# shoal cluster keys, rewritten by the agent after `shoal keys` (first: primary)\n";
    for (const cluster::Key& k : ring.keys())
      out << cluster::Keyring::to_hex(k) << "\n";
    if (!out.flush()) return std::unexpected("cannot write " + tmp);
  }
  ::chmod(tmp.c_str(), 0600);
  std::error_code ec;
  std::filesystem::rename(tmp, a.config.key_file, ec);
  if (ec) return std::unexpected("cannot replace " + a.config.key_file + ": " + ec.message());
  return {};
}

}  // namespace

void publish_keys(Agent& a) {
  const cluster::Keyring& ring = a.node.driver->keyring();
  if (!ring.enabled()) return;
  Value v = Value::map();
  v.set("primary", cluster::Keyring::fingerprint(ring.keys().front()));
  Value all = Value::array();
  for (const cluster::Key& k : ring.keys())
    all.push(cluster::Keyring::fingerprint(k));
  v.set("keys", std::move(all));
  a.stack().replicator()->put(a.now(), std::string(kKeysSpace) + a.membership().name(),
                              rpc::encode_value(v));
}

std::expected<void, std::string> apply_key_op(Agent& a, std::string_view op,
                                              const cluster::Key& key) {
  cluster::Keyring ring = a.node.driver->keyring();
  if (!ring.enabled())
    return std::unexpected("this agent runs without encryption (start it with --key-file)");
  const std::string fp = cluster::Keyring::fingerprint(key);
  if (op == "install") {
    ring.install(key);
  } else if (op == "use") {
    if (!ring.use(key)) return std::unexpected("key " + fp + " is not installed here");
  } else if (op == "remove") {
    if (!ring.has(key)) return std::unexpected("key " + fp + " is not installed here");
    if (!ring.remove(key))
      return std::unexpected("key " + fp + " is the primary key here: `use` another one first");
  } else {
    return std::unexpected("op: expected install, use or remove");
  }
  if (auto saved = persist(a, ring); !saved) return std::unexpected(saved.error());
  a.node.driver->set_keyring(ring);
  if (a.discovery.multicast) a.discovery.multicast->set_keyring(ring);
  publish_keys(a);
  a.log.log(supervisor::LogLevel::info, "agent", "keys {} fingerprint={} keys={}", op, fp,
            ring.size());
  return {};
}

// What every live member reported: fingerprint -> (holders, primaries).
std::map<std::string, std::pair<std::size_t, std::size_t>> key_census(Agent& a,
                                                                      std::size_t& members) {
  std::map<std::string, std::pair<std::size_t, std::size_t>> out;
  members = 0;
  rpc::ValueLimits limits;
  limits.max_bytes = 64 * 1024;
  const cluster::Replicator* replicator = a.stack().replicator();
  if (replicator == nullptr) return out;
  const auto& state = replicator->state();
  for (const auto& [name, m] : a.membership().members()) {
    if (m.status != cluster::MemberStatus::alive && m.status != cluster::MemberStatus::suspect)
      continue;
    ++members;
    auto entry = state.get(std::string(kKeysSpace) + name);
    if (!entry) continue;
    auto v = rpc::decode_value(entry->value, limits);
    if (!v) continue;
    for (const Value& fp : v->find("keys") ? v->find("keys")->as_array() : Value::Array{})
      ++out[fp.as_string()].first;
    if (const Value* primary = v->find("primary")) ++out[primary->as_string()].second;
  }
  return out;
}

void on_user_message(Agent& a, const cluster::UserMessage& m) {
  rpc::ValueLimits limits;
  limits.max_bytes = 4096;
  auto v = rpc::decode_value(m.payload, limits);
  if (!v || !v->is_map() || v->find("t") == nullptr || v->find("t")->as_string() != "keys") return;
  const Value* op = v->find("op");
  const Value* key_text = v->find("key");
  if (op == nullptr || key_text == nullptr) return;
  auto key = cluster::Keyring::parse_key(key_text->as_string());
  if (!key) return;
  if (auto done = apply_key_op(a, op->as_string(), *key); !done) {
    a.log.log(supervisor::LogLevel::warn, "agent", "keys {} from {} not applied: {}",
              op->as_string(), m.from, done.error());
  }
}

void broadcast_key_op(Agent& a, std::string_view op, const cluster::Key& key) {
  Value v = Value::map();
  v.set("t", "keys");
  v.set("op", op);
  v.set("key", cluster::Keyring::to_hex(key));
  a.node.driver->broadcast_user(rpc::encode_value(v));
}

}  // namespace shoal::bin
