#include "crdt/block_pool.h"

#include <sys/mman.h>

#include <cstdint>
#include <new>

namespace shoal::crdt::detail {

namespace {

// A 2 MiB-aligned mapping of 2 MiB, advised as huge pages. Mapped directly rather than from the
// heap: an aligned heap allocation leaves the alignment's slack as free fragments beside it,
// which later allocations touch (10 bytes more resident per entry of a 1,000,000-entry state).
void* map_huge_slab() {
  constexpr std::size_t size = BlockPool::kHugeSlabBytes;
  void* raw = ::mmap(nullptr, 2 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (start + size - 1) & ~(std::uintptr_t{size} - 1);
  if (aligned > start) ::munmap(raw, aligned - start);
  if (const std::uintptr_t tail = start + 2 * size - (aligned + size); tail > 0)
    ::munmap(reinterpret_cast<void*>(aligned + size), tail);
  void* slab = reinterpret_cast<void*>(aligned);
  ::madvise(slab, size, MADV_HUGEPAGE);
  return slab;
}

}  // namespace

BlockPool::~BlockPool() {
  for (const Slab& slab : slabs_) {
    if (slab.huge) {
      ::munmap(slab.memory, kHugeSlabBytes);
    } else {
      ::operator delete(slab.memory);
    }
  }
}

void* BlockPool::allocate(std::size_t size) {
  if (size > kMaxPooled) return ::operator new(size);
  const std::size_t c = size_class(size);
  if (FreeBlock* block = free_[c]; block != nullptr) {
    free_[c] = block->next;
    return block;
  }
  const std::size_t bytes = c * kGranule;
  if (bump_left_ < bytes) {
    // The rest of the old slab is a few hundred bytes at most; not worth tracking.
    const bool huge = slab_bytes_ >= kHugeAfter;
    const std::size_t slab = huge ? kHugeSlabBytes : kSlabBytes;
    if (huge) {
      bump_ = static_cast<char*>(map_huge_slab());
    } else {
      bump_ = static_cast<char*>(::operator new(slab));
    }
    slabs_.push_back(Slab{bump_, huge});
    slab_bytes_ += slab;
    bump_left_ = slab;
  }
  void* block = bump_;
  bump_ += bytes;
  bump_left_ -= bytes;
  return block;
}

void BlockPool::deallocate(void* block, std::size_t size) noexcept {
  if (size > kMaxPooled) {
    ::operator delete(block);
    return;
  }
  const std::size_t c = size_class(size);
  free_[c] = new (block) FreeBlock{free_[c]};
}

}  // namespace shoal::crdt::detail
