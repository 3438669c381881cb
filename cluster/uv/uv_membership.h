#pragma once

// UvMembership: the libuv driver of a cluster Node (the membership core, and the replicator of the
// shared map when configured). It owns the node's UDP socket (probes and
// gossip), its TCP listener (push-pull), one timer, and the core; it passes uv_now() as the time
// of every input, drains the core's effects after each input, seals and opens everything with the
// keyring, and re-arms its timer for the core's next deadline. It never re-enters the core from
// inside a core call.
//
// The crash fast path: the UDP socket has IP_RECVERR set, so when a probe reaches a host whose
// process is gone, the ICMP "port unreachable" lands on the socket's error queue with the probe's
// destination; the driver hands it to the core as on_unreachable().
//
// Loop-bound: every method must be called on the loop's thread. Handle memory is freed only in
// close callbacks; call close() and run the loop until `done` is called before destroying.

#include <uv.h>

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cluster/keyring.h"
#include "cluster/membership.h"
#include "cluster/node.h"
#include "cluster/replay_filter.h"

namespace shoal::cluster {

struct UvMembershipOptions {
  std::string name;
  Address bind;       // UDP and TCP port
  Address advertise;  // what others use to reach us; the bind address if left zero
  Tags tags;
  MembershipConfig config;
  Keyring keyring;
  std::uint64_t creation_ms = 0;  // wall-clock ms of this process's start
  std::uint64_t seed = 0;         // RNG seed of the core
  // Replicate the shared map (the registry's store) with this configuration; none: membership only.
  std::optional<ReplicatorConfig> replication;
};

// Counters of the driver (the core counts the protocol).
struct UvStats {
  std::uint64_t rejected_auth = 0;  // packets or frames no key opened
  std::uint64_t rejected_replay =
      0;                          // sealed packets or frames seen before (cluster/replay_filter.h)
  std::uint64_t send_errors = 0;  // datagrams the kernel refused to send
  std::uint64_t unreachable = 0;  // ICMP port-unreachable reports handed to the core
  std::uint64_t stream_errors = 0;     // TCP exchanges that failed
  std::uint64_t streams_refused = 0;   // exchanges refused: too many open, or buffers full
  std::uint64_t frames_too_large = 0;  // TCP frames announcing more than kMaxStreamBytes
  std::uint64_t udp_bytes_in = 0;      // datagram bytes as on the wire (sealed)
  std::uint64_t udp_bytes_out = 0;
  std::uint64_t tcp_bytes_in = 0;  // stream bytes as on the wire (framed and sealed)
  std::uint64_t tcp_bytes_out = 0;
};

class UvMembership {
 public:
  using EventFn = std::function<void(const MemberEvent&)>;
  using UserFn = std::function<void(const UserMessage&)>;
  using ChangeFn = std::function<void(const ReplicaChange&)>;

  // Binds the UDP socket and the TCP listener and starts the core. Returns a one-line reason if
  // the address is in use or invalid.
  static std::expected<std::unique_ptr<UvMembership>, std::string> start(
      uv_loop_t* loop, UvMembershipOptions options, EventFn on_event, UserFn on_user = {});
  ~UvMembership();
  UvMembership(const UvMembership&) = delete;
  UvMembership& operator=(const UvMembership&) = delete;

  void join(std::vector<Address> seeds);
  void leave();
  void set_tags(Tags tags);
  // The channel for the layers above: one member, or the whole cluster by gossip. Return false
  // if the member is not live or the payload cannot fit a packet.
  bool send_user(const std::string& member, std::string_view payload);
  bool broadcast_user(std::string_view payload);
  // The keys that seal and open every packet and frame from now on (key rotation).
  const Keyring& keyring() const { return keyring_; }
  void set_keyring(Keyring keyring) { keyring_ = std::move(keyring); }
  // Another node announced itself (discovery).
  void announced(const Address& addr, const std::string& name);
  // Closes every handle; `done` runs once all are closed.
  void close(std::function<void()> done);

  const Membership& core() const { return core_->membership(); }
  // The replicator (null without UvMembershipOptions::replication). Mutations made through it
  // (put, remove...) go out at the end of the loop turn; settle() sends them at once.
  Replicator* replicator() { return core_->replicator(); }
  void settle();
  // Hears every change of the replicated map (local and remote), in order, on the loop turn after
  // the one that made it (the sends it caused go first).
  void on_change(ChangeFn fn) { on_change_ = std::move(fn); }
  const UvStats& stats() const { return stats_; }
  const Address& address() const { return advertise_; }

 private:
  struct Conn;
  UvMembership(uv_loop_t* loop, UvMembershipOptions options, EventFn on_event, UserFn on_user);

  std::uint64_t now() const { return uv_now(loop_); }
  // Drains the core's effects and re-arms the timer. Called after every input.
  void flush();
  void send_datagram(const Address& to, const std::string& bytes);
  void on_readable();
  void drain_errors();
  void open_stream(const StreamRequest& request);
  Conn* new_conn(bool inbound);
  // Reads one length-prefixed frame, opens it, and hands it to on_frame.
  void read_frame(Conn* conn);
  void on_frame(Conn* conn, const std::string& plain);
  void on_connection();
  void finish(Conn* conn);

  static void poll_cb(uv_poll_t* handle, int status, int events);
  static void timer_cb(uv_timer_t* handle);
  static void prepare_cb(uv_prepare_t* handle);
  static void idle_cb(uv_idle_t* handle);
  static void listen_cb(uv_stream_t* server, int status);

  uv_loop_t* loop_;
  Address advertise_;
  Keyring keyring_;
  ReplayFilter replay_;  // of what keyring_ opened
  EventFn on_event_;
  UserFn on_user_;
  std::unique_ptr<Node> core_;
  ChangeFn on_change_;
  int fd_ = -1;
  uv_poll_t poll_{};
  uv_timer_t timer_{};
  uv_prepare_t prepare_{};
  uv_idle_t idle_{};  // delivers pending_changes_ on the next loop turn
  std::vector<ReplicaChange> pending_changes_;
  uv_tcp_t listener_{};
  std::set<Conn*> conns_;
  std::size_t buffered_ = 0;  // bytes held in the read buffers of all TCP exchanges
  UvStats stats_;
  bool closing_ = false;
  int open_handles_ = 0;
  std::function<void()> on_closed_;
};

}  // namespace shoal::cluster
