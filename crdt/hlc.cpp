#include "crdt/hlc.h"

#include <algorithm>

namespace shoal::crdt {

Timestamp Hlc::tick(std::uint64_t now_ms) {
  last_ = std::max(last_ + 1, from_ms(now_ms));
  return last_;
}

bool Hlc::observe(Timestamp remote, std::uint64_t now_ms) {
  if (physical_ms(remote) > now_ms + max_drift_ms_) return false;
  last_ = std::max(last_, remote);
  return true;
}

}  // namespace shoal::crdt
