// The agent's RPC commands: each request (bin/rpc/frame.h) is answered from the node's own state,
// on the loop, at once (messaging's, which may answer later or stream: agent_messaging.cpp). The
// CLI (bin/cli_*.cpp) is their only intended client, but every argument is checked here: a bad
// request gets a bad_request error naming the argument.
//
// Child registrations carry a meta blob (supervisor/child_spec.h, ChildMeta), so any node can list
// where and how a child runs.

#include <unistd.h>

#include <algorithm>

#include "bin/agent_args.h"
#include "bin/agent_state.h"
#include "bin/rpc/value.h"
#include "supervisor/child_spec.h"

namespace shoal::bin {

namespace {

using args::bad;
using args::Failure;
using args::key_value;
using args::number;
using args::optional_text;
using args::Result;
using args::strings;
using args::text;
using rpc::Value;

// --- Shapes of results ---

Value pid_value(const registry::Pid& pid) {
  return Value(pid.to_string());
}

// The members this node knows, by name (the core keeps them hashed, in no order).
std::vector<const cluster::Member*> sorted_members(Agent& a) {
  std::vector<const cluster::Member*> out;
  for (const auto& [name, m] : a.membership().members())
    out.push_back(&m);
  std::sort(out.begin(), out.end(),
            [](const cluster::Member* x, const cluster::Member* y) { return x->name < y->name; });
  return out;
}

Value member_value(const cluster::Member& m) {
  Value tags = Value::map();
  for (const auto& [k, v] : m.tags)
    tags.set(k, v);
  Value out = Value::map();
  out.set("name", m.name);
  out.set("addr", m.addr.to_string());
  out.set("status", cluster::status_name(m.status));
  out.set("incarnation", m.incarnation);
  out.set("creation", m.creation);
  out.set("tags", std::move(tags));
  if (m.rtt_ms) out.set("rtt_ms", *m.rtt_ms);  // the last direct probe's round trip
  return out;
}

registry::Pid agent_pid(const Agent& a, std::uint64_t id) {
  return {a.membership().name(), a.membership().creation(), id};
}

// The agent's own pid for group membership (names get one pid each).
constexpr std::uint64_t kAgentGroupId = 0;

// --- Commands ---

Result members(Agent& a, const Value& args) {
  const std::string status = optional_text(args, "status");
  if (!status.empty() && status != "alive" && status != "suspect" && status != "dead" &&
      status != "left") {
    return std::unexpected(bad("status: expected alive, suspect, dead or left"));
  }
  auto tag_args = strings(args, "tags");
  if (!tag_args) return std::unexpected(tag_args.error());
  std::vector<std::pair<std::string, std::string>> want;
  for (const std::string& t : *tag_args) {
    auto kv = key_value(t);
    if (!kv) return std::unexpected(bad("tags: expected key=value, got '" + t + "'"));
    want.push_back(*kv);
  }
  Value out = Value::array();
  for (const cluster::Member* member : sorted_members(a)) {
    const cluster::Member& m = *member;
    if (!status.empty() && status != cluster::status_name(m.status)) continue;
    bool match = true;
    for (const auto& [k, v] : want) {
      auto it = m.tags.find(k);
      match = match && it != m.tags.end() && it->second == v;
    }
    if (match) out.push(member_value(m));
  }
  return out;
}

Result info(Agent& a, const Value&) {
  const auto& core = a.membership();
  Value counts = Value::map();
  for (auto s : {cluster::MemberStatus::alive, cluster::MemberStatus::suspect,
                 cluster::MemberStatus::dead, cluster::MemberStatus::left}) {
    counts.set(cluster::status_name(s), core.count(s));
  }
  std::size_t failed = 0;
  std::size_t running = 0;
  for (const auto& c : a.supervisor().children()) {
    failed += c.failed ? 1 : 0;
    running += c.pid ? 1 : 0;
  }
  Value children = Value::map();
  children.set("total", a.supervisor().spec_count());
  children.set("running", running);
  children.set("failed", failed);
  children.set("here", a.children_here());
  Value out = Value::map();
  out.set("name", core.name());
  out.set("addr", a.node.driver->address().to_string());
  out.set("creation", core.creation());
  out.set("version", kShoalVersion);
  out.set("mode", supervisor::mode_name(a.supervisor().mode()));
  out.set("has_quorum", a.supervisor().has_quorum());
  // Lifeguard's local health score: 0 when this node's probes are answered in time; it stretches
  // the node's probe timing (x score + 1) while it is higher.
  out.set("health", core.health_score());
  out.set("members", std::move(counts));
  out.set("names", a.registry().names("", SIZE_MAX).size());
  out.set("children", std::move(children));
  // The replicated map, and what its anti-entropy keeps: origins are node lives that wrote to it;
  // per-neighbour entries stay few once the origins are quiet (crdt/replica.h, "settled").
  const crdt::Replica& replica = a.stack().replicator()->replica();
  Value map = Value::map();
  map.set("entries", replica.state().entry_count());
  map.set("log_entries", replica.log_entries());
  map.set("origins", replica.origin_count());
  map.set("retired_origins", replica.retired_count());
  map.set("neighbour_entries", replica.neighbour_entries());
  const cluster::ReplicatorStats& rs = a.stack().replicator()->stats();
  map.set("full_states_sent", rs.full_states_sent);
  map.set("full_states_in", rs.states_in);
  out.set("map", std::move(map));
  out.set("uptime_ms", a.now() - a.started_ms);
  out.set("agent_pid", static_cast<long>(::getpid()));
  out.set("rpc", a.endpoints.rpc ? a.endpoints.rpc->path() : std::string());
  out.set("data_dir", a.config.data_dir);
  return out;
}

Value registration_value(const std::string& name, const registry::Registration& r) {
  Value out = Value::map();
  out.set("name", name);
  out.set("pid", pid_value(r.pid));
  out.set("node", r.pid.node);
  return out;
}

Result whereis(Agent& a, const Value& args) {
  auto name = text(args, "name");
  if (!name) return std::unexpected(name.error());
  auto r = a.registry().whereis(*name);
  if (!r) return std::unexpected(Failure{"not_found", *name + " is not registered"});
  return registration_value(*name, *r);
}

Result names(Agent& a, const Value& args) {
  auto limit = number(args, "limit", SIZE_MAX, UINT64_MAX - 1);
  if (!limit) return std::unexpected(limit.error());
  Value out = Value::array();
  for (const auto& [name, r] : a.registry().names(optional_text(args, "prefix"), *limit))
    out.push(registration_value(name, r));
  return out;
}

Result register_name(Agent& a, const Value& args) {
  auto name = text(args, "name");
  if (!name) return std::unexpected(name.error());
  const registry::Pid pid = agent_pid(a, ++a.endpoints.next_local_id);
  auto done = a.registry().register_name(a.now(), *name, pid);
  if (!done) {
    const bool taken = done.error().code == registry::RegisterErrc::already_registered;
    return std::unexpected(Failure{taken ? "conflict" : "bad_request", done.error().message});
  }
  return registration_value(*name, registry::Registration{pid, {}});
}

Result unregister_name(Agent& a, const Value& args) {
  auto name = text(args, "name");
  if (!name) return std::unexpected(name.error());
  auto r = a.registry().whereis(*name);
  if (!r) return std::unexpected(Failure{"not_found", *name + " is not registered"});
  const auto& self = a.membership();
  if (r->pid.node != self.name() || r->pid.creation != self.creation() ||
      a.supervisor().spec(*name)) {
    return std::unexpected(Failure{"failed", *name + " is held by " + r->pid.to_string() +
                                                 ", not by this agent (stop a child with "
                                                 "`shoal stop`)"});
  }
  a.registry().unregister(a.now(), *name);
  return registration_value(*name, *r);
}

Result join_group(Agent& a, const Value& args) {
  auto group = text(args, "group");
  if (!group) return std::unexpected(group.error());
  const registry::Pid pid = agent_pid(a, kAgentGroupId);
  if (auto done = a.registry().join(a.now(), *group, pid); !done)
    return std::unexpected(bad(done.error().message));
  Value out = Value::map();
  out.set("group", *group);
  out.set("pid", pid_value(pid));
  return out;
}

Result leave_group(Agent& a, const Value& args) {
  auto group = text(args, "group");
  if (!group) return std::unexpected(group.error());
  if (!a.registry().leave(a.now(), *group, agent_pid(a, kAgentGroupId)))
    return std::unexpected(Failure{"not_found", "this agent is not in " + *group});
  Value out = Value::map();
  out.set("group", *group);
  return out;
}

Result group(Agent& a, const Value& args) {
  auto g = text(args, "group");
  if (!g) return std::unexpected(g.error());
  Value out = Value::array();
  for (const registry::Registration& r : a.registry().members(*g)) {
    Value m = Value::map();
    m.set("pid", pid_value(r.pid));
    m.set("node", r.pid.node);
    out.push(std::move(m));
  }
  return out;
}

// A child spec from a request's map.
std::expected<supervisor::ChildSpec, Failure> spec_of(Agent& a, const Value& args) {
  supervisor::ChildSpec spec;
  auto name = text(args, "name");
  if (!name) return std::unexpected(name.error());
  spec.name = *name;
  const std::string worker = optional_text(args, "worker");
  auto argv = strings(args, "argv");
  if (!argv) return std::unexpected(argv.error());
  if (!worker.empty()) {
    if (!argv->empty()) return std::unexpected(bad("give either a command or --worker, not both"));
    if (!a.stack().workers().has_type(worker)) {
      return std::unexpected(
          bad("worker: no worker type '" + worker + "' in this agent (built in: idle, counter)"));
    }
    spec.kind = supervisor::ChildKind::worker;
    spec.worker_type = worker;
  } else {
    if (argv->empty()) return std::unexpected(bad("argv: expected a command to run"));
    spec.argv = std::move(*argv);
  }
  auto env = strings(args, "env");
  if (!env) return std::unexpected(env.error());
  for (const std::string& e : *env) {
    if (!key_value(e)) return std::unexpected(bad("env: expected NAME=value, got '" + e + "'"));
  }
  spec.env = std::move(*env);
  spec.cwd = optional_text(args, "cwd");
  if (const std::string r = optional_text(args, "restart"); !r.empty()) {
    auto restart = supervisor::parse_restart(r);
    if (!restart) return std::unexpected(bad("restart: " + restart.error()));
    spec.restart = *restart;
  }
  if (const std::string h = optional_text(args, "handoff"); !h.empty()) {
    auto handoff = supervisor::parse_handoff(h);
    if (!handoff) return std::unexpected(bad("handoff: " + handoff.error()));
    spec.handoff = *handoff;
  }
  auto max_restarts = number(args, "max_restarts", spec.max_restarts, 1'000'000);
  auto window = number(args, "window_ms", spec.window_ms, 86'400'000);
  auto shutdown = number(args, "shutdown_ms", spec.shutdown_ms, 3'600'000);
  if (!max_restarts) return std::unexpected(max_restarts.error());
  if (!window) return std::unexpected(window.error());
  if (!shutdown) return std::unexpected(shutdown.error());
  spec.max_restarts = static_cast<std::uint32_t>(*max_restarts);
  spec.window_ms = *window;
  spec.shutdown_ms = *shutdown;
  auto constraints = strings(args, "constraints");
  if (!constraints) return std::unexpected(constraints.error());
  for (const std::string& c : *constraints) {
    auto kv = key_value(c);
    if (!kv) return std::unexpected(bad("constraints: expected key=value, got '" + c + "'"));
    spec.constraints[kv->first] = kv->second;
  }
  if (spec.kind == supervisor::ChildKind::exec) {
    // Recorded for placement against members' exec policies (unknown if not found here: the
    // command may exist only on other nodes).
    spec.exec_path = supervisor::resolve_executable(spec.argv[0], spec.cwd).value_or("");
  }
  if (auto why = supervisor::validate(spec)) return std::unexpected(bad(*why));
  return spec;
}

// The tags of the live members (this node included).
std::vector<const cluster::Tags*> live_tags(Agent& a) {
  std::vector<const cluster::Tags*> out;
  for (const auto& [name, m] : a.membership().members()) {
    if (m.status == cluster::MemberStatus::alive || m.status == cluster::MemberStatus::suspect)
      out.push_back(&m.tags);
  }
  return out;
}

std::expected<std::string, Failure> add_child(Agent& a, const Value& args) {
  auto spec = spec_of(a, args);
  if (!spec) return std::unexpected(spec.error());
  const Value* replace = args.find("replace");
  if (a.supervisor().spec(spec->name) && !(replace != nullptr && replace->as_bool())) {
    return std::unexpected(Failure{
        "conflict", "a child named " + spec->name + " exists (stop it first, or replace it)"});
  }
  // Refused at once when no member may run it: a child nobody may start is a mistake to report.
  if (auto refused = supervisor::refused_everywhere(*spec, live_tags(a)))
    return std::unexpected(Failure{"refused", *refused});
  if (auto added = a.supervisor().add(a.now(), *spec); !added)
    return std::unexpected(bad(added.error()));
  return spec->name;
}

Result run(Agent& a, const Value& args) {
  auto name = add_child(a, args);
  if (!name) return std::unexpected(name.error());
  a.settle();
  Value out = Value::map();
  out.set("name", *name);
  return out;
}

// Many children in one request (benchmarks): {"children": [spec, ...]}; each is added or gets
// an error of its own.
Result run_batch(Agent& a, const Value& args) {
  const Value* list = args.find("children");
  if (list == nullptr || !list->is_array())
    return std::unexpected(bad("children: expected a list of child specs"));
  Value errors = Value::array();
  std::size_t added = 0;
  for (const Value& c : list->as_array()) {
    auto name = add_child(a, c);
    if (name) {
      ++added;
      continue;
    }
    Value e = Value::map();
    e.set("name", optional_text(c, "name"));
    e.set("error", name.error().message);
    errors.push(std::move(e));
  }
  a.settle();
  Value out = Value::map();
  out.set("added", added);
  out.set("errors", std::move(errors));
  return out;
}

Result stop(Agent& a, const Value& args) {
  auto name = text(args, "name");
  if (!name) return std::unexpected(name.error());
  if (!a.supervisor().remove(a.now(), *name))
    return std::unexpected(Failure{"not_found", "no child named " + *name});
  a.settle();
  Value out = Value::map();
  out.set("name", *name);
  return out;
}

Result stop_batch(Agent& a, const Value& args) {
  auto list = strings(args, "names");
  if (!list) return std::unexpected(list.error());
  Value missing = Value::array();
  std::size_t stopped = 0;
  for (const std::string& name : *list) {
    if (a.supervisor().remove(a.now(), name)) {
      ++stopped;
    } else {
      missing.push(name);
    }
  }
  a.settle();
  Value out = Value::map();
  out.set("stopped", stopped);
  out.set("missing", std::move(missing));
  return out;
}

// ps {"here": true}: only the instances on this node, from its own state (cheap: benchmarks
// sample it often). {"summary": true}: counts only, by status and by the node a copy runs on.
Result ps_here(Agent& a) {
  Value out = Value::array();
  for (const auto& [name, local] : a.supervisor().local()) {
    Value row = Value::map();
    row.set("name", name);
    row.set("status", supervisor::local_status_name(local.status));
    row.set("id", local.id);
    row.set("restarts", local.restart_count);
    out.push(std::move(row));
  }
  return out;
}

Result ps_summary(Agent& a) {
  std::size_t running = 0, pending = 0, failed = 0;
  std::map<std::string, std::size_t> by_node;
  for (const auto& [name, spec] : a.supervisor().specs()) {
    if (a.supervisor().failed(name)) {
      ++failed;
    } else if (auto where = a.registry().whereis(name)) {
      ++running;
      ++by_node[where->pid.node];
    } else if (a.supervisor().refused(name)) {
      ++failed;
    } else {
      ++pending;
    }
  }
  Value nodes = Value::map();
  for (const auto& [node, n] : by_node)
    nodes.set(node, n);
  Value out = Value::map();
  out.set("total", a.supervisor().spec_count());
  out.set("running", running);
  out.set("pending", pending);
  out.set("failed", failed);
  out.set("by_node", std::move(nodes));
  return out;
}

Result ps(Agent& a, const Value& args) {
  if (const Value* here = args.find("here"); here != nullptr && here->as_bool()) return ps_here(a);
  if (const Value* sum = args.find("summary"); sum != nullptr && sum->as_bool())
    return ps_summary(a);
  const std::string only_node = optional_text(args, "node");
  const std::uint64_t now = a.now();
  Value out = Value::array();
  for (const supervisor::ChildInfo& c : a.supervisor().children()) {
    Value row = Value::map();
    std::string status = "pending";
    Value node;
    Value os_pid;
    Value uptime;
    Value restarts = 0u;
    std::string last_exit;
    if (c.failed) {
      status = "failed";
      last_exit = a.supervisor().failure(c.spec.name).value_or("");
    } else if (!c.pid && !c.local) {
      if (auto refused = a.supervisor().refused(c.spec.name)) {
        status = "failed";
        last_exit = *refused;
      }
    }
    if (c.pid) {
      status = "running";
      node = c.pid->node;
      if (auto r = a.registry().whereis(c.spec.name)) {
        if (auto meta = supervisor::decode_child_meta(r->meta)) {
          if (meta->os_pid) os_pid = *meta->os_pid;
          // Another node's clock: an uptime only when it is not ahead of ours.
          if (meta->started_ms <= now) uptime = now - meta->started_ms;
          restarts = meta->restarts;
        }
      }
    }
    if (c.local) {
      // What this node knows best: its own instance.
      status = supervisor::local_status_name(c.local->status);
      node = a.membership().name();
      restarts = c.local->restart_count;
      if (!c.local->last_exit.empty()) last_exit = c.local->last_exit;
      if (c.local->status == supervisor::LocalStatus::running) uptime = now - c.local->since_ms;
    }
    if (!only_node.empty() && node.as_string() != only_node) continue;
    row.set("name", c.spec.name);
    row.set("kind", c.spec.kind == supervisor::ChildKind::worker ? "worker" : "exec");
    row.set("handoff", supervisor::handoff_name(c.spec.handoff));
    row.set("node", std::move(node));
    row.set("owner", c.owner ? Value(*c.owner) : Value());
    row.set("status", status);
    row.set("restarts", std::move(restarts));
    row.set("os_pid", std::move(os_pid));
    row.set("uptime_ms", std::move(uptime));
    row.set("last_exit", last_exit);
    row.set("restart", supervisor::restart_name(c.spec.restart));
    std::string what;
    if (c.spec.kind == supervisor::ChildKind::worker) {
      what = "worker:" + c.spec.worker_type;
    } else {
      for (const std::string& arg : c.spec.argv)
        what += (what.empty() ? "" : " ") + arg;
    }
    row.set("command", what);
    out.push(std::move(row));
  }
  return out;
}

Result checkpoint(Agent& a, const Value& args) {
  auto name = text(args, "name");
  if (!name) return std::unexpected(name.error());
  const Value* blob = args.find("data");
  if (blob == nullptr || !blob->is_string())
    return std::unexpected(bad("data: expected the checkpoint bytes"));
  if (!a.supervisor().spec(*name))
    return std::unexpected(Failure{"not_found", "no child named " + *name});
  if (auto stored = a.supervisor().checkpoint(a.now(), *name, blob->as_string()); !stored) {
    std::string why = stored.error();
    if (auto r = a.registry().whereis(*name); r && r->pid.node != a.membership().name())
      why += " (it runs on " + r->pid.node + "; checkpoint there)";
    return std::unexpected(Failure{"failed", why});
  }
  a.settle();
  Value out = Value::map();
  out.set("name", *name);
  out.set("bytes", blob->as_string().size());
  return out;
}

Result leave(Agent& a, const Value&) {
  Value out = Value::map();
  out.set("name", a.membership().name());
  out.set("children", a.children_here());
  return out;
}

Result watch(Agent& a, const Value& args, rpc::ClientId client) {
  const std::string prefix = optional_text(args, "prefix");
  if (a.endpoints.watchers.size() >= 32 && !a.endpoints.watchers.contains(client))
    return std::unexpected(Failure{"busy", "too many watchers on this agent (32)"});
  a.endpoints.watchers[client] = prefix;
  Value out = Value::map();
  out.set("watching", prefix);
  return out;
}

// {"op": "list"} or {"op": "install"|"use"|"remove", "key": hex or base64, "force": bool}.
Result keys(Agent& a, const Value& args) {
  const std::string op = optional_text(args, "op");
  std::size_t members = 0;
  auto census = key_census(a, members);
  const cluster::Keyring& ring = a.node.driver->keyring();
  if (op == "list" || op.empty()) {
    Value list = Value::array();
    for (const auto& [fp, counts] : census) {
      bool here = false;
      bool here_primary = false;
      for (std::size_t i = 0; i < ring.keys().size(); ++i) {
        if (cluster::Keyring::fingerprint(ring.keys()[i]) != fp) continue;
        here = true;
        here_primary = i == 0;
      }
      Value k = Value::map();
      k.set("fingerprint", fp);
      k.set("members", counts.first);
      k.set("primary_on", counts.second);
      k.set("here", here);
      k.set("primary_here", here_primary);
      list.push(std::move(k));
    }
    Value out = Value::map();
    out.set("encrypted", ring.enabled());
    out.set("members", members);
    out.set("keys", std::move(list));
    return out;
  }
  if (!ring.enabled()) {
    return std::unexpected(Failure{
        "failed", "this cluster runs without encryption: start the agents with --key-file"});
  }
  auto key_text = text(args, "key");
  if (!key_text) return std::unexpected(key_text.error());
  auto key = cluster::Keyring::parse_key(*key_text);
  if (!key) return std::unexpected(bad("key: " + key.error()));
  const std::string fp = cluster::Keyring::fingerprint(*key);
  const Value* force = args.find("force");
  const bool forced = force != nullptr && force->as_bool();
  const auto counts = census.contains(fp) ? census.at(fp) : std::pair<std::size_t, std::size_t>{};
  if (op == "use" && counts.first < members && !forced) {
    return std::unexpected(
        Failure{"failed", "key " + fp + " is installed on " + std::to_string(counts.first) +
                              " of " + std::to_string(members) +
                              " members: members without it could not read this one (install it "
                              "everywhere first, or force)"});
  }
  if (op == "remove" && counts.second > 0 && !forced) {
    return std::unexpected(Failure{"failed", "key " + fp + " is the primary key of " +
                                                 std::to_string(counts.second) +
                                                 " members: `use` another key first (or force)"});
  }
  if (op != "install" && op != "use" && op != "remove")
    return std::unexpected(bad("op: expected list, install, use or remove"));
  // Broadcast before a remove changes the keys here, after an install or use (sealed with what
  // every member can open either way).
  if (op == "remove") broadcast_key_op(a, op, *key);
  if (auto done = apply_key_op(a, op, *key); !done)
    return std::unexpected(Failure{"failed", done.error()});
  if (op != "remove") broadcast_key_op(a, op, *key);
  Value out = Value::map();
  out.set("op", op);
  out.set("fingerprint", fp);
  out.set("members", members);
  return out;
}

using Command = Result (*)(Agent&, const Value&);

const std::map<std::string, Command, std::less<>>& commands() {
  static const std::map<std::string, Command, std::less<>> table{
      {"members", members},
      {"info", info},
      {"whereis", whereis},
      {"names", names},
      {"register", register_name},
      {"unregister", unregister_name},
      {"join-group", join_group},
      {"leave-group", leave_group},
      {"group", group},
      {"run", run},
      {"run-batch", run_batch},
      {"stop", stop},
      {"stop-batch", stop_batch},
      {"ps", ps},
      {"checkpoint", checkpoint},
      {"leave", leave},
      {"keys", keys},
  };
  return table;
}

}  // namespace

std::expected<Value, std::string> query(Agent& agent, std::string_view cmd, const Value& args) {
  auto it = commands().find(cmd);
  if (it == commands().end()) return std::unexpected("unknown command '" + std::string(cmd) + "'");
  auto result = it->second(agent, args);
  if (!result) return std::unexpected(result.error().message);
  return std::move(*result);
}

void handle_rpc(Agent& agent, rpc::ClientId client, rpc::Request request) {
  if (handle_messaging_rpc(agent, client, request)) return;
  Result result;
  if (request.cmd == "watch") {
    result = watch(agent, request.args, client);
  } else if (auto it = commands().find(request.cmd); it != commands().end()) {
    result = it->second(agent, request.args);
  } else {
    result = std::unexpected(bad("unknown command '" + request.cmd + "'"));
  }
  agent.endpoints.rpc->send(
      client, result ? rpc::encode_ok(std::move(*result))
                     : rpc::encode_error(result.error().code, result.error().message));
  if (result && request.cmd == "leave") {
    // The client's connection stays open until the agent has left: it closes with the agent.
    begin_leave(agent, "rpc=leave");
  }
}

void rpc_closed(Agent& agent, rpc::ClientId client) {
  agent.endpoints.watchers.erase(client);
  messaging_client_closed(agent, client);
}

void rpc_event(Agent& agent, const std::string& key, const Value& event) {
  http_event(agent, key, event);
  if (agent.endpoints.watchers.empty() || !agent.endpoints.rpc) return;
  std::string frame;
  for (const auto& [client, prefix] : agent.endpoints.watchers) {
    if (!key.starts_with(prefix)) continue;
    if (frame.empty()) frame = rpc::encode_event(event);
    agent.endpoints.rpc->send(client, frame);
  }
}

}  // namespace shoal::bin
