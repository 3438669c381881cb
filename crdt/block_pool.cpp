#include "crdt/block_pool.h"

#include <new>

namespace shoal::crdt::detail {

BlockPool::~BlockPool() {
  for (void* slab : slabs_)
    ::operator delete(slab);
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
    bump_ = static_cast<char*>(::operator new(kSlabBytes));
    slabs_.push_back(bump_);
    bump_left_ = kSlabBytes;
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
