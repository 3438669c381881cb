#pragma once

// Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014), packed in 64 bits.
//
// A Timestamp is (physical milliseconds << 16) | logical counter. Comparing two timestamps as
// integers orders them by physical time first and by the logical counter among events in the
// same millisecond. The clock never reads a clock itself: the caller hands it physical time on
// every call, which keeps crdt/ free of IO and lets the simulator run it on virtual time.
//
// Invariants:
//  1. Every timestamp tick() returns is strictly greater than every timestamp the clock returned
//     or observed before.
//  2. The clock never runs ahead of max(physical time given, timestamps observed) by more than the
//     logical counter: it follows physical time whenever physical time moves forward.
//
// Owned by one replica; not thread-safe.

#include <cstdint>

namespace shoal::crdt {

using Timestamp = std::uint64_t;

inline constexpr int kLogicalBits = 16;

// The physical part of a timestamp, in milliseconds.
constexpr std::uint64_t physical_ms(Timestamp ts) {
  return ts >> kLogicalBits;
}
// The logical part of a timestamp.
constexpr std::uint64_t logical(Timestamp ts) {
  return ts & ((1u << kLogicalBits) - 1);
}
// The timestamp at the start of physical millisecond `ms`.
constexpr Timestamp from_ms(std::uint64_t ms) {
  return ms << kLogicalBits;
}

class Hlc {
 public:
  // `max_drift_ms` bounds how far ahead of our own physical time an observed timestamp may be
  // and still move this clock: a peer with a clock set to next year must not drag every node's
  // timestamps along (a put's causal order never depends on this clock, only ties between
  // concurrent puts do, so ignoring such a timestamp is safe).
  explicit Hlc(std::uint64_t max_drift_ms = 60'000) : max_drift_ms_(max_drift_ms) {}

  // Returns a timestamp for a local event at physical time `now_ms`: greater than every
  // timestamp returned or observed before.
  Timestamp tick(std::uint64_t now_ms);

  // Takes in a timestamp seen in a message received at physical time `now_ms`. Returns false,
  // and ignores it, iff it lies more than max_drift_ms ahead of now_ms.
  bool observe(Timestamp remote, std::uint64_t now_ms);

  // The greatest timestamp returned or observed so far (0 before any).
  Timestamp last() const { return last_; }

 private:
  // Fixed after construction.
  std::uint64_t max_drift_ms_;
  // Changed by inputs.
  Timestamp last_ = 0;
};

}  // namespace shoal::crdt
