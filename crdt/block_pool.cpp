#include "crdt/block_pool.h"

#include <sys/mman.h>

#include <new>

namespace shoal::crdt::detail {

BlockPool::~BlockPool() {
  for (const Slab& slab : slabs_) {
    if (slab.huge) {
      ::operator delete(slab.memory, std::align_val_t{kHugeSlabBytes});
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
      bump_ = static_cast<char*>(::operator new(slab, std::align_val_t{kHugeSlabBytes}));
      ::madvise(bump_, slab, MADV_HUGEPAGE);
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
