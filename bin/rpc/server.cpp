#include "bin/rpc/server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace shoal::bin::rpc {

struct RpcServer::Client {
  uv_pipe_t pipe{};
  RpcServer* server = nullptr;
  ClientId id = 0;
  FrameReader reader{kMaxRequestBytes};
  std::size_t pending = 0;  // bytes handed to uv_write and not yet written
  bool closing = false;
  std::array<char, 64 * 1024> buf{};
};

namespace {

struct Write {
  uv_write_t req{};
  std::string data;
  std::size_t* pending = nullptr;
};

// Does a process answer on `path`? (A blocking connect to a local socket returns at once.)
bool someone_listens(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

RpcServer::RpcServer(uv_loop_t* loop, std::string path, RequestFn on_request, CloseFn on_close,
                     ServerLimits limits)
    : loop_(loop),
      path_(std::move(path)),
      on_request_(std::move(on_request)),
      on_close_(std::move(on_close)),
      limits_(limits) {}

RpcServer::~RpcServer() = default;

std::expected<std::unique_ptr<RpcServer>, std::string> RpcServer::listen(uv_loop_t* loop,
                                                                         const std::string& path,
                                                                         RequestFn on_request,
                                                                         CloseFn on_close,
                                                                         ServerLimits limits) {
  if (path.empty()) return std::unexpected("empty socket path");
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return std::unexpected(path + ": too long for a Unix socket path (" +
                           std::to_string(path.size()) + " bytes > " +
                           std::to_string(sizeof(sockaddr_un::sun_path) - 1) + ")");
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return std::unexpected(path + ": exists and is not a socket");
    if (someone_listens(path)) return std::unexpected("another agent serves " + path);
    ::unlink(path.c_str());  // left by an agent that died
  }
  std::unique_ptr<RpcServer> server(
      new RpcServer(loop, path, std::move(on_request), std::move(on_close), limits));
  uv_pipe_init(loop, &server->listener_, 0);
  server->listener_.data = server.get();
  ++server->open_handles_;
  // Owner-only from the start: no moment in which others could connect.
  const mode_t old_mask = ::umask(0077);
  int rc = uv_pipe_bind(&server->listener_, path.c_str());
  ::umask(old_mask);
  if (rc == 0) {
    server->bound_ = true;
    ::chmod(path.c_str(), 0600);
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server->listener_), 128,
                   [](uv_stream_t* s, int status) {
                     if (status == 0) static_cast<RpcServer*>(s->data)->accept();
                   });
  }
  if (rc != 0) {
    std::string why = path + ": " + uv_strerror(rc);
    server->close([] {});
    uv_run(loop, UV_RUN_NOWAIT);
    return std::unexpected(std::move(why));
  }
  return server;
}

void RpcServer::accept() {
  auto* c = new Client;
  c->server = this;
  c->id = next_id_++;
  c->reader = FrameReader(limits_.max_request_bytes);
  uv_pipe_init(loop_, &c->pipe, 0);
  c->pipe.data = c;
  ++open_handles_;
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener_),
                reinterpret_cast<uv_stream_t*>(&c->pipe)) != 0) {
    c->closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->pipe), [](uv_handle_t* h) {
      auto* client = static_cast<Client*>(h->data);
      RpcServer* self = client->server;
      delete client;
      self->closed_one();
    });
    return;
  }
  ++stats_.connections;
  clients_[c->id] = c;
  if (clients_.size() > limits_.max_clients) {
    ++stats_.refused;
    send(c->id, encode_error("busy", "too many connections to this agent (" +
                                         std::to_string(limits_.max_clients) + ")"));
    hang_up(c->id);
    return;
  }
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&c->pipe),
      [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
        auto* client = static_cast<Client*>(h->data);
        *buf = uv_buf_init(client->buf.data(), static_cast<unsigned>(client->buf.size()));
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* client = static_cast<Client*>(s->data);
        if (n < 0) {
          client->server->drop(*client);
        } else if (n > 0) {
          client->server->on_data(*client,
                                  std::string_view(buf->base, static_cast<std::size_t>(n)));
        }
      });
}

void RpcServer::on_data(Client& c, std::string_view bytes) {
  if (c.closing) return;
  c.reader.feed(bytes);
  const ClientId id = c.id;
  while (auto body = c.reader.take()) {
    auto req = decode_request(*body);
    if (!req) {
      ++stats_.bad_requests;
      send(id, encode_error("bad_request", req.error()));
      continue;
    }
    ++stats_.requests;
    on_request_(id, std::move(*req));
    // The handler may have hung up or dropped this client.
    if (!connected(id) || clients_.at(id)->closing) return;
  }
  if (c.reader.failed()) {
    ++stats_.bad_requests;
    send(id,
         encode_error("too_large", "request frame of " + std::to_string(c.reader.announced()) +
                                       " bytes > " + std::to_string(limits_.max_request_bytes)));
    hang_up(id);
  }
}

bool RpcServer::send(ClientId id, std::string_view body) {
  auto it = clients_.find(id);
  if (it == clients_.end() || it->second->closing) return false;
  Client& c = *it->second;
  auto* w = new Write;
  w->data = frame(body);
  w->pending = &c.pending;
  c.pending += w->data.size();
  if (c.pending > limits_.max_pending_bytes) {
    ++stats_.dropped;
    delete w;
    drop(c);
    return false;
  }
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  const int rc =
      uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c.pipe), &buf, 1, [](uv_write_t* req, int) {
        auto* write = reinterpret_cast<Write*>(req);
        *write->pending -= write->data.size();
        delete write;
      });
  if (rc != 0) {
    c.pending -= w->data.size();
    delete w;
    drop(c);
    return false;
  }
  return true;
}

void RpcServer::hang_up(ClientId id) {
  auto it = clients_.find(id);
  if (it == clients_.end() || it->second->closing) return;
  Client& c = *it->second;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&c.pipe));
  // A shutdown request completes after the queued writes: then close.
  auto* req = new uv_shutdown_t;
  req->data = &c;
  if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&c.pipe), [](uv_shutdown_t* r, int) {
        auto* client = static_cast<Client*>(r->data);
        delete r;
        client->server->drop(*client);
      }) != 0) {
    delete req;
    drop(c);
  }
}

void RpcServer::drop(Client& c) {
  if (c.closing) return;
  c.closing = true;
  clients_.erase(c.id);
  if (on_close_) on_close_(c.id);
  uv_close(reinterpret_cast<uv_handle_t*>(&c.pipe), [](uv_handle_t* h) {
    auto* client = static_cast<Client*>(h->data);
    RpcServer* self = client->server;
    delete client;
    self->closed_one();
  });
}

void RpcServer::closed_one() {
  if (--open_handles_ == 0 && closing_ && on_closed_) {
    auto done = std::move(on_closed_);
    done();
  }
}

void RpcServer::close(std::function<void()> done) {
  if (closing_) return;
  closing_ = true;
  on_closed_ = std::move(done);
  std::vector<Client*> all;
  for (auto& [id, c] : clients_)
    all.push_back(c);
  for (Client* c : all)
    drop(*c);
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_),
           [](uv_handle_t* h) { static_cast<RpcServer*>(h->data)->closed_one(); });
  if (bound_) ::unlink(path_.c_str());
}

}  // namespace shoal::bin::rpc
