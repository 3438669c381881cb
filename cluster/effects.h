#pragma once

// What a node's core asks of its driver, and tells its owner: the effects it queues after every
// input (cluster/core.h). Membership emits the first four; the persistent connections are asked
// for by the messaging layer (messaging/messenger.h), which a supervisor::Stack runs.

#include <cstdint>
#include <string>
#include <variant>

#include "cluster/address.h"
#include "cluster/wire.h"

namespace shoal::cluster {

struct SendPacket {
  Address to;
  std::string bytes;
};
// Open a stream to `to`, send `bytes` as one frame, and report the reply frame with
// on_stream_reply(id, ...) or the failure with on_stream_failed(id).
struct StreamRequest {
  std::uint64_t id;
  Address to;
  std::string bytes;
};

enum class EventKind { joined, updated, suspect, alive_again, failed, left };
const char* event_name(EventKind kind);

struct MemberEvent {
  EventKind kind;
  std::string name;
  Address addr;
  std::uint64_t creation;
  std::uint64_t incarnation;
  Tags tags;
  std::uint64_t at_ms;
};

// A payload of the layers above, received from `from`.
struct UserMessage {
  std::string from;
  std::string payload;
  std::uint64_t creation = 0;  // the sender's life (0 for gossiped broadcasts)
};

// --- Persistent connections ---
//
// A connection is named by the core (ConnId) and lives until either side closes it. The driver
// reports the outcome of ConnOpen with Core::on_conn_up or on_conn_down, hands every batch of
// bytes that arrives to on_conn_data (a batch is what the other side's core queued in one loop
// turn: it holds whole frames), reports what it wrote with on_conn_sent, and a connection that
// ended with on_conn_down. A connection a peer opened arrives as on_conn_accepted.
using ConnId = std::uint64_t;
// Connect to `to` (the TCP port of the node there).
struct ConnOpen {
  ConnId id;
  Address to;
};
// Queue `bytes` on the connection. Everything queued in one loop turn leaves as one batch (one
// write, one sealed frame with a cluster key).
struct ConnSend {
  ConnId id;
  std::string bytes;
};
// Close the connection once what was queued is written. No on_conn_down follows.
struct ConnClose {
  ConnId id;
};

using Effect = std::variant<SendPacket, StreamRequest, MemberEvent, UserMessage, ConnOpen, ConnSend,
                            ConnClose>;

}  // namespace shoal::cluster
