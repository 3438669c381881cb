#include "bench/provenance.h"

#include <cstdio>
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

}  // namespace shoal::bench
