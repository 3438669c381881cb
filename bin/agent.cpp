#include "bin/agent.h"

#include <fmt/format.h>
#include <malloc.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <set>

#include "bin/agent_state.h"
#include "cluster/keyring.h"
#include "cluster/map_store.h"
#include "cluster/uv/multicast_discovery.h"
#include "cluster/uv/seed_resolver.h"
#include "cluster/uv/uv_membership.h"
#include "registry/registry.h"
#include "supervisor/supervisor.h"
#include "supervisor/uv/exec_runtime.h"
#include "supervisor/worker.h"

namespace shoal::bin {

using cluster::Address;

// Hands the registry membership's live view and lets it purge the names of dead owners.
void registry_tick_impl(uv_timer_t* timer) {
  auto* a = static_cast<Agent*>(timer->data);
  if (!a->registry || a->left) return;
  std::map<std::string, std::uint64_t, std::less<>> live;
  std::set<registry::Registry::Life> departed;
  for (const auto& [name, m] : a->membership->core().members()) {
    if (m.status == cluster::MemberStatus::alive || m.status == cluster::MemberStatus::suspect) {
      live[name] = m.creation;
    } else if (m.status == cluster::MemberStatus::left) {
      departed.insert(cluster::Life{name, m.creation});
    }
  }
  const bool alone = live.size() <= 1;
  a->registry->set_members(std::move(live), std::move(departed));
  if (a->supervisor && !a->placing && !alone) {
    a->placing = true;
    uv_timer_stop(&a->settle_timer);
  }
  if (a->supervisor && a->placing) {
    supervisor::View view;
    for (const auto& [name, m] : a->membership->core().members()) {
      if (m.status == cluster::MemberStatus::alive || m.status == cluster::MemberStatus::suspect)
        view[name] = supervisor::MemberInfo{m.creation, m.tags};
    }
    const std::size_t seen = view.size();
    a->supervisor->set_members(uv_now(a->loop), std::move(view));
    if (a->supervisor->mode() == supervisor::Mode::quorum &&
        a->supervisor->has_quorum() != a->had_quorum) {
      a->had_quorum = a->supervisor->has_quorum();
      a->log.log(a->had_quorum ? 1 : 2, a->had_quorum ? "info" : "warn", "supervisor",
                 "{} members={}{}", a->had_quorum ? "quorum" : "no quorum", seen,
                 a->had_quorum ? "" : " (starting nothing; children stop if this lasts)");
    }
    a->drive_supervisor();
  }
  a->view_changed = false;
  if (const std::size_t purged = a->registry->purge(wall_ms()); purged > 0) {
    a->log.log(1, "info", "registry", "purged entries={} (owners no longer alive)", purged);
  }
  a->membership->settle();
}

// Hands the supervisor's effects to the runtime, and what the runtime reports back, until both
// are quiet; then re-arms the restart timer and sends the map writes.
void Agent::drive_supervisor() {
  if (!supervisor || !runtime) return;
  for (int pass = 0; pass < 64; ++pass) {
    std::vector<supervisor::SupervisorEffect> effects;
    supervisor->take_effects(effects);
    for (auto& e : effects) {
      const std::uint64_t now = uv_now(loop);
      if (auto* start = std::get_if<supervisor::StartChild>(&e)) {
        if (start->spec.kind == supervisor::ChildKind::worker) {
          workers.start(now, *start);
          continue;
        }
        auto pid = runtime->start(*start);
        if (pid) {
          log.log(1, "info", "supervisor", "started name={} os_pid={} checkpoint={}",
                  start->spec.name, *pid, start->checkpoint ? "yes" : "no");
          const auto& local = supervisor->local();
          auto it = local.find(start->spec.name);
          supervisor->on_started(
              now, start->spec.name, start->id,
              child_meta(*pid, it != local.end() ? it->second.restart_count : 0, false));
        } else {
          log.log(2, "warn", "supervisor", "cannot start name={} reason=\"{}\"", start->spec.name,
                  pid.error());
          supervisor->on_exited(now, start->spec.name, start->id, false, pid.error());
        }
      } else if (auto* stop = std::get_if<supervisor::StopChild>(&e)) {
        log.log(1, "info", "supervisor", "stopping name={} reason={}", stop->name,
                supervisor::stop_reason_name(stop->reason));
        if (workers.runs(stop->name)) {
          workers.stop(now, *stop);
        } else {
          runtime->stop(*stop);
        }
      }
    }
    // What the workers reported (started, exited, checkpoints) may give the supervisor more to do.
    if (!worker_reports() && effects.empty()) break;
  }
  const std::uint64_t deadline = supervisor->next_deadline();
  if (deadline != UINT64_MAX) {
    const std::uint64_t now = uv_now(loop);
    uv_timer_start(
        &supervisor_timer,
        [](uv_timer_t* t) {
          auto* a = static_cast<Agent*>(t->data);
          a->supervisor->on_timer(uv_now(a->loop));
          a->drive_supervisor();
        },
        deadline > now ? deadline - now : 0, 0);
  }
  membership->settle();
}

// Writes the map on disk as a snapshot (compacting the log).
static void snapshot_map(Agent* a) {
  const cluster::Replicator* replicator = a->membership ? a->membership->replicator() : nullptr;
  if (!a->store || replicator == nullptr) return;
  if (auto saved = a->store->snapshot(replicator->state()); !saved)
    a->log.log(2, "warn", "store", "snapshot failed: {}", saved.error());
}

// Leaves the cluster: gossips the leave, then closes everything after a few rounds.
static void leave_now(Agent* agent) {
  agent->left = true;
  uv_timer_stop(&agent->drain_timer);
  agent->membership->leave();
  uv_timer_start(
      &agent->leave_timer,
      [](uv_timer_t* t) {
        auto* a = static_cast<Agent*>(t->data);
        // Whatever did not hand over in time stops with the agent.
        if (a->runtime) a->runtime->close([] {});
        uv_close(reinterpret_cast<uv_handle_t*>(&a->supervisor_timer), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&a->drain_timer), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&a->worker_timer), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&a->settle_timer), nullptr);
        if (a->discovery) a->discovery->close([] {});
        if (a->rpc) a->rpc->close([] {});
        if (a->http) a->http->close([] {});
        if (a->resolver) {
          a->resolver->close();
          uv_close(reinterpret_cast<uv_handle_t*>(&a->resolve_timer), nullptr);
        }
        a->membership->close([a] {
          uv_close(reinterpret_cast<uv_handle_t*>(&a->sigterm), nullptr);
          uv_close(reinterpret_cast<uv_handle_t*>(&a->sigint), nullptr);
          uv_close(reinterpret_cast<uv_handle_t*>(&a->leave_timer), nullptr);
          uv_close(reinterpret_cast<uv_handle_t*>(&a->report_timer), nullptr);
          uv_close(reinterpret_cast<uv_handle_t*>(&a->stats_timer), nullptr);
          uv_close(reinterpret_cast<uv_handle_t*>(&a->registry_timer), nullptr);
        });
      },
      500, 0);
}

// Hands what the in-process workers reported to the supervisor (which may answer with more
// effects: drive_supervisor() calls here until both are quiet). False if there was nothing.
bool Agent::worker_reports() {
  std::vector<supervisor::WorkerReport> reports;
  workers.take_reports(reports);
  if (reports.empty()) return false;
  const std::uint64_t now = uv_now(loop);
  for (supervisor::WorkerReport& r : reports) {
    switch (r.kind) {
      case supervisor::WorkerReport::Kind::started:
        log.log(1, "info", "supervisor", "started name={} worker=yes", r.name);
        if (auto it = supervisor->local().find(r.name); it != supervisor->local().end()) {
          supervisor->on_started(now, r.name, r.id,
                                 child_meta(std::nullopt, it->second.restart_count, true));
        }
        break;
      case supervisor::WorkerReport::Kind::exited: {
        const auto& local = supervisor->local();
        auto it = local.find(r.name);
        const bool asked = it != local.end() && it->second.id == r.id &&
                           it->second.status == supervisor::LocalStatus::stopping;
        log.log(r.normal || asked ? 1 : 2, r.normal || asked ? "info" : "warn", "supervisor",
                "{} name={} how=\"{}\"", asked ? "stopped" : "exited", r.name, r.text);
        supervisor->on_exited(now, r.name, r.id, r.normal, r.text);
        break;
      }
      case supervisor::WorkerReport::Kind::checkpoint:
        if (auto stored = supervisor->checkpoint(now, r.name, r.text); !stored) {
          log.log(2, "warn", "supervisor", "checkpoint refused name={} reason=\"{}\"", r.name,
                  stored.error());
        } else {
          log.log(0, "debug", "supervisor", "checkpoint name={} bytes={}", r.name, r.text.size());
        }
        break;
    }
  }
  return true;
}

static void on_signal(uv_signal_t* handle, int signum) {
  auto* agent = static_cast<Agent*>(handle->data);
  if (++agent->signals > 1) {
    agent->log.log(2, "warn", "agent", "second signal: exiting at once signal={}", signum);
    std::_Exit(1);
  }
  begin_leave(agent, fmt::format("signal={}", signum));
}

void begin_leave(Agent* agent, const std::string& why) {
  if (agent->leaving) return;
  agent->leaving = true;
  if (!agent->supervisor || agent->children_here() == 0) {
    agent->log.log(1, "info", "agent", "leaving {}", why);
    leave_now(agent);
    return;
  }
  // Hand the children over first: the others start them and take their names, then the copies
  // here stop; only then does the node leave (or when the handoff takes too long).
  agent->log.log(1, "info", "agent", "draining {} children={}", why, agent->children_here());
  agent->drain_deadline = uv_now(agent->loop) + kDrainTimeoutMs;
  agent->supervisor->drain(uv_now(agent->loop));
  agent->drive_supervisor();
  uv_timer_start(
      &agent->drain_timer,
      [](uv_timer_t* t) {
        auto* a = static_cast<Agent*>(t->data);
        const bool done = a->children_here() == 0;
        if (!done && uv_now(a->loop) < a->drain_deadline) return;
        a->log.log(done ? 1 : 2, done ? "info" : "warn", "agent", "leaving {}",
                   done ? "(children handed over)" : "(handoff timed out; stopping the rest)");
        leave_now(a);
      },
      20, 20);
}

int run_agent(const AgentOptions& options) {
  // Allocations below 32 MiB come from the heap from the start (glibc learns this threshold only
  // after freeing large blocks): a bulk write's growing buffers then reuse memory instead of
  // mapping, faulting in and unmapping fresh pages each time. It measured 25-35% more
  // registrations per second here (bench/registry).
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  Agent agent;
  agent.log.threshold = level_rank(options.log_level);
  if (agent.log.threshold < 0) {
    std::fprintf(stderr, "shoal agent: --log-level must be debug, info, warn or error\n");
    return 2;
  }
  auto bind = Address::parse(options.bind);
  if (!bind) {
    std::fprintf(stderr, "shoal agent: --bind: %s\n", bind.error().c_str());
    return 2;
  }
  cluster::UvMembershipOptions uv_options;
  uv_options.bind = *bind;
  if (!options.advertise.empty()) {
    auto advertise = Address::parse(options.advertise);
    if (!advertise) {
      std::fprintf(stderr, "shoal agent: --advertise: %s\n", advertise.error().c_str());
      return 2;
    }
    uv_options.advertise = *advertise;
  }
  std::vector<cluster::SeedSpec> seeds;
  for (const std::string& s : options.join) {
    auto seed = cluster::parse_seed(s);
    if (!seed) {
      std::fprintf(stderr, "shoal agent: --join: %s\n", seed.error().c_str());
      return 2;
    }
    seeds.push_back(*seed);
  }
  for (const std::string& t : options.tags) {
    const auto eq = t.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "shoal agent: --tag: expected key=value, got '%s'\n", t.c_str());
      return 2;
    }
    uv_options.tags[t.substr(0, eq)] = t.substr(eq + 1);
  }
  std::vector<supervisor::ChildSpec> child_specs;
  for (const std::string& c : options.children) {
    const auto eq = c.find('=');
    supervisor::ChildSpec spec;
    if (eq != std::string::npos) {
      spec.name = c.substr(0, eq);
      std::string word;
      for (char ch : c.substr(eq + 1) + " ") {
        if (ch == ' ' || ch == '\t') {
          if (!word.empty()) spec.argv.push_back(std::move(word));
          word.clear();
        } else {
          word += ch;
        }
      }
    }
    if (eq == std::string::npos || eq == 0 || spec.argv.empty()) {
      std::fprintf(stderr, "shoal agent: --child: expected NAME=COMMAND ARGS..., got '%s'\n",
                   c.c_str());
      return 2;
    }
    if (auto bad = supervisor::validate(spec)) {
      std::fprintf(stderr, "shoal agent: --child %s: %s\n", spec.name.c_str(), bad->c_str());
      return 2;
    }
    child_specs.push_back(std::move(spec));
  }
  for (const std::string& w : options.workers) {
    const auto eq = w.find('=');
    supervisor::ChildSpec spec;
    spec.kind = supervisor::ChildKind::worker;
    if (eq != std::string::npos) {
      spec.name = w.substr(0, eq);
      spec.worker_type = w.substr(eq + 1);
    }
    if (eq == std::string::npos || eq == 0 || spec.worker_type.empty()) {
      std::fprintf(stderr, "shoal agent: --worker: expected NAME=TYPE, got '%s'\n", w.c_str());
      return 2;
    }
    if (spec.worker_type != "idle" && spec.worker_type != "counter") {
      std::fprintf(stderr, "shoal agent: --worker %s: unknown type '%s' (idle or counter)\n",
                   spec.name.c_str(), spec.worker_type.c_str());
      return 2;
    }
    if (auto bad = supervisor::validate(spec)) {
      std::fprintf(stderr, "shoal agent: --worker %s: %s\n", spec.name.c_str(), bad->c_str());
      return 2;
    }
    child_specs.push_back(std::move(spec));
  }
  if (!options.key_file.empty()) {
    auto ring = cluster::Keyring::from_file(options.key_file);
    if (!ring) {
      std::fprintf(stderr, "shoal agent: --key-file: %s\n", ring.error().c_str());
      return 2;
    }
    uv_options.keyring = std::move(*ring);
  }
  if (options.discovery != "multicast" && options.discovery != "seeds" &&
      options.discovery != "none") {
    std::fprintf(stderr, "shoal agent: --discovery must be multicast, seeds or none\n");
    return 2;
  }
  auto group = Address::parse(options.multicast_group);
  if (!group) {
    std::fprintf(stderr, "shoal agent: --multicast-group: %s\n", group.error().c_str());
    return 2;
  }
  if (options.discovery == "none" && !seeds.empty()) {
    std::fprintf(stderr, "shoal agent: --discovery none runs a standalone node: drop --join\n");
    return 2;
  }
  const cluster::Keyring keyring_copy = uv_options.keyring;
  if (options.probe_interval_ms != 0)
    uv_options.config.probe_interval_ms = options.probe_interval_ms;
  if (options.probe_timeout_ms != 0) uv_options.config.probe_timeout_ms = options.probe_timeout_ms;
  if (auto bad = uv_options.config.validate()) {
    std::fprintf(stderr, "shoal agent: %s\n", bad->c_str());
    return 2;
  }
  supervisor::SupervisorConfig sup_config;
  if (options.mode == "quorum") {
    if (options.expect == 0) {
      std::fprintf(stderr, "shoal agent: --mode quorum needs --expect N (the cluster size)\n");
      return 2;
    }
    const auto& m = uv_options.config;
    sup_config.mode = supervisor::Mode::quorum;
    sup_config.expect = options.expect;
    sup_config.fence_after_ms = options.quorum_fence_ms;
    const std::uint64_t safe = supervisor::quorum_lease_ms(
        options.expect, m.probe_interval_ms, m.awareness_max, m.suspicion_mult,
        m.suspicion_max_mult, options.quorum_fence_ms);
    sup_config.lease_ms = options.quorum_lease_ms != 0 ? options.quorum_lease_ms : safe;
  } else if (options.mode != "ap") {
    std::fprintf(stderr, "shoal agent: --mode must be ap or quorum\n");
    return 2;
  } else if (options.expect != 0 || options.quorum_lease_ms != 0) {
    std::fprintf(stderr, "shoal agent: --expect and --quorum-lease-ms need --mode quorum\n");
    return 2;
  }
  uv_options.name =
      options.name.empty() ? hostname() + ":" + std::to_string(bind->port) : options.name;
  uv_options.creation_ms = wall_ms();
  const cluster::MembershipConfig uv_options_config = uv_options.config;
  uv_options.replication = cluster::ReplicatorConfig{};
  uv_options.seed = uv_options.creation_ms ^ (static_cast<std::uint64_t>(getpid()) << 32);

  agent.loop = uv_default_loop();
  const Logger& log = agent.log;
  const std::string node_name = uv_options.name;
  agent.data_dir = options.data_dir.empty() ? "/tmp/shoal-" + supervisor::file_name_for(node_name)
                                            : options.data_dir;
  agent.mode = options.mode;
  agent.key_file = options.key_file;
  agent.started_ms = uv_now(agent.loop);
  // The RPC socket first: a second agent on the same socket stops here, before it binds anything
  // else or starts a child.
  {
    std::error_code ec;
    std::filesystem::create_directories(agent.data_dir, ec);
    if (ec) {
      std::fprintf(stderr, "shoal agent: --data-dir %s: %s\n", agent.data_dir.c_str(),
                   ec.message().c_str());
      return 1;
    }
    const std::string path = options.rpc.empty() ? agent.data_dir + "/shoal.sock" : options.rpc;
    auto server = rpc::RpcServer::listen(
        agent.loop, path,
        [&agent](rpc::ClientId client, rpc::Request request) {
          handle_rpc(agent, client, std::move(request));
        },
        [&agent](rpc::ClientId client) { rpc_closed(agent, client); });
    if (!server) {
      std::fprintf(stderr, "shoal agent: --rpc: %s\n", server.error().c_str());
      return 1;
    }
    agent.rpc = std::move(*server);
  }
  if (!options.http.empty()) {
    auto server = http::HttpServer::listen(
        agent.loop, options.http, [&agent](const std::string& path, const std::string& query) {
          return http_request(agent, path, query);
        });
    if (!server) {
      std::fprintf(stderr, "shoal agent: --http %s\n", server.error().c_str());
      agent.rpc->close([] {});
      uv_run(agent.loop, UV_RUN_NOWAIT);
      return 1;
    }
    agent.http = std::move(*server);
  }
  auto started = cluster::UvMembership::start(
      agent.loop, std::move(uv_options),
      [&agent](const cluster::MemberEvent& e) {
        agent.log.log(1, "info", "membership", "{} name={} addr={} incarnation={} creation={}",
                      cluster::event_name(e.kind), e.name, e.addr.to_string(), e.incarnation,
                      e.creation);
        // The registry follows the live view from a timer, outside the driver's flush: purging
        // writes to the map.
        agent.view_changed = true;
        if (agent.registry) uv_timer_start(&agent.registry_timer, Agent::registry_tick, 0, 5000);
        if (!agent.watchers.empty()) {
          rpc::Value ev = rpc::Value::map();
          ev.set("type", "member");
          ev.set("event", cluster::event_name(e.kind));
          ev.set("name", e.name);
          ev.set("addr", e.addr.to_string());
          ev.set("incarnation", e.incarnation);
          ev.set("time", wall_ms());
          rpc_event(agent, e.name, ev);
        }
      },
      [&agent](const cluster::UserMessage& m) { on_user_message(agent, m); });
  if (!started) {
    std::fprintf(stderr, "shoal agent: %s\n", started.error().c_str());
    agent.rpc->close([] {});
    if (agent.http) agent.http->close([] {});
    uv_run(agent.loop, UV_RUN_NOWAIT);
    return 1;
  }
  agent.membership = std::move(*started);
  agent.registry = std::make_unique<registry::Registry>(*agent.membership->replicator(),
                                                        agent.membership->core().name());
  agent.membership->on_change([&agent](const cluster::ReplicaChange& change) {
    std::vector<registry::RegistryEvent> events;
    agent.registry->on_change(wall_ms(), change, events);
    if (agent.supervisor && !agent.left) {
      const std::uint64_t now = uv_now(agent.loop);
      if (change.key.starts_with("c/")) {
        agent.log.log(0, "debug", "supervisor", "child spec {} name={}",
                      change.after ? "added" : "removed", change.key.substr(2));
      }
      agent.supervisor->on_change(now, change);
      for (const auto& e : events)
        agent.supervisor->on_registry_event(now, e);
      agent.drive_supervisor();
    }
    for (const auto& e : events) {
      std::string line = fmt::format("{} name={}", registry::event_name(e.kind), e.name);
      if (e.pid) line += " pid=" + e.pid->to_string();
      if (e.previous) line += " previous=" + e.previous->to_string();
      for (const auto& loser : e.losers)
        line += " loser=" + loser.to_string();
      agent.log.log(1, "info", "registry", "{}", line);
      if (!agent.watchers.empty()) {
        rpc::Value ev = rpc::Value::map();
        ev.set("type", "name");
        ev.set("event", registry::event_name(e.kind));
        ev.set("name", e.name);
        ev.set("pid", e.pid ? rpc::Value(e.pid->to_string()) : rpc::Value());
        ev.set("node", e.pid ? rpc::Value(e.pid->node) : rpc::Value());
        ev.set("previous", e.previous ? rpc::Value(e.previous->to_string()) : rpc::Value());
        ev.set("time", wall_ms());
        rpc_event(agent, e.name, ev);
      }
    }
  });
  // The map on disk: what it held is joined before the supervisor starts (a whole cluster that
  // stopped finds its children again), and everything the map takes in from now on is logged.
  {
    cluster::StoreOptions store_options;
    store_options.fsync = options.fsync == "always"  ? cluster::StoreOptions::Fsync::always
                          : options.fsync == "never" ? cluster::StoreOptions::Fsync::never
                                                     : cluster::StoreOptions::Fsync::snapshot;
    auto store = cluster::MapStore::open(agent.data_dir + "/map", store_options);
    auto loaded =
        store ? (*store)->load()
              : std::expected<cluster::StoreLoad, std::string>(std::unexpected(store.error()));
    if (!loaded) {
      std::fprintf(stderr, "shoal agent: --data-dir: %s\n", loaded.error().c_str());
      agent.rpc->close([] {});
      if (agent.http) agent.http->close([] {});
      agent.membership->close([] {});
      uv_run(agent.loop, UV_RUN_DEFAULT);
      return 1;
    }
    agent.store = std::move(*store);
    if (!loaded->problem.empty()) {
      log.log(2, "warn", "store", "{} (dir={})", loaded->problem, agent.store->dir());
    }
    cluster::Replicator* replicator = agent.membership->replicator();
    if (replicator == nullptr) return 1;  // the agent always replicates
    if (loaded->records > 0) {
      replicator->restore(uv_now(agent.loop), loaded->state);
      log.log(1, "info", "store", "restored records={} entries={} dir={}", loaded->records,
              loaded->state.entry_count(), agent.store->dir());
    }
    // Compact what was read into one snapshot, then log from there.
    if (auto saved = agent.store->snapshot(replicator->state()); !saved)
      log.log(2, "warn", "store", "snapshot failed: {}", saved.error());
    replicator->set_journal([&agent](std::string_view encoded) {
      if (auto done = agent.store->append(encoded); !done && !agent.store_failed) {
        agent.store_failed = true;
        agent.log.log(3, "error", "store", "append failed: {} (no more warnings)", done.error());
      }
    });
  }
  {
    agent.supervisor = std::make_unique<supervisor::Supervisor>(
        *agent.membership->replicator(), *agent.registry, node_name,
        agent.membership->core().creation(), sup_config);
    if (sup_config.mode == supervisor::Mode::quorum) {
      const auto& m = uv_options_config;
      const std::uint64_t safe = supervisor::quorum_lease_ms(
          sup_config.expect, m.probe_interval_ms, m.awareness_max, m.suspicion_mult,
          m.suspicion_max_mult, sup_config.fence_after_ms);
      log.log(sup_config.lease_ms < safe ? 2 : 1, sup_config.lease_ms < safe ? "warn" : "info",
              "supervisor", "mode=quorum expect={} majority={} fence_ms={} lease_ms={}{}",
              sup_config.expect, sup_config.expect / 2 + 1, sup_config.fence_after_ms,
              sup_config.lease_ms,
              sup_config.lease_ms < safe
                  ? fmt::format(" (below the safe bound {} ms: two copies may run)", safe)
                  : "");
    }
    const std::string& dir = agent.data_dir;
    supervisor::ExecRuntimeOptions rt;
    rt.node = node_name;
    rt.log_dir = dir + "/logs";
    rt.checkpoint_dir = dir + "/checkpoints";
    rt.env.push_back("SHOAL_RPC=" + agent.rpc->path());
    auto runtime = supervisor::ExecRuntime::create(
        agent.loop, rt,
        [&agent](const std::string& name, std::uint64_t id, bool normal, const std::string& how) {
          // A stop the supervisor asked for is routine; any other exit is worth a warning.
          const auto& local = agent.supervisor->local();
          auto it = local.find(name);
          const bool asked = it != local.end() && it->second.id == id &&
                             it->second.status == supervisor::LocalStatus::stopping;
          agent.log.log(normal || asked ? 1 : 2, normal || asked ? "info" : "warn", "supervisor",
                        "{} name={} how=\"{}\"", asked ? "stopped" : "exited", name, how);
          agent.supervisor->on_exited(uv_now(agent.loop), name, id, normal, how);
          agent.drive_supervisor();
        });
    if (!runtime) {
      std::fprintf(stderr, "shoal agent: --data-dir: %s\n", runtime.error().c_str());
      agent.membership->close([] {});
      uv_run(agent.loop, UV_RUN_DEFAULT);
      return 1;
    }
    agent.runtime = std::move(*runtime);
    uv_timer_init(agent.loop, &agent.supervisor_timer);
    agent.supervisor_timer.data = &agent;
    uv_timer_init(agent.loop, &agent.drain_timer);
    agent.drain_timer.data = &agent;
    uv_timer_init(agent.loop, &agent.worker_timer);
    agent.worker_timer.data = &agent;
    uv_timer_start(
        &agent.worker_timer,
        [](uv_timer_t* t) {
          auto* a = static_cast<Agent*>(t->data);
          if (a->workers.size() == 0) return;
          a->workers.tick(uv_now(a->loop));
          a->drive_supervisor();
        },
        100, 100);
    log.log(1, "info", "supervisor", "runtime data_dir={}", dir);
  }
  uv_timer_init(agent.loop, &agent.registry_timer);
  agent.registry_timer.data = &agent;
  uv_timer_init(agent.loop, &agent.settle_timer);
  agent.settle_timer.data = &agent;
  if (options.discovery == "none") {
    agent.placing = true;
  } else {
    uv_timer_start(
        &agent.settle_timer,
        [](uv_timer_t* t) {
          auto* a = static_cast<Agent*>(t->data);
          if (a->placing || a->left) return;
          a->log.log(1, "info", "supervisor", "placing children (no peer seen in {} ms)",
                     kStartupSettleMs);
          a->placing = true;
          Agent::registry_tick(&a->registry_timer);
        },
        kStartupSettleMs, 0);
  }
  agent.registry_tick(&agent.registry_timer);
  uv_timer_start(&agent.registry_timer, agent.registry_tick, 5000, 5000);
  std::uint64_t local_id = 0;
  for (const std::string& name : options.register_names) {
    const registry::Pid pid{agent.membership->core().name(), agent.membership->core().creation(),
                            ++local_id};
    auto done = agent.registry->register_name(wall_ms(), name, pid);
    if (!done) {
      log.log(2, "warn", "registry", "register failed name={} reason=\"{}\"", name,
              done.error().message);
    }
  }
  for (const supervisor::ChildSpec& spec : child_specs) {
    if (auto added = agent.supervisor->add(uv_now(agent.loop), spec); !added)
      log.log(2, "warn", "supervisor", "cannot add name={} reason=\"{}\"", spec.name,
              added.error());
  }
  publish_keys(agent);
  agent.membership->replicator()->flush(uv_now(agent.loop));
  agent.membership->settle();
  if (!seeds.empty()) {
    // Names resolve to every address they have; while this node sees no peer they are resolved
    // again every few seconds (pods of a headless service come and go).
    agent.resolver = std::make_unique<cluster::UvSeedResolver>(agent.loop, seeds);
    uv_timer_init(agent.loop, &agent.resolve_timer);
    agent.resolve_timer.data = &agent;
    auto resolve = [](Agent* a) {
      a->resolver->resolve([a](std::vector<Address> found, std::vector<std::string> errors) {
        for (const std::string& e : errors)
          a->log.log(2, "warn", "discovery", "seed lookup failed {}", e);
        if (!found.empty() && a->signals == 0) a->membership->join(std::move(found));
      });
    };
    resolve(&agent);
    uv_timer_start(
        &agent.resolve_timer,
        [](uv_timer_t* t) {
          auto* a = static_cast<Agent*>(t->data);
          const auto& core = a->membership->core();
          const std::size_t peers = core.count(cluster::MemberStatus::alive) +
                                    core.count(cluster::MemberStatus::suspect) - 1;
          if (peers == 0 && a->signals == 0 && !a->resolver->busy()) {
            a->resolver->resolve([a](std::vector<Address> found, std::vector<std::string> errors) {
              for (const std::string& e : errors)
                a->log.log(2, "warn", "discovery", "seed lookup failed {}", e);
              if (!found.empty() && a->signals == 0) a->membership->join(std::move(found));
            });
          }
        },
        5000, 5000);
    (void)resolve;
  }
  if (options.discovery == "multicast") {
    cluster::MulticastOptions mc;
    mc.group = *group;
    mc.interface = *bind;
    mc.name = agent.membership->core().name();
    mc.advertise = agent.membership->address();
    cluster::UvMembership* membership = agent.membership.get();
    auto discovery = cluster::UvMulticastDiscovery::start(
        agent.loop, mc, keyring_copy,
        [membership](const Address& addr, const std::string& name) {
          membership->announced(addr, name);
        },
        [membership] {
          const auto& core = membership->core();
          return core.count(cluster::MemberStatus::alive) +
                 core.count(cluster::MemberStatus::suspect) - 1;
        });
    if (!discovery) {
      std::fprintf(stderr, "shoal agent: --discovery multicast: %s\n", discovery.error().c_str());
      agent.membership->close([] {});
      uv_run(agent.loop, UV_RUN_DEFAULT);
      return 1;
    }
    agent.discovery = std::move(*discovery);
    log.log(1, "info", "discovery", "multicast group={} interface={}", mc.group.to_string(),
            mc.interface.to_string());
  }

  uv_signal_init(agent.loop, &agent.sigterm);
  uv_signal_init(agent.loop, &agent.sigint);
  uv_timer_init(agent.loop, &agent.leave_timer);
  agent.sigterm.data = agent.sigint.data = agent.leave_timer.data = &agent;
  uv_timer_init(agent.loop, &agent.report_timer);
  agent.report_timer.data = &agent;
  uv_timer_start(
      &agent.report_timer,
      [](uv_timer_t* t) {
        auto* a = static_cast<Agent*>(t->data);
        if (a->store && a->store->snapshot_due()) snapshot_map(a);
        const std::uint64_t auth = a->membership->stats().rejected_auth;
        const std::uint64_t malformed = a->membership->core().stats().rejected;
        const std::uint64_t replay = a->membership->stats().rejected_replay;
        if (a->supervisor) {
          // A summary of the supervisor when it changed: children in the cluster, and here.
          const std::pair<std::size_t, std::size_t> now{a->supervisor->spec_count(),
                                                        a->supervisor->local().size()};
          if (now != a->reported_children) {
            a->log.log(1, "info", "supervisor", "children={} here={}", now.first, now.second);
            a->reported_children = now;
          }
        }
        if (auth != a->reported_auth || malformed != a->reported_malformed ||
            replay != a->reported_replay) {
          a->log.log(2, "warn", "agent", "rejected packets auth={} malformed={} replay={} (totals)",
                     auth, malformed, replay);
          a->reported_auth = auth;
          a->reported_malformed = malformed;
          a->reported_replay = replay;
        }
      },
      1000, 1000);
  uv_timer_init(agent.loop, &agent.stats_timer);
  agent.stats_timer.data = &agent;
  if (options.stats_interval_ms > 0) {
    uv_timer_start(
        &agent.stats_timer,
        [](uv_timer_t* t) {
          auto* a = static_cast<Agent*>(t->data);
          const auto& s = a->membership->core().stats();
          const auto& core = a->membership->core();
          a->log.log(1, "info", "stats",
                     "alive={} suspect={} dead={} packets_in={} packets_out={} udp_bytes_in={} "
                     "udp_bytes_out={} probes={} suspicions={} refutes={} health={}",
                     core.count(cluster::MemberStatus::alive),
                     core.count(cluster::MemberStatus::suspect),
                     core.count(cluster::MemberStatus::dead), s.packets_in, s.packets_out,
                     a->membership->stats().udp_bytes_in, a->membership->stats().udp_bytes_out,
                     s.probes, s.suspicions, s.refutes, core.health_score());
        },
        options.stats_interval_ms, options.stats_interval_ms);
  }
  uv_signal_start(&agent.sigterm, on_signal, SIGTERM);
  uv_signal_start(&agent.sigint, on_signal, SIGINT);
  std::signal(SIGPIPE, SIG_IGN);
  // "agent started" promises that a SIGTERM from now on is a graceful leave: it is logged only
  // once the handlers are in place (a signal before that ends the process by default).
  log.log(1, "info", "agent", "started name={} addr={} encrypted={} rpc={} http={}",
          agent.membership->core().name(), agent.membership->address().to_string(),
          options.key_file.empty() ? "no" : "yes", agent.rpc->path(),
          options.http.empty() ? "off" : options.http);

  uv_run(agent.loop, UV_RUN_DEFAULT);
  const auto& s = agent.membership->core().stats();
  log.log(1, "info", "agent",
          "stopped packets_in={} packets_out={} rejected={} rejected_auth={} rejected_replay={}",
          s.packets_in, s.packets_out, s.rejected, agent.membership->stats().rejected_auth,
          agent.membership->stats().rejected_replay);
  snapshot_map(&agent);
  agent.runtime.reset();
  agent.supervisor.reset();
  agent.membership.reset();
  uv_loop_close(agent.loop);
  return 0;
}

}  // namespace shoal::bin
