#pragma once

// RpcServer: the agent's RPC endpoint, a Unix stream socket on a libuv loop (frame.h has the
// protocol).
//
// listen() refuses a path where another process already answers (one line: "another process
// serves PATH"), removes a stale socket file left by a dead agent, refuses any other kind of
// file, and creates the socket with owner-only permissions (0600) (cluster/uv/uv_listener.h). Each
// complete request frame is decoded and handed to the RequestFn with the client's id; an
// undecodable one is answered with a bad_request error here and the connection goes on; an
// oversized one is answered with too_large and the connection is closed (the stream cannot be
// resynchronised). Replies and stream events go out with send(). A client whose unsent output
// passes max_pending_bytes (it does not read) is disconnected, so a stuck client never grows the
// agent's memory. Connections beyond max_clients are answered with busy and closed.
//
// Loop-bound, not thread-safe. close() closes the listener and every connection and removes the
// socket file.

#include <uv.h>

#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "bin/rpc/frame.h"
#include "cluster/uv/uv_listener.h"

namespace shoal::bin::rpc {

using ClientId = std::uint64_t;

struct ServerLimits {
  std::size_t max_clients = 64;
  std::size_t max_request_bytes = kMaxRequestBytes;
  std::size_t max_pending_bytes = 64 * 1024 * 1024;
};

struct ServerStats {
  std::uint64_t connections = 0;
  std::uint64_t requests = 0;
  std::uint64_t bad_requests = 0;  // undecodable or oversized frames
  std::uint64_t refused = 0;       // connections over max_clients
  std::uint64_t dropped = 0;       // clients disconnected for not reading
};

class RpcServer {
 public:
  using RequestFn = std::function<void(ClientId, Request)>;
  using CloseFn = std::function<void(ClientId)>;

  static std::expected<std::unique_ptr<RpcServer>, std::string> listen(uv_loop_t* loop,
                                                                       const std::string& path,
                                                                       RequestFn on_request,
                                                                       CloseFn on_close,
                                                                       ServerLimits limits = {});
  ~RpcServer();
  RpcServer(const RpcServer&) = delete;
  RpcServer& operator=(const RpcServer&) = delete;

  // Sends one frame (an encoded reply or event). Returns false if the client is gone (or was just
  // disconnected for not reading).
  bool send(ClientId client, std::string_view body);
  // Closes one connection after what was sent to it is written.
  void hang_up(ClientId client);
  bool connected(ClientId client) const { return clients_.contains(client); }
  std::size_t clients() const { return clients_.size(); }
  const ServerStats& stats() const { return stats_; }
  const std::string& path() const { return path_; }
  // Closes everything; `done` runs once every handle is closed.
  void close(std::function<void()> done);

 private:
  struct Client;
  RpcServer(uv_loop_t* loop, std::string path, RequestFn on_request, CloseFn on_close,
            ServerLimits limits);
  void accept(uv_stream_t* listening);
  void on_data(Client& c, std::string_view bytes);
  void drop(Client& c);
  void closed_one();

  uv_loop_t* loop_;
  const std::string path_;
  RequestFn on_request_;
  CloseFn on_close_;
  const ServerLimits limits_;
  std::unique_ptr<cluster::UvListener> listener_;
  std::map<ClientId, Client*> clients_;
  ClientId next_id_ = 1;
  ServerStats stats_;
  int open_handles_ = 0;
  bool closing_ = false;
  std::function<void()> on_closed_;
};

}  // namespace shoal::bin::rpc
