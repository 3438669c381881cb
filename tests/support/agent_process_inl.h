#pragma once

#include <thread>

namespace shoal::test {

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    // Polling a condition with a deadline, not sleeping to win a race.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

}  // namespace shoal::test
