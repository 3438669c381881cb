#include "bench/provenance.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace shoal::bench {

namespace {

// The standard output of `cmd` (run by the shell), without trailing newlines and spaces.
std::string output_of(const char* cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd, "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p) != nullptr)
      out += buf;
    ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
    out.pop_back();
  return out;
}

}  // namespace

Provenance provenance(int argc, char** argv) {
  Provenance p;
  p.commit = output_of("git rev-parse HEAD 2>/dev/null");
  if (p.commit.empty()) {
    p.commit = "unknown";
  } else if (!output_of("git status --porcelain --untracked-files=no 2>/dev/null").empty()) {
    p.commit += "+dirty";
  }
  for (int i = 0; i < argc; ++i) {
    if (i > 0) p.command += ' ';
    p.command += argv[i];
  }
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  p.date = buf;
  return p;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[(c >> 4) & 0xf];
      out += kHex[c & 0xf];
    } else {
      out += c;
    }
  }
  return out + '"';
}

namespace {

// The value of `field` ("VmRSS:") in /proc/self/status, KiB, or 0 if unknown.
std::uint64_t status_kib(const char* field) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  const std::size_t n = std::strlen(field);
  char line[256];
  std::uint64_t kib = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, field, n) == 0) kib = std::strtoull(line + n, nullptr, 10);
  }
  std::fclose(f);
  return kib;
}

}  // namespace

std::uint64_t peak_rss_kib() {
  return status_kib("VmHWM:");
}

std::uint64_t resident_kib() {
  return status_kib("VmRSS:");
}

std::vector<std::size_t> parse_sizes(std::string_view list) {
  std::vector<std::size_t> out;
  for (std::size_t pos = 0; pos < list.size();) {
    const std::size_t comma = std::min(list.find(',', pos), list.size());
    out.push_back(std::strtoull(std::string(list.substr(pos, comma - pos)).c_str(), nullptr, 10));
    pos = comma == list.size() ? list.size() : comma + 1;
  }
  return out;
}

}  // namespace shoal::bench
