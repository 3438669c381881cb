#pragma once

// Shared by the libFuzzer targets: seed writing. With SHOAL_FUZZ_SEEDS=DIR in the environment, a
// target writes its seed inputs (valid encodings) into DIR and exits; the seeds in fuzz/corpus/
// were made that way (scripts/fuzz.sh --seeds).

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace shoal::fuzz {

inline void write_seeds_if_asked(const std::vector<std::string>& seeds) {
  const char* dir = std::getenv("SHOAL_FUZZ_SEEDS");
  if (dir == nullptr || *dir == '\0') return;
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    std::ofstream(std::string(dir) + "/seed-" + std::to_string(i), std::ios::binary) << seeds[i];
  }
  std::printf("wrote %zu seeds to %s\n", seeds.size(), dir);
  std::exit(0);
}

}  // namespace shoal::fuzz
