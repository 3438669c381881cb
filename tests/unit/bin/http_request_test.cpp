// parse_request_head: the bytes read on an HTTP connection so far -> more, a request, a refusal.

#include "bin/http/request.h"

#include <boost/test/unit_test.hpp>
#include <string>

using namespace shoal::bin::http;

namespace {

int status_of(std::string_view bytes) {
  const ParsedHead p = parse_request_head(bytes);
  if (const auto* no = std::get_if<Rejected>(&p)) return no->status;
  return std::holds_alternative<Request>(p) ? 200 : 0;  // 0: needs more
}

}  // namespace

BOOST_AUTO_TEST_SUITE(http_request)

BOOST_AUTO_TEST_CASE(get_and_head_give_path_and_query) {
  auto p = parse_request_head("GET /v1/names?prefix=a&limit=5 HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto* r = std::get_if<Request>(&p);
  BOOST_TEST_REQUIRE(r != nullptr);
  BOOST_TEST(r->path == "/v1/names");
  BOOST_TEST(r->query == "prefix=a&limit=5");
  BOOST_TEST(!r->head_only);
  auto h = parse_request_head("HEAD /health HTTP/1.0\r\n\r\n");
  BOOST_TEST_REQUIRE(std::holds_alternative<Request>(h));
  BOOST_TEST(std::get<Request>(h).head_only);
  BOOST_TEST(std::get<Request>(h).query.empty());
  BOOST_TEST(query_param("prefix=a%20b+c&limit=5", "prefix").value() == "a b c");
  BOOST_TEST(!query_param("prefix=a", "limit").has_value());
}

BOOST_AUTO_TEST_CASE(a_head_in_pieces_needs_more_until_its_blank_line) {
  const std::string full = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  for (std::size_t n = 0; n < full.size(); ++n)
    BOOST_TEST(status_of(full.substr(0, n)) == 0, n);
  BOOST_TEST(status_of(full) == 200);
}

BOOST_AUTO_TEST_CASE(bad_requests_get_their_status) {
  BOOST_TEST(status_of("garbage\r\n\r\n") == 400);
  BOOST_TEST(status_of("GET metrics HTTP/1.1\r\n\r\n") == 400);
  BOOST_TEST(status_of("GET /metrics SPDY/3\r\n\r\n") == 400);
  BOOST_TEST(status_of("POST /metrics HTTP/1.1\r\n\r\n") == 405);
}

BOOST_AUTO_TEST_CASE(a_head_over_the_limit_is_refused_whether_or_not_it_has_ended) {
  const std::string start = "GET /health HTTP/1.1\r\nX-Pad: ";
  const std::string pad(kMaxRequestBytes, 'a');
  BOOST_TEST(status_of(start + pad) == 431);               // never ends
  BOOST_TEST(status_of(start + pad + "\r\n\r\n") == 431);  // ends, but past the limit
  // Exactly at the limit, blank line included: accepted.
  const std::string fits =
      start + std::string(kMaxRequestBytes - start.size() - 4, 'a') + "\r\n\r\n";
  BOOST_TEST(fits.size() == kMaxRequestBytes);
  BOOST_TEST(status_of(fits) == 200);
  BOOST_TEST(status_of(fits.substr(0, fits.size() - 2) + "a\r\n\r\n") == 431);
}

BOOST_AUTO_TEST_SUITE_END()
