#include "cluster/wire.h"

#include <limits>

#include "crdt/msgpack_reader.h"
#include "crdt/msgpack_writer.h"

namespace shoal::cluster {

namespace {

using crdt::Errc;
using crdt::MsgReader;

void pack_addr(crdt::MsgWriter& pk, const Address& a) {
  pk.array(2);
  pk.bin(a.ip_bytes());
  pk.uint(a.port);
}

void pack_tags(crdt::MsgWriter& pk, const Tags& tags) {
  pk.array(2 * tags.size());
  for (const auto& [k, v] : tags) {
    pk.str(k);
    pk.str(v);
  }
}

std::size_t array_header_bytes(std::size_t count) {
  if (count < 16) return 1;
  if (count <= 0xffff) return 3;
  return 5;
}

std::string read_name(MsgReader& r, const char* field) {
  const std::string_view name = r.bytes(field, kMaxNameBytes);
  if (r.ok() && name.empty()) r.fail(Errc::invalid, field, "empty name");
  return std::string(name);
}

Address read_addr(MsgReader& r, const char* field) {
  Address a;
  r.array_of(field, 2);
  const std::string_view ip = r.bytes(field, 16);
  if (r.ok() && ip.size() != 4 && ip.size() != 16) {
    r.fail(Errc::invalid, field, "ip must be 4 or 16 bytes");
  }
  a.port = static_cast<std::uint16_t>(r.uint(field, 65535));
  if (!r.ok()) return a;
  a.ip_len = static_cast<std::uint8_t>(ip.size());
  std::copy(ip.begin(), ip.end(), reinterpret_cast<char*>(a.ip.data()));
  return a;
}

Tags read_tags(MsgReader& r, const char* field) {
  Tags tags;
  const std::uint32_t n = r.array(field, 2 * kMaxTags);
  if (r.ok() && n % 2 != 0) r.fail(Errc::invalid, field, "odd tag list");
  for (std::uint32_t i = 0; i + 1 < n && r.ok(); i += 2) {
    const std::string_view k = r.bytes(field, kMaxTagKeyBytes);
    const std::string_view v = r.bytes(field, kMaxTagValueBytes);
    if (r.ok() && k.empty()) r.fail(Errc::invalid, field, "empty tag key");
    if (r.ok() && !tags.emplace(std::string(k), std::string(v)).second) {
      r.fail(Errc::invalid, field, "duplicate tag key");
    }
  }
  return tags;
}

// The fields a message of `type` has in this version (its type included); 0 for a type this
// version does not know.
std::uint32_t field_count(MessageType type) {
  switch (type) {
    case MessageType::ping:
    case MessageType::ping_req:
    case MessageType::left:
    case MessageType::user_broadcast:
      return 4;
    case MessageType::ack:
    case MessageType::nack:
      return 3;
    case MessageType::alive:
      return 6;
    case MessageType::suspect:
    case MessageType::dead:
      return 5;
    case MessageType::user:
      return 2;
    default:
      return 0;
  }
}

// The known fields of a message of `type` (its array header and type already read).
std::optional<Message> read_fields(MsgReader& r, MessageType type) {
  switch (type) {
    case MessageType::ping: {
      Ping m;
      m.seq = r.uint("seq");
      m.target = read_name(r, "target");
      m.view = r.uint("view");
      if (r.ok()) return m;
      break;
    }
    case MessageType::ack: {
      Ack m;
      m.seq = r.uint("seq");
      m.view = r.uint("view");
      if (r.ok()) return m;
      break;
    }
    case MessageType::nack: {
      Nack m{r.uint("seq"), static_cast<NackReason>(r.uint("reason", 1))};
      if (r.ok()) return m;
      break;
    }
    case MessageType::ping_req: {
      PingReq m;
      m.seq = r.uint("seq");
      m.target = read_name(r, "target");
      m.target_addr = read_addr(r, "addr");
      if (r.ok()) return m;
      break;
    }
    case MessageType::alive: {
      Alive m;
      m.name = read_name(r, "name");
      m.addr = read_addr(r, "addr");
      m.creation = r.uint("creation");
      m.incarnation = r.uint("incarnation");
      m.tags = read_tags(r, "tags");
      if (r.ok()) return m;
      break;
    }
    case MessageType::suspect:
    case MessageType::dead: {
      std::string name = read_name(r, "name");
      const std::uint64_t creation = r.uint("creation");
      const std::uint64_t incarnation = r.uint("incarnation");
      std::string from = read_name(r, "from");
      if (!r.ok()) break;
      if (type == MessageType::suspect) {
        return Suspect{std::move(name), creation, incarnation, std::move(from)};
      }
      return Dead{std::move(name), creation, incarnation, std::move(from)};
    }
    case MessageType::left: {
      Left m;
      m.name = read_name(r, "name");
      m.creation = r.uint("creation");
      m.incarnation = r.uint("incarnation");
      if (r.ok()) return m;
      break;
    }
    case MessageType::user: {
      User m{std::string(r.bytes("payload", kMaxPacketBytes))};
      if (r.ok()) return m;
      break;
    }
    case MessageType::user_broadcast: {
      UserBroadcast m;
      m.origin = read_name(r, "origin");
      m.id = r.uint("id");
      m.payload = std::string(r.bytes("payload", kMaxPacketBytes));
      if (r.ok()) return m;
      break;
    }
    default:
      break;  // field_count() says 0: read_message() skips it
  }
  return std::nullopt;
}

// One message. A newer minor version may append fields to a message and add types: the extra
// fields are skipped, and a message of an unknown type is skipped whole (nullopt, the reader
// still ok), so that the rest of its packet is read.
std::optional<Message> read_message(MsgReader& r) {
  const std::uint32_t len = r.array("message", kMaxMessageFields);
  if (!r.ok()) return std::nullopt;
  if (len == 0) {
    r.fail(Errc::invalid, "message", "empty message");
    return std::nullopt;
  }
  const auto type = static_cast<MessageType>(r.uint("type", 255));
  const std::uint32_t known = field_count(type);
  if (r.ok() && known != 0 && len < known) {
    r.fail(Errc::invalid, "message", "too few fields for its type");
    return std::nullopt;
  }
  std::optional<Message> m = known != 0 ? read_fields(r, type) : std::nullopt;
  for (std::uint32_t i = std::max<std::uint32_t>(known, 1); i < len && r.ok(); ++i)
    r.skip("message");
  if (!r.ok()) return std::nullopt;
  return m;
}

// Skips the fields a newer minor version appended to a record of `fields` (this one knows
// `known`).
void skip_extra(MsgReader& r, const char* field, std::uint32_t fields, std::uint32_t known) {
  for (std::uint32_t i = known; i < fields && r.ok(); ++i)
    r.skip(field);
}

void check_version(MsgReader& r) {
  const std::uint64_t version = r.uint("version");
  if (r.ok() && version != kWireVersion) {
    r.fail(Errc::bad_version, "version",
           "version " + std::to_string(version) + ", this build speaks 1");
  }
}

}  // namespace

const char* status_name(MemberStatus status) {
  switch (status) {
    case MemberStatus::alive:
      return "alive";
    case MemberStatus::suspect:
      return "suspect";
    case MemberStatus::dead:
      return "dead";
    case MemberStatus::left:
      return "left";
  }
  return "unknown";
}

std::string encode_message(const Message& message) {
  std::string out;
  crdt::MsgWriter pk(out);
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, Ping>) {
          pk.array(4);
          pk.uint(static_cast<std::uint8_t>(MessageType::ping));
          pk.uint(m.seq);
          pk.str(m.target);
          pk.uint(m.view);
        } else if constexpr (std::is_same_v<T, Ack>) {
          pk.array(3);
          pk.uint(static_cast<std::uint8_t>(MessageType::ack));
          pk.uint(m.seq);
          pk.uint(m.view);
        } else if constexpr (std::is_same_v<T, Nack>) {
          pk.array(3);
          pk.uint(static_cast<std::uint8_t>(MessageType::nack));
          pk.uint(m.seq);
          pk.uint(static_cast<std::uint8_t>(m.reason));
        } else if constexpr (std::is_same_v<T, PingReq>) {
          pk.array(4);
          pk.uint(static_cast<std::uint8_t>(MessageType::ping_req));
          pk.uint(m.seq);
          pk.str(m.target);
          pack_addr(pk, m.target_addr);
        } else if constexpr (std::is_same_v<T, Alive>) {
          pk.array(6);
          pk.uint(static_cast<std::uint8_t>(MessageType::alive));
          pk.str(m.name);
          pack_addr(pk, m.addr);
          pk.uint(m.creation);
          pk.uint(m.incarnation);
          pack_tags(pk, m.tags);
        } else if constexpr (std::is_same_v<T, Suspect> || std::is_same_v<T, Dead>) {
          pk.array(5);
          pk.uint(static_cast<std::uint8_t>(std::is_same_v<T, Suspect> ? MessageType::suspect
                                                                       : MessageType::dead));
          pk.str(m.name);
          pk.uint(m.creation);
          pk.uint(m.incarnation);
          pk.str(m.from);
        } else if constexpr (std::is_same_v<T, Left>) {
          pk.array(4);
          pk.uint(static_cast<std::uint8_t>(MessageType::left));
          pk.str(m.name);
          pk.uint(m.creation);
          pk.uint(m.incarnation);
        } else if constexpr (std::is_same_v<T, User>) {
          pk.array(2);
          pk.uint(static_cast<std::uint8_t>(MessageType::user));
          pk.bin(m.payload);
        } else if constexpr (std::is_same_v<T, UserBroadcast>) {
          pk.array(4);
          pk.uint(static_cast<std::uint8_t>(MessageType::user_broadcast));
          pk.str(m.origin);
          pk.uint(m.id);
          pk.bin(m.payload);
        }
      },
      message);
  return out;
}

PacketBuilder::PacketBuilder(std::string_view sender, std::uint64_t creation, std::size_t limit)
    : limit_(limit) {
  crdt::MsgWriter pk(header_);
  pk.array(4);
  pk.uint(kWireVersion);
  pk.str(sender);
  pk.uint(creation);
}

std::size_t PacketBuilder::size() const {
  return header_.size() + array_header_bytes(count_) + body_.size();
}

bool PacketBuilder::add(std::string_view encoded) {
  const std::size_t after =
      header_.size() + array_header_bytes(count_ + 1) + body_.size() + encoded.size();
  if (after > limit_ || count_ + 1 > kMaxMessagesPerPacket) return false;
  body_.append(encoded);
  ++count_;
  return true;
}

std::string PacketBuilder::finish() const {
  std::string out;
  out.reserve(size());
  out = header_;
  crdt::MsgWriter pk(out);
  pk.array(count_);
  out.append(body_);
  return out;
}

std::expected<Packet, Error> decode_packet(std::string_view bytes) {
  if (bytes.size() > kMaxPacketBytes) {
    return std::unexpected(
        Error{Errc::too_large, "packet", std::to_string(bytes.size()) + " bytes"});
  }
  MsgReader r(bytes);
  const std::uint32_t fields = r.array_at_least("packet", 4, kMaxMessageFields);
  check_version(r);
  Packet packet;
  packet.sender = read_name(r, "sender");
  packet.creation = r.uint("creation");
  const std::uint32_t n = r.array("messages", kMaxMessagesPerPacket);
  packet.messages.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    r.at("messages", i);
    if (auto m = read_message(r)) packet.messages.push_back(std::move(*m));
  }
  r.at(nullptr, 0);
  skip_extra(r, "packet", fields, 4);
  if (r.ok() && r.remaining() != 0) {
    r.at(nullptr, 0);
    r.fail(Errc::invalid, "packet", "trailing bytes");
  }
  if (!r.ok()) return std::unexpected(r.error());
  return packet;
}

std::string encode_push_pull(const PushPull& state) {
  std::string out;
  crdt::MsgWriter pk(out);
  pk.array(7);
  pk.uint(kWireVersion);
  pk.uint(static_cast<std::uint8_t>(MessageType::push_pull));
  pk.uint(state.join ? 1 : 0);
  pk.str(state.sender);
  pk.uint(state.creation);
  pk.array(state.members.size());
  for (const MemberState& m : state.members) {
    pk.array(6);
    pk.str(m.name);
    pack_addr(pk, m.addr);
    pk.uint(m.creation);
    pk.uint(m.incarnation);
    pk.uint(static_cast<std::uint8_t>(m.status));
    pack_tags(pk, m.tags);
  }
  pk.bin(state.user_state);
  return out;
}

std::expected<PushPull, Error> decode_push_pull(std::string_view bytes) {
  if (bytes.size() > kMaxStreamBytes) {
    return std::unexpected(
        Error{Errc::too_large, "frame", std::to_string(bytes.size()) + " bytes"});
  }
  MsgReader r(bytes);
  const std::uint32_t fields = r.array_at_least("push_pull", 7, kMaxMessageFields);
  check_version(r);
  const std::uint64_t type = r.uint("type", 255);
  if (r.ok() && type != static_cast<std::uint64_t>(MessageType::push_pull)) {
    r.fail(Errc::invalid, "type", "expected push_pull");
  }
  PushPull state;
  state.join = r.uint("join", 1) == 1;
  state.sender = read_name(r, "sender");
  state.creation = r.uint("creation");
  const std::uint32_t n = r.array("members", kMaxMembers);
  state.members.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    r.at("members", i);
    const std::uint32_t member_fields = r.array_at_least("member", 6, kMaxMessageFields);
    MemberState m;
    m.name = read_name(r, "name");
    m.addr = read_addr(r, "addr");
    m.creation = r.uint("creation");
    m.incarnation = r.uint("incarnation");
    m.status = static_cast<MemberStatus>(r.uint("status", 3));
    m.tags = read_tags(r, "tags");
    skip_extra(r, "member", member_fields, 6);
    if (r.ok()) state.members.push_back(std::move(m));
  }
  r.at(nullptr, 0);
  state.user_state = std::string(r.bytes("user_state", kMaxUserStateBytes));
  skip_extra(r, "push_pull", fields, 7);
  if (r.ok() && r.remaining() != 0) r.fail(Errc::invalid, "push_pull", "trailing bytes");
  if (!r.ok()) return std::unexpected(r.error());
  return state;
}

namespace {
constexpr std::string_view kAnnounceMagic = "shoal-announce";
}  // namespace

std::string encode_announcement(const Announcement& a) {
  std::string out;
  crdt::MsgWriter pk(out);
  pk.array(4);
  pk.uint(1);
  pk.str(kAnnounceMagic);
  pk.str(a.name);
  pack_addr(pk, a.addr);
  return out;
}

std::expected<Announcement, Error> decode_announcement(std::string_view bytes) {
  crdt::MsgReader r(bytes);
  r.array_of("announcement", 4);
  if (r.uint("version", 255) != 1 && r.ok()) r.fail(crdt::Errc::invalid, "version", "expected 1");
  if (r.bytes("magic", 32) != kAnnounceMagic && r.ok())
    r.fail(crdt::Errc::invalid, "magic", "not an announcement");
  Announcement out;
  out.name = read_name(r, "name");
  out.addr = read_addr(r, "addr");
  if (r.ok() && r.remaining() != 0) r.fail(crdt::Errc::invalid, "announcement", "trailing bytes");
  if (!r.ok()) return std::unexpected(r.error());
  return out;
}

}  // namespace shoal::cluster

namespace shoal::cluster {

std::optional<MessageType> stream_type(std::string_view bytes) {
  crdt::MsgReader r(bytes);
  r.array("frame", 16);
  r.uint("version");
  const std::uint64_t type = r.uint("type", 255);
  if (!r.ok()) return std::nullopt;
  return static_cast<MessageType>(type);
}

std::string encode_user_stream(const UserStream& message) {
  std::string out;
  crdt::MsgWriter pk(out);
  pk.array(5);
  pk.uint(kWireVersion);
  pk.uint(static_cast<std::uint8_t>(MessageType::user_stream));
  pk.str(message.sender);
  pk.uint(message.creation);
  pk.bin(message.payload);
  return out;
}

std::expected<UserStream, Error> decode_user_stream(std::string_view bytes) {
  crdt::MsgReader r(bytes);
  const std::uint32_t fields = r.array_at_least("user_stream", 5, kMaxMessageFields);
  check_version(r);
  const std::uint64_t type = r.uint("type", 255);
  if (r.ok() && type != static_cast<std::uint64_t>(MessageType::user_stream)) {
    r.fail(crdt::Errc::invalid, "type", "expected user_stream");
  }
  UserStream out;
  out.sender = read_name(r, "sender");
  out.creation = r.uint("creation");
  out.payload = std::string(r.bytes("payload", kMaxUserStateBytes));
  skip_extra(r, "user_stream", fields, 5);
  if (r.ok() && r.remaining() != 0) r.fail(crdt::Errc::invalid, "user_stream", "trailing bytes");
  if (!r.ok()) return std::unexpected(r.error());
  return out;
}

std::optional<std::string> tags_fit(const std::string& name, const Address& addr, const Tags& tags,
                                    std::size_t packet_bytes) {
  if (tags.size() > kMaxTags)
    return "tag: at most " + std::to_string(kMaxTags) + " tags, shoal's own included";
  for (const auto& [key, value] : tags) {
    if (key.size() > kMaxTagKeyBytes)
      return "tag: a tag key takes at most " + std::to_string(kMaxTagKeyBytes) + " bytes";
    if (value.size() > kMaxTagValueBytes) {
      return "tag " + key + ": a tag value takes at most " + std::to_string(kMaxTagValueBytes) +
             " bytes";
    }
  }
  const std::uint64_t widest = std::numeric_limits<std::uint64_t>::max();
  PacketBuilder packet(name, widest, packet_bytes);
  if (!packet.add(encode_message(Alive{name, addr, widest, widest, tags}))) {
    return "tag: the tags and the node's name take too many bytes: they travel in every packet "
           "that announces the node (at most " +
           std::to_string(packet_bytes) + " bytes)";
  }
  return std::nullopt;
}

}  // namespace shoal::cluster
