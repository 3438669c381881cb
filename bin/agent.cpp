// The agent: the wiring of one node on a libuv loop (start_*), then the loop's handlers. The
// layers themselves are assembled in supervisor::Stack; what is here is IO: sockets, the exec
// children's processes, the map on disk, signals, and the log.

#include "bin/agent.h"

#include <fmt/format.h>
#include <malloc.h>
#include <unistd.h>
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "bin/agent_state.h"
#include "cluster/keyring.h"

namespace shoal::bin {

namespace {

using cluster::Address;
using Level = supervisor::LogLevel;

// Gossip rounds a leave is given to spread before the agent closes.
constexpr std::uint64_t kLeaveLingerMs = 500;

// --- Handlers ---

// A registry event: the log, and the watchers and event streams whose prefix it matches.
void on_registry_event(Agent& a, const registry::RegistryEvent& e) {
  if (a.log.enabled(Level::info)) {
    std::string line = fmt::format("{} name={}", registry::event_name(e.kind), e.name);
    if (e.pid) line += " pid=" + e.pid->to_string();
    if (e.previous) line += " previous=" + e.previous->to_string();
    for (const auto& loser : e.losers)
      line += " loser=" + loser.to_string();
    a.log.line(Level::info, "registry", line);
  }
  if (!a.endpoints.watched()) return;
  rpc::Value ev = rpc::Value::map();
  ev.set("type", "name");
  ev.set("event", registry::event_name(e.kind));
  ev.set("name", e.name);
  ev.set("pid", e.pid ? rpc::Value(e.pid->to_string()) : rpc::Value());
  ev.set("node", e.pid ? rpc::Value(e.pid->node) : rpc::Value());
  ev.set("previous", e.previous ? rpc::Value(e.previous->to_string()) : rpc::Value());
  ev.set("time", wall_clock_ms());
  rpc_event(a, e.name, ev);
}

void on_member_event(Agent& a, const cluster::MemberEvent& e) {
  a.log.log(Level::info, "membership", "{} name={} addr={} incarnation={} creation={}",
            cluster::event_name(e.kind), e.name, e.addr.to_string(), e.incarnation, e.creation);
  if (!a.endpoints.watched()) return;
  rpc::Value ev = rpc::Value::map();
  ev.set("type", "member");
  ev.set("event", cluster::event_name(e.kind));
  ev.set("name", e.name);
  ev.set("addr", e.addr.to_string());
  ev.set("incarnation", e.incarnation);
  ev.set("time", wall_clock_ms());
  rpc_event(a, e.name, ev);
}

// A child instance's start or end here, for watchers and event streams (the log has its own
// lines).
void on_child_event(Agent& a, const supervisor::ChildEvent& e) {
  if (!a.endpoints.watched()) return;
  rpc::Value ev = rpc::Value::map();
  ev.set("type", "child");
  ev.set("event", supervisor::child_event_name(e.kind));
  ev.set("name", e.name);
  ev.set("node", a.membership().name());
  ev.set("instance", e.id);
  ev.set("detail", e.detail);
  ev.set("time", wall_clock_ms());
  rpc_event(a, e.name, ev);
}

// Writes the map on disk as a snapshot (compacting the log).
void snapshot_map(Agent& a) {
  const cluster::Replicator* replicator = a.node.stack ? a.stack().replicator() : nullptr;
  if (!a.node.store || replicator == nullptr) return;
  if (auto saved = a.node.store->snapshot(replicator->state()); !saved)
    a.log.log(Level::warn, "store", "snapshot failed: {}", saved.error());
}

// Closes every handle; the loop then ends. Children still here are killed with their runtime.
void close_all(Agent& a) {
  close_messaging(a);
  if (a.node.runtime) a.node.runtime->close([] {});
  if (a.discovery.multicast) a.discovery.multicast->close([] {});
  if (a.endpoints.rpc) a.endpoints.rpc->close([] {});
  if (a.endpoints.http) a.endpoints.http->close([] {});
  if (a.discovery.resolver) {
    a.discovery.resolver->close();
    uv_close(reinterpret_cast<uv_handle_t*>(&a.discovery.resolve_timer), nullptr);
  }
  Agent* agent = &a;
  a.node.driver->close([agent] {
    for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&agent->life.sigterm),
                           reinterpret_cast<uv_handle_t*>(&agent->life.sigint),
                           reinterpret_cast<uv_handle_t*>(&agent->life.leave_timer),
                           reinterpret_cast<uv_handle_t*>(&agent->life.report_timer),
                           reinterpret_cast<uv_handle_t*>(&agent->life.stats_timer),
                           reinterpret_cast<uv_handle_t*>(&agent->life.insecure_timer)}) {
      uv_close(h, nullptr);
    }
  });
}

// What the stack has for the agent: exec children to start and stop, registry events, log
// lines, the end of a leave. Returns true if it fed the stack (the runtime's reports).
bool on_output(Agent& a) {
  std::vector<supervisor::StackOutput> outputs;
  a.stack().take_outputs(outputs);
  bool fed = false;
  for (supervisor::StackOutput& o : outputs) {
    if (on_messaging_output(a, o)) {
      fed = true;
    } else if (auto* start = std::get_if<supervisor::StartChild>(&o)) {
      fed = true;
      auto pid = a.node.runtime->start(*start);
      if (pid) {
        open_child_mailbox(a, start->spec.name, start->id);
        a.stack().on_child_started(a.now(), start->spec.name, start->id, *pid);
      } else {
        a.stack().on_child_start_failed(a.now(), start->spec.name, start->id, pid.error());
      }
    } else if (auto* stop = std::get_if<supervisor::StopChild>(&o)) {
      a.node.runtime->stop(*stop);
    } else if (auto* event = std::get_if<registry::RegistryEvent>(&o)) {
      on_registry_event(a, *event);
    } else if (auto* line = std::get_if<supervisor::LogLine>(&o)) {
      a.log.line(line->level, line->component, line->text);
    } else if (auto* child = std::get_if<supervisor::ChildEvent>(&o)) {
      on_child_event(a, *child);
    } else if (std::holds_alternative<supervisor::Left>(o)) {
      uv_timer_start(
          &a.life.leave_timer, [](uv_timer_t* t) { close_all(*static_cast<Agent*>(t->data)); },
          kLeaveLingerMs, 0);
    }
  }
  return fed;
}

void on_signal(uv_signal_t* handle, int signum) {
  auto* a = static_cast<Agent*>(handle->data);
  if (++a->life.signals > 1) {
    a->log.log(Level::warn, "agent", "second signal: exiting at once signal={}", signum);
    std::_Exit(1);
  }
  begin_leave(*a, fmt::format("signal={}", signum));
}

// Once a second: a snapshot when the log is long, the supervisor's summary when it changed,
// rejected traffic when there was more.
// glibc's malloc keeps freed heap memory for reuse and returns little of it by itself: after a
// burst (a run-batch of thousands of specs, a full state from each of many peers) an agent would
// keep several times its live heap resident. Every kTrimEveryTicks report ticks, if more than
// kTrimAboveBytes of the heap is free, the free pages go back to the OS. Both calls walk the
// heap's free lists, every 10 s only.
constexpr unsigned kTrimEveryTicks = 10;
constexpr std::size_t kTrimAboveBytes = 4u << 20;

void return_free_memory(Agent& a) {
#if defined(__GLIBC__)
  if (++a.life.trim_ticks < kTrimEveryTicks) return;
  a.life.trim_ticks = 0;
  const std::size_t free_bytes = mallinfo2().fordblks;
  if (free_bytes < kTrimAboveBytes) return;
  const bool returned = malloc_trim(0) != 0;
  a.log.log(Level::debug, "agent", "heap: {} KiB free, {}returned to the OS", free_bytes / 1024,
            returned ? "" : "none ");
#else
  (void)a;
#endif
}

void report_tick(uv_timer_t* t) {
  auto* a = static_cast<Agent*>(t->data);
  if (a->node.store && a->node.store->snapshot_due()) snapshot_map(*a);
  return_free_memory(*a);
  const cluster::UvStats& uv = a->node.driver->stats();
  const std::uint64_t malformed = a->membership().stats().rejected;
  const std::pair<std::size_t, std::size_t> children{a->supervisor().spec_count(),
                                                     a->supervisor().local().size()};
  if (children != a->life.reported_children) {
    a->log.log(Level::info, "supervisor", "children={} here={}", children.first, children.second);
    a->life.reported_children = children;
  }
  if (uv.rejected_auth != a->life.reported_auth || malformed != a->life.reported_malformed ||
      uv.rejected_replay != a->life.reported_replay) {
    a->log.log(Level::warn, "agent", "rejected packets auth={} malformed={} replay={} (totals)",
               uv.rejected_auth, malformed, uv.rejected_replay);
    a->life.reported_auth = uv.rejected_auth;
    a->life.reported_malformed = malformed;
    a->life.reported_replay = uv.rejected_replay;
  }
}

// --insecure overrode the refusal to bind a reachable address without a key: said at start and
// every hour, so it is never forgotten in a log.
constexpr std::uint64_t kInsecureWarningMs = 3'600'000;

void warn_insecure(uv_timer_t* t) {
  auto* a = static_cast<Agent*>(t->data);
  a->log.log(Level::warn, "agent",
             "insecure: no cluster key on {}: anyone who reaches it can join and run commands on "
             "every node (make a key with `shoal keys generate`, pass --key-file)",
             a->config.bind.to_string());
}

void stats_tick(uv_timer_t* t) {
  auto* a = static_cast<Agent*>(t->data);
  const cluster::Membership& m = a->membership();
  const auto& s = m.stats();
  a->log.log(Level::info, "stats",
             "alive={} suspect={} dead={} packets_in={} packets_out={} udp_bytes_in={} "
             "udp_bytes_out={} probes={} suspicions={} refutes={} health={}",
             m.count(cluster::MemberStatus::alive), m.count(cluster::MemberStatus::suspect),
             m.count(cluster::MemberStatus::dead), s.packets_in, s.packets_out,
             a->node.driver->stats().udp_bytes_in, a->node.driver->stats().udp_bytes_out, s.probes,
             s.suspicions, s.refutes, m.health_score());
}

// --- Wiring, in start order ---

// The data dir, the RPC socket (first: a second agent on the same socket stops here, before it
// binds anything else or starts a child), and the HTTP endpoint.
std::expected<void, std::string> start_endpoints(Agent& a) {
  const AgentConfig& c = a.config;
  std::error_code ec;
  std::filesystem::create_directories(c.data_dir, ec);
  if (ec) return std::unexpected("--data-dir " + c.data_dir + ": " + ec.message());
  Agent* agent = &a;
  auto rpc = rpc::RpcServer::listen(
      a.loop, c.rpc_path,
      [agent](rpc::ClientId client, rpc::Request request) {
        handle_rpc(*agent, client, std::move(request));
      },
      [agent](rpc::ClientId client) { rpc_closed(*agent, client); });
  if (!rpc) return std::unexpected("--rpc: " + rpc.error());
  a.endpoints.rpc = std::move(*rpc);
  if (c.http.empty()) return {};
  auto http = http::HttpServer::listen(a.loop, c.http,
                                       [agent](const std::string& path, const std::string& query) {
                                         return http_request(*agent, path, query);
                                       });
  if (!http) return std::unexpected("--http: " + http.error());
  a.endpoints.http = std::move(*http);
  return {};
}

// The node: the sockets, and the stack the driver runs.
std::expected<void, std::string> start_node(Agent& a, cluster::Keyring keyring) {
  const AgentConfig& c = a.config;
  cluster::UvDriverOptions options;
  options.bind = c.bind;
  if (c.advertise) options.advertise = *c.advertise;
  options.keyring = std::move(keyring);
  Agent* agent = &a;
  const std::uint64_t creation = wall_clock_ms();
  const std::uint64_t seed = creation ^ (static_cast<std::uint64_t>(getpid()) << 32);
  auto driver = cluster::UvDriver::start(
      a.loop, std::move(options),
      [agent, creation, seed](const Address& advertise, std::uint64_t now) {
        const AgentConfig& cfg = agent->config;
        auto stack = std::make_unique<supervisor::Stack>(
            cfg.stack, cluster::NodeIdentity{cfg.name, advertise, creation, cfg.tags}, seed, now);
        agent->node.stack = stack.get();
        return stack;
      },
      [agent](const cluster::MemberEvent& e) { on_member_event(*agent, e); },
      [agent](const cluster::UserMessage& m) { on_user_message(*agent, m); });
  if (!driver) return std::unexpected(driver.error());
  a.node.driver = std::move(*driver);
  a.node.driver->on_output([agent] { return on_output(*agent); });
  a.started_ms = a.now();
  return {};
}

// The map on disk: what it held is joined before anything is placed (a whole cluster that stopped
// finds its children again), and everything the map takes in from now on is logged.
std::expected<void, std::string> start_store(Agent& a) {
  cluster::StoreOptions options;
  options.fsync = a.config.fsync;
  auto store = cluster::MapStore::open(a.config.data_dir + "/map", options);
  if (!store) return std::unexpected("--data-dir: " + store.error());
  auto loaded = (*store)->load();
  if (!loaded) return std::unexpected("--data-dir: " + loaded.error());
  a.node.store = std::move(*store);
  if (!loaded->problem.empty())
    a.log.log(Level::warn, "store", "{} (dir={})", loaded->problem, a.node.store->dir());
  cluster::Replicator& replicator = *a.stack().replicator();
  if (loaded->records > 0) {
    replicator.restore(a.now(), loaded->state);
    a.log.log(Level::info, "store", "restored records={} entries={} dir={}", loaded->records,
              loaded->state.entry_count(), a.node.store->dir());
  }
  // Compact what was read into one snapshot, then log from there.
  snapshot_map(a);
  Agent* agent = &a;
  replicator.set_journal([agent](std::string_view encoded) {
    auto done = agent->node.store->append(encoded);
    if (!done && !agent->node.store_failed) {
      agent->node.store_failed = true;
      agent->log.log(Level::error, "store", "append failed: {} (no more warnings)", done.error());
    }
  });
  return {};
}

// The OS runtime of exec children; its exits go to the stack.
std::expected<void, std::string> start_runtime(Agent& a) {
  const AgentConfig& c = a.config;
  const supervisor::SupervisorConfig& s = c.stack.supervisor;
  if (s.mode == supervisor::Mode::quorum) {
    const bool unsafe = s.lease_ms < c.safe_lease_ms;
    a.log.log(
        unsafe ? Level::warn : Level::info, "supervisor",
        "mode=quorum expect={} majority={} fence_ms={} lease_ms={}{}", s.expect, s.expect / 2 + 1,
        s.fence_after_ms, s.lease_ms,
        unsafe ? fmt::format(" (below the safe bound {} ms: two copies may run)", c.safe_lease_ms)
               : "");
  }
  supervisor::ExecRuntimeOptions options;
  options.node = c.name;
  options.log_dir = c.data_dir + "/logs";
  options.checkpoint_dir = c.data_dir + "/checkpoints";
  options.env.push_back("SHOAL_RPC=" + a.endpoints.rpc->path());
  options.policy = c.exec_policy;
  Agent* agent = &a;
  auto runtime = supervisor::ExecRuntime::create(
      a.loop, options,
      [agent](const std::string& name, std::uint64_t id, bool normal, const std::string& how) {
        agent->stack().on_child_exited(agent->now(), name, id, normal, how);
        close_child_mailbox(*agent, id);
        agent->settle();
      });
  if (!runtime) return std::unexpected("--data-dir: " + runtime.error());
  a.node.runtime = std::move(*runtime);
  a.log.log(Level::info, "supervisor", "runtime data_dir={} exec={}", c.data_dir,
            supervisor::encode_exec_policy(c.exec_policy));
  return {};
}

// --register names and --child/--worker children, and this node's key fingerprints.
void start_content(Agent& a) {
  const std::uint64_t now = a.now();
  const cluster::Membership& m = a.membership();
  for (const std::string& name : a.config.register_names) {
    const registry::Pid pid{m.name(), m.creation(), ++a.endpoints.next_local_id};
    if (auto done = a.registry().register_name(now, name, pid); !done) {
      a.log.log(Level::warn, "registry", "register failed name={} reason=\"{}\"", name,
                done.error().message);
    }
  }
  for (supervisor::ChildSpec spec : a.config.children) {
    if (spec.kind == supervisor::ChildKind::exec) {
      // Recorded for placement against members' exec policies (unknown if not found here).
      spec.exec_path = supervisor::resolve_executable(spec.argv[0], spec.cwd).value_or("");
    }
    if (auto added = a.supervisor().add(now, spec); !added)
      a.log.log(Level::warn, "supervisor", "cannot add name={} reason=\"{}\"", spec.name,
                added.error());
  }
  publish_keys(a);
  a.stack().flush(now);
  a.settle();
}

void resolve_seeds(Agent& a) {
  Agent* agent = &a;
  a.discovery.resolver->resolve(
      [agent](std::vector<Address> found, std::vector<std::string> errors) {
        for (const std::string& e : errors)
          agent->log.log(Level::warn, "discovery", "seed lookup failed {}", e);
        if (!found.empty() && agent->life.signals == 0) agent->node.driver->join(std::move(found));
      });
}

// Seeds (names resolve to every address they have, again every few seconds while this node sees
// no peer: pods of a headless service come and go), and multicast announcements.
std::expected<void, std::string> start_discovery(Agent& a) {
  const AgentConfig& c = a.config;
  if (!c.seeds.empty()) {
    a.discovery.resolver = std::make_unique<cluster::UvSeedResolver>(a.loop, c.seeds);
    uv_timer_init(a.loop, &a.discovery.resolve_timer);
    a.discovery.resolve_timer.data = &a;
    resolve_seeds(a);
    uv_timer_start(
        &a.discovery.resolve_timer,
        [](uv_timer_t* t) {
          auto* agent = static_cast<Agent*>(t->data);
          const cluster::Membership& m = agent->membership();
          const std::size_t peers =
              m.count(cluster::MemberStatus::alive) + m.count(cluster::MemberStatus::suspect) - 1;
          if (peers == 0 && agent->life.signals == 0 && !agent->discovery.resolver->busy())
            resolve_seeds(*agent);
        },
        5000, 5000);
  }
  if (c.discovery != Discovery::multicast) return {};
  cluster::MulticastOptions mc;
  mc.group = c.multicast_group;
  mc.interface = c.bind;
  mc.name = c.name;
  mc.advertise = a.node.driver->address();
  cluster::UvDriver* driver = a.node.driver.get();
  auto multicast = cluster::UvMulticastDiscovery::start(
      a.loop, mc, driver->keyring(),
      [driver](const Address& addr, const std::string& name) { driver->announced(addr, name); },
      [driver] {
        const cluster::Membership& m = driver->membership();
        return m.count(cluster::MemberStatus::alive) + m.count(cluster::MemberStatus::suspect) - 1;
      });
  if (!multicast) return std::unexpected("--discovery multicast: " + multicast.error());
  a.discovery.multicast = std::move(*multicast);
  a.log.log(Level::info, "discovery", "multicast group={} interface={}", mc.group.to_string(),
            mc.interface.to_string());
  return {};
}

// Signals and periodic reports. "agent started" is logged after this: it promises that a SIGTERM
// from now on is a graceful leave (before, a signal ends the process by default).
void start_life(Agent& a) {
  for (uv_timer_t* t :
       {&a.life.leave_timer, &a.life.report_timer, &a.life.stats_timer, &a.life.insecure_timer}) {
    uv_timer_init(a.loop, t);
    t->data = &a;
  }
  uv_timer_start(&a.life.report_timer, report_tick, 1000, 1000);
  if (a.config.insecure) {
    warn_insecure(&a.life.insecure_timer);
    uv_timer_start(&a.life.insecure_timer, warn_insecure, kInsecureWarningMs, kInsecureWarningMs);
  }
  if (a.config.stats_interval_ms > 0) {
    uv_timer_start(&a.life.stats_timer, stats_tick, a.config.stats_interval_ms,
                   a.config.stats_interval_ms);
  }
  uv_signal_init(a.loop, &a.life.sigterm);
  uv_signal_init(a.loop, &a.life.sigint);
  a.life.sigterm.data = a.life.sigint.data = &a;
  uv_signal_start(&a.life.sigterm, on_signal, SIGTERM);
  uv_signal_start(&a.life.sigint, on_signal, SIGINT);
  std::signal(SIGPIPE, SIG_IGN);
}

// Closes what was started when a later step failed, and runs the loop until it is all closed.
int fail_start(Agent& a, const std::string& why) {
  std::fprintf(stderr, "shoal agent: %s\n", why.c_str());
  if (a.node.runtime) a.node.runtime->close([] {});
  if (a.discovery.resolver) a.discovery.resolver->close();
  if (a.endpoints.rpc) a.endpoints.rpc->close([] {});
  if (a.endpoints.http) a.endpoints.http->close([] {});
  if (a.node.driver) a.node.driver->close([] {});
  uv_run(a.loop, UV_RUN_DEFAULT);
  return 1;
}

}  // namespace

void begin_leave(Agent& agent, std::string_view why) {
  agent.stack().leave(agent.now(), why);
  agent.settle();
}

int run_agent(const AgentConfig& config) {
  // Allocations below 32 MiB come from the heap from the start (glibc learns this threshold only
  // after freeing large blocks): a bulk write's growing buffers then reuse memory instead of
  // mapping, faulting in and unmapping fresh pages each time (bench/registry/RESULTS.md).
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  cluster::Keyring keyring;
  if (!config.key_file.empty()) {
    auto ring = cluster::Keyring::from_file(config.key_file);
    if (!ring) {
      std::fprintf(stderr, "shoal agent: --key-file: %s\n", ring.error().c_str());
      return 2;
    }
    keyring = std::move(*ring);
  }
  Agent agent(uv_default_loop(), config);
  std::expected<void, std::string> done = start_endpoints(agent);
  if (done) done = start_node(agent, std::move(keyring));
  if (done) done = start_store(agent);
  if (done) done = start_runtime(agent);
  if (done) {
    start_content(agent);
    done = start_discovery(agent);
  }
  if (!done) return fail_start(agent, done.error());
  start_life(agent);
  agent.log.log(Level::info, "agent", "started name={} addr={} encrypted={} rpc={} http={}",
                config.name, agent.node.driver->address().to_string(),
                config.key_file.empty() ? "no" : "yes", agent.endpoints.rpc->path(),
                config.http.empty() ? "off" : config.http);

  uv_run(agent.loop, UV_RUN_DEFAULT);
  const auto& s = agent.membership().stats();
  agent.log.log(Level::info, "agent",
                "stopped packets_in={} packets_out={} rejected={} rejected_auth={} "
                "rejected_replay={}",
                s.packets_in, s.packets_out, s.rejected, agent.node.driver->stats().rejected_auth,
                agent.node.driver->stats().rejected_replay);
  snapshot_map(agent);
  agent.node.runtime.reset();
  agent.node.stack = nullptr;
  agent.node.driver.reset();
  uv_loop_close(agent.loop);
  return 0;
}

}  // namespace shoal::bin
