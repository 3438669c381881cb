#pragma once

// The project's hashes, one of each: FNV-1a (names, addresses, view digests, traces), splitmix64
// (seeds and RNG streams) and the rendezvous weight (placement of children, the node that purges
// a dead life's names, the node a key belongs to).
//
// None of them is cryptographic. They are stable across builds and machines (fixed constants, no
// pointer or std::hash input): nodes compare what they compute from them, and a seed must replay.

#include <cstdint>
#include <string_view>

namespace shoal::crdt {

// FNV-1a, 64 bits, fed piece by piece. word() folds in a whole integer at once (not its bytes).
class Fnv1a {
 public:
  static constexpr std::uint64_t kOffset = 1469598103934665603ULL;
  static constexpr std::uint64_t kPrime = 1099511628211ULL;

  constexpr Fnv1a& bytes(std::string_view s) {
    for (unsigned char c : s)
      h_ = (h_ ^ c) * kPrime;
    return *this;
  }
  constexpr Fnv1a& word(std::uint64_t v) {
    h_ = (h_ ^ v) * kPrime;
    return *this;
  }
  constexpr std::uint64_t value() const { return h_; }

 private:
  std::uint64_t h_ = kOffset;
};

constexpr std::uint64_t fnv1a(std::string_view s) {
  return Fnv1a().bytes(s).value();
}

// splitmix64 (Steele, Lea and Flood): one step of the generator, a good mix of any 64-bit input.
constexpr std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The rendezvous (highest-random-weight) weight of `member` for `key`: FNV-1a over both, with a
// separator byte, then MurmurHash3's 64-bit finalizer so that one key's weights across members
// are independent. The member with the greatest weight owns the key; when a member leaves, only
// its keys move.
constexpr std::uint64_t rendezvous(std::string_view key, std::string_view member) {
  std::uint64_t h = Fnv1a().bytes(key).word(0xff).bytes(member).value();
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  return h ^ (h >> 33);
}

}  // namespace shoal::crdt
