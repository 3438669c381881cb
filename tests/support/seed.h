#pragma once

// Seeds for randomized tests. Every randomized test takes its seed from test_seed(), which prints
// "seed=N" so a failing run can be replayed with SHOAL_SEED=N. Without SHOAL_SEED the seed is a
// fixed number derived from the test's name, so CI runs are repeatable.

#include <cstdint>
#include <random>
#include <string_view>

namespace shoal::test {

// The base seed of the running test case: SHOAL_SEED if set, else a hash of the test's name.
// Prints "seed=N test=NAME" to stdout.
std::uint64_t test_seed();

// A 64-bit generator seeded from `seed` (splitmix64-expanded, so nearby seeds diverge).
std::mt19937_64 rng_for(std::uint64_t seed);

}  // namespace shoal::test
