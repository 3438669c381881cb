#pragma once

// The membership wire format: msgpack, versioned, every field bounded. This header is the spec.
//
// UDP packet (at most kMaxPacketBytes, sealed by the keyring when a cluster key is set):
//   packet   := [ version, sender, creation, messages ]
//   version  := 1                       (kWireVersion; a reader drops others, counted)
// Compatibility within a wire version (every minor release of one major version, see
// include/shoal/version.h): writers may append fields to any record below (packet, message,
// push_pull, member, user_stream) and add message types; a reader skips fields beyond those it
// knows, and skips a message of a type it does not know, reading the rest of its packet. At most
// kMaxMessageFields fields per record.
//   sender   := name of the sending node (str);  creation := its process start, ms
//   messages := [ message, ... ]        a compound: the probe message first, then gossip
//   message  := [ type, fields... ]     by type (MessageType, only append):
//     1 ping     [1, seq, target, view]        target: the name the prober means
//     2 ack      [2, seq, view]                view: digest of the sender's live members
//     3 nack     [3, seq, reason]              an intermediary could not reach the target
//     4 ping_req [4, seq, target, addr]        probe `target` at `addr` for me
//     5 alive    [5, name, addr, creation, incarnation, tags]
//     6 suspect  [6, name, creation, incarnation, from]
//     7 dead     [7, name, creation, incarnation, from]
//     8 left     [8, name, creation, incarnation]
//     9 user     [9, payload]                  a message of the layers above, to this node
//    11 user_broadcast [11, origin, id, payload]  one for every node, re-gossiped by each
//                                            receiver once ((origin, id) is its identity)
//   addr := [ip (bin, 4 or 16 bytes), port];  tags := [key, value, key, value, ...]
//
// TCP stream frame (length-prefixed by the driver: u32 big-endian length, then the body):
//   push_pull := [ version, 10, join, sender, creation, members, user_state ]
//   members   := [ [name, addr, creation, incarnation, status, tags], ... ]
//   status    := 0 alive | 1 suspect | 2 dead | 3 left
//   user_stream := [ version, 12, sender, creation, payload ]   one way, for the layers above
//
// Multicast announcement (UDP to the discovery group, sealed like every packet):
//   announcement := [ 1, "shoal-announce", name, addr ]
//
// A decoder checks type and bounds before every read and names the field in its error; a packet
// that fails is dropped and counted by the caller, never half-applied.

#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cluster/address.h"
#include "crdt/error.h"

namespace shoal::cluster {

using Error = crdt::Error;
using Tags = std::map<std::string, std::string, std::less<>>;

inline constexpr std::uint64_t kWireVersion = 1;
inline constexpr std::uint32_t kMaxMessageFields = 16;

// Limits, with their arithmetic.
// 1,400 bytes of UDP payload: a 1,500-byte Ethernet MTU less 40 (IPv6) and 8 (UDP) headers,
// less 52 for the sealing envelope (key id, 24-byte nonce, 16-byte tag, and slack).
inline constexpr std::size_t kMaxPacketBytes = 1400;
inline constexpr std::size_t kMaxNameBytes = 255;
inline constexpr std::size_t kMaxTags = 32;
inline constexpr std::size_t kMaxTagKeyBytes = 64;
inline constexpr std::size_t kMaxTagValueBytes = 255;
inline constexpr std::size_t kMaxMessagesPerPacket = 512;
inline constexpr std::size_t kMaxMembers = 100'000;
inline constexpr std::size_t kMaxUserStateBytes = 32 * 1024 * 1024;
// A stream frame carries a push-pull: 100,000 members of ~150 bytes and the user state.
inline constexpr std::size_t kMaxStreamBytes = 64 * 1024 * 1024;

enum class MessageType : std::uint8_t {  // only append
  ping = 1,
  ack = 2,
  nack = 3,
  ping_req = 4,
  alive = 5,
  suspect = 6,
  dead = 7,
  left = 8,
  user = 9,
  push_pull = 10,
  user_broadcast = 11,
  user_stream = 12,
};

enum class NackReason : std::uint8_t { timeout = 0, unreachable = 1 };
enum class MemberStatus : std::uint8_t { alive = 0, suspect = 1, dead = 2, left = 3 };

const char* status_name(MemberStatus status);

struct Ping {
  std::uint64_t seq;
  std::string target;
  std::uint64_t view = 0;
};
struct Ack {
  std::uint64_t seq;
  std::uint64_t view = 0;
};
struct Nack {
  std::uint64_t seq;
  NackReason reason;
};
struct PingReq {
  std::uint64_t seq;
  std::string target;
  Address target_addr;
};
struct Alive {
  std::string name;
  Address addr;
  std::uint64_t creation;
  std::uint64_t incarnation;
  Tags tags;
};
struct Suspect {
  std::string name;
  std::uint64_t creation;
  std::uint64_t incarnation;
  std::string from;
};
struct Dead {
  std::string name;
  std::uint64_t creation;
  std::uint64_t incarnation;
  std::string from;
};
struct Left {
  std::string name;
  std::uint64_t creation;
  std::uint64_t incarnation;
};
struct User {
  std::string payload;
};
struct UserBroadcast {
  std::string origin;
  std::uint64_t id;
  std::string payload;
};

using Message =
    std::variant<Ping, Ack, Nack, PingReq, Alive, Suspect, Dead, Left, User, UserBroadcast>;

struct Packet {
  std::string sender;
  std::uint64_t creation = 0;
  std::vector<Message> messages;
};

struct MemberState {
  std::string name;
  Address addr;
  std::uint64_t creation = 0;
  std::uint64_t incarnation = 0;
  MemberStatus status = MemberStatus::alive;
  Tags tags;
};

struct PushPull {
  bool join = false;
  std::string sender;
  std::uint64_t creation = 0;
  std::vector<MemberState> members;
  std::string user_state;
};

// The encoding of one message, to be placed in a packet by PacketBuilder.
std::string encode_message(const Message& message);

// Builds one compound packet of at most `limit` bytes from pre-encoded messages.
// Whether peers can read a node with these tags: their count and sizes within the limits above,
// and its alive message, at its widest (the greatest creation and incarnation), in one packet of
// `packet_bytes` with the header; else peers drop its packets and it never joins. A one-line
// reason that starts with "tag" otherwise (the agent prefixes "--", naming its flag).
std::optional<std::string> tags_fit(const std::string& name, const Address& addr, const Tags& tags,
                                    std::size_t packet_bytes);

class PacketBuilder {
 public:
  PacketBuilder(std::string_view sender, std::uint64_t creation,
                std::size_t limit = kMaxPacketBytes);
  // Appends an encoded message if the packet stays within the limit. Returns true iff appended.
  bool add(std::string_view encoded);
  // Bytes the packet would have now.
  std::size_t size() const;
  // Bytes still free for messages.
  std::size_t room() const { return limit_ > size() ? limit_ - size() : 0; }
  std::size_t count() const { return count_; }
  std::string finish() const;

 private:
  std::string header_;  // version, sender, creation
  std::string body_;    // the encoded messages
  std::size_t count_ = 0;
  std::size_t limit_;
};

std::expected<Packet, Error> decode_packet(std::string_view bytes);

struct UserStream {
  std::string sender;
  std::uint64_t creation = 0;
  std::string payload;
};

// The type of a stream frame (push_pull or user_stream), or nullopt if it is not even that.
std::optional<MessageType> stream_type(std::string_view bytes);
std::string encode_user_stream(const UserStream& message);
std::expected<UserStream, Error> decode_user_stream(std::string_view bytes);

std::string encode_push_pull(const PushPull& state);
std::expected<PushPull, Error> decode_push_pull(std::string_view bytes);

// A node telling the discovery group where it is.
struct Announcement {
  std::string name;
  Address addr;
};
std::string encode_announcement(const Announcement& a);
std::expected<Announcement, Error> decode_announcement(std::string_view bytes);

}  // namespace shoal::cluster
