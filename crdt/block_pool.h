#pragma once

// BlockPool: where a state's entry blocks live. A state holds its entries for long while the
// deltas, messages and buffers of replication come and go around them; from one general heap,
// the long-lived blocks end up scattered between the holes the transient ones leave, and those
// partly used pages stay resident. A pool packs the blocks into slabs of their own (and spares
// each the heap's per-allocation header), so the memory of a state is about what it holds.
//
// Blocks up to kMaxPooled bytes are cut from slabs in 16-byte steps; a freed block goes to the
// free list of its size and is reused by the next block of that size. Larger blocks come from
// ::operator new. Slabs are released with the pool. Every block is 16-byte aligned.
//
// Slabs are 64 KiB until the pool holds kHugeAfter bytes, then 2 MiB, mapped aligned and advised to
// the kernel as huge pages (MADV_HUGEPAGE; a hint, ignored where transparent huge pages are off): a
// lookup in a large state lands on a random block, and with 4 KiB pages most such lookups also
// miss the TLB and walk the page tables. A small state never takes a 2 MiB slab.
//
// Owned by one map; not thread-safe.

#include <array>
#include <cstddef>
#include <vector>

namespace shoal::crdt::detail {

class BlockPool {
 public:
  static constexpr std::size_t kGranule = 16;
  static constexpr std::size_t kMaxPooled = 512;
  static constexpr std::size_t kSlabBytes = 64 * 1024;
  static constexpr std::size_t kHugeSlabBytes = 2 * 1024 * 1024;
  static constexpr std::size_t kHugeAfter = 1024 * 1024;

  BlockPool() = default;
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;
  ~BlockPool();

  void* allocate(std::size_t size);
  // `size` as given to allocate().
  void deallocate(void* block, std::size_t size) noexcept;

  // Bytes obtained from the heap for pooled blocks.
  std::size_t slab_bytes() const { return slab_bytes_; }

 private:
  struct FreeBlock {
    FreeBlock* next;
  };
  static std::size_t size_class(std::size_t size) { return (size + kGranule - 1) / kGranule; }

  std::array<FreeBlock*, kMaxPooled / kGranule + 1> free_{};
  struct Slab {
    void* memory;
    bool huge;
  };
  std::vector<Slab> slabs_;
  std::size_t slab_bytes_ = 0;
  char* bump_ = nullptr;  // the unused tail of the newest slab
  std::size_t bump_left_ = 0;
};

}  // namespace shoal::crdt::detail
