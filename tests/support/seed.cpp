#include "tests/support/seed.h"

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace shoal::test {

namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

std::uint64_t test_seed() {
  const std::string name = boost::unit_test::framework::current_test_case().p_name;
  std::uint64_t seed = 0;
  if (const char* env = std::getenv("SHOAL_SEED"); env != nullptr && *env != '\0') {
    seed = std::strtoull(env, nullptr, 10);
  } else {
    seed = 1469598103934665603ULL;  // FNV-1a of the test name
    for (unsigned char c : name)
      seed = (seed ^ c) * 1099511628211ULL;
  }
  std::printf("seed=%llu test=%s\n", static_cast<unsigned long long>(seed), name.c_str());
  std::fflush(stdout);
  return seed;
}

std::mt19937_64 rng_for(std::uint64_t seed) {
  return std::mt19937_64(splitmix64(seed));
}

}  // namespace shoal::test
