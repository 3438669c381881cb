// registry_node: one cluster node (a supervisor::Stack, as the agent runs it: membership,
// replication, registry) driven over stdin/stdout by bench/registry/run.py. It is the benchmark's
// instrument, not a product binary: it listens on 127.0.0.1 only and trusts its driver.
//
// Usage: registry_node --name NAME --port PORT [--join PORT]
//
// Commands, one per line on stdin; every answer is one JSON line on stdout (an "event" field says
// which). Times are CLOCK_MONOTONIC nanoseconds (std::chrono::steady_clock), comparable between
// the processes of one machine.
//   members N                    answers "members" once N members are alive
//   expect PREFIX COUNT STEP     counts registered events of names PREFIX<i>; records the arrival
//                                time of every i with i % STEP == 0; answers "expected" when
//                                COUNT names have arrived
//   register PREFIX FROM COUNT STEP
//                                registers PREFIX<i> for i in [FROM, FROM+COUNT) in one loop turn
//                                and answers "registered" with the rate and the return time of
//                                every i with i % STEP == 0
//   trickle PREFIX COUNT GAP_MS  registers one name every GAP_MS ms; answers "trickled" with the
//                                return time of each
//   whereis PREFIX COUNT LOOKUPS times whereis of random names among PREFIX<0..COUNT)
//   stats                        resident memory (after malloc_trim), bytes sent and received,
//                                names held, encoded size of the map
//   quit                         leaves and exits

#include <malloc.h>
#include <uv.h>

#include <fmt/format.h>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench/provenance.h"
#include "cluster/uv/uv_driver.h"
#include "crdt/codec.h"
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

std::string samples_json(const std::vector<std::pair<std::uint64_t, std::int64_t>>& samples) {
  std::string out = "[";
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (i > 0) out += ',';
    out += fmt::format("[{},{}]", samples[i].first, samples[i].second);
  }
  return out + "]";
}

struct Expectation {
  std::string prefix;
  std::uint64_t count = 0;
  std::uint64_t step = 1;
  std::uint64_t seen = 0;
  std::int64_t last_ns = 0;
  std::vector<std::pair<std::uint64_t, std::int64_t>> samples;
};

struct Trickle {
  std::string prefix;
  std::uint64_t count = 0;
  std::uint64_t next = 0;
  std::vector<std::pair<std::uint64_t, std::int64_t>> samples;
};

struct BenchNode {
  uv_loop_t* loop = nullptr;
  std::unique_ptr<cluster::UvDriver> driver;
  supervisor::Stack* stack = nullptr;  // the driver's core
  uv_pipe_t input{};
  std::string pending_input;
  std::uint64_t want_members = 0;
  std::vector<Expectation> expectations;
  Trickle trickle;
  uv_timer_t trickle_timer{};
  std::uint64_t next_id = 1;
  bool quitting = false;

  registry::Registry& registry() { return stack->registry(); }
  registry::Pid new_pid() {
    return {stack->membership().name(), stack->membership().creation(), next_id++};
  }

  void check_members() {
    const std::size_t alive = stack->membership().count(cluster::MemberStatus::alive);
    if (want_members != 0 && alive >= want_members) {
      want_members = 0;
      answer(fmt::format(R"({{"event":"members","alive":{}}})", alive));
    }
  }

  // What the stack reports: the registry's events.
  bool on_output() {
    std::vector<supervisor::StackOutput> outputs;
    stack->take_outputs(outputs);
    for (const supervisor::StackOutput& o : outputs) {
      if (const auto* e = std::get_if<registry::RegistryEvent>(&o)) on_event(*e);
    }
    return false;
  }

  void on_event(const registry::RegistryEvent& e) {
    if (e.kind != registry::RegistryEventKind::registered &&
        e.kind != registry::RegistryEventKind::moved)
      return;
    const std::int64_t t = mono_ns();
    for (auto it = expectations.begin(); it != expectations.end(); ++it) {
      Expectation& x = *it;
      if (e.name.size() <= x.prefix.size() || e.name.compare(0, x.prefix.size(), x.prefix) != 0)
        continue;
      const std::uint64_t i = std::strtoull(e.name.c_str() + x.prefix.size(), nullptr, 10);
      ++x.seen;
      x.last_ns = t;
      if (i % x.step == 0) x.samples.emplace_back(i, t);
      if (x.seen == x.count) {
        answer(fmt::format(
            R"({{"event":"expected","prefix":"{}","count":{},"last_ns":{},"samples":{}}})",
            x.prefix, x.count, x.last_ns, samples_json(x.samples)));
        expectations.erase(it);
      }
      return;
    }
  }

  void do_register(const std::string& prefix, std::uint64_t from, std::uint64_t count,
                   std::uint64_t step) {
    // The names are built before the clock starts: the figure is the registry's rate.
    std::vector<std::string> names;
    names.reserve(count);
    for (std::uint64_t i = from; i < from + count; ++i)
      names.push_back(prefix + std::to_string(i));
    std::vector<std::pair<std::uint64_t, std::int64_t>> samples;
    std::uint64_t failed = 0;
    const std::uint64_t now = driver->now();
    const std::int64_t start = mono_ns();
    for (std::uint64_t k = 0; k < count; ++k) {
      if (!registry().register_name(now, names[k], new_pid())) ++failed;
      if ((from + k) % step == 0) samples.emplace_back(from + k, mono_ns());
    }
    const std::int64_t end = mono_ns();
    const double seconds = static_cast<double>(end - start) / 1e9;
    answer(fmt::format(
        R"({{"event":"registered","count":{},"failed":{},"seconds":{:.6f},"rate":{:.1f},"end_ns":{},"samples":{}}})",
        count, failed, seconds, static_cast<double>(count) / seconds, end, samples_json(samples)));
    // The batch goes out when this loop turn ends (the driver's prepare handle).
    driver->settle();
  }

  void trickle_one() {
    if (trickle.next >= trickle.count) {
      uv_timer_stop(&trickle_timer);
      answer(fmt::format(R"({{"event":"trickled","count":{},"samples":{}}})", trickle.count,
                         samples_json(trickle.samples)));
      return;
    }
    const std::string name = trickle.prefix + std::to_string(trickle.next);
    if (registry().register_name(driver->now(), name, new_pid()))
      trickle.samples.emplace_back(trickle.next, mono_ns());
    ++trickle.next;
    driver->settle();
  }

  void do_whereis(const std::string& prefix, std::uint64_t count, std::uint64_t lookups) {
    // Names drawn at random from all that the node holds (a few thousand names looked up again
    // and again would all sit in the CPU's caches), laid out in the order they are looked up: a
    // caller has the name it asks for at hand (a request just read), so fetching it from a table
    // of every name at a random place would time the benchmark's own cache miss.
    std::mt19937_64 rng(42);
    std::vector<std::string> order(std::size_t{1} << 20);
    for (std::string& o : order)
      o = prefix + std::to_string(rng() % count);
    std::vector<double> per_op;
    std::uint64_t found = 0;
    const std::uint64_t batch = 4096;
    std::size_t next = 0;
    for (std::uint64_t done = 0; done < lookups; done += batch) {
      const std::int64_t start = mono_ns();
      for (std::uint64_t k = 0; k < batch; ++k, next = (next + 1) & (order.size() - 1))
        found += registry().whereis(order[next]).has_value() ? 1 : 0;
      per_op.push_back(static_cast<double>(mono_ns() - start) / static_cast<double>(batch));
    }
    std::sort(per_op.begin(), per_op.end());
    answer(fmt::format(R"({{"event":"whereis","lookups":{},"found":{},"median_ns":{:.1f}}})",
                       per_op.size() * batch, found, per_op[per_op.size() / 2]));
  }

  void do_stats() {
    // Memory first, before the encoding below allocates its buffer.
    malloc_trim(0);
    const struct mallinfo2 heap = mallinfo2();
    const std::size_t rss = shoal::bench::resident_kib();
    const auto& u = driver->stats();
    const cluster::Replicator& replicator = *stack->replicator();
    const auto& state = replicator.state();
    const std::size_t encoded = crdt::encode(state).size();
    const auto& r = replicator.stats();
    answer(fmt::format(
        R"({{"event":"stats","heap_in_use":{},"heap_free":{},"heap_mmapped":{},"rss_kb":{},"udp_out":{},"udp_in":{},"tcp_out":{},"tcp_in":{},"entries":{},"encoded_bytes":{},"log_entries":{},"batches_sent":{},"batch_messages_sent":{},"digests_sent":{},"full_states_sent":{},"streams_sent":{},"replicator_bytes_out":{}}})",
        heap.uordblks, heap.fordblks, heap.hblkhd, rss, u.udp_bytes_out, u.udp_bytes_in,
        u.tcp_bytes_out, u.tcp_bytes_in, state.size(), encoded, replicator.replica().log_entries(),
        r.batches_sent, r.batch_messages_sent, r.digests_sent, r.full_states_sent, r.streams_sent,
        r.bytes_out));
  }

  void command(const std::string& line) {
    std::istringstream in(line);
    std::string verb;
    in >> verb;
    if (verb == "members") {
      in >> want_members;
      check_members();
    } else if (verb == "expect") {
      Expectation x;
      in >> x.prefix >> x.count >> x.step;
      expectations.push_back(std::move(x));
    } else if (verb == "register") {
      std::string prefix;
      std::uint64_t from = 0, count = 0, step = 1;
      in >> prefix >> from >> count >> step;
      do_register(prefix, from, count, step);
    } else if (verb == "trickle") {
      std::uint64_t gap = 10;
      trickle = Trickle{};
      in >> trickle.prefix >> trickle.count >> gap;
      uv_timer_start(
          &trickle_timer, [](uv_timer_t* t) { static_cast<BenchNode*>(t->data)->trickle_one(); },
          gap, gap);
    } else if (verb == "whereis") {
      std::string prefix;
      std::uint64_t count = 0, lookups = 0;
      in >> prefix >> count >> lookups;
      do_whereis(prefix, count, lookups);
    } else if (verb == "stats") {
      do_stats();
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
    uv_close(reinterpret_cast<uv_handle_t*>(&trickle_timer), nullptr);
    driver->close([] {});
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string name;
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
    } else {
      std::fprintf(stderr, "registry_node: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (name.empty() || port <= 0 || port > 65535) {
    std::fprintf(stderr, "usage: registry_node --name NAME --port PORT [--join PORT]\n");
    return 2;
  }

  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);  // as the agent does (bin/agent.cpp)
  BenchNode node;
  node.loop = uv_default_loop();
  cluster::UvDriverOptions options;
  options.bind = *cluster::Address::parse("127.0.0.1:" + std::to_string(port));
  const std::uint64_t creation =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  const std::uint64_t seed = creation ^ static_cast<std::uint64_t>(port);
  // The registry only: children are placed by nobody here.
  supervisor::StackConfig config;
  auto started = cluster::UvDriver::start(
      node.loop, options,
      [&](const cluster::Address& advertise, std::uint64_t now) {
        auto stack = std::make_unique<supervisor::Stack>(
            config, cluster::NodeIdentity{name, advertise, creation, {}}, seed, now);
        node.stack = stack.get();
        return stack;
      },
      [&node](const cluster::MemberEvent&) { node.check_members(); });
  if (!started) {
    std::fprintf(stderr, "registry_node: %s\n", started.error().c_str());
    return 1;
  }
  node.driver = std::move(*started);
  node.driver->on_output([&node] { return node.on_output(); });
  uv_timer_init(node.loop, &node.trickle_timer);
  node.trickle_timer.data = &node;
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
          self->quit();  // the driver went away
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
