// messaging_node: one cluster node (a supervisor::Stack on the libuv driver, as the agent runs it)
// driven over stdin by bench/messaging/run.py. It is the benchmark's instrument, not a product
// binary: it listens on 127.0.0.1 only and trusts its driver.
//
// Usage: messaging_node --name NAME --port PORT [--join PORT] [--key-file PATH]
//
// The node is tagged node=NAME, so a child can be pinned to it. Worker types:
//   bench-sink    counts what it is sent; payloads start with [u64 sender][u64 sequence]: it
//                 checks each sender's sequence (duplicates, reorderings, gaps)
//   echo          (built in) answers every call with its payload
//   bench-silent  never answers
//   bench-member  joins group "bench" and counts what it is sent
//   bench-pinger  calls its target COUNT times, one at a time, timing each round trip
// Commands, one per line on stdin; each answer is one JSON line on stdout ("event" says which):
//   members N                    answers "members" once N members are alive
//   run NAME TYPE                a child of TYPE named NAME, pinned to this node
//   await NAME                   answers "found" once NAME is registered (and where)
//   ping TARGET COUNT SIZE       a bench-pinger here calls TARGET; answers "pinged" with the
//                                round trips (microseconds) when done
//   blast TARGET COUNT SIZE      sends COUNT messages of SIZE bytes to TARGET as fast as the queue
//                                takes them (the rest of each loop turn waits); answers "blasted"
//   sinks                        the bench-sinks' and bench-members' counters ("sinks")
//   call TARGET TIMEOUT_MS       one call; answers "called" with its outcome and when it ended
//   publish GROUP COUNT SIZE     COUNT publishes; answers "published" with the deliveries counted
//   stats                        resident memory, queued bytes, messenger counters
//   quit
// Times are CLOCK_MONOTONIC nanoseconds (comparable between the processes of one machine).

#include <malloc.h>
#include <uv.h>

#include <fmt/format.h>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/provenance.h"
#include "cluster/keyring.h"
#include "cluster/uv/uv_driver.h"
#include "supervisor/stack.h"

namespace {

using namespace shoal;
using Clock = std::chrono::steady_clock;

std::int64_t mono_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

void answer(const std::string& json) {
  std::fputs(json.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

messaging::Target target_of(const std::string& text) {
  if (text.starts_with("<")) {
    if (auto pid = registry::Pid::parse(text)) return messaging::Target::of_pid(*pid);
  }
  return messaging::Target::of_name(text);
}

// What the bench workers here counted, by child name.
struct SinkCounts {
  std::uint64_t received = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t reordered = 0;
  std::uint64_t gaps = 0;
  std::int64_t first_ns = 0;
  std::int64_t last_ns = 0;
  std::map<std::uint64_t, std::uint64_t> next;  // sender -> the sequence number expected
};
std::map<std::string, SinkCounts> g_sinks;

struct PingPlan {
  std::string target;
  std::uint64_t count = 0;
  std::size_t size = 0;
};
PingPlan g_ping;

std::uint64_t read_u64(std::string_view p, std::size_t at) {
  std::uint64_t v = 0;
  if (p.size() >= at + 8) std::memcpy(&v, p.data() + at, 8);
  return v;
}

class Sink : public supervisor::Worker {
 public:
  void start(supervisor::WorkerContext& ctx, const std::optional<std::string>&) override {
    counts_ = &g_sinks[ctx.name()];
  }
  void on_message(supervisor::WorkerContext& ctx, const supervisor::Message& msg) override {
    SinkCounts& s = *counts_;
    const std::int64_t t = mono_ns();
    if (s.received++ == 0) s.first_ns = t;
    s.last_ns = t;
    const std::uint64_t sender = read_u64(msg.payload, 0);
    const std::uint64_t seq = read_u64(msg.payload, 8);
    std::uint64_t& want = s.next[sender];
    if (seq == want) {
      ++want;
    } else if (seq < want) {
      ++s.duplicates;
    } else {
      ++s.reordered;  // a later one before an earlier: an earlier one is late, or lost
      s.gaps += seq - want;
      want = seq + 1;
    }
    if (msg.reply_to) ctx.reply(*msg.reply_to, {});
  }

 private:
  SinkCounts* counts_ = nullptr;
};

class Member : public Sink {
 public:
  void start(supervisor::WorkerContext& ctx, const std::optional<std::string>& cp) override {
    Sink::start(ctx, cp);
    ctx.join("bench");
  }
};

class Silent : public supervisor::Worker {
 public:
  void start(supervisor::WorkerContext&, const std::optional<std::string>&) override {}
};

class Pinger : public supervisor::Worker {
 public:
  void start(supervisor::WorkerContext& ctx, const std::optional<std::string>&) override {
    plan_ = g_ping;
    payload_.assign(plan_.size, 'p');
    rtts_.reserve(plan_.count);
    next(ctx);
  }

 private:
  void next(supervisor::WorkerContext& ctx) {
    if (rtts_.size() + failures_ >= plan_.count) {
      report();
      return;
    }
    const std::int64_t sent = mono_ns();
    ctx.call(target_of(plan_.target), payload_, 5'000,
             [this, sent](supervisor::WorkerContext& c, messaging::CallResult r) {
               if (r) {
                 rtts_.push_back(static_cast<double>(mono_ns() - sent) / 1000.0);
               } else {
                 ++failures_;
               }
               next(c);
             });
  }
  void report() {
    std::string list = "[";
    for (std::size_t i = 0; i < rtts_.size(); ++i)
      list += (i ? "," : "") + fmt::format("{:.1f}", rtts_[i]);
    answer(fmt::format(R"({{"event":"pinged","ok":{},"failed":{},"rtts_us":{}]}})", rtts_.size(),
                       failures_, list));
  }
  PingPlan plan_;
  std::string payload_;
  std::vector<double> rtts_;
  std::uint64_t failures_ = 0;
};

struct Blast {
  messaging::Target target;
  std::uint64_t count = 0;
  std::uint64_t sent = 0;
  std::uint64_t refused = 0;
  std::size_t size = 64;
  std::int64_t start_ns = 0;
  std::string payload;
};

struct BenchNode {
  uv_loop_t* loop = nullptr;
  std::unique_ptr<cluster::UvDriver> driver;
  supervisor::Stack* stack = nullptr;
  std::string name;
  uv_pipe_t input{};
  std::string pending_input;
  std::uint64_t want_members = 0;
  std::vector<std::string> awaited;
  std::unique_ptr<Blast> blast;
  std::uint64_t blasts = 0;
  uv_idle_t blaster{};
  uv_timer_t poll{};
  std::map<std::uint64_t, std::int64_t> calls;  // call id -> sent
  bool quitting = false;

  void check() {
    const std::size_t alive = stack->membership().count(cluster::MemberStatus::alive);
    if (want_members != 0 && alive >= want_members) {
      want_members = 0;
      answer(fmt::format(R"({{"event":"members","alive":{}}})", alive));
    }
    for (auto it = awaited.begin(); it != awaited.end();) {
      auto where = stack->registry().whereis(*it);
      if (!where) {
        ++it;
        continue;
      }
      answer(fmt::format(R"({{"event":"found","name":"{}","node":"{}","pid":"{}"}})", *it,
                         where->pid.node, where->pid.to_string()));
      it = awaited.erase(it);
    }
  }

  bool on_output() {
    std::vector<supervisor::StackOutput> outputs;
    stack->take_outputs(outputs);
    for (supervisor::StackOutput& o : outputs) {
      if (auto* done = std::get_if<messaging::CallDone>(&o)) {
        auto it = calls.find(done->call_id);
        if (it == calls.end()) continue;
        answer(fmt::format(R"({{"event":"called","ok":{},"error":"{}","sent_ns":{},"done_ns":{}}})",
                           done->result.has_value(),
                           done->result ? "" : messaging::call_error_name(done->result.error()),
                           it->second, mono_ns()));
        calls.erase(it);
      }
    }
    return false;
  }

  // Each loop turn: send until the queue refuses or a batch is out; the loop then writes them.
  void blast_some() {
    Blast& b = *blast;
    for (int k = 0; k < 20'000 && b.sent < b.count; ++k) {
      std::memcpy(b.payload.data() + 8, &b.sent, 8);
      auto r = stack->messenger().send(driver->now(), b.target, 1, b.payload);
      if (!r) {
        ++b.refused;
        break;
      }
      ++b.sent;
    }
    driver->settle();
    if (b.sent < b.count) return;
    uv_idle_stop(&blaster);
    answer(fmt::format(R"({{"event":"blasted","sent":{},"refused":{},"start_ns":{},"end_ns":{}}})",
                       b.sent, b.refused, b.start_ns, mono_ns()));
    blast.reset();
  }

  void command(const std::string& line) {
    std::istringstream in(line);
    std::string verb;
    in >> verb;
    const std::uint64_t now = driver->now();
    if (verb == "members") {
      in >> want_members;
      check();
    } else if (verb == "run") {
      std::string child, type;
      in >> child >> type;
      supervisor::ChildSpec spec;
      spec.name = child;
      spec.kind = supervisor::ChildKind::worker;
      spec.worker_type = type;
      spec.constraints["node"] = name;
      if (auto added = stack->supervisor().add(now, spec); !added)
        answer(fmt::format(R"({{"event":"error","message":"{}"}})", added.error()));
      driver->settle();
    } else if (verb == "await") {
      std::string child;
      in >> child;
      awaited.push_back(child);
      check();
    } else if (verb == "ping") {
      in >> g_ping.target >> g_ping.count >> g_ping.size;
      supervisor::ChildSpec spec;
      spec.name = "pinger-" + std::to_string(now);
      spec.kind = supervisor::ChildKind::worker;
      spec.worker_type = "bench-pinger";
      spec.restart = supervisor::Restart::temporary;
      spec.constraints["node"] = name;
      (void)stack->supervisor().add(now, spec);
      driver->settle();
    } else if (verb == "blast") {
      auto b = std::make_unique<Blast>();
      std::string target;
      in >> target >> b->count >> b->size;
      b->target = target_of(target);
      b->payload.assign(std::max<std::size_t>(b->size, 16), 'x');
      // Each blast is a sender of its own: the sinks check its sequence from 0.
      const std::uint64_t sender = std::hash<std::string>{}(name) + ++blasts;
      std::memcpy(b->payload.data(), &sender, 8);
      b->start_ns = mono_ns();
      blast = std::move(b);
      uv_idle_start(&blaster, [](uv_idle_t* h) { static_cast<BenchNode*>(h->data)->blast_some(); });
    } else if (verb == "sinks") {
      std::string out = R"({"event":"sinks","sinks":{)";
      bool first = true;
      for (const auto& [child, s] : g_sinks) {
        out += fmt::format(
            R"({}"{}":{{"received":{},"duplicates":{},"reordered":{},"gaps":{},"first_ns":{},"last_ns":{}}})",
            first ? "" : ",", child, s.received, s.duplicates, s.reordered, s.gaps, s.first_ns,
            s.last_ns);
        first = false;
      }
      answer(out + "}}");
    } else if (verb == "call") {
      std::string target;
      std::uint64_t timeout = 5'000;
      in >> target >> timeout;
      auto id = stack->messenger().call(now, target_of(target), 1, "are you there", timeout);
      if (!id) {
        answer(
            fmt::format(R"({{"event":"called","ok":false,"error":"{}","sent_ns":{},"done_ns":{}}})",
                        messaging::call_error_name(id.error()), mono_ns(), mono_ns()));
      } else {
        calls[*id] = mono_ns();
      }
      driver->settle();
    } else if (verb == "publish") {
      std::string group;
      std::uint64_t count = 0;
      std::size_t size = 64;
      in >> group >> count >> size;
      std::string payload(std::max<std::size_t>(size, 16), 'p');
      // A sender of its own, and a sequence: the members check the order.
      const std::uint64_t sender = std::hash<std::string>{}(name) + ++blasts;
      std::memcpy(payload.data(), &sender, 8);
      std::uint64_t deliveries = 0;
      const std::int64_t start = mono_ns();
      for (std::uint64_t k = 0; k < count; ++k) {
        std::memcpy(payload.data() + 8, &k, 8);
        auto n = stack->messenger().publish(driver->now(), group, 1, payload);
        if (n) deliveries += *n;
      }
      driver->settle();
      answer(fmt::format(R"({{"event":"published","deliveries":{},"start_ns":{},"end_ns":{}}})",
                         deliveries, start, mono_ns()));
    } else if (verb == "stats") {
      malloc_trim(0);
      const auto& m = stack->messenger().stats();
      answer(fmt::format(
          R"({{"event":"stats","rss_kb":{},"queued_bytes":{},"connections":{},"messages_out":{},"messages_in":{},"bytes_out":{},"bytes_in":{},"overloaded":{},"dropped":{}}})",
          shoal::bench::resident_kib(), stack->messenger().queued_bytes(),
          stack->messenger().connections_up(), m.messages_out, m.messages_in, m.bytes_out,
          m.bytes_in, m.overloaded, m.dropped));
    } else if (verb == "quit") {
      quit();
    } else {
      answer(fmt::format(R"({{"event":"error","message":"unknown command {}"}})", verb));
    }
  }

  void quit() {
    if (quitting) return;
    quitting = true;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&input));
    uv_close(reinterpret_cast<uv_handle_t*>(&input), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&blaster), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&poll), nullptr);
    driver->close([] {});
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string name;
  std::string key_file;
  int port = 0;
  int join = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--name") {
      name = argv[i + 1];
    } else if (flag == "--port") {
      port = std::atoi(argv[i + 1]);
    } else if (flag == "--join") {
      join = std::atoi(argv[i + 1]);
    } else if (flag == "--key-file") {
      key_file = argv[i + 1];
    } else {
      std::fprintf(stderr, "messaging_node: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (name.empty() || port <= 0 || port > 65535) {
    std::fprintf(stderr,
                 "usage: messaging_node --name NAME --port PORT [--join PORT] [--key-file PATH]\n");
    return 2;
  }
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);  // as the agent does (bin/agent.cpp)
  BenchNode node;
  node.name = name;
  node.loop = uv_default_loop();
  cluster::UvDriverOptions options;
  options.bind = *cluster::Address::parse("127.0.0.1:" + std::to_string(port));
  if (!key_file.empty()) {
    auto ring = cluster::Keyring::from_file(key_file);
    if (!ring) {
      std::fprintf(stderr, "messaging_node: %s\n", ring.error().c_str());
      return 2;
    }
    options.keyring = std::move(*ring);
  }
  const std::uint64_t creation =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  supervisor::StackConfig config;
  config.startup_settle_ms = 0;
  auto started = cluster::UvDriver::start(
      node.loop, options,
      [&](const cluster::Address& advertise, std::uint64_t now) {
        auto stack = std::make_unique<supervisor::Stack>(
            config, cluster::NodeIdentity{name, advertise, creation, {{"node", name}}},
            creation ^ static_cast<std::uint64_t>(port), now);
        stack->workers().add_type("bench-sink", [] { return std::make_unique<Sink>(); });
        stack->workers().add_type("bench-member", [] { return std::make_unique<Member>(); });
        stack->workers().add_type("bench-silent", [] { return std::make_unique<Silent>(); });
        stack->workers().add_type("bench-pinger", [] { return std::make_unique<Pinger>(); });
        node.stack = stack.get();
        return stack;
      },
      [&node](const cluster::MemberEvent&) { node.check(); });
  if (!started) {
    std::fprintf(stderr, "messaging_node: %s\n", started.error().c_str());
    return 1;
  }
  node.driver = std::move(*started);
  node.driver->on_output([&node] { return node.on_output(); });
  uv_idle_init(node.loop, &node.blaster);
  node.blaster.data = &node;
  // Registrations arrive with map changes: awaited names are looked for every few ms.
  uv_timer_init(node.loop, &node.poll);
  node.poll.data = &node;
  uv_timer_start(
      &node.poll, [](uv_timer_t* t) { static_cast<BenchNode*>(t->data)->check(); }, 5, 5);
  if (join != 0) node.driver->join({*cluster::Address::parse("127.0.0.1:" + std::to_string(join))});

  uv_pipe_init(node.loop, &node.input, 0);
  uv_pipe_open(&node.input, 0);
  node.input.data = &node;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&node.input),
      [](uv_handle_t*, std::size_t size, uv_buf_t* buf) {
        *buf = uv_buf_init(static_cast<char*>(std::malloc(size)), static_cast<unsigned>(size));
      },
      [](uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
        auto* self = static_cast<BenchNode*>(stream->data);
        if (n < 0) {
          std::free(buf->base);
          self->quit();
          return;
        }
        self->pending_input.append(buf->base, static_cast<std::size_t>(n));
        std::free(buf->base);
        std::size_t eol;
        while ((eol = self->pending_input.find('\n')) != std::string::npos) {
          const std::string line = self->pending_input.substr(0, eol);
          self->pending_input.erase(0, eol + 1);
          if (!line.empty()) self->command(line);
          if (self->quitting) return;
        }
      });
  uv_run(node.loop, UV_RUN_DEFAULT);
  return 0;
}
