#include "tests/support/host.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

namespace shoal::test {

std::map<std::string, std::vector<std::pair<pid_t, pid_t>>> all_sleepers() {
  std::map<std::string, std::vector<std::pair<pid_t, pid_t>>> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string pid = entry.path().filename();
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string line;
    if (std::FILE* f = std::fopen((entry.path() / "cmdline").c_str(), "rb")) {
      char buf[256];
      const std::size_t n = std::fread(buf, 1, sizeof buf, f);
      std::fclose(f);
      line.assign(buf, n);
    }
    // "sleep\0ARG\0"
    const std::string head = std::string("sleep") + '\0';
    if (line.size() <= head.size() || line.compare(0, head.size(), head) != 0 ||
        line.back() != '\0')
      continue;
    const std::string arg = line.substr(head.size(), line.size() - head.size() - 1);
    if (arg.find('\0') != std::string::npos) continue;
    std::ifstream status(entry.path() / "status");
    std::string field;
    pid_t ppid = 0;
    bool zombie = false;
    while (status >> field) {
      if (field == "State:") {
        std::string state;
        status >> state;
        zombie = state == "Z";
      } else if (field == "PPid:") {
        status >> ppid;
      }
    }
    if (!zombie && ppid != 0) out[arg].emplace_back(static_cast<pid_t>(std::stol(pid)), ppid);
  }
  return out;
}

std::vector<std::pair<pid_t, pid_t>> sleepers(const std::string& arg) {
  auto all = all_sleepers();
  auto it = all.find(arg);
  return it == all.end() ? std::vector<std::pair<pid_t, pid_t>>{} : it->second;
}

std::uint16_t free_ports(std::uint16_t count) {
  std::random_device rd;  // tests only: pick a port range no other test run is likely to hold
  std::mt19937 rng(rd());
  for (int attempt = 0; attempt < 200; ++attempt) {
    const auto base = static_cast<std::uint16_t>(20000 + rng() % 40000);
    bool ok = true;
    for (std::uint16_t i = 0; i < count && ok; ++i) {
      for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
        const int fd = ::socket(AF_INET, type, 0);
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(static_cast<std::uint16_t>(base + i));
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok = ok && ::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0;
        ::close(fd);
      }
    }
    if (ok) return base;
  }
  throw std::runtime_error("no free port range on 127.0.0.1");
}

}  // namespace shoal::test
