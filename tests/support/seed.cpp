#include "tests/support/seed.h"

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "crdt/hash.h"

namespace shoal::test {

std::uint64_t test_seed() {
  const std::string name = boost::unit_test::framework::current_test_case().p_name;
  std::uint64_t seed = 0;
  if (const char* env = std::getenv("SHOAL_SEED"); env != nullptr && *env != '\0') {
    seed = std::strtoull(env, nullptr, 10);
  } else {
    seed = crdt::fnv1a(name);
  }
  std::printf("seed=%llu test=%s\n", static_cast<unsigned long long>(seed), name.c_str());
  std::fflush(stdout);
  return seed;
}

std::mt19937_64 rng_for(std::uint64_t seed) {
  return std::mt19937_64(crdt::splitmix64(seed));
}

}  // namespace shoal::test
