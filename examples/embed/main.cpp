// Three shoal nodes in one program, with a worker type of its own: "greeter", which answers every
// call with a greeting that names its node and counts the calls it has answered, checkpointing the
// count. The program runs the greeter once cluster-wide, calls it, makes the node running it leave,
// and calls it again on the node it moved to: the count goes on from where it was.
//
// Exits 0 when every step did what it should, 1 otherwise (the failing step is printed).

#include <shoal/shoal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class Greeter final : public shoal::Worker {
 public:
  void start(shoal::WorkerContext&, const std::optional<std::string>& checkpoint) override {
    if (checkpoint) calls_ = std::stoull(*checkpoint);
  }
  void stop(shoal::WorkerContext& ctx) override {
    if (ctx.handing_over()) (void)ctx.checkpoint(std::to_string(calls_));
    ctx.exit(true, "stopped");
  }
  void on_message(shoal::WorkerContext& ctx, const shoal::Message& msg) override {
    if (!msg.reply_token) return;
    ++calls_;
    (void)ctx.checkpoint(std::to_string(calls_));
    ctx.reply(*msg.reply_token, "hello " + std::string(msg.payload) + ", from " + ctx.self().node +
                                    " (call " + std::to_string(calls_) + ")");
  }

 private:
  unsigned long long calls_ = 0;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "embed: FAILED: %s\n", what.c_str());
  std::exit(1);
}

// Polls `cond` until it holds or `limit` passes.
bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  const auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return cond();
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::unique_ptr<shoal::Node> start_node(const std::string& name,
                                        const std::vector<std::string>& seeds) {
  shoal::NodeOptions options;
  options.name = name;
  options.bind = "127.0.0.1:0";  // loopback, any free port
  options.seeds = seeds;
  options.startup_settle = 0ms;
  options.workers["greeter"] = [] { return std::make_unique<Greeter>(); };
  auto node = shoal::Node::start(std::move(options));
  if (!node) die(name + ": " + node.error().message);
  std::printf("started %s at %s\n", name.c_str(), (*node)->address().c_str());
  return std::move(*node);
}

std::size_t alive(shoal::Node& node) {
  std::size_t n = 0;
  if (auto members = node.members()) {
    for (const shoal::Member& m : *members)
      n += m.status == shoal::MemberStatus::alive;
  }
  return n;
}

std::string holder(shoal::Node& node) {
  auto where = node.whereis("greeter");
  return where && *where ? (*where)->node : "";
}

}  // namespace

int main() {
  std::printf("shoal %s (wire protocol %d)\n", shoal::version(), shoal::wire_version());
  const auto t0 = Clock::now();
  std::vector<std::unique_ptr<shoal::Node>> nodes;
  nodes.push_back(start_node("n1", {}));
  for (const char* name : {"n2", "n3"})
    nodes.push_back(start_node(name, {nodes.front()->address()}));
  if (!eventually(
          [&] { return alive(*nodes[0]) == 3 && alive(*nodes[1]) == 3 && alive(*nodes[2]) == 3; },
          10s))
    die("the three nodes did not all see each other");
  std::printf("all 3 nodes see 3 alive members after %.0f ms\n", ms_since(t0));

  shoal::ChildOptions greeter;
  greeter.name = "greeter";
  greeter.worker_type = "greeter";
  if (auto added = nodes[2]->run(greeter); !added) die("run: " + added.error().message);
  if (!eventually(
          [&] {
            const std::string h = holder(*nodes[0]);
            return !h.empty() && holder(*nodes[1]) == h && holder(*nodes[2]) == h;
          },
          10s))
    die("the greeter did not start, or the nodes disagree on where");
  const std::string first = holder(*nodes[0]);
  std::printf("greeter runs on %s\n", first.c_str());

  for (int i = 0; i < 3; ++i) {
    auto reply = nodes[static_cast<std::size_t>(i)]->call("greeter", "n" + std::to_string(i + 1));
    if (!reply)
      die(std::string("call: ") + shoal::errc_name(reply.error().code) + ": " +
          reply.error().message);
    std::printf("call from n%d: %s\n", i + 1, reply->c_str());
  }

  // The node running the greeter leaves; the greeter moves, with its count.
  std::size_t leaving = 0;
  while (nodes[leaving]->name() != first)
    ++leaving;
  const auto left_at = Clock::now();
  nodes[leaving]->leave();
  nodes.erase(nodes.begin() + static_cast<std::ptrdiff_t>(leaving));
  std::printf("%s left after %.0f ms\n", first.c_str(), ms_since(left_at));
  if (!eventually(
          [&] {
            const std::string h = holder(*nodes[0]);
            return !h.empty() && h != first && holder(*nodes[1]) == h;
          },
          15s))
    die("the greeter did not move to a node that stayed");
  std::printf("greeter moved to %s, %.0f ms after the leave began\n", holder(*nodes[0]).c_str(),
              ms_since(left_at));
  auto reply = nodes[0]->call("greeter", "again");
  if (!reply) die(std::string("call after the move: ") + reply.error().message);
  std::printf("call from %s: %s\n", nodes[0]->name().c_str(), reply->c_str());
  if (reply->find("(call 4)") == std::string::npos)
    die("the count did not carry over: expected call 4");

  auto children = nodes[0]->children();
  if (!children || children->size() != 1) die("children: expected one");
  std::printf("children: %s on %s\n", children->front().name.c_str(),
              children->front().pid ? children->front().pid->to_string().c_str() : "-");
  std::printf("embed: OK\n");
  return 0;
}
