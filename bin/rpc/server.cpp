#include "bin/rpc/server.h"

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
  std::unique_ptr<RpcServer> server(
      new RpcServer(loop, path, std::move(on_request), std::move(on_close), limits));
  RpcServer* self = server.get();
  auto listener = cluster::UvListener::listen_unix(
      loop, path, [self](uv_stream_t* listening) { self->accept(listening); });
  if (!listener) return std::unexpected(listener.error());
  server->listener_ = std::move(*listener);
  ++server->open_handles_;
  return server;
}

void RpcServer::accept(uv_stream_t* listening) {
  auto* c = new Client;
  c->server = this;
  c->id = next_id_++;
  c->reader = FrameReader(limits_.max_request_bytes);
  uv_pipe_init(loop_, &c->pipe, 0);
  c->pipe.data = c;
  ++open_handles_;
  if (uv_accept(listening, reinterpret_cast<uv_stream_t*>(&c->pipe)) != 0) {
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
  if (listener_) listener_->close([this] { closed_one(); });
}

}  // namespace shoal::bin::rpc
