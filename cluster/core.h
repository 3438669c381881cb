#pragma once

// Core: one node's sans-IO unit as its drivers see it. A driver (the libuv one, cluster/uv/, or
// the simulator, cluster/sim/) owns the sockets and the clock; it hands the core every datagram,
// stream frame and timer with the current time, and performs what the core queued: datagrams to
// send, streams to open. Two cores exist: cluster::Node (membership and the map's replication) and
// supervisor::Stack (a Node and every layer above it: registry, supervisor, workers).
//
// Contract for drivers:
//  1. Every input carries `now_ms`, never less than the last one given.
//  2. After every input, and after API calls made on the core's parts from outside (then call
//     settle()), the driver drains take_effects() and re-arms its timer for next_deadline().
//  3. At the end of every loop turn, if pending(), the driver calls flush(): the turn's local
//     writes to the map leave as one batch.
//  4. The driver never calls the core from inside one of its calls.
//
// Loop-bound: one thread owns a core; not thread-safe.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/address.h"
#include "cluster/effects.h"
#include "cluster/membership.h"
#include "cluster/replicator.h"

namespace shoal::cluster {

class Core {
 public:
  virtual ~Core() = default;

  // --- Inputs (as Membership's) ---
  virtual void on_packet(std::uint64_t now_ms, const Address& from, std::string_view bytes) = 0;
  virtual void on_unreachable(std::uint64_t now_ms, const Address& to) = 0;
  // Returns the reply frame (empty: none).
  virtual std::string on_stream_request(std::uint64_t now_ms, const Address& from,
                                        std::string_view bytes) = 0;
  virtual void on_stream_reply(std::uint64_t now_ms, std::uint64_t id, std::string_view bytes) = 0;
  virtual void on_stream_failed(std::uint64_t now_ms, std::uint64_t id) = 0;
  virtual void on_timer(std::uint64_t now_ms) = 0;
  // Persistent connections (cluster/effects.h). Ids the driver gives accepted connections have
  // the top bit set; a core's own (ConnOpen) do not.
  virtual void on_conn_up(std::uint64_t now_ms, ConnId id) = 0;
  virtual void on_conn_accepted(std::uint64_t now_ms, ConnId id, const Address& from) = 0;
  // Bytes that arrived, in order (whole frames or not: the core reassembles).
  virtual void on_conn_data(std::uint64_t now_ms, ConnId id, std::string_view bytes) = 0;
  // The driver wrote `bytes` of what was queued on the connection.
  virtual void on_conn_sent(std::uint64_t now_ms, ConnId id, std::size_t bytes) = 0;
  // The connection failed to open, or ended (not after the core's own ConnClose).
  virtual void on_conn_down(std::uint64_t now_ms, ConnId id) = 0;
  // Routes the effects of API calls made on the parts directly (membership().join(...),
  // replicator()->put(...)).
  virtual void settle(std::uint64_t now_ms) = 0;
  // Local writes to the map wait for flush(), once per loop turn.
  virtual bool pending() const = 0;
  virtual void flush(std::uint64_t now_ms) = 0;

  // --- Outputs ---
  // When on_timer must next be called.
  virtual std::uint64_t next_deadline() const = 0;
  // Datagrams and streams for the driver, and the events for its owner (MemberEvent: a member's
  // status changed; UserMessage: a payload on the application channel). Appends to `out`.
  virtual void take_effects(std::vector<Effect>& out) = 0;
  // The map's changes not consumed by the core's own layers (a Stack consumes all of them; a
  // bare Node hands them out). Appends to `out`.
  virtual void take_changes(std::vector<ReplicaChange>& out) = 0;

  // --- Parts ---
  virtual Membership& membership() = 0;
  virtual const Membership& membership() const = 0;
  // Null when the core runs without replication.
  virtual Replicator* replicator() = 0;
  virtual const Replicator* replicator() const = 0;
};

}  // namespace shoal::cluster
