#pragma once

// Messenger: messages between the pids of the cluster, as a sans-IO core. It resolves a target (a
// global name, a group, a pid) through the registry when the message is sent, and carries the
// message to the target's node over that node's one persistent connection, or delivers it here.
//
// Semantics (Erlang's):
//  - send: asynchronous, at most once, FIFO per (sender node, receiver): every message to a node
//    goes down one connection, in order; a message in flight when a connection breaks may be lost.
//  - call: request and reply, with a deadline. It ends with the reply or one error: noproc (no such
//    name or pid, or the pid's life is over), nodedown (the target's node left the live view while
//    the call waited: at once, not at the deadline), timeout, overloaded (a bounded queue is full).
//    No call outlives its deadline.
//  - publish: one copy to every member of a group alive at the time; returns how many.
//  - a pid of an earlier life receives nothing; a name is resolved when the message is sent, so a
//    message to a name that moved (failover) goes to the copy that holds it then.
//
// Connections. One per pair of live nodes. Either side may dial when it has something to send;
// the dialer names both lives in a hello, and the other side welcomes it or refuses it. When both
// dial at once, the dial of the smaller life key (cluster/life.h) wins on both sides, and nothing
// is written before the welcome: a pair never has two connections carrying messages, so order
// holds. A connection that breaks while its peer is live is dialled again (with backoff) while
// messages wait. A peer that leaves the live view loses its connection, its queue, and its calls
// (nodedown).
//
// Batches. What a turn queued for a peer goes to the driver in batches of whole frames of at most
// kBatchBytes (one frame may be larger), each sealed and written as one: the receiver reads whole
// frames from each, and reassembles only what a hostile or foreign peer cut.
//
// Bounds. Frames for a peer wait in its queue (at most max_queue_bytes; beyond, sends fail with
// overloaded) and go to the driver at flush(), once per loop turn, as long as what the driver has
// not yet written stays below max_inflight_bytes: a receiver that stops reading fills its TCP
// window, then the driver's queue, then this one, and its senders hear overloaded. Accepted
// connections must say hello within hello_timeout_ms. Pending calls are bounded too.
//
// Local receivers are the owner's (workers, mailboxes): open(id) makes a local id addressable,
// close(id) ends it; messages to an id that is not open are dropped (sends, counted) or answered
// noproc (calls). Delivery is an output (Deliver) the owner hands to the receiver.
//
// Inputs carry the time; effects for the driver (cluster::Effect: ConnOpen, ConnSend, ConnClose)
// and outputs for the owner (MessengerOutput) are drained after every input. Not thread-safe.

#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cluster/effects.h"
#include "cluster/life.h"
#include "messaging/wire.h"
#include "registry/registry.h"

namespace shoal::messaging {

using registry::Pid;

inline constexpr std::size_t kBatchBytes = 1024 * 1024;

struct MessengerConfig {
  // Frames waiting for one peer's connection (bytes); sends beyond fail with overloaded.
  std::size_t max_queue_bytes = 16 * 1024 * 1024;
  // Bytes handed to the driver and not yet written, per connection, before more are handed.
  std::size_t max_inflight_bytes = 4 * 1024 * 1024;
  // Calls waiting for their reply, on this node.
  std::size_t max_pending_calls = 100'000;
  // Remote commands (shoal exec) running here, and started from here.
  std::size_t max_tasks = 64;
  std::uint64_t default_call_timeout_ms = 5'000;
  std::uint64_t hello_timeout_ms = 5'000;
  // Dialling again after a failure: the first wait, doubled up to the last.
  std::uint64_t redial_min_ms = 20;
  std::uint64_t redial_max_ms = 2'000;
};

// What a message goes to.
struct Target {
  enum class Kind { name, group, pid };
  Kind kind = Kind::name;
  std::string name;  // a global name or a group
  Pid pid;
  static Target of_name(std::string name) { return {Kind::name, std::move(name), {}}; }
  static Target of_group(std::string group) { return {Kind::group, std::move(group), {}}; }
  static Target of_pid(Pid pid) { return {Kind::pid, {}, std::move(pid)}; }
  std::string to_string() const;
};

// too_large: a payload over kMaxPayloadBytes, refused before anything is sent.
enum class CallError { noproc, nodedown, timeout, overloaded, too_large };
const char* call_error_name(CallError e);
using CallResult = std::expected<std::string, CallError>;

// Where a call's reply goes: the caller's life and its call id there. Its text form is the reply
// token exec children and scripts hand back (`shoal reply TOKEN`).
struct ReplyTo {
  cluster::Life caller;
  std::uint64_t call_id = 0;
  std::string token() const;
  static std::optional<ReplyTo> parse(std::string_view token);
};

// A message for a local receiver.
struct Deliver {
  std::uint64_t to = 0;  // the local id
  Pid from;
  std::string payload;
  std::optional<ReplyTo> reply_to;  // set for calls: answer with reply() or fail()
};
// A call this node made ended.
struct CallDone {
  std::uint64_t call_id = 0;
  CallResult result;
};
// A peer asks this node to run a command once (shoal exec): the owner runs it and reports with
// task_output() and task_end().
struct TaskRequest {
  cluster::Life origin;
  std::uint64_t task_id = 0;  // the origin's
  std::vector<std::string> argv;
  std::uint64_t timeout_ms = 0;
};
// Output or the end of a task this node started.
struct TaskEvent {
  std::uint64_t task_id = 0;
  enum class Kind { out, err, end } kind = Kind::out;
  std::string bytes;               // out, err: the output; end: an error for people (empty: none)
  std::uint64_t status = 0;        // end: the exit code, or 128 + signal
  std::optional<CallError> error;  // end: the task did not run to its end (nodedown, timeout...)
};
using MessengerOutput = std::variant<Deliver, CallDone, TaskRequest, TaskEvent>;

// A peer in the live view: its life and where its node listens.
struct PeerInfo {
  std::uint64_t creation = 0;
  cluster::Address addr;
};
using PeerView = std::map<std::string, PeerInfo, std::less<>>;

struct MessengerStats {
  std::uint64_t messages_out = 0;  // frames queued for peers (sends, calls, replies...)
  std::uint64_t messages_in = 0;   // frames received
  std::uint64_t bytes_out = 0;     // batches handed to the driver
  std::uint64_t bytes_in = 0;
  std::uint64_t delivered = 0;   // messages handed to local receivers
  std::uint64_t dropped = 0;     // sends to no receiver (no such id, or its life is over)
  std::uint64_t overloaded = 0;  // sends and calls refused for a full queue
  std::uint64_t calls = 0;
  std::uint64_t calls_ok = 0;
  std::uint64_t calls_noproc = 0;
  std::uint64_t calls_nodedown = 0;
  std::uint64_t calls_timeout = 0;
  std::uint64_t calls_overloaded = 0;
  std::uint64_t connections = 0;  // connections that came up
  std::uint64_t refused = 0;      // connections refused (hello for another life, the other way)
  std::uint64_t bad_frames = 0;   // undecodable frames (their connection is closed)
};

class Messenger {
 public:
  // `registry` resolves names and groups (and says which pids are live).
  Messenger(MessengerConfig config, cluster::Life self, const registry::Registry& registry);

  // --- API ---
  // Sends `payload` from local id `from`. Fails at once with noproc (no such name, no live member
  // of a group) or overloaded; otherwise the message is on its way (at most once).
  std::expected<void, CallError> send(std::uint64_t now_ms, const Target& target,
                                      std::uint64_t from, std::string_view payload);
  // Calls a name or a pid (not a group). Returns the call's id, whose CallDone comes later, or
  // fails at once. timeout_ms 0: the default.
  std::expected<std::uint64_t, CallError> call(std::uint64_t now_ms, const Target& target,
                                               std::uint64_t from, std::string_view payload,
                                               std::uint64_t timeout_ms = 0);
  // Sends to every live member of `group`; returns how many it went to (noproc for none).
  std::expected<std::size_t, CallError> publish(std::uint64_t now_ms, std::string_view group,
                                                std::uint64_t from, std::string_view payload);
  // Answers a call (a Deliver's reply_to), or fails it.
  void reply(std::uint64_t now_ms, const ReplyTo& to, std::string_view payload);
  void fail(std::uint64_t now_ms, const ReplyTo& to, FailureCode code);
  // Runs `argv` once on live node `node` (this one included). Returns the task's id, whose
  // TaskEvents follow, or fails at once (noproc: no such live node; overloaded: too many tasks).
  std::expected<std::uint64_t, CallError> start_task(std::uint64_t now_ms, std::string_view node,
                                                     std::vector<std::string> argv,
                                                     std::uint64_t timeout_ms);
  // What a task this node runs for `origin` printed, and how it ended.
  void task_output(std::uint64_t now_ms, const cluster::Life& origin, std::uint64_t task_id,
                   int stream, std::string_view bytes);
  void task_end(std::uint64_t now_ms, const cluster::Life& origin, std::uint64_t task_id,
                std::uint64_t status, std::string_view error);

  // Local receivers.
  void open(std::uint64_t id) { open_.insert(id); }
  void close(std::uint64_t id) { open_.erase(id); }
  bool is_open(std::uint64_t id) const { return open_.contains(id); }

  // --- Inputs ---
  // The live members but this node, with their addresses.
  void set_members(std::uint64_t now_ms, PeerView view);
  void on_conn_up(std::uint64_t now_ms, cluster::ConnId id);
  void on_conn_accepted(std::uint64_t now_ms, cluster::ConnId id, const cluster::Address& from);
  void on_conn_data(std::uint64_t now_ms, cluster::ConnId id, std::string_view bytes);
  void on_conn_sent(std::uint64_t now_ms, cluster::ConnId id, std::size_t bytes);
  void on_conn_down(std::uint64_t now_ms, cluster::ConnId id);
  void on_timer(std::uint64_t now_ms);
  // The end of a loop turn: what was queued for connected peers goes to the driver.
  void flush(std::uint64_t now_ms);

  // --- Outputs ---
  std::uint64_t next_deadline() const;
  void take_effects(std::vector<cluster::Effect>& out);
  void take_outputs(std::vector<MessengerOutput>& out);
  // Something is queued for a connected peer (the driver should call flush()).
  bool pending() const { return !ready_.empty(); }

  const MessengerStats& stats() const { return stats_; }
  // Bytes waiting for peers, and connections up.
  std::size_t queued_bytes() const;
  std::size_t connections_up() const;
  std::size_t pending_calls() const { return calls_.size(); }

 private:
  enum class ConnState { dialing, hello_sent, awaiting_hello, up };
  struct Conn {
    ConnState state = ConnState::dialing;
    std::string peer;          // node name ("" until an accepted one says hello)
    std::string inbox;         // bytes of an incomplete frame
    std::size_t inflight = 0;  // handed to the driver, not yet written
    std::uint64_t hello_deadline = 0;
  };
  struct Peer {
    std::string name;
    PeerInfo info;
    cluster::ConnId conn = 0;     // the connection in use or being made (0: none)
    std::string queue;            // frames waiting
    std::uint64_t redial_at = 0;  // 0: not waiting to dial
    std::uint64_t backoff_ms = 0;
  };
  struct PendingCall {
    std::string node;
    std::uint64_t deadline = 0;
  };
  struct OutgoingTask {
    std::string node;
    std::uint64_t deadline = 0;
  };

  // The peer `node` (live), or null.
  Peer* peer(std::string_view node);
  // Queues a frame (encoded by `append`) for `node`; false if its queue is full.
  template <typename Append>
  bool enqueue(std::uint64_t now, Peer& p, Append&& append);
  void dial(std::uint64_t now, const std::string& node, Peer& p);
  void connection_lost(std::uint64_t now, cluster::ConnId id, bool redial);
  void drop_peer(std::uint64_t now, const std::string& node);
  void handle(std::uint64_t now, cluster::ConnId id, Conn& c, Frame& frame);
  void on_hello(std::uint64_t now, cluster::ConnId id, Conn& c, const Hello& hello);
  void deliver_local(std::uint64_t to, const Pid& from, std::string_view payload,
                     std::optional<ReplyTo> reply_to);
  void finish_call(std::uint64_t call_id, CallResult result);
  void bad_frame(std::uint64_t now, cluster::ConnId id);
  // The pids a target means now (one for a name or a pid, every live member for a group).
  std::expected<std::vector<Pid>, CallError> resolve(const Target& target) const;

  // Fixed after construction.
  const MessengerConfig config_;
  const cluster::Life self_;
  const registry::Registry& registry_;

  // Changed by inputs.
  std::map<std::string, Peer, std::less<>> peers_;  // the live view, but this node
  std::map<cluster::ConnId, Conn> conns_;
  std::set<std::string, std::less<>> ready_;  // peers with frames queued and a connection up
  std::set<std::uint64_t> open_;
  std::map<std::uint64_t, PendingCall> calls_;
  std::set<std::pair<std::uint64_t, std::uint64_t>> call_deadlines_;  // (deadline, call id)
  std::map<std::uint64_t, OutgoingTask> tasks_;                       // started here
  std::set<std::pair<std::string, std::uint64_t>> running_;  // (origin life key, task) run here
  std::vector<cluster::Effect> effects_;
  std::vector<MessengerOutput> outputs_;
  cluster::ConnId next_conn_ = 1;
  std::uint64_t next_call_ = 1;
  std::uint64_t next_task_ = 1;
  MessengerStats stats_;
};

}  // namespace shoal::messaging
