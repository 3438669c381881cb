#pragma once

// The messaging wire format: what two nodes say over their one persistent connection. This header
// is the spec.
//
// A connection starts with the dialer's 4 magic bytes "SHM1" (which no push-pull frame can start
// with: those start with a length below 64 MiB), then carries sealed frames both ways, each
// written by the driver as u32 big-endian length + the keyring's seal of a batch (one loop turn's
// frames for that peer; the seal is the identity without a key). A batch is a run of frames:
//
//   frame := u32 big-endian length, then a msgpack array [type, fields...] by type (only append):
//     1 hello     [1, version, sender, creation, peer, peer_creation]
//                  the dialer names its life and the life it means to reach
//     2 welcome   [2, accepted]        0: refused (the other way round wins, or the life is gone)
//     3 send      [3, to, from, payload]
//     4 call      [4, to, call_id, from, payload]
//     5 reply     [5, call_id, payload]
//     6 failure   [6, call_id, code]   code: 1 noproc, 2 overloaded
//     7 multicast [7, [to, ...], from, payload]    one copy for each listed receiver here
//     8 task      [8, task_id, [arg, ...], timeout_ms]   run a command once here (shoal exec)
//     9 task_out  [9, task_id, stream, bytes]          stream: 1 stdout, 2 stderr
//    10 task_end  [10, task_id, status, error]         status: the exit code, or 128 + signal
//
// `to` and `from` are the local ids of pids on the receiving and the sending life (the connection
// names both lives, so a pid of an earlier life can never be addressed on it). Every field is
// bounded; a frame that does not decode closes the connection and is counted, never half-applied.

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "crdt/error.h"

namespace shoal::messaging {

using Error = crdt::Error;

inline constexpr std::uint64_t kVersion = 1;
inline constexpr std::string_view kMagic = "SHM1";
// Limits, with their arithmetic.
// A message's payload: 1 MiB (a message is not a file transfer; checkpoints are 64 KiB).
inline constexpr std::size_t kMaxPayloadBytes = 1024 * 1024;
// A frame: the payload, its header and 64 receivers of a multicast (more go in several frames).
inline constexpr std::size_t kMaxFrameBytes = kMaxPayloadBytes + 4096;
inline constexpr std::size_t kMaxMulticast = 64;
inline constexpr std::size_t kMaxTaskArgs = 256;
inline constexpr std::size_t kMaxTaskArgBytes = 4096;
inline constexpr std::size_t kMaxNameBytes = 255;

enum class FrameType : std::uint8_t {  // only append
  hello = 1,
  welcome = 2,
  send = 3,
  call = 4,
  reply = 5,
  failure = 6,
  multicast = 7,
  task = 8,
  task_out = 9,
  task_end = 10,
};

enum class FailureCode : std::uint8_t { noproc = 1, overloaded = 2 };

struct Hello {
  std::string sender;
  std::uint64_t creation = 0;
  std::string peer;
  std::uint64_t peer_creation = 0;
};
struct Welcome {
  bool accepted = false;
};
// Payloads are views into the decoded bytes: copy what must outlive them.
struct Send {
  std::uint64_t to = 0;
  std::uint64_t from = 0;
  std::string_view payload;
};
struct Call {
  std::uint64_t to = 0;
  std::uint64_t call_id = 0;
  std::uint64_t from = 0;
  std::string_view payload;
};
struct Reply {
  std::uint64_t call_id = 0;
  std::string_view payload;
};
struct Failure {
  std::uint64_t call_id = 0;
  FailureCode code = FailureCode::noproc;
};
struct Multicast {
  std::vector<std::uint64_t> to;
  std::uint64_t from = 0;
  std::string_view payload;
};
struct Task {
  std::uint64_t task_id = 0;
  std::vector<std::string> argv;
  std::uint64_t timeout_ms = 0;
};
struct TaskOut {
  std::uint64_t task_id = 0;
  std::uint8_t stream = 1;
  std::string_view bytes;
};
struct TaskEnd {
  std::uint64_t task_id = 0;
  std::uint64_t status = 0;
  std::string_view error;
};

using Frame =
    std::variant<Hello, Welcome, Send, Call, Reply, Failure, Multicast, Task, TaskOut, TaskEnd>;

// Appends one frame (its length prefix included) to `out`.
void append_frame(std::string& out, const Frame& frame);
// The hot paths, without building a Frame.
void append_send(std::string& out, std::uint64_t to, std::uint64_t from, std::string_view payload);
void append_call(std::string& out, std::uint64_t to, std::uint64_t call_id, std::uint64_t from,
                 std::string_view payload);
void append_reply(std::string& out, std::uint64_t call_id, std::string_view payload);

// Reads the frames of a batch one at a time. Frames point into the batch.
class FrameReader {
 public:
  explicit FrameReader(std::string_view batch) : rest_(batch) {}
  explicit FrameReader(std::string&&) = delete;
  bool done() const { return rest_.empty(); }
  // The next frame, or why the batch is bad (then the reader is done).
  std::expected<Frame, Error> next();

 private:
  std::string_view rest_;
};

}  // namespace shoal::messaging
