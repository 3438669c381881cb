#pragma once

// Timing formulas of the membership protocol, as pure functions (table-tested in
// tests/unit/cluster/timing_test.cpp).

#include <cstddef>
#include <cstdint>

namespace shoal::cluster {

// Times an update is piggybacked before it is dropped: mult * ceil(log10(n + 1)), n members.
std::size_t retransmit_limit(std::size_t mult, std::size_t n);

// The least suspicion timeout, ms: mult * max(1, log10(n)) * probe_interval_ms.
std::uint64_t suspicion_min_ms(double mult, std::size_t n, std::uint64_t probe_interval_ms);

// Lifeguard's dynamic suspicion timeout: starts at max_ms and falls towards min_ms as
// `confirmations` independent suspicions arrive, reaching min_ms at `expected`:
//   max(min, max - (max - min) * log(c + 1) / log(k + 1)).
std::uint64_t suspicion_timeout_ms(std::uint64_t min_ms, std::uint64_t max_ms,
                                   std::size_t confirmations, std::size_t expected);

// Push-pull interval, ms: the base below 32 members, then base * ceil(log2(n) - log2(32) + 1),
// so that full-state traffic per node stays flat as the cluster grows.
std::uint64_t push_pull_interval_ms(std::uint64_t base_ms, std::size_t n);

}  // namespace shoal::cluster
