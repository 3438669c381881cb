#pragma once

// BroadcastQueue: updates waiting to be piggybacked on outgoing packets (SWIM's infection-style
// dissemination). Each update is keyed (for membership, by member name: a newer update about a
// member replaces the older one still queued), counts its transmissions and is dropped after the
// retransmit limit. Packets take the least transmitted updates first, newest first among equals,
// so fresh news spreads fastest. The queue is bounded: beyond max_items the most transmitted update
// is dropped (it has had the most chances to spread already).
//
// Owned by the membership core; not thread-safe.

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "cluster/wire.h"

namespace shoal::cluster {

class BroadcastQueue {
 public:
  explicit BroadcastQueue(std::size_t max_items) : max_items_(max_items) {}

  // Queues `encoded` under `key`, replacing what is queued under the same key.
  void push(std::string_view key, std::string encoded);
  // Appends queued updates to `packet` while they fit and their total stays within `budget` bytes.
  // Each appended update counts one transmission and leaves the queue after `limit`. Returns the
  // number of bytes appended. With count = false nothing counts as transmitted (for packets to
  // members declared dead, which must not use up an update's chances to reach the living).
  std::size_t fill(PacketBuilder& packet, std::size_t budget, std::size_t limit, bool count = true);
  // Drops what is queued under `key`.
  void erase(std::string_view key);

  std::size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  // Updates dropped because the queue was full.
  std::uint64_t overflowed() const { return overflowed_; }

 private:
  struct Item;
  using Items = std::map<std::string, Item, std::less<>>;
  // Position in the send order: least transmitted first, newest first among equals.
  struct Order {
    std::uint32_t transmits;
    std::uint64_t seq;  // unique
    Items::iterator item;
    friend bool operator<(const Order& a, const Order& b) {
      if (a.transmits != b.transmits) return a.transmits < b.transmits;
      return a.seq > b.seq;
    }
  };
  struct Item {
    std::string encoded;
    std::uint32_t transmits;
    std::uint64_t seq;
  };

  // A packet stops taking updates after this many in a row did not fit.
  static constexpr int kMisfitsBeforeFull = 4;

  const std::size_t max_items_;
  Items items_;
  std::set<Order> order_;
  std::uint64_t next_seq_ = 0;
  std::uint64_t overflowed_ = 0;
};

}  // namespace shoal::cluster
