#include "bin/http/server.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "cluster/address.h"

namespace shoal::bin::http {

struct HttpServer::Conn {
  uv_tcp_t tcp{};
  uv_timer_t timer{};  // the request deadline
  HttpServer* server = nullptr;
  std::string head;
  bool closing = false;
  bool answered = false;
  bool stream = false;
  std::string prefix;     // a stream's: the keys of the chunks it receives start with it
  std::size_t extra = 0;  // bytes a stream's client sent after its request
  int handles = 2;
  std::array<char, 4096> buf{};
};

namespace {

struct Write {
  uv_write_t req{};
  std::string data;
};

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

}  // namespace

std::string sse_event(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 16);
  std::size_t start = 0;
  while (true) {
    const std::size_t end = data.find_first_of("\r\n", start);
    out += "data: ";
    out.append(
        data.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    out += '\n';
    if (end == std::string_view::npos) break;
    start = end + 1;
    if (data[end] == '\r' && start < data.size() && data[start] == '\n') ++start;
  }
  out += '\n';
  return out;
}

std::string sse_comment(std::string_view text) {
  std::string out = ": ";
  for (char ch : text)
    out += ch == '\r' || ch == '\n' ? ' ' : ch;
  out += "\n\n";
  return out;
}

HttpServer::HttpServer(uv_loop_t* loop, Handler handler, HttpLimits limits)
    : loop_(loop), handler_(std::move(handler)), limits_(limits) {}

HttpServer::~HttpServer() = default;

std::expected<std::unique_ptr<HttpServer>, std::string> HttpServer::listen(uv_loop_t* loop,
                                                                           const std::string& addr,
                                                                           Handler handler,
                                                                           HttpLimits limits) {
  auto parsed = cluster::Address::parse(addr);
  if (!parsed) return std::unexpected(parsed.error());
  std::unique_ptr<HttpServer> server(new HttpServer(loop, std::move(handler), limits));
  HttpServer* self = server.get();
  auto listener = cluster::UvListener::listen_tcp(
      loop, *parsed, [self](uv_stream_t* listening) { self->accept(listening); }, 64);
  if (!listener) return std::unexpected(listener.error());
  server->listener_ = std::move(*listener);
  ++server->open_handles_;
  uv_timer_init(loop, &server->keepalive_);
  server->keepalive_.data = self;
  ++server->open_handles_;
  uv_timer_start(
      &server->keepalive_, [](uv_timer_t* t) { static_cast<HttpServer*>(t->data)->ping(); },
      limits.keepalive_ms, limits.keepalive_ms);
  return server;
}

void HttpServer::accept(uv_stream_t* listening) {
  auto* c = new Conn;
  c->server = this;
  uv_tcp_init(loop_, &c->tcp);
  uv_timer_init(loop_, &c->timer);
  c->tcp.data = c->timer.data = c;
  open_handles_ += 2;
  if (conns_ >= limits_.max_clients) {
    // Room for the new one: the connection waiting longest without a complete head goes (all_
    // is in the order of acceptance).
    auto slowest =
        std::find_if(all_.begin(), all_.end(), [](const Conn* other) { return !other->answered; });
    if (slowest != all_.end()) {
      ++stats_.evicted;
      drop(**slowest);
    }
  }
  all_.push_back(c);
  ++conns_;
  if (uv_accept(listening, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0 ||
      conns_ > limits_.max_clients) {
    ++stats_.refused;
    drop(*c);
    return;
  }
  uv_timer_start(
      &c->timer,
      [](uv_timer_t* t) {
        auto* conn = static_cast<Conn*>(t->data);
        if (!conn->answered) ++conn->server->stats_.bad_requests;
        conn->server->drop(*conn);
      },
      kRequestTimeoutMs, 0);
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&c->tcp),
      [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
        auto* conn = static_cast<Conn*>(h->data);
        *buf = uv_buf_init(conn->buf.data(), static_cast<unsigned>(conn->buf.size()));
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* conn = static_cast<Conn*>(s->data);
        if (n < 0) {
          conn->server->drop(*conn);
        } else if (n > 0) {
          conn->server->on_data(*conn, std::string_view(buf->base, static_cast<std::size_t>(n)));
        }
      });
}

void HttpServer::on_data(Conn& c, std::string_view bytes) {
  if (c.closing) return;
  if (c.answered) {
    // A stream's client has nothing more to say; one that keeps talking is closed.
    c.extra += bytes.size();
    if (c.stream && c.extra > kMaxRequestBytes) {
      ++stats_.streams_dropped;
      drop(c);
    }
    return;
  }
  c.head.append(bytes);
  const ParsedHead parsed = parse_request_head(c.head);
  if (std::holds_alternative<HeadIncomplete>(parsed)) return;
  if (const auto* no = std::get_if<Rejected>(&parsed)) {
    ++stats_.bad_requests;
    respond(c, Response{no->status, "text/plain; charset=utf-8", no->text}, false);
    return;
  }
  const auto& request = std::get<Request>(parsed);
  ++stats_.requests;
  respond(c, handler_(request.path, request.query), request.head_only);
}

void HttpServer::respond(Conn& c, Response r, bool head) {
  c.answered = true;
  const bool stream = r.stream && !head && r.status == 200;
  if (stream && streams_ >= limits_.max_streams) {
    ++stats_.streams_refused;
    r = Response{503, "text/plain; charset=utf-8",
                 "too many event streams (" + std::to_string(limits_.max_streams) + ")\n"};
    return respond(c, std::move(r), false);
  }
  std::string data = "HTTP/1.1 " + std::to_string(r.status) + " " + reason(r.status) +
                     "\r\nContent-Type: " + r.content_type;
  // A stream has no length (it ends when the connection does), for HEAD too.
  if (!r.stream) data += "\r\nContent-Length: " + std::to_string(r.body.size());
  data += "\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n";
  if (!head) data += r.body;
  if (stream) {
    // Reading goes on, to see the client leave; the request deadline no longer applies.
    uv_timer_stop(&c.timer);
    c.stream = true;
    c.prefix = std::move(r.stream_prefix);
    ++streams_;
    ++stats_.streams_opened;
    send(c, std::move(data));
    return;
  }
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&c.tcp));
  auto* w = new Write;
  w->data = std::move(data);
  w->req.data = &c;
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c.tcp), &buf, 1, [](uv_write_t* req, int) {
        auto* write = reinterpret_cast<Write*>(req);
        auto* conn = static_cast<Conn*>(req->data);
        delete write;
        conn->server->drop(*conn);
      }) != 0) {
    delete w;
    drop(c);
  }
}

void HttpServer::send(Conn& c, std::string data) {
  if (c.closing) return;
  auto* w = new Write;
  w->data = std::move(data);
  w->req.data = &c;
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  auto* tcp = reinterpret_cast<uv_stream_t*>(&c.tcp);
  if (uv_write(&w->req, tcp, &buf, 1, [](uv_write_t* req, int status) {
        auto* write = reinterpret_cast<Write*>(req);
        auto* conn = static_cast<Conn*>(req->data);
        delete write;
        if (status < 0) conn->server->drop(*conn);
      }) != 0) {
    delete w;
    drop(c);
    return;
  }
  // libuv writes at once what the kernel takes; the write queue is what it did not.
  if (uv_stream_get_write_queue_size(tcp) > limits_.max_stream_backlog) {
    ++stats_.streams_dropped;
    drop(c);
  }
}

void HttpServer::publish(std::string_view key, std::string_view chunk) {
  if (streams_ == 0) return;
  for (Conn* c : std::vector<Conn*>(all_)) {
    if (c->stream && !c->closing && key.starts_with(c->prefix)) send(*c, std::string(chunk));
  }
}

void HttpServer::ping() {
  if (streams_ == 0) return;
  const std::string comment = sse_comment("ping");
  for (Conn* c : std::vector<Conn*>(all_)) {
    if (c->stream && !c->closing) send(*c, comment);
  }
}

void HttpServer::drop(Conn& c) {
  if (c.closing) return;
  c.closing = true;
  --conns_;
  if (c.stream) --streams_;
  all_.erase(std::remove(all_.begin(), all_.end(), &c), all_.end());
  auto closed = [](uv_handle_t* h) {
    auto* conn = static_cast<Conn*>(h->data);
    HttpServer* self = conn->server;
    if (--conn->handles == 0) delete conn;
    self->closed_one();
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&c.timer), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&c.tcp), closed);
}

void HttpServer::closed_one() {
  if (--open_handles_ == 0 && closing_ && on_closed_) {
    auto done = std::move(on_closed_);
    done();
  }
}

void HttpServer::close(std::function<void()> done) {
  if (closing_) return;
  closing_ = true;
  on_closed_ = std::move(done);
  for (Conn* c : std::vector<Conn*>(all_))
    drop(*c);
  uv_close(reinterpret_cast<uv_handle_t*>(&keepalive_),
           [](uv_handle_t* h) { static_cast<HttpServer*>(h->data)->closed_one(); });
  if (listener_) listener_->close([this] { closed_one(); });
}

}  // namespace shoal::bin::http
