// HttpServer's event streams on a real loop and loopback sockets: SSE framing, prefixes,
// keep-alive comments, the limit on streams, a client that does not read, close().

#include "bin/http/server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <memory>
#include <string>

using namespace shoal::bin::http;
using namespace std::chrono_literals;

namespace {

// A server on 127.0.0.1 (any port) on a loop of its own, answering /events with a stream (its
// prefix: ?prefix=) and anything else with "ok".
struct Fixture {
  uv_loop_t loop{};
  std::unique_ptr<HttpServer> server;
  bool closed = false;

  explicit Fixture(HttpLimits limits) {
    uv_loop_init(&loop);
    auto s = HttpServer::listen(
        &loop, "127.0.0.1:0",
        [](const std::string& path, const std::string& query) {
          if (path != "/events") return Response{200, "text/plain", "ok\n"};
          Response r{200, "text/event-stream", "retry: 2000\n\n"};
          r.stream = true;
          r.stream_prefix = query_param(query, "prefix").value_or("");
          return r;
        },
        limits);
    BOOST_TEST_REQUIRE(s.has_value());
    server = std::move(*s);
  }
  ~Fixture() {
    if (!closed) close();
    BOOST_TEST(uv_loop_close(&loop) == 0);
  }
  void close() {
    server->close([this] { closed = true; });
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!closed && std::chrono::steady_clock::now() < deadline)
      uv_run(&loop, UV_RUN_NOWAIT);
    BOOST_TEST(closed);
  }
  // Runs the loop until `done` holds (at most 10 s). Returns done().
  template <typename Pred>
  bool until(Pred done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      uv_run(&loop, UV_RUN_NOWAIT);
      ::usleep(1000);
    }
    return true;
  }
  int connect(int rcvbuf = 0) const {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(server->address().port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  int request(const std::string& target, int rcvbuf = 0) const {
    const int fd = connect(rcvbuf);
    const std::string req = "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
    if (fd >= 0) ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    return fd;
  }
  // Reads what `fd` has into `got`, running the loop, until `got` holds `needle` or the peer
  // closed (then returns false unless `got` holds it).
  bool read_until(int fd, std::string& got, std::string_view needle) {
    bool eof = false;
    until([&] {
      char buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) got.append(buf, static_cast<std::size_t>(n));
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) eof = true;
      return eof || got.find(needle) != std::string::npos;
    });
    return got.find(needle) != std::string::npos;
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(http_server)

BOOST_AUTO_TEST_CASE(an_event_is_one_data_line_per_line_of_its_data_then_a_blank_line) {
  BOOST_TEST(sse_event(R"({"a":1})") == "data: {\"a\":1}\n\n");
  BOOST_TEST(sse_event("") == "data: \n\n");
  BOOST_TEST(sse_event("a\nb") == "data: a\ndata: b\n\n");
  // CR, LF and CRLF all end a line; a final line end keeps its empty line (the data ends with
  // a newline).
  BOOST_TEST(sse_event("a\r\nb\rc\n") == "data: a\ndata: b\ndata: c\ndata: \n\n");
  // A comment cannot end early or smuggle an event in.
  BOOST_TEST(sse_comment("ping") == ": ping\n\n");
  BOOST_TEST(sse_comment("x\n\ndata: y") == ": x  data: y\n\n");
}

BOOST_AUTO_TEST_CASE(a_stream_gets_its_head_the_chunks_of_its_prefix_and_keepalives) {
  HttpLimits limits;
  limits.keepalive_ms = 50;
  Fixture f(limits);
  const int all = f.request("/events");
  const int only_a = f.request("/events?prefix=a");
  BOOST_TEST_REQUIRE(f.until([&] { return f.server->streams() == 2; }));
  std::string got_all, got_a;
  BOOST_TEST(f.read_until(all, got_all, "retry: 2000\n\n"));
  BOOST_TEST(got_all.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"));
  BOOST_TEST(got_all.find("Content-Length") == std::string::npos);
  f.server->publish("bee", sse_event("for b"));
  f.server->publish("ant", sse_event("for a"));
  BOOST_TEST(f.read_until(only_a, got_a, "data: for a\n\n"));
  BOOST_TEST(got_a.find("for b") == std::string::npos);
  BOOST_TEST(f.read_until(all, got_all, "data: for a\n\n"));
  BOOST_TEST(got_all.find("data: for b\n\n") < got_all.find("data: for a\n\n"));
  BOOST_TEST(f.read_until(all, got_all, ": ping\n\n"));
  // A client that leaves ends its stream.
  ::close(only_a);
  BOOST_TEST(f.until([&] { return f.server->streams() == 1; }));
  // close() ends the streams too: the client reads the end.
  f.close();
  std::string rest;
  char buf[256];
  ssize_t n = 0;
  while ((n = ::recv(all, buf, sizeof buf, 0)) > 0)
    rest.append(buf, static_cast<std::size_t>(n));
  BOOST_TEST(n == 0);
  ::close(all);
  BOOST_TEST(f.server->stats().streams_opened == 2u);
}

BOOST_AUTO_TEST_CASE(streams_beyond_the_limit_get_503_and_other_requests_still_pass) {
  HttpLimits limits;
  limits.max_streams = 2;
  Fixture f(limits);
  const int s1 = f.request("/events");
  const int s2 = f.request("/events");
  BOOST_TEST_REQUIRE(f.until([&] { return f.server->streams() == 2; }));
  const int s3 = f.request("/events");
  std::string got;
  BOOST_TEST(f.read_until(s3, got, "too many event streams (2)\n"));
  BOOST_TEST(got.starts_with("HTTP/1.1 503"));
  BOOST_TEST(f.server->stats().streams_refused == 1u);
  const int plain = f.request("/health");
  std::string ok;
  BOOST_TEST(f.read_until(plain, ok, "\r\n\r\nok\n"));
  BOOST_TEST(f.server->streams() == 2u);
  for (int fd : {s1, s2, s3, plain})
    ::close(fd);
}

BOOST_AUTO_TEST_CASE(a_stream_whose_client_does_not_read_is_dropped_not_buffered) {
  HttpLimits limits;
  limits.max_stream_backlog = 64 * 1024;
  Fixture f(limits);
  const int reader = f.request("/events");
  const int stuck = f.request("/events", 4096);
  BOOST_TEST_REQUIRE(f.until([&] { return f.server->streams() == 2; }));
  // Chunks until the kernel's buffers are full and the backlog passes the limit; the reader
  // keeps reading throughout, and stays.
  const std::string chunk = sse_event(std::string(4000, 'x'));
  std::size_t sent = 0;
  char buf[65536];
  while (f.server->stats().streams_dropped == 0 && sent < (64u << 20)) {
    f.server->publish("k", chunk);
    sent += chunk.size();
    while (::recv(reader, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
    uv_run(&f.loop, UV_RUN_NOWAIT);
  }
  BOOST_TEST(f.server->stats().streams_dropped == 1u);
  BOOST_TEST(f.server->streams() == 1u);
  BOOST_TEST_MESSAGE("dropped after " << sent << " bytes published");
  ::close(reader);
  ::close(stuck);
}

BOOST_AUTO_TEST_CASE(a_stream_client_that_keeps_sending_is_dropped) {
  Fixture f(HttpLimits{});
  const int fd = f.request("/events");
  BOOST_TEST_REQUIRE(f.until([&] { return f.server->streams() == 1; }));
  const std::string junk(kMaxRequestBytes + 1, 'j');
  BOOST_TEST(::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL) ==
             static_cast<ssize_t>(junk.size()));
  BOOST_TEST(f.until([&] { return f.server->streams() == 0; }));
  BOOST_TEST(f.server->stats().streams_dropped == 1u);
  ::close(fd);
}

BOOST_AUTO_TEST_SUITE_END()
