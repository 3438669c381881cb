#pragma once

// What the host says, for tests and benchmarks that run real processes on it: free loopback
// ports, and the copies of test children in the OS process table. Linux only (/proc).

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace shoal::test {

// A base port with `count` consecutive free UDP+TCP ports on 127.0.0.1, chosen at random in
// 20000..59999 and checked by binding. Throws std::runtime_error if none is found.
std::uint16_t free_ports(std::uint16_t count);

// Live (not zombie) OS processes whose command line is exactly `sleep <arg>`: (pid, parent pid).
// Tests and benchmarks run children as `sleep <unique number>` to find every copy in the table.
std::vector<std::pair<pid_t, pid_t>> sleepers(const std::string& arg);
// Every live `sleep <arg>` process, by arg, from one pass over /proc.
std::map<std::string, std::vector<std::pair<pid_t, pid_t>>> all_sleepers();

}  // namespace shoal::test
