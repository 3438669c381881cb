#pragma once

// The agent's RPC on its Unix socket: frames, requests and replies. This header is the spec.
//
// A frame is a 4-byte big-endian length N followed by N bytes of msgpack: one Value (value.h).
//
//   request:  {"v": 1, "cmd": "<command>", "args": {...}}
//   reply:    {"ok": true,  "result": <Value>}
//             {"ok": false, "error": "<one line>", "code": "<error code>"}
//   stream:   a `watch` request is answered by {"ok": true, "event": <Value>} frames until the
//             client closes the connection.
//
// Error codes: bad_request (undecodable frame, unknown command, missing or mistyped argument),
// too_large (a request frame over the limit: the connection is closed after the reply),
// not_found (no such name, group or child), conflict (the name is taken), failed (the command
// could not be done; the error says why), busy (too many connections).
//
// Requests are bounded (kMaxRequestBytes); replies may be larger (a names listing of a big
// cluster), up to kMaxReplyBytes, which the CLI enforces on what it reads.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bin/rpc/value.h"

namespace shoal::bin::rpc {

constexpr std::uint32_t kVersion = 1;
// 8 MiB: a run-batch of 100,000 worker specs (about 2.6 MB), or a message of at most 1 MiB
// (messaging/wire.h) and its request around it. Only the socket's owner can connect (0600), and
// max_clients bounds how many such buffers there are.
constexpr std::size_t kMaxRequestBytes = 8 * 1024 * 1024;
constexpr std::size_t kMaxReplyBytes = 256 * 1024 * 1024;

// Prefixes `body` with its length.
std::string frame(std::string_view body);

// Splits a byte stream into frames. Feed it what arrives; take() yields each complete frame body.
// A frame longer than the limit makes it fail for good (the stream cannot be resynchronised).
class FrameReader {
 public:
  explicit FrameReader(std::size_t max_frame) : max_(max_frame) {}
  void feed(std::string_view bytes);
  // The next complete frame, if any.
  std::optional<std::string> take();
  // Set once a frame header announced more than the limit.
  bool failed() const { return failed_; }
  std::size_t announced() const { return announced_; }
  std::size_t buffered() const { return buf_.size() - pos_; }

 private:
  std::size_t max_;
  std::string buf_;
  std::size_t pos_ = 0;
  bool failed_ = false;
  std::size_t announced_ = 0;
};

struct Request {
  std::string cmd;
  Value args;  // always a map
};

// Decodes a request body. The reason names what is wrong.
std::expected<Request, std::string> decode_request(std::string_view body);
std::string encode_request(std::string_view cmd, Value args);

std::string encode_ok(Value result);
std::string encode_event(Value event);
std::string encode_error(std::string_view code, std::string_view message);

}  // namespace shoal::bin::rpc
