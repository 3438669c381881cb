#include "cluster/broadcast_queue.h"

#include <vector>

namespace shoal::cluster {

void BroadcastQueue::push(std::string_view key, std::string encoded) {
  erase(key);
  const std::uint64_t seq = next_seq_++;
  auto item = items_.emplace(std::string(key), Item{std::move(encoded), 0, seq}).first;
  order_.insert(Order{0, seq, item});
  while (items_.size() > max_items_) {
    auto worst = std::prev(order_.end());
    items_.erase(worst->item);
    order_.erase(worst);
    ++overflowed_;
  }
}

void BroadcastQueue::erase(std::string_view key) {
  auto it = items_.find(key);
  if (it == items_.end()) return;
  order_.erase(Order{it->second.transmits, it->second.seq, it});
  items_.erase(it);
}

std::size_t BroadcastQueue::fill(PacketBuilder& packet, std::size_t budget, std::size_t limit,
                                 bool count) {
  std::size_t used = 0;
  int misfits = 0;
  std::vector<Order> sent;
  for (auto it = order_.begin(); it != order_.end() && misfits < kMisfitsBeforeFull;) {
    const std::string& encoded = it->item->second.encoded;
    if (used + encoded.size() > budget || !packet.add(encoded)) {
      ++misfits;  // too big for what is left; a smaller one further on may still fit
      ++it;
      continue;
    }
    misfits = 0;
    used += encoded.size();
    sent.push_back(*it);
    it = order_.erase(it);
  }
  for (Order& o : sent) {
    Item& item = o.item->second;
    if (!count) {
      order_.insert(o);
      continue;
    }
    if (++item.transmits >= limit) {
      items_.erase(o.item);
      continue;
    }
    o.transmits = item.transmits;
    order_.insert(o);
  }
  return used;
}

}  // namespace shoal::cluster
