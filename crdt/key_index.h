#pragma once

// KeyIndex: a hash index from key to entry block, beside a state's ordered tree, so that a point
// lookup (whereis, a registration's "is it taken?") costs one or two cache misses instead of one
// per tree level.
//
// Open addressing with linear probing over a power-of-two table of tagged pointers. A key's home
// slot comes from the top bits of its hash, and a slot keeps the top 20 bits beside the pointer
// (16 above it: user-space pointers fit in 48 bits; 4 below it: blocks are 16-byte aligned), so a
// probe dereferences a block only when those bits match, and growing a table of up to 2^20 slots
// never reads a key again. The table stays at most 3/4 full; deletion shifts later entries back
// (no tombstones). It does not own the blocks; 8 bytes per slot, about 11 to 21 bytes per key.
//
// Not thread-safe.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace shoal::crdt::detail {

class EntryBlock;

class KeyIndex {
 public:
  KeyIndex() = default;
  KeyIndex(const KeyIndex&) = delete;
  KeyIndex& operator=(const KeyIndex&) = delete;
  KeyIndex(KeyIndex&& other) noexcept;
  KeyIndex& operator=(KeyIndex&& other) noexcept;

  // The block whose key is `key`, or null.
  EntryBlock* find(std::string_view key) const;
  // Adds a block whose key is not indexed yet.
  void insert(EntryBlock* block);
  // The same, with the key's hash() known.
  void insert(EntryBlock* block, std::uint64_t h);
  // Starts loading the slot where `key` would go, so that a lookup or insert shortly after finds
  // it in cache (a put walks the tree meanwhile). Returns hash(key).
  std::uint64_t prefetch(std::string_view key) const;
  // Removes `block` (it must be indexed).
  void erase(const EntryBlock* block);
  void clear();
  std::size_t size() const { return size_; }

  static std::uint64_t hash(std::string_view key);

 private:
  static constexpr int kTagBits = 20;
  static constexpr std::uint64_t kPointerMask = 0x0000'ffff'ffff'fff0ULL;

  // The top 20 bits of `h`, as stored in a slot (bits 63..48 and 3..0).
  static std::uint64_t tag_of(std::uint64_t h) { return (h >> 48) << 48 | ((h >> 44) & 0xf); }
  static std::uint64_t slot_tag(std::uint64_t slot) { return slot & ~kPointerMask; }
  // The top 20 bits of the hash, back in place (the lower bits zero).
  static std::uint64_t tag_hash(std::uint64_t slot) {
    return (slot >> 48) << 48 | (slot & 0xf) << 44;
  }
  static EntryBlock* block_of(std::uint64_t slot) {
    return reinterpret_cast<EntryBlock*>(slot & kPointerMask);
  }
  std::size_t home(std::uint64_t h) const { return h >> shift_; }
  // The hash of the entry in `slot`, as far as home() needs it.
  std::uint64_t hash_of(std::uint64_t slot) const;
  void grow();
  void place(std::uint64_t slot, std::uint64_t h);

  std::vector<std::uint64_t> slots_;  // 0: empty
  std::size_t size_ = 0;
  int shift_ = 64;  // 64 - log2(slots_.size())
};

}  // namespace shoal::crdt::detail
