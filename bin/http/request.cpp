#include "bin/http/request.h"

namespace shoal::bin::http {

namespace {

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Rejected too_large() {
  return Rejected{431, "request head too large\n"};
}

}  // namespace

ParsedHead parse_request_head(std::string_view buffered) {
  const std::size_t end = buffered.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (buffered.size() > kMaxRequestBytes) return too_large();
    return HeadIncomplete{};
  }
  if (end + 4 > kMaxRequestBytes) return too_large();
  // GET /path?query HTTP/1.1
  const std::string_view line = buffered.substr(0, buffered.find("\r\n"));
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 =
      sp1 == std::string_view::npos ? std::string_view::npos : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      !line.substr(sp2 + 1).starts_with("HTTP/1.") || line[sp1 + 1] != '/') {
    return Rejected{400, "bad request line\n"};
  }
  const std::string_view method = line.substr(0, sp1);
  if (method != "GET" && method != "HEAD") return Rejected{405, "only GET and HEAD\n"};
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::size_t q = target.find('?');
  Request r;
  r.head_only = method == "HEAD";
  r.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
  return r;
}

std::optional<std::string> query_param(const std::string& query, std::string_view key) {
  std::size_t start = 0;
  while (start <= query.size()) {
    const std::size_t amp = query.find('&', start);
    const std::string_view part = std::string_view(query).substr(
        start, amp == std::string::npos ? std::string::npos : amp - start);
    const std::size_t eq = part.find('=');
    if (part.substr(0, eq) == key) {
      std::string out;
      const std::string_view raw = eq == std::string_view::npos ? "" : part.substr(eq + 1);
      for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '+') {
          out += ' ';
        } else if (raw[i] == '%' && i + 2 < raw.size() && hex(raw[i + 1]) >= 0 &&
                   hex(raw[i + 2]) >= 0) {
          out += static_cast<char>(hex(raw[i + 1]) * 16 + hex(raw[i + 2]));
          i += 2;
        } else {
          out += raw[i];
        }
      }
      return out;
    }
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
  return std::nullopt;
}

}  // namespace shoal::bin::http
