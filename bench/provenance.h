#pragma once

// What a benchmark result came from, recorded in every JSON under bench/: the C++ benches' side of
// bench/benchlib.py's provenance().

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::bench {

struct Provenance {
  // The commit of the working directory's repository, with "+dirty" if tracked files have
  // uncommitted changes; "unknown" outside a repository.
  std::string commit;
  // The command line as given: argv joined by single spaces.
  std::string command;
  // The UTC date and time, ISO 8601 to the second ("2026-12-05T19:07:55Z").
  std::string date;
};

// Returns the provenance of this run; `argc` and `argv` are main()'s. Runs git (two processes).
Provenance provenance(int argc, char** argv);

// `s` as a JSON string literal, quoted and escaped.
std::string json_string(std::string_view s);

// This process's peak resident memory so far, KiB (VmHWM of /proc/self/status), or 0 if unknown.
std::uint64_t peak_rss_kib();
// This process's resident memory now, KiB (VmRSS of /proc/self/status), or 0 if unknown.
std::uint64_t resident_kib();

// "100,1000" -> {100, 1000}: the sizes a bench is asked to run.
std::vector<std::size_t> parse_sizes(std::string_view list);

}  // namespace shoal::bench
