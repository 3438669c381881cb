#pragma once

// HttpServer: the agent's optional HTTP endpoint (--http), for Prometheus and dashboards. A small
// HTTP/1.1 server on a libuv loop that answers GET (and HEAD) requests, one per connection
// (Connection: close), through a handler given the path and query.
//
// A handler may answer with a stream (Response::stream, for Server-Sent Events): the head and the
// response's body are sent, the connection stays open, and every chunk publish() sends under a
// key that starts with the stream's prefix is written to it, until the client goes away, the
// stream is dropped or the server closes. Streams end with the connection (no length, no chunked
// encoding), as an event stream may.
//
// Hostile input: a request head (through its blank line) larger than kMaxRequestBytes gets 431,
// however many reads it arrives in; one not complete within kRequestTimeoutMs is dropped;
// anything but GET/HEAD gets 405; a malformed request line gets 400. At max_clients, a new
// connection evicts the one that has waited longest without a complete head (slow clients cannot
// hold every slot and starve /health); only when every connection is being answered is the new
// one refused. Bodies of requests are not read. Streams are bounded too (HttpLimits): beyond
// max_streams a new one gets 503; a stream whose unsent bytes (written, not yet taken by the
// kernel) exceed max_stream_backlog is closed rather than buffered (a client that does not read
// costs at most that); what a stream's client sends after its request is read and ignored, and
// past kMaxRequestBytes the stream is closed. Every stream gets a comment (": ping") every
// keepalive_ms, so proxies keep it open and a client that vanished is noticed. close() closes the
// streams with every other connection.
//
// Loop-bound, not thread-safe.

#include <uv.h>

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bin/http/request.h"
#include "cluster/address.h"
#include "cluster/uv/uv_listener.h"

namespace shoal::bin::http {

constexpr std::uint64_t kRequestTimeoutMs = 10'000;

// Bounds of one server, each against a client that asks too much or reads too little.
struct HttpLimits {
  // Connections at once, streams included.
  std::size_t max_clients = 64;
  // Open streams. Well under max_clients, so that streams never take every slot from /health.
  std::size_t max_streams = 8;
  // Bytes one stream may have waiting for its socket (written by the server, not yet taken by the
  // kernel, whose own buffers come on top); beyond, the stream is closed. 256 KiB holds hundreds
  // of events for a client that reads late, and bounds one that never reads.
  std::size_t max_stream_backlog = 256 * 1024;
  // Every stream gets ": ping\n\n" this often (ms).
  std::uint64_t keepalive_ms = 15'000;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // A stream: only with status 200 and a GET; the connection stays open after `body` and
  // receives publish()'s chunks whose key starts with `stream_prefix`.
  bool stream = false;
  std::string stream_prefix = {};  // (= {}: initializers may stop after body)
};

struct HttpStats {
  std::uint64_t requests = 0;
  std::uint64_t bad_requests = 0;  // 400, 405, 431, timeouts
  std::uint64_t refused = 0;
  std::uint64_t evicted = 0;          // slow connections closed to make room for a new one
  std::uint64_t streams_opened = 0;   // streams that got their head
  std::uint64_t streams_refused = 0;  // 503: max_streams were open
  std::uint64_t streams_dropped = 0;  // closed for their backlog or what their client sent
};

// Server-Sent Events framing, pure. One event whose data is `data`: each of its lines (split at
// CR, LF or CRLF) as a "data: " field, then the blank line that ends the event.
std::string sse_event(std::string_view data);
// A comment line and the blank line after it (": text\n\n"): clients ignore it.
std::string sse_comment(std::string_view text);

class HttpServer {
 public:
  // `path`: without the query; `query`: after '?', raw (possibly empty).
  using Handler = std::function<Response(const std::string& path, const std::string& query)>;

  // Listens on ip:port (port 0: any free port, see address()). A one-line reason if it cannot
  // (address in use...).
  static std::expected<std::unique_ptr<HttpServer>, std::string> listen(uv_loop_t* loop,
                                                                        const std::string& addr,
                                                                        Handler handler,
                                                                        HttpLimits limits = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Writes `chunk` (framed by the caller, e.g. sse_event()) to every open stream whose prefix
  // `key` starts with. A stream whose backlog then passes max_stream_backlog is closed.
  void publish(std::string_view key, std::string_view chunk);
  // Streams open now.
  std::size_t streams() const { return streams_; }
  const cluster::Address& address() const { return listener_->address(); }
  const HttpStats& stats() const { return stats_; }
  // Closes the listener, every connection and every stream; `done` runs once all are closed.
  void close(std::function<void()> done);

 private:
  struct Conn;
  HttpServer(uv_loop_t* loop, Handler handler, HttpLimits limits);
  void accept(uv_stream_t* listening);
  void on_data(Conn& c, std::string_view bytes);
  void respond(Conn& c, Response r, bool head);
  // Writes `data` to a stream; closes the stream on a write error or when its backlog passes
  // max_stream_backlog.
  void send(Conn& c, std::string data);
  void ping();
  void drop(Conn& c);
  void closed_one();

  uv_loop_t* loop_;
  Handler handler_;
  const HttpLimits limits_;
  std::unique_ptr<cluster::UvListener> listener_;
  uv_timer_t keepalive_{};
  std::size_t conns_ = 0;
  std::size_t streams_ = 0;
  std::vector<Conn*> all_;
  HttpStats stats_;
  int open_handles_ = 0;
  bool closing_ = false;
  std::function<void()> on_closed_;
};

}  // namespace shoal::bin::http
