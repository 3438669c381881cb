#pragma once

// The HTTP server's request parsing, pure (no sockets, no loop) so that it is unit-tested and
// fuzzed (fuzz/http_fuzz.cpp) on its own: what the bytes read on a connection so far ask for.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace shoal::bin::http {

// A request head, through its blank line, is at most this long (else 431).
constexpr std::size_t kMaxRequestBytes = 8 * 1024;

// A request head, as far as it has arrived: parse_request_head() of the bytes buffered so far.
struct HeadIncomplete {};
struct Request {
  bool head_only = false;  // HEAD: answer without the body
  std::string path;        // without the query
  std::string query;       // after '?', raw (possibly empty)
};
struct Rejected {
  int status = 400;  // 400, 405 or 431
  std::string text;
};
using ParsedHead = std::variant<HeadIncomplete, Request, Rejected>;

// What `buffered` (every byte read on a connection so far) asks for: more bytes, a GET or HEAD
// request, or a refusal (400 a malformed request line, 405 another method, 431 a head over
// kMaxRequestBytes, however many reads it came in).
ParsedHead parse_request_head(std::string_view buffered);

// Percent-decodes a query parameter's value; nullopt if `key` is not in `query`.
std::optional<std::string> query_param(const std::string& query, std::string_view key);

}  // namespace shoal::bin::http
