#pragma once

// ReplayFilter: remembers the nonces of the last `capacity` sealed packets and frames a node
// opened, so that one seen again (a replay by an attacker who recorded it, or a duplicate made by
// the network) is rejected and counted instead of being processed twice.
//
// A sealed packet's nonce is 24 random bytes, authenticated with the packet (cluster/keyring.h):
// an attacker cannot change it without the key, so a packet that opens and carries a known nonce
// is a copy. The filter keeps 64 bits of each nonce (random bits: a false match between two real
// packets has odds of 2^-64 per pair) in a ring of `capacity` entries plus a hash set. Memory is
// fixed: about 40 bytes per entry. Replays older than the ring's window (capacity packets ago)
// are not caught; every protocol message is idempotent, so those change nothing either.
//
// Only for an encrypted cluster: without keys a packet has no nonce. Not thread-safe.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace shoal::cluster {

class ReplayFilter {
 public:
  explicit ReplayFilter(std::size_t capacity = 16'384);

  // Records the nonce of the sealed bytes `sealed` (as Keyring::seal() lays them out). Returns
  // false if it was seen within the window (a replay), true if it is new. Bytes too short to
  // hold a nonce are new (the keyring rejects them first).
  bool admit(std::string_view sealed);

  std::size_t size() const { return seen_.size(); }

 private:
  const std::size_t capacity_;
  std::vector<std::uint64_t> ring_;  // in arrival order, oldest at next_
  std::size_t next_ = 0;
  std::unordered_set<std::uint64_t> seen_;
};

}  // namespace shoal::cluster
