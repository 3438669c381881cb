#include "cluster/replay_filter.h"

#include <cstring>

#include "cluster/keyring.h"

namespace shoal::cluster {

ReplayFilter::ReplayFilter(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {
  ring_.reserve(capacity_);
  seen_.reserve(capacity_);
}

bool ReplayFilter::admit(std::string_view sealed) {
  // [version][24-byte nonce]...: the first 8 bytes of the nonce.
  if (sealed.size() < kSealOverhead) return true;
  std::uint64_t key = 0;
  std::memcpy(&key, sealed.data() + 1, sizeof key);
  if (seen_.contains(key)) return false;
  if (ring_.size() < capacity_) {
    ring_.push_back(key);
  } else {
    seen_.erase(ring_[next_]);
    ring_[next_] = key;
    next_ = (next_ + 1) % capacity_;
  }
  seen_.insert(key);
  return true;
}

}  // namespace shoal::cluster
