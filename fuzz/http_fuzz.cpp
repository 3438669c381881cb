// libFuzzer target: the agent's HTTP request parsing (bin/http/request.h), what any client that
// reaches --http sends. Any input must parse to "more", a request or a refusal, never crash, hang
// or allocate without bound; a request's path starts with '/', and nothing past the head's
// limit is ever accepted.

#include <cstdint>
#include <string_view>

#include "bin/http/request.h"
#include "fuzz/fuzz_common.h"

using namespace shoal::bin::http;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  shoal::fuzz::write_seeds_if_asked({
      "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
      "HEAD /health HTTP/1.0\r\n\r\n",
      "GET /v1/names?prefix=a%20b&limit=5 HTTP/1.1\r\nHost: x\r\n\r\n",
      "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
      "GET /v1/members?status=alive HTTP/1.1\r\n",
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const ParsedHead parsed = parse_request_head(bytes);
  if (const auto* r = std::get_if<Request>(&parsed)) {
    if (r->path.empty() || r->path[0] != '/') __builtin_trap();
    if (bytes.find("\r\n\r\n") + 4 > kMaxRequestBytes) __builtin_trap();
    for (std::string_view key : {"prefix", "limit", "status", "node", ""})
      (void)query_param(r->query, key);
  } else if (std::holds_alternative<HeadIncomplete>(parsed)) {
    if (size > kMaxRequestBytes) __builtin_trap();  // a head that can never end is refused
  }
  return 0;
}
