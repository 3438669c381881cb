#pragma once

// shoal's public C++ API: a cluster node inside your program.
//
//   #include <shoal/shoal.h>
//   shoal::NodeOptions options;
//   options.name = "n1";
//   options.bind = "127.0.0.1:7946";
//   options.seeds = {"127.0.0.1:7947"};
//   options.workers["counter"] = [] { return std::make_unique<MyWorker>(); };
//   auto node = shoal::Node::start(options);           // std::expected<unique_ptr<Node>, Error>
//   shoal::ChildOptions child;
//   child.name = "job-7";
//   child.worker_type = "counter";
//   node.value()->run(child);                           // cluster-wide, from any node
//   auto reply = node.value()->call("job-7", "hello");  // wherever job-7 runs now
//
// A Node runs one member of a cluster on a thread of its own: gossip membership (SWIM), the
// replicated registry of global names and groups, the distributed supervisor, and messaging.
// Nodes find each other through `seeds` (and any member they learn of); a node that dies has its
// children restarted on the survivors, and its names stop answering.
//
// Threads: every method of Node is thread-safe and blocks until the node's thread has done it
// (microseconds; call() waits for the reply). Worker callbacks run on the node's thread, one at a
// time; from inside one, use the WorkerContext (never the blocking Node methods, which refuse with
// Errc::wrong_thread there).
//
// Only the headers under include/shoal/ are public; the library's internals may change in any
// release. Link with `find_package(shoal CONFIG REQUIRED)` and `shoal::shoal`, or
// `pkg-config --cflags --libs shoal`.

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/version.h"

// What the library exports (it hides everything else).
#define SHOAL_API __attribute__((visibility("default")))

namespace shoal {

// The library's version, as "major.minor.patch" (also SHOAL_VERSION_STRING).
SHOAL_API const char* version();
// The wire protocol version this build speaks (see shoal/version.h for the compatibility rule).
SHOAL_API int wire_version();

enum class Errc {
  bad_option,          // NodeOptions or an argument is invalid (the message names it)
  bind_failed,         // the address is in use or not local
  insecure,            // a reachable bind address without keys (NodeOptions::insecure)
  already_registered,  // the name is held by another pid
  too_many,            // a limit of the registry or supervisor
  noproc,              // no such name, group member or live pid
  nodedown,            // the node holding the target went away during a call
  timeout,             // no reply in time
  overloaded,          // too much queued for a peer
  too_large,           // a payload over the limit
  wrong_thread,        // a blocking Node method called from a worker callback
  stopped,             // the node has stopped
};
SHOAL_API const char* errc_name(Errc code);

struct Error {
  Errc code;
  std::string message;  // one line, for people
};

template <class T>
using Result = std::expected<T, Error>;

// A process anywhere in the cluster: {node, the node's life (start time, ms), local id}.
struct SHOAL_API Pid {
  std::string node;
  std::uint64_t creation = 0;
  std::uint64_t id = 0;
  std::string to_string() const;  // <node.creation.id>
  friend bool operator==(const Pid&, const Pid&) = default;
};

enum class MemberStatus { alive, suspect, failed, left };
SHOAL_API const char* status_name(MemberStatus status);

struct Member {
  std::string name;
  std::string address;  // ip:port
  MemberStatus status = MemberStatus::alive;
  std::uint64_t incarnation = 0;
  std::map<std::string, std::string> tags;
};

// What this node saw happen to a member. A life ends with failed or left; a member declared
// failed whose leave arrives later gets left as well (the leave is the truer account).
struct MemberEvent {
  enum class Kind { joined, updated, suspect, alive_again, failed, left };
  Kind kind;
  Member member;
};

// --- Workers: in-process children of the distributed supervisor ---

// A message to a worker. The view lives as long as the on_message() call.
struct Message {
  Pid from;
  std::string_view payload;
  // Set for a call: answer with WorkerContext::reply(reply_token, ...), now or later, once.
  std::optional<std::string> reply_token;
};

// A worker's handle on its node. Valid during the worker's callbacks.
class SHOAL_API WorkerContext {
 public:
  virtual ~WorkerContext() = default;
  virtual const std::string& name() const = 0;  // the child's name (also its registry name)
  virtual Pid self() const = 0;                 // this copy's pid
  virtual std::uint64_t now_ms() const = 0;     // the node's clock (wall-clock ms)
  // Stores a checkpoint: the next copy of this child (after a restart or a failover) starts from
  // it. At most 64 KiB.
  virtual Result<void> checkpoint(std::string_view blob) = 0;
  // Ends this copy (`normal`: as an exit status 0; see ChildOptions::restart).
  virtual void exit(bool normal, std::string how) = 0;
  // True once a stop asked this copy to hand its state on: checkpoint() it, then exit().
  virtual bool handing_over() const = 0;
  virtual Result<void> send(std::string_view name, std::string_view payload) = 0;
  // `done` runs on the node's thread with the reply or the error, unless this copy ended first.
  virtual void call(std::string_view name, std::string_view payload,
                    std::chrono::milliseconds timeout,
                    std::function<void(WorkerContext&, Result<std::string>)> done) = 0;
  virtual Result<std::size_t> publish(std::string_view group, std::string_view payload) = 0;
  virtual void reply(const std::string& reply_token, std::string_view payload) = 0;
  virtual bool join(std::string_view group) = 0;
  virtual bool leave(std::string_view group) = 0;
};

class SHOAL_API Worker {
 public:
  virtual ~Worker() = default;
  // Called once; `checkpoint`: the last one any copy of this child stored.
  virtual void start(WorkerContext& ctx, const std::optional<std::string>& checkpoint) = 0;
  // Asked to stop (a move, a removal, the node leaving): call ctx.exit() when done (at once, by
  // default). Past the child's shutdown timeout the copy is ended anyway.
  virtual void stop(WorkerContext& ctx) { ctx.exit(true, "stopped"); }
  // A message sent or a call made to this copy (its name, its pid, or a group it joined).
  virtual void on_message(WorkerContext& /*ctx*/, const Message& /*msg*/) {}
  // Every 100 ms.
  virtual void on_tick(WorkerContext& /*ctx*/) {}
};

using WorkerFactory = std::function<std::unique_ptr<Worker>()>;

struct NodeOptions {
  std::string name;                         // unique in the cluster, 1 to 255 bytes; required
  std::string bind = "127.0.0.1:0";         // ip:port for UDP and TCP (port 0: a free one)
  std::string advertise;                    // ip:port peers reach this node at; empty: bind's
  std::vector<std::string> seeds;           // ip:port of members to join through
  std::map<std::string, std::string> tags;  // children's constraints match these
  // The worker types this node runs, by name. A node advertises its types (as tags), and
  // placement gives a child only to nodes that have its type.
  std::map<std::string, WorkerFactory> workers;
  // Cluster keys (64 hex digits or 44 base64 characters each; the first seals): every packet is
  // encrypted and authenticated. Without keys, only a loopback bind address is accepted unless
  // `insecure` is set: then anyone who reaches the address can join the cluster and send to its
  // names (the node writes a warning to its log callback).
  std::vector<std::string> keys;
  bool insecure = false;
  // ap: every side of a partition runs every child (like Horde); quorum: only a side holding a
  // majority of `expect` members does (at most one copy, fenced by a lease).
  enum class Mode { ap, quorum } mode = Mode::ap;
  std::size_t expect = 0;  // quorum: the cluster's size
  // A node places no child until it sees a peer or this long has passed (0: at once).
  std::chrono::milliseconds startup_settle{2'000};
  // Log lines (level: "debug", "info", "warn", "error"), on the node's thread. Default: none.
  std::function<void(std::string_view level, std::string_view component, std::string_view text)>
      log;
  // Member events, on the node's thread. Default: none.
  std::function<void(const MemberEvent&)> on_member_event;
};

struct ChildOptions {
  std::string name;         // cluster-wide, also the registry name its running copy holds
  std::string worker_type;  // a type added with add_worker_type() on the nodes that run it
  // permanent: always restarted; transient: after an abnormal exit only; temporary: never.
  enum class Restart { permanent, transient, temporary } restart = Restart::permanent;
  // More than max_restarts within `window` mark the child failed cluster-wide.
  std::uint32_t max_restarts = 3;
  std::chrono::milliseconds window{5'000};
  std::chrono::milliseconds shutdown{5'000};
  // state: the old copy stops (and checkpoints) before the new one starts; overlap: the new
  // copy starts first (no gap, for stateless children).
  enum class Handoff { state, overlap } handoff = Handoff::state;
  std::map<std::string, std::string> constraints;  // member tags a node must have to run it
};

struct Child {
  std::string name;
  std::string worker_type;
  std::optional<std::string> node;  // where placement puts it, in this node's view
  std::optional<Pid> pid;           // the running copy that holds its name
  bool failed = false;              // restarted too often: not run again until re-added
};

class SHOAL_API Node {
 public:
  // Binds, starts the node's thread, and joins the seeds (a node with none forms a cluster of
  // one that others may join). Errors: bad_option, bind_failed, insecure.
  static Result<std::unique_ptr<Node>> start(NodeOptions options);
  // Leaves gracefully (leave()) if still running, then stops the thread.
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const std::string& name() const;
  std::string address() const;  // the advertised ip:port
  // This node's own pid: what register_name() registers and what send()/call() come from.
  Pid pid() const;

  // Joins through more members (ip:port).
  Result<void> join(const std::vector<std::string>& seeds);
  // Every member this node knows, itself included, by name.
  Result<std::vector<Member>> members();

  // --- Registry: global names (one pid each) and groups (many) ---
  // Registers `name` to this node's pid (Errc::already_registered names the holder).
  Result<void> register_name(std::string_view name, std::string_view meta = {});
  Result<bool> unregister(std::string_view name);
  // The live pid holding `name`, if any.
  Result<std::optional<Pid>> whereis(std::string_view name);
  // Live names starting with `prefix`, in name order, at most `limit`.
  Result<std::vector<std::pair<std::string, Pid>>> names(std::string_view prefix = {},
                                                         std::size_t limit = 1000);

  // --- Supervisor ---
  // Adds (or replaces) a child cluster-wide; one copy runs on the node placement chooses.
  Result<void> run(const ChildOptions& child);
  // Removes a child cluster-wide (its copy is stopped). False if there was none.
  Result<bool> remove(std::string_view name);
  Result<std::vector<Child>> children();

  // --- Messaging, from this node's pid ---
  Result<void> send(std::string_view name, std::string_view payload);
  Result<std::string> call(std::string_view name, std::string_view payload,
                           std::chrono::milliseconds timeout = std::chrono::milliseconds{5'000});
  // To every live member of `group`; returns how many.
  Result<std::size_t> publish(std::string_view group, std::string_view payload);

  // Hands this node's children to the others and leaves the cluster (waits at most `timeout`);
  // then stops. Later calls fail with Errc::stopped.
  void leave(std::chrono::milliseconds timeout = std::chrono::milliseconds{15'000});

  struct Impl;

 private:
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shoal
