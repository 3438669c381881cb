#include "crdt/key_index.h"

#include <bit>
#include <cstring>
#include <utility>

#include "crdt/aw_lww_map.h"

namespace shoal::crdt::detail {

// Blocks come from ::operator new (EntryBlock::create): their low four address bits are free.
static_assert(__STDCPP_DEFAULT_NEW_ALIGNMENT__ >= 16);

KeyIndex::KeyIndex(KeyIndex&& other) noexcept
    : slots_(std::move(other.slots_)),
      size_(std::exchange(other.size_, 0)),
      shift_(std::exchange(other.shift_, 64)) {
  other.slots_.clear();
}

KeyIndex& KeyIndex::operator=(KeyIndex&& other) noexcept {
  slots_ = std::move(other.slots_);
  size_ = std::exchange(other.size_, 0);
  shift_ = std::exchange(other.shift_, 64);
  other.slots_.clear();
  return *this;
}

std::uint64_t KeyIndex::hash(std::string_view key) {
  // Eight bytes at a time, each folded in by a multiply and a shift; the length seeds it.
  constexpr std::uint64_t kMul = 0x9e3779b97f4a7c15ULL;
  std::uint64_t h = key.size() * kMul;
  std::size_t i = 0;
  for (; i + 8 <= key.size(); i += 8) {
    std::uint64_t chunk;
    std::memcpy(&chunk, key.data() + i, 8);
    h = (h ^ chunk) * kMul;
    h ^= h >> 29;
  }
  if (i < key.size()) {
    std::uint64_t chunk = 0;
    std::memcpy(&chunk, key.data() + i, key.size() - i);
    h = (h ^ chunk) * kMul;
    h ^= h >> 29;
  }
  h *= 0xbf58476d1ce4e5b9ULL;
  return h ^ (h >> 31);
}

std::uint64_t KeyIndex::hash_of(std::uint64_t slot) const {
  return 64 - shift_ <= kTagBits ? tag_hash(slot) : hash(block_of(slot)->key());
}

EntryBlock* KeyIndex::find(std::string_view key) const {
  if (size_ == 0) return nullptr;
  const std::uint64_t h = hash(key);
  const std::uint64_t tag = tag_of(h);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = home(h);; i = (i + 1) & mask) {
    const std::uint64_t slot = slots_[i];
    if (slot == 0) return nullptr;
    if (slot_tag(slot) == tag && block_of(slot)->key() == key) return block_of(slot);
  }
}

void KeyIndex::place(std::uint64_t slot, std::uint64_t h) {
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = home(h);
  while (slots_[i] != 0)
    i = (i + 1) & mask;
  slots_[i] = slot;
}

void KeyIndex::grow() {
  std::vector<std::uint64_t> old;
  old.swap(slots_);
  const std::size_t n = old.empty() ? 16 : old.size() * 2;
  slots_.assign(n, 0);
  shift_ = 64 - std::countr_zero(n);
  for (std::uint64_t slot : old) {
    if (slot == 0) continue;
    // The stored bits suffice while the new table needs no more of them.
    const std::uint64_t h = 64 - shift_ <= kTagBits ? tag_hash(slot) : hash(block_of(slot)->key());
    place(slot, h);
  }
}

void KeyIndex::insert(EntryBlock* block) {
  insert(block, hash(block->key()));
}

void KeyIndex::insert(EntryBlock* block, std::uint64_t h) {
  if ((size_ + 1) * 4 > slots_.size() * 3) grow();
  place(tag_of(h) | reinterpret_cast<std::uintptr_t>(block), h);
  ++size_;
}

std::uint64_t KeyIndex::prefetch(std::string_view key) const {
  const std::uint64_t h = hash(key);
  if (!slots_.empty()) __builtin_prefetch(&slots_[home(h)]);
  return h;
}

void KeyIndex::erase(const EntryBlock* block) {
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = home(hash(block->key()));
  while (block_of(slots_[i]) != block)
    i = (i + 1) & mask;
  // Backward shift: move later entries of the probe run into the hole when their home position
  // does not lie strictly between the hole and them.
  for (std::size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
    if (slots_[j] == 0) break;
    const std::size_t h = home(hash_of(slots_[j]));
    const bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
    if (stays) continue;
    slots_[i] = slots_[j];
    i = j;
  }
  slots_[i] = 0;
  --size_;
}

void KeyIndex::clear() {
  slots_.clear();
  slots_.shrink_to_fit();
  size_ = 0;
  shift_ = 64;
}

}  // namespace shoal::crdt::detail
