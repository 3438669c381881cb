#pragma once

// UvListener: a listening socket on a libuv loop, TCP (ip:port) or Unix (a path), that hands each
// waiting connection to its owner. The project's one listener: the node's TCP port (UvDriver), the
// agent's RPC socket and its HTTP endpoint use it.
//
// A Unix socket is owner-only (0600) from the moment it exists. listen_unix() refuses a path where
// another process answers, replaces a stale socket file that nobody answers on (left by a process
// that died), and refuses any other kind of file; close() removes the file it created.
//
// Loop-bound. close() before destroying, and run the loop until `done` is called.

#include <uv.h>

#include <expected>
#include <functional>
#include <memory>
#include <string>

#include "cluster/address.h"

namespace shoal::cluster {

class UvListener {
 public:
  // A connection waits: the owner initialises a handle of its own on the loop and calls
  // uv_accept(server, handle) (a failure there is the owner's to handle).
  using AcceptFn = std::function<void(uv_stream_t* server)>;

  // Binds and listens on `addr` (port 0: any free port; address() says which).
  static std::expected<std::unique_ptr<UvListener>, std::string> listen_tcp(uv_loop_t* loop,
                                                                            const Address& addr,
                                                                            AcceptFn on_accept,
                                                                            int backlog = 128);
  static std::expected<std::unique_ptr<UvListener>, std::string> listen_unix(
      uv_loop_t* loop, const std::string& path, AcceptFn on_accept, int backlog = 128);
  ~UvListener();
  UvListener(const UvListener&) = delete;
  UvListener& operator=(const UvListener&) = delete;

  // TCP: the bound address.
  const Address& address() const { return address_; }
  // Unix: the socket's path.
  const std::string& path() const { return path_; }
  // Stops listening and closes the handle (and removes the Unix socket file); `done` runs once it
  // is closed.
  void close(std::function<void()> done);

 private:
  explicit UvListener(AcceptFn on_accept) : on_accept_(std::move(on_accept)) {}
  // Starts listening; on failure closes the handle and runs the loop until it is closed.
  std::expected<void, std::string> start(uv_loop_t* loop, int backlog, const std::string& what);

  AcceptFn on_accept_;
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } handle_{};
  uv_stream_t* stream_ = nullptr;
  Address address_;
  std::string path_;
  bool bound_path_ = false;  // the socket file is ours to remove
  bool closing_ = false;
  std::function<void()> on_closed_;
};

}  // namespace shoal::cluster
