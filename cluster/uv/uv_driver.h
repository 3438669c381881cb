#pragma once

// UvDriver: the libuv driver of a node's core (cluster/core.h: a cluster::Node, or a
// supervisor::Stack with every layer above it). It owns the node's UDP socket (probes, gossip,
// small replication messages), its TCP listener (push-pull, large messages), one timer, and the
// core; it passes its clock as the time of every input, drains the core's effects after each input,
// seals and opens everything with the keyring, re-arms its timer for the core's next deadline, and
// at the end of every loop turn flushes the turn's local writes (Core::flush). It never re-enters
// the core from inside a core call.
//
// The clock: the loop's monotonic milliseconds, shifted once at start to the wall clock's value, so
// that a core's timers never jump and its hybrid logical clock still carries wall-clock time (the
// map's last-writer-wins order and 24-hour marks compare times across nodes).
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
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cluster/core.h"
#include "cluster/keyring.h"
#include "cluster/membership.h"
#include "cluster/node.h"
#include "cluster/replay_filter.h"
#include "cluster/uv/uv_listener.h"

namespace shoal::cluster {

// The wall clock, ms since the epoch: the driver's clock offset, and the creation of a node that
// starts (a restart must get a greater one than the life before it).
std::uint64_t wall_clock_ms();

struct UvDriverOptions {
  Address bind;       // UDP and TCP port
  Address advertise;  // what others use to reach us; the bind address if left zero
  Keyring keyring;
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

class UvDriver {
 public:
  // Makes the core once the sockets are bound (`advertise`: the address others reach it at).
  using CoreFactory =
      std::function<std::unique_ptr<Core>(const Address& advertise, std::uint64_t now_ms)>;
  using EventFn = std::function<void(const MemberEvent&)>;
  using UserFn = std::function<void(const UserMessage&)>;
  // Called after the core took an input (its sends are out): the owner drains what else the core
  // has for it, and may feed the core more (its runtime's reports; then it returns true), but
  // must not call settle().
  using OutputFn = std::function<bool()>;

  // Binds the UDP socket and the TCP listener and makes the core. Returns a one-line reason if
  // the address is in use or invalid.
  static std::expected<std::unique_ptr<UvDriver>, std::string> start(uv_loop_t* loop,
                                                                     UvDriverOptions options,
                                                                     const CoreFactory& make_core,
                                                                     EventFn on_event,
                                                                     UserFn on_user = {});
  ~UvDriver();
  UvDriver(const UvDriver&) = delete;
  UvDriver& operator=(const UvDriver&) = delete;

  void on_output(OutputFn fn) { on_output_ = std::move(fn); }
  // The time every input of the core carries (see the clock, above).
  std::uint64_t now() const { return uv_now(loop_) + clock_offset_ms_; }
  Core& core() { return *core_; }
  const Core& core() const { return *core_; }

  void join(std::vector<Address> seeds);
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

  const Membership& membership() const { return core_->membership(); }
  // After API calls on the core's parts from outside a driver callback: routes their effects,
  // sends, and re-arms the timer. Local writes to the map go out at the end of the loop turn.
  void settle();
  const UvStats& stats() const { return stats_; }
  const Address& address() const { return advertise_; }

 private:
  struct Conn;
  struct LinkWrite;
  UvDriver(uv_loop_t* loop, UvDriverOptions options, EventFn on_event, UserFn on_user);

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
  void on_connection(uv_stream_t* listening);
  // Persistent connections (messaging's).
  void open_link(const ConnOpen& open);
  void accept_link(Conn* conn);
  void start_link_reads(Conn* conn);
  void read_link_frames(Conn* conn);
  void queue_link(ConnSend& send);
  void write_links();
  void write_link(Conn* conn, std::vector<std::string> parts, std::size_t plain);
  void close_link(ConnId id);
  void link_down(Conn* conn);
  void finish(Conn* conn);

  static void poll_cb(uv_poll_t* handle, int status, int events);
  static void timer_cb(uv_timer_t* handle);
  static void prepare_cb(uv_prepare_t* handle);

  uv_loop_t* loop_;
  Address advertise_;
  Keyring keyring_;
  ReplayFilter replay_;  // of what keyring_ opened
  std::uint64_t clock_offset_ms_ = 0;
  EventFn on_event_;
  UserFn on_user_;
  OutputFn on_output_;
  std::unique_ptr<Core> core_;
  bool flushing_ = false;  // flush() is running: a nested call only asks it for one more pass
  bool again_ = false;
  int fd_ = -1;
  uv_poll_t poll_{};
  uv_timer_t timer_{};
  uv_prepare_t prepare_{};
  std::unique_ptr<UvListener> listener_;
  std::set<Conn*> conns_;
  std::map<ConnId, Conn*> links_;  // persistent connections, by the core's id for them
  std::set<ConnId> dirty_;         // links with bytes queued this turn
  ConnId next_accept_id_ = ConnId{1} << 63;
  std::size_t buffered_ = 0;  // bytes held in the read buffers of all TCP exchanges
  UvStats stats_;
  bool closing_ = false;
  int open_handles_ = 0;
  std::function<void()> on_closed_;
};

}  // namespace shoal::cluster
