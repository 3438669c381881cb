#pragma once

// HttpServer: the agent's optional HTTP endpoint (--http), for Prometheus and dashboards. A small
// HTTP/1.1 server on a libuv loop that answers GET (and HEAD) requests, one per connection
// (Connection: close), through a handler given the path and query.
//
// Hostile input: a request head (through its blank line) larger than kMaxRequestBytes gets 431,
// however many reads it arrives in; one not complete within kRequestTimeoutMs is dropped;
// anything but GET/HEAD gets 405; a malformed request line gets 400. At max_clients, a new
// connection evicts the one that has waited longest without a complete head (slow clients cannot
// hold every slot and starve /health); only when every connection is being answered is the new
// one refused. Bodies of requests are not read.
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
#include "cluster/uv/uv_listener.h"

namespace shoal::bin::http {

constexpr std::uint64_t kRequestTimeoutMs = 10'000;

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

struct HttpStats {
  std::uint64_t requests = 0;
  std::uint64_t bad_requests = 0;  // 400, 405, 431, timeouts
  std::uint64_t refused = 0;
  std::uint64_t evicted = 0;  // slow connections closed to make room for a new one
};

class HttpServer {
 public:
  // `path`: without the query; `query`: after '?', raw (possibly empty).
  using Handler = std::function<Response(const std::string& path, const std::string& query)>;

  // Listens on ip:port. A one-line reason if it cannot (address in use...).
  static std::expected<std::unique_ptr<HttpServer>, std::string> listen(
      uv_loop_t* loop, const std::string& addr, Handler handler, std::size_t max_clients = 64);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  const HttpStats& stats() const { return stats_; }
  void close(std::function<void()> done);

 private:
  struct Conn;
  HttpServer(uv_loop_t* loop, Handler handler, std::size_t max_clients);
  void accept(uv_stream_t* listening);
  void on_data(Conn& c, std::string_view bytes);
  void respond(Conn& c, const Response& r, bool head);
  void drop(Conn& c);
  void closed_one();

  uv_loop_t* loop_;
  Handler handler_;
  const std::size_t max_clients_;
  std::unique_ptr<cluster::UvListener> listener_;
  std::size_t conns_ = 0;
  std::vector<Conn*> all_;
  HttpStats stats_;
  int open_handles_ = 0;
  bool closing_ = false;
  std::function<void()> on_closed_;
};

}  // namespace shoal::bin::http
