#include "messaging/wire.h"

#include "crdt/msgpack_reader.h"
#include "crdt/msgpack_writer.h"

namespace shoal::messaging {

namespace {

using crdt::Errc;
using crdt::MsgReader;
using crdt::MsgWriter;

// Reserves the length prefix, returns where the body starts.
std::size_t begin(std::string& out) {
  out.append(4, '\0');
  return out.size();
}

void end(std::string& out, std::size_t body) {
  const auto n = static_cast<std::uint32_t>(out.size() - body);
  char* p = out.data() + body - 4;
  p[0] = static_cast<char>(n >> 24);
  p[1] = static_cast<char>(n >> 16);
  p[2] = static_cast<char>(n >> 8);
  p[3] = static_cast<char>(n);
}

void head(MsgWriter& w, std::size_t fields, FrameType type) {
  w.array(fields);
  w.uint(static_cast<std::uint8_t>(type));
}

struct Encoder {
  MsgWriter& w;
  void operator()(const Hello& f) {
    head(w, 6, FrameType::hello);
    w.uint(kVersion);
    w.str(f.sender);
    w.uint(f.creation);
    w.str(f.peer);
    w.uint(f.peer_creation);
  }
  void operator()(const Welcome& f) {
    head(w, 2, FrameType::welcome);
    w.uint(f.accepted ? 1 : 0);
  }
  void operator()(const Send& f) {
    head(w, 4, FrameType::send);
    w.uint(f.to);
    w.uint(f.from);
    w.bin(f.payload);
  }
  void operator()(const Call& f) {
    head(w, 5, FrameType::call);
    w.uint(f.to);
    w.uint(f.call_id);
    w.uint(f.from);
    w.bin(f.payload);
  }
  void operator()(const Reply& f) {
    head(w, 3, FrameType::reply);
    w.uint(f.call_id);
    w.bin(f.payload);
  }
  void operator()(const Failure& f) {
    head(w, 3, FrameType::failure);
    w.uint(f.call_id);
    w.uint(static_cast<std::uint8_t>(f.code));
  }
  void operator()(const Multicast& f) {
    head(w, 4, FrameType::multicast);
    w.array(f.to.size());
    for (std::uint64_t to : f.to)
      w.uint(to);
    w.uint(f.from);
    w.bin(f.payload);
  }
  void operator()(const Task& f) {
    head(w, 4, FrameType::task);
    w.uint(f.task_id);
    w.array(f.argv.size());
    for (const std::string& a : f.argv)
      w.str(a);
    w.uint(f.timeout_ms);
  }
  void operator()(const TaskOut& f) {
    head(w, 4, FrameType::task_out);
    w.uint(f.task_id);
    w.uint(f.stream);
    w.bin(f.bytes);
  }
  void operator()(const TaskEnd& f) {
    head(w, 4, FrameType::task_end);
    w.uint(f.task_id);
    w.uint(f.status);
    w.str(f.error);
  }
};

std::string_view name_of(MsgReader& r, const char* field) {
  const std::string_view name = r.bytes(field, kMaxNameBytes);
  if (r.ok() && name.empty()) r.fail(Errc::invalid, field, "empty name");
  return name;
}

// The fields of a frame of `type` whose array header announced `n` elements.
Frame decode_body(MsgReader& r, FrameType type, std::uint32_t n) {
  auto expect = [&](std::uint32_t want) {
    if (r.ok() && n != want) r.fail(Errc::invalid, "frame", "wrong number of fields");
  };
  switch (type) {
    case FrameType::hello: {
      expect(6);
      Hello f;
      if (r.uint("version", 255) != kVersion && r.ok())
        r.fail(Errc::bad_version, "version", "expected 1");
      f.sender = std::string(name_of(r, "sender"));
      f.creation = r.uint("creation");
      f.peer = std::string(name_of(r, "peer"));
      f.peer_creation = r.uint("peer_creation");
      return f;
    }
    case FrameType::welcome: {
      expect(2);
      return Welcome{r.uint("accepted", 1) == 1};
    }
    case FrameType::send: {
      expect(4);
      Send f;
      f.to = r.uint("to");
      f.from = r.uint("from");
      f.payload = r.bytes("payload", kMaxPayloadBytes);
      return f;
    }
    case FrameType::call: {
      expect(5);
      Call f;
      f.to = r.uint("to");
      f.call_id = r.uint("call_id");
      f.from = r.uint("from");
      f.payload = r.bytes("payload", kMaxPayloadBytes);
      return f;
    }
    case FrameType::reply: {
      expect(3);
      Reply f;
      f.call_id = r.uint("call_id");
      f.payload = r.bytes("payload", kMaxPayloadBytes);
      return f;
    }
    case FrameType::failure: {
      expect(3);
      Failure f;
      f.call_id = r.uint("call_id");
      const std::uint64_t code = r.uint("code", 255);
      if (r.ok() && code != 1 && code != 2) r.fail(Errc::invalid, "code", "unknown failure");
      f.code = static_cast<FailureCode>(code);
      return f;
    }
    case FrameType::multicast: {
      expect(4);
      Multicast f;
      const std::uint32_t count = r.array("to", kMaxMulticast);
      f.to.reserve(count);
      for (std::uint32_t i = 0; i < count && r.ok(); ++i)
        f.to.push_back(r.uint("to"));
      f.from = r.uint("from");
      f.payload = r.bytes("payload", kMaxPayloadBytes);
      return f;
    }
    case FrameType::task: {
      expect(4);
      Task f;
      f.task_id = r.uint("task_id");
      const std::uint32_t count = r.array("argv", kMaxTaskArgs);
      for (std::uint32_t i = 0; i < count && r.ok(); ++i)
        f.argv.emplace_back(r.bytes("arg", kMaxTaskArgBytes));
      if (r.ok() && f.argv.empty()) r.fail(Errc::invalid, "argv", "no command");
      f.timeout_ms = r.uint("timeout_ms");
      return f;
    }
    case FrameType::task_out: {
      expect(4);
      TaskOut f;
      f.task_id = r.uint("task_id");
      f.stream = static_cast<std::uint8_t>(r.uint("stream", 2));
      if (r.ok() && f.stream == 0) r.fail(Errc::invalid, "stream", "expected 1 or 2");
      f.bytes = r.bytes("bytes", kMaxPayloadBytes);
      return f;
    }
    case FrameType::task_end: {
      expect(4);
      TaskEnd f;
      f.task_id = r.uint("task_id");
      f.status = r.uint("status", 255);
      f.error = r.bytes("error", 4096);
      return f;
    }
  }
  r.fail(Errc::invalid, "type", "unknown frame type");
  return Welcome{};
}

}  // namespace

void append_frame(std::string& out, const Frame& frame) {
  const std::size_t body = begin(out);
  MsgWriter w(out);
  std::visit(Encoder{w}, frame);
  end(out, body);
}

void append_send(std::string& out, std::uint64_t to, std::uint64_t from, std::string_view payload) {
  const std::size_t body = begin(out);
  MsgWriter w(out);
  Encoder{w}(Send{to, from, payload});
  end(out, body);
}

void append_call(std::string& out, std::uint64_t to, std::uint64_t call_id, std::uint64_t from,
                 std::string_view payload) {
  const std::size_t body = begin(out);
  MsgWriter w(out);
  Encoder{w}(Call{to, call_id, from, payload});
  end(out, body);
}

void append_reply(std::string& out, std::uint64_t call_id, std::string_view payload) {
  const std::size_t body = begin(out);
  MsgWriter w(out);
  Encoder{w}(Reply{call_id, payload});
  end(out, body);
}

std::expected<Frame, Error> FrameReader::next() {
  auto fail = [&](Errc code, const char* field, std::string detail) {
    rest_ = {};
    return std::unexpected(Error{code, field, std::move(detail)});
  };
  if (rest_.size() < 4) return fail(Errc::truncated, "length", "fewer than 4 bytes");
  const auto* p = reinterpret_cast<const unsigned char*>(rest_.data());
  const std::uint32_t n = (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
                          (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
  if (n > kMaxFrameBytes) return fail(Errc::too_large, "length", std::to_string(n) + " bytes");
  if (rest_.size() - 4 < n) return fail(Errc::truncated, "frame", "cut short");
  const std::string_view body = rest_.substr(4, n);
  rest_.remove_prefix(4 + static_cast<std::size_t>(n));
  MsgReader r(body);
  const std::uint32_t fields = r.array("frame", 16);
  const std::uint64_t type = r.uint("type", 255);
  if (!r.ok()) return fail(r.error().code, r.error().field.c_str(), r.error().detail);
  Frame frame = decode_body(r, static_cast<FrameType>(type), fields);
  if (r.ok() && r.remaining() != 0) r.fail(Errc::invalid, "frame", "trailing bytes");
  if (!r.ok()) {
    const Error e = r.error();
    rest_ = {};
    return std::unexpected(e);
  }
  return frame;
}

}  // namespace shoal::messaging
