#include "cluster/timing.h"

#include <algorithm>
#include <cmath>

namespace shoal::cluster {

std::size_t retransmit_limit(std::size_t mult, std::size_t n) {
  const double scale = std::ceil(std::log10(static_cast<double>(n) + 1.0));
  return mult * static_cast<std::size_t>(std::max(1.0, scale));
}

std::uint64_t suspicion_min_ms(double mult, std::size_t n, std::uint64_t probe_interval_ms) {
  const double scale = std::max(1.0, std::log10(static_cast<double>(std::max<std::size_t>(n, 1))));
  return static_cast<std::uint64_t>(mult * scale * static_cast<double>(probe_interval_ms));
}

std::uint64_t suspicion_timeout_ms(std::uint64_t min_ms, std::uint64_t max_ms,
                                   std::size_t confirmations, std::size_t expected) {
  if (max_ms <= min_ms || expected == 0) return min_ms;
  const double frac = std::log(static_cast<double>(confirmations) + 1.0) /
                      std::log(static_cast<double>(expected) + 1.0);
  const double raw = static_cast<double>(max_ms) - frac * static_cast<double>(max_ms - min_ms);
  return std::max(min_ms, static_cast<std::uint64_t>(std::max(0.0, std::floor(raw))));
}

std::uint64_t push_pull_interval_ms(std::uint64_t base_ms, std::size_t n) {
  constexpr double kThreshold = 32;
  if (static_cast<double>(n) <= kThreshold) return base_ms;
  const double mult = std::ceil(std::log2(static_cast<double>(n)) - std::log2(kThreshold)) + 1.0;
  return static_cast<std::uint64_t>(mult * static_cast<double>(base_ms));
}

}  // namespace shoal::cluster
