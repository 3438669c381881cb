#pragma once

// The wire form of an AwLwwMap (a state, a delta or a delta interval): msgpack, versioned, every
// length and count bounded. This header is the spec.
//
//   map      := [ format, kind, replicas, context, entries ]
//   format   := 1                                   (kFormatVersion; a reader refuses others)
//   kind     := 0 state | 1 delta | 2 complete delta (AwLwwMap::Kind; only append)
//   replicas := [ id, ... ]                         replica ids (str), unique; the indices below
//                                                   point into this list
//   context  := [ row, ... ]                        row := [ ix, max, first, last, first, last, ...
//   ]
//               the dots of replica `ix`: 1..max, then each inclusive range [first, last];
//               ranges ascending, disjoint, not adjacent, all above max + 1
//   entries  := [ entry, ... ]                      strictly ascending by key (bytewise)
//   entry    := [ key, counter, ix, ts, value, counter, ix, ts, value, ... ]
//               key and value are bin; one (counter, ix, ts, value) group per version, the dot
//               being (replicas[ix], counter) and ts the hybrid logical clock timestamp
//
// The context on the wire may leave out the dots of the versions listed in entries: a reader adds
// them back (a context always holds its own versions' dots). The encoder leaves them out for small
// deltas, which is what keeps a one-entry delta small.
//
// A put delta of a new key, with a 16-byte key, a 28-byte value, a 21-byte replica id and a
// counter above 2^16 (as bench/crdt_bench measures it):
//   95 01 01                   [format 1, kind delta,
//   91 b5 <id: 21 bytes>        replicas ["node-03:7946.lx2k9q1c"],
//   90                          context [] (its one dot is the entry's own),
//   91 95 c4 10 <key: 16>       entries [[key,
//   ce <counter: 4> 00          counter, replica 0,
//   cf <ts: 8>                  ts,
//   c4 1c <value: 28>           value]]]
//   = 3 + 23 + 1 + 20 + 6 + 9 + 30 = 92 bytes.
// A put that replaces a version also carries that version's dot in the context (5 to 13 bytes).

// Decoding never trusts a count: each is checked against its limit and against the bytes left, so
// a buffer of n bytes allocates O(n) at most. Any violation yields an Error naming the field.

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include "crdt/aw_lww_map.h"
#include "crdt/error.h"

namespace shoal::crdt {

inline constexpr std::uint64_t kFormatVersion = 1;

// Bounds a decoder enforces; callers that know their message sizes may tighten them.
struct DecodeLimits {
  std::uint32_t max_replicas = 65'536;
  std::uint32_t max_replica_id_bytes = 255;
  std::uint32_t max_ranges_per_replica = 65'536;
  std::uint32_t max_entries = 16'000'000;
  std::uint32_t max_key_bytes = 1024;
  std::uint32_t max_value_bytes = 1024 * 1024;
  std::uint32_t max_versions_per_key = 256;
};

// Counters and timestamps above these are refused, so counter arithmetic (c + 1) cannot overflow.
inline constexpr std::uint64_t kMaxCounter = std::uint64_t{1} << 62;

// Appends the encoding of `map` to `out`.
void encode(const AwLwwMap& map, std::string& out);
// Returns the encoding of `map`.
std::string encode(const AwLwwMap& map);

// Decodes one map that must fill `bytes` exactly.
std::expected<AwLwwMap, Error> decode(std::string_view bytes, const DecodeLimits& limits = {});

}  // namespace shoal::crdt
