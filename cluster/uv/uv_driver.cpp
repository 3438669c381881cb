#include "cluster/uv/uv_driver.h"

#include <arpa/inet.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace shoal::cluster {

namespace {

// Most datagrams read per wake-up, so one busy socket cannot starve the loop.
constexpr int kReadBudget = 256;
// Most inbound TCP exchanges open at once; more are refused (and counted).
constexpr std::size_t kMaxConns = 64;
// Most bytes all TCP exchanges together may hold in their read buffers. A frame may announce up to
// kMaxStreamBytes, but hostile peers opening many connections must not make that 64 times over.
constexpr std::size_t kMaxBufferedBytes = 96 * 1024 * 1024;
// Read chunk for TCP frames.
constexpr std::size_t kChunk = 64 * 1024;
// Persistent connections (messaging): the magic a dialer starts with, the largest frame accepted,
// how long a connect may take, and how many a node keeps open.
constexpr std::string_view kLinkMagic = "SHM1";
// A batch is at most 1 MiB of whole frames, or one frame of a 1 MiB message (messaging/).
constexpr std::size_t kMaxLinkFrame = 2 * 1024 * 1024 + kSealOverhead;
constexpr std::uint64_t kConnectTimeoutMs = 5'000;
constexpr std::size_t kMaxLinks = 4096;

socklen_t to_sockaddr(const Address& a, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof out);
  if (a.ip_len == 4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(a.port);
    std::memcpy(&sin->sin_addr, a.ip.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(a.port);
  std::memcpy(&sin6->sin6_addr, a.ip.data(), 16);
  return sizeof(sockaddr_in6);
}

Address from_sockaddr(const sockaddr* sa) {
  Address a;
  if (sa->sa_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
    a.ip_len = 4;
    std::memcpy(a.ip.data(), &sin->sin_addr, 4);
    a.port = ntohs(sin->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
    a.ip_len = 16;
    std::memcpy(a.ip.data(), &sin6->sin6_addr, 16);
    a.port = ntohs(sin6->sin6_port);
  }
  return a;
}

std::string frame(const std::string& body) {
  std::string out(4, '\0');
  const auto n = static_cast<std::uint32_t>(body.size());
  out[0] = static_cast<char>(n >> 24);
  out[1] = static_cast<char>(n >> 16);
  out[2] = static_cast<char>(n >> 8);
  out[3] = static_cast<char>(n);
  out += body;
  return out;
}

}  // namespace

// One TCP exchange: a push-pull we started (outbound) or one a peer started (inbound).
struct UvDriver::Conn {
  UvDriver* owner = nullptr;
  uv_tcp_t tcp{};
  uv_timer_t timer{};
  uv_connect_t connect{};
  uv_write_t write{};
  bool inbound = false;
  std::uint64_t stream = 0;
  Address peer;
  std::string in;
  std::string out;
  std::string chunk;
  bool done = false;
  bool answered = false;  // outbound: the core heard the outcome
  int open = 0;
  // A persistent connection (messaging), once it is one.
  bool link = false;
  ConnId id = 0;
  bool connected = false;
  std::vector<std::string> out_batches;  // queued this loop turn, each sealed as one frame
  std::size_t writes = 0;                // writes in flight
  bool close_when_written = false;
};

// One write on a persistent connection: the frames of a loop turn's batches (their length
// headers, and the batches themselves, or sealed), `plain` bytes of the core's.
struct UvDriver::LinkWrite {
  uv_write_t req{};
  std::vector<std::string> parts;
  std::vector<uv_buf_t> bufs;
  std::size_t plain = 0;
  Conn* conn = nullptr;
};

std::uint64_t wall_clock_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

UvDriver::UvDriver(uv_loop_t* loop, UvDriverOptions options, EventFn on_event, UserFn on_user)
    : loop_(loop),
      keyring_(std::move(options.keyring)),
      on_event_(std::move(on_event)),
      on_user_(std::move(on_user)) {
  const std::uint64_t wall = wall_clock_ms();
  const std::uint64_t mono = uv_now(loop);
  clock_offset_ms_ = wall > mono ? wall - mono : 0;
}

UvDriver::~UvDriver() {
  if (fd_ >= 0) ::close(fd_);
}

std::expected<std::unique_ptr<UvDriver>, std::string> UvDriver::start(uv_loop_t* loop,
                                                                      UvDriverOptions options,
                                                                      const CoreFactory& make_core,
                                                                      EventFn on_event,
                                                                      UserFn on_user) {
  std::unique_ptr<UvDriver> self(
      new UvDriver(loop, options, std::move(on_event), std::move(on_user)));
  const int family = options.bind.ip_len == 4 ? AF_INET : AF_INET6;
  self->fd_ = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (self->fd_ < 0)
    return std::unexpected(std::string("cannot open a UDP socket: ") + strerror(errno));
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(options.bind, ss);
  if (::bind(self->fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return std::unexpected("cannot bind UDP " + options.bind.to_string() + ": " + strerror(errno));
  }
  Address bound = options.bind;
  len = sizeof ss;
  getsockname(self->fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  bound.port = from_sockaddr(reinterpret_cast<sockaddr*>(&ss)).port;
  const int on = 1;
  if (family == AF_INET) {
    setsockopt(self->fd_, SOL_IP, IP_RECVERR, &on, sizeof on);
  } else {
    setsockopt(self->fd_, SOL_IPV6, IPV6_RECVERR, &on, sizeof on);
  }
  const int buffer = 4 * 1024 * 1024;
  setsockopt(self->fd_, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);

  // The TCP port is the UDP one. Before any other handle: a failure here needs no closing.
  UvDriver* raw = self.get();
  auto listener = UvListener::listen_tcp(loop, bound, [raw](uv_stream_t* listening) {
    if (!raw->closing_) raw->on_connection(listening);
  });
  if (!listener) return std::unexpected(listener.error());
  self->listener_ = std::move(*listener);
  ++self->open_handles_;
  uv_poll_init_socket(loop, &self->poll_, self->fd_);
  self->poll_.data = self.get();
  ++self->open_handles_;
  uv_timer_init(loop, &self->timer_);
  self->timer_.data = self.get();
  ++self->open_handles_;
  // Local mutations of the replicated map are shipped once per loop turn, just before the loop
  // waits for IO: a burst of writes in one turn becomes one batch.
  uv_prepare_init(loop, &self->prepare_);
  self->prepare_.data = self.get();
  ++self->open_handles_;
  uv_prepare_start(&self->prepare_, prepare_cb);
  uv_poll_start(&self->poll_, UV_READABLE, poll_cb);

  self->advertise_ = options.advertise.port != 0 ? options.advertise : bound;
  self->core_ = make_core(self->advertise_, self->now());
  self->flush();
  return self;
}

void UvDriver::join(std::vector<Address> seeds) {
  core_->membership().join(now(), std::move(seeds));
  core_->settle(now());
  flush();
}

bool UvDriver::send_user(const std::string& member, std::string_view payload) {
  std::string framed(1, static_cast<char>(Channel::application));
  framed += payload;
  const bool ok = core_->membership().send_user(now(), member, framed);
  core_->settle(now());
  flush();
  return ok;
}

bool UvDriver::broadcast_user(std::string_view payload) {
  std::string framed(1, static_cast<char>(Channel::application));
  framed += payload;
  const bool ok = core_->membership().broadcast_user(now(), framed);
  core_->settle(now());
  flush();
  return ok;
}

void UvDriver::settle() {
  core_->settle(now());
  flush();
}

void UvDriver::announced(const Address& addr, const std::string& name) {
  core_->membership().on_announcement(now(), addr, name);
  core_->settle(now());
  flush();
}

void UvDriver::flush() {
  if (closing_ || !core_) return;
  if (flushing_) {
    again_ = true;  // called back from the owner's output handler: the loop below goes on
    return;
  }
  flushing_ = true;
  // Sending may surface an ICMP error that is handed to the core (send_datagram), and the owner's
  // output handler may feed the core: drain until nothing is left. Each pass works on its own
  // vectors. The network goes first.
  for (int pass = 0; pass < 64; ++pass) {
    again_ = false;
    std::vector<Effect> effects;
    core_->take_effects(effects);
    std::vector<ReplicaChange> changes;
    core_->take_changes(changes);  // a bare Node's: nobody here reads them
    for (Effect& effect : effects) {
      if (auto* packet = std::get_if<SendPacket>(&effect)) {
        send_datagram(packet->to, keyring_.seal(packet->bytes));
      } else if (auto* request = std::get_if<StreamRequest>(&effect)) {
        open_stream(*request);
      } else if (auto* open = std::get_if<ConnOpen>(&effect)) {
        open_link(*open);
      } else if (auto* bytes = std::get_if<ConnSend>(&effect)) {
        queue_link(*bytes);
      } else if (auto* close = std::get_if<ConnClose>(&effect)) {
        close_link(close->id);
      }
    }
    for (Effect& effect : effects) {
      if (auto* event = std::get_if<MemberEvent>(&effect)) {
        if (on_event_) on_event_(*event);
      } else if (auto* user = std::get_if<UserMessage>(&effect)) {
        // Application payloads carry their channel byte; strip it for the caller. Anything else
        // (another channel, with no part here to take it) is dropped.
        const bool application =
            !user->payload.empty() && static_cast<std::uint8_t>(user->payload[0]) ==
                                          static_cast<std::uint8_t>(Channel::application);
        if (on_user_ && application) {
          user->payload.erase(0, 1);
          on_user_(*user);
        }
      }
    }
    const bool fed = on_output_ && on_output_();
    if (fed) core_->settle(now());
    if (effects.empty() && !fed && !again_) break;
  }
  flushing_ = false;
  write_links();
  const std::uint64_t deadline = core_->next_deadline();
  const std::uint64_t t = now();
  uv_timer_start(&timer_, timer_cb, deadline > t ? deadline - t : 0, 0);
}

void UvDriver::send_datagram(const Address& to, const std::string& bytes) {
  sockaddr_storage ss;
  const socklen_t len = to_sockaddr(to, ss);
  // With IP_RECVERR, an ICMP error about an earlier datagram (to any destination) makes the next
  // sendto() fail with that error, and that datagram is not sent. The error is consumed by the
  // failed call: read the details from the error queue and send again.
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (::sendto(fd_, bytes.data(), bytes.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss),
                 len) >= 0) {
      stats_.udp_bytes_out += bytes.size();
      return;
    }
    if (errno != ECONNREFUSED && errno != EHOSTUNREACH && errno != ENETUNREACH &&
        errno != EHOSTDOWN) {
      break;
    }
    drain_errors();
  }
  ++stats_.send_errors;
}

void UvDriver::prepare_cb(uv_prepare_t* handle) {
  auto* self = static_cast<UvDriver*>(handle->data);
  if (self->closing_ || !self->core_ || !self->core_->pending()) return;
  self->core_->flush(self->now());
  self->flush();
}

void UvDriver::timer_cb(uv_timer_t* handle) {
  auto* self = static_cast<UvDriver*>(handle->data);
  self->core_->on_timer(self->now());
  self->flush();
}

void UvDriver::poll_cb(uv_poll_t* handle, int status, int /*events*/) {
  auto* self = static_cast<UvDriver*>(handle->data);
  if (self->closing_) return;
  // libuv reports a pending socket error (POLLERR: our ICMP error queue) as a failure and stops
  // the handle; drain the queue and watch again.
  self->drain_errors();
  if (status < 0) uv_poll_start(&self->poll_, UV_READABLE, poll_cb);
  self->on_readable();
  self->flush();
}

void UvDriver::drain_errors() {
  for (int i = 0; i < kReadBudget; ++i) {
    char control[512];
    char data[64];
    sockaddr_storage dest{};
    iovec iov{data, sizeof data};
    msghdr msg{};
    msg.msg_name = &dest;
    msg.msg_namelen = sizeof dest;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (::recvmsg(fd_, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      const bool v4 = c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR;
      const bool v6 = c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR;
      if (!v4 && !v6) continue;
      sock_extended_err ee;
      std::memcpy(&ee, CMSG_DATA(c), sizeof ee);
      const bool port_unreachable =
          (ee.ee_origin == SO_EE_ORIGIN_ICMP && ee.ee_type == 3 && ee.ee_code == 3) ||
          (ee.ee_origin == SO_EE_ORIGIN_ICMP6 && ee.ee_type == 1 && ee.ee_code == 4);
      if (!port_unreachable || msg.msg_namelen == 0) continue;
      ++stats_.unreachable;
      core_->on_unreachable(now(), from_sockaddr(reinterpret_cast<sockaddr*>(&dest)));
    }
  }
}

void UvDriver::on_readable() {
  char buffer[65536];
  for (int i = 0; i < kReadBudget; ++i) {
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    const ssize_t n = ::recvfrom(fd_, buffer, sizeof buffer, MSG_DONTWAIT,
                                 reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == ECONNREFUSED || errno == EHOSTUNREACH) {
        drain_errors();  // a pending ICMP error surfaced here; its details are in the queue
        continue;
      }
      return;
    }
    stats_.udp_bytes_in += static_cast<std::uint64_t>(n);
    const std::string_view sealed(buffer, static_cast<std::size_t>(n));
    auto plain = keyring_.open(sealed);
    if (!plain) {
      ++stats_.rejected_auth;
      continue;
    }
    if (keyring_.enabled() && !replay_.admit(sealed)) {
      ++stats_.rejected_replay;
      continue;
    }
    core_->on_packet(now(), from_sockaddr(reinterpret_cast<sockaddr*>(&from)), *plain);
  }
}

// --- TCP push-pull ---

void UvDriver::finish(Conn* conn) {
  if (conn->done) return;
  conn->done = true;
  if (conn->link) {
    links_.erase(conn->id);
    dirty_.erase(conn->id);
    conn->answered = true;  // a link's end is reported by close_link()'s callers
  }
  buffered_ -= conn->in.size();
  conn->in.clear();
  conn->in.shrink_to_fit();
  if (!conn->inbound && !conn->answered && !closing_) {
    conn->answered = true;
    ++stats_.stream_errors;
    core_->on_stream_failed(now(), conn->stream);
    flush();
  }
  auto on_close = [](uv_handle_t* h) {
    auto* c = static_cast<Conn*>(h->data);
    if (--c->open == 0) {
      UvDriver* owner = c->owner;
      owner->conns_.erase(c);
      delete c;
      if (owner->closing_ && owner->conns_.empty() && owner->open_handles_ == 0 &&
          owner->on_closed_) {
        auto done = std::move(owner->on_closed_);
        owner->on_closed_ = nullptr;
        done();
      }
    }
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&conn->tcp), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&conn->timer), on_close);
}

namespace {

// Reads into the connection's buffer; returns the complete frame body once there is one.
std::optional<std::string> take_frame(std::string& in, bool& too_big) {
  if (in.size() < 4) return std::nullopt;
  const std::uint32_t n = (static_cast<std::uint32_t>(static_cast<unsigned char>(in[0])) << 24) |
                          (static_cast<std::uint32_t>(static_cast<unsigned char>(in[1])) << 16) |
                          (static_cast<std::uint32_t>(static_cast<unsigned char>(in[2])) << 8) |
                          static_cast<std::uint32_t>(static_cast<unsigned char>(in[3]));
  if (n > kMaxStreamBytes + kSealOverhead) {
    too_big = true;
    return std::nullopt;
  }
  if (in.size() < 4 + static_cast<std::size_t>(n)) return std::nullopt;
  return in.substr(4, n);
}

}  // namespace

UvDriver::Conn* UvDriver::new_conn(bool inbound) {
  auto* conn = new Conn();
  conn->owner = this;
  conn->inbound = inbound;
  conns_.insert(conn);
  uv_tcp_init(loop_, &conn->tcp);
  uv_timer_init(loop_, &conn->timer);
  conn->tcp.data = conn;
  conn->timer.data = conn;
  conn->connect.data = conn;
  conn->write.data = conn;
  conn->open = 2;
  // Every exchange is bounded in time, whatever the peer does.
  uv_timer_start(
      &conn->timer,
      [](uv_timer_t* t) {
        auto* c = static_cast<Conn*>(t->data);
        c->owner->finish(c);
      },
      core_->membership().config().stream_timeout_ms, 0);
  return conn;
}

void UvDriver::open_stream(const StreamRequest& request) {
  Conn* conn = new_conn(false);
  conn->stream = request.id;
  conn->peer = request.to;
  conn->out = frame(keyring_.seal(request.bytes));
  stats_.tcp_bytes_out += conn->out.size();
  sockaddr_storage ss;
  to_sockaddr(request.to, ss);
  const int rc = uv_tcp_connect(&conn->connect, &conn->tcp, reinterpret_cast<sockaddr*>(&ss),
                                [](uv_connect_t* req, int status) {
                                  auto* c = static_cast<Conn*>(req->data);
                                  if (status < 0 || c->done) {
                                    c->owner->finish(c);
                                    return;
                                  }
                                  uv_buf_t buf = uv_buf_init(c->out.data(),
                                                             static_cast<unsigned>(c->out.size()));
                                  uv_write(&c->write, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf,
                                           1, [](uv_write_t* w, int st) {
                                             auto* cc = static_cast<Conn*>(w->data);
                                             if (st < 0) cc->owner->finish(cc);
                                           });
                                  c->owner->read_frame(c);
                                });
  if (rc != 0) finish(conn);
}

void UvDriver::on_connection(uv_stream_t* listening) {
  Conn* conn = new_conn(true);
  if (uv_accept(listening, reinterpret_cast<uv_stream_t*>(&conn->tcp)) != 0 ||
      conns_.size() - links_.size() > kMaxConns) {
    ++stats_.streams_refused;
    finish(conn);
    return;
  }
  sockaddr_storage ss{};
  int len = sizeof ss;
  uv_tcp_getpeername(&conn->tcp, reinterpret_cast<sockaddr*>(&ss), &len);
  conn->peer = from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
  read_frame(conn);
}

void UvDriver::read_frame(Conn* conn) {
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&conn->tcp),
      [](uv_handle_t* h, std::size_t, uv_buf_t* b) {
        auto* c = static_cast<Conn*>(h->data);
        c->chunk.resize(kChunk);
        *b = uv_buf_init(c->chunk.data(), static_cast<unsigned>(kChunk));
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
        auto* c = static_cast<Conn*>(s->data);
        UvDriver* self = c->owner;
        if (n < 0) {
          self->finish(c);
          return;
        }
        if (self->buffered_ + static_cast<std::size_t>(n) > kMaxBufferedBytes) {
          ++self->stats_.streams_refused;
          self->finish(c);
          return;
        }
        c->in.append(c->chunk.data(), static_cast<std::size_t>(n));
        self->buffered_ += static_cast<std::size_t>(n);
        self->stats_.tcp_bytes_in += static_cast<std::size_t>(n);
        if (c->inbound && c->in.size() >= kLinkMagic.size() &&
            std::string_view(c->in).substr(0, kLinkMagic.size()) == kLinkMagic) {
          self->accept_link(c);
          return;
        }
        bool too_big = false;
        auto body = take_frame(c->in, too_big);
        if (too_big) {
          ++self->stats_.frames_too_large;
          self->finish(c);
          return;
        }
        if (!body) return;
        uv_read_stop(s);
        auto plain = self->keyring_.open(*body);
        if (!plain) {
          ++self->stats_.rejected_auth;
          self->finish(c);
          return;
        }
        if (self->keyring_.enabled() && !self->replay_.admit(*body)) {
          ++self->stats_.rejected_replay;
          self->finish(c);
          return;
        }
        self->on_frame(c, *plain);
      });
}

void UvDriver::on_frame(Conn* conn, const std::string& plain) {
  if (!conn->inbound) {
    conn->answered = true;
    core_->on_stream_reply(now(), conn->stream, plain);
    flush();
    finish(conn);
    return;
  }
  std::string reply = core_->on_stream_request(now(), conn->peer, plain);
  flush();
  if (reply.empty()) {
    finish(conn);
    return;
  }
  conn->out = frame(keyring_.seal(reply));
  stats_.tcp_bytes_out += conn->out.size();
  uv_buf_t buf = uv_buf_init(conn->out.data(), static_cast<unsigned>(conn->out.size()));
  uv_write(&conn->write, reinterpret_cast<uv_stream_t*>(&conn->tcp), &buf, 1,
           [](uv_write_t* w, int) {
             auto* c = static_cast<Conn*>(w->data);
             c->owner->finish(c);
           });
}

// --- Persistent connections (messaging) ---

void UvDriver::open_link(const ConnOpen& open) {
  if (links_.size() >= kMaxLinks) {
    core_->on_conn_down(now(), open.id);
    return;
  }
  Conn* conn = new_conn(false);
  conn->link = true;
  conn->id = open.id;
  conn->answered = true;
  conn->peer = open.to;
  links_[open.id] = conn;
  // The exchange timer of new_conn() bounds the connect here.
  uv_timer_start(
      &conn->timer,
      [](uv_timer_t* t) {
        auto* c = static_cast<Conn*>(t->data);
        if (!c->connected) c->owner->link_down(c);
      },
      kConnectTimeoutMs, 0);
  sockaddr_storage ss;
  to_sockaddr(open.to, ss);
  const int rc = uv_tcp_connect(&conn->connect, &conn->tcp, reinterpret_cast<sockaddr*>(&ss),
                                [](uv_connect_t* req, int status) {
                                  auto* c = static_cast<Conn*>(req->data);
                                  UvDriver* self = c->owner;
                                  if (c->done) return;
                                  if (status < 0) {
                                    self->link_down(c);
                                    return;
                                  }
                                  c->connected = true;
                                  uv_timer_stop(&c->timer);
                                  uv_tcp_nodelay(&c->tcp, 1);
                                  // The magic, unsealed, once, first.
                                  self->write_link(c, {std::string(kLinkMagic)}, 0);
                                  if (!c->out_batches.empty()) self->dirty_.insert(c->id);
                                  self->start_link_reads(c);
                                  self->core_->on_conn_up(self->now(), c->id);
                                  self->flush();
                                });
  if (rc != 0) link_down(conn);
}

void UvDriver::accept_link(Conn* c) {
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
  uv_timer_stop(&c->timer);
  if (links_.size() >= kMaxLinks) {
    ++stats_.streams_refused;
    finish(c);
    return;
  }
  c->link = true;
  c->connected = true;
  c->answered = true;
  c->id = next_accept_id_++;
  links_[c->id] = c;
  c->in.erase(0, kLinkMagic.size());
  uv_tcp_nodelay(&c->tcp, 1);
  core_->on_conn_accepted(now(), c->id, c->peer);
  start_link_reads(c);
  read_link_frames(c);
  flush();
}

void UvDriver::start_link_reads(Conn* conn) {
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&conn->tcp),
      [](uv_handle_t* h, std::size_t, uv_buf_t* b) {
        auto* c = static_cast<Conn*>(h->data);
        c->chunk.resize(kChunk);
        *b = uv_buf_init(c->chunk.data(), static_cast<unsigned>(kChunk));
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
        auto* c = static_cast<Conn*>(s->data);
        UvDriver* self = c->owner;
        if (c->done) return;
        if (n < 0) {
          self->link_down(c);
          return;
        }
        c->in.append(c->chunk.data(), static_cast<std::size_t>(n));
        self->buffered_ += static_cast<std::size_t>(n);
        self->stats_.tcp_bytes_in += static_cast<std::size_t>(n);
        self->read_link_frames(c);
        self->flush();
      });
}

// Opens every complete sealed frame in the connection's buffer and hands its plaintext to the core.
void UvDriver::read_link_frames(Conn* c) {
  std::size_t at = 0;
  while (!c->done && c->in.size() - at >= 4) {
    const auto* p = reinterpret_cast<const unsigned char*>(c->in.data() + at);
    const std::size_t n = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) |
                          (std::size_t{p[2]} << 8) | std::size_t{p[3]};
    if (n > kMaxLinkFrame) {
      ++stats_.frames_too_large;
      link_down(c);
      return;
    }
    if (c->in.size() - at - 4 < n) break;
    const std::string_view sealed(c->in.data() + at + 4, n);
    at += 4 + n;
    if (!keyring_.enabled()) {
      core_->on_conn_data(now(), c->id, sealed);
      continue;
    }
    auto plain = keyring_.open(sealed);
    if (!plain) {
      ++stats_.rejected_auth;
      link_down(c);
      return;
    }
    if (keyring_.enabled() && !replay_.admit(sealed)) {
      ++stats_.rejected_replay;
      link_down(c);
      return;
    }
    core_->on_conn_data(now(), c->id, *plain);
  }
  if (c->done) return;
  buffered_ -= at;
  c->in.erase(0, at);
}

void UvDriver::queue_link(ConnSend& send) {
  auto it = links_.find(send.id);
  if (it == links_.end() || it->second->done) return;
  it->second->out_batches.push_back(std::move(send.bytes));
  dirty_.insert(send.id);
}

// One write per connection per loop turn: what was queued.
void UvDriver::write_links() {
  std::set<ConnId> dirty;
  dirty.swap(dirty_);
  for (ConnId id : dirty) {
    auto it = links_.find(id);
    if (it == links_.end()) continue;
    Conn* c = it->second;
    if (c->done || !c->connected || c->out_batches.empty()) continue;
    // Each batch is one frame: a length, then the batch (sealed with a key). Without a key the
    // batches go out as they are, behind their headers: no copy.
    std::vector<std::string> parts;
    std::size_t plain = 0;
    for (std::string& batch : c->out_batches) {
      plain += batch.size();
      std::string body = keyring_.enabled() ? keyring_.seal(batch) : std::move(batch);
      const auto len = static_cast<std::uint32_t>(body.size());
      parts.push_back({static_cast<char>(len >> 24), static_cast<char>(len >> 16),
                       static_cast<char>(len >> 8), static_cast<char>(len)});
      parts.push_back(std::move(body));
    }
    c->out_batches.clear();
    write_link(c, std::move(parts), plain);
  }
}

void UvDriver::write_link(Conn* c, std::vector<std::string> parts, std::size_t plain) {
  auto* w = new LinkWrite;
  w->conn = c;
  w->req.data = w;
  w->parts = std::move(parts);
  w->plain = plain;
  for (std::string& part : w->parts) {
    w->bufs.push_back(uv_buf_init(part.data(), static_cast<unsigned>(part.size())));
    stats_.tcp_bytes_out += part.size();
  }
  ++c->writes;
  uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->tcp), w->bufs.data(),
           static_cast<unsigned>(w->bufs.size()), [](uv_write_t* req, int status) {
             auto* lw = static_cast<LinkWrite*>(req->data);
             Conn* conn = lw->conn;
             UvDriver* self = conn->owner;
             const std::size_t plain_bytes = lw->plain;
             delete lw;
             --conn->writes;
             if (conn->done) return;
             if (status < 0) {
               self->link_down(conn);
               return;
             }
             if (conn->close_when_written && conn->writes == 0) {
               self->finish(conn);
               return;
             }
             if (plain_bytes == 0) return;
             self->core_->on_conn_sent(self->now(), conn->id, plain_bytes);
             self->flush();
           });
}

// The core asked: close once what was queued is written; the core hears nothing more of it.
void UvDriver::close_link(ConnId id) {
  auto it = links_.find(id);
  if (it == links_.end()) return;
  Conn* c = it->second;
  links_.erase(it);
  if (!c->out_batches.empty() && c->connected) {
    dirty_.insert(id);
    links_[id] = c;  // written by write_links() at the end of this flush
    c->close_when_written = true;
    return;
  }
  if (c->writes > 0) {
    c->close_when_written = true;
    links_[id] = c;
    return;
  }
  finish(c);
}

// The connection failed or ended by itself: the core hears it.
void UvDriver::link_down(Conn* c) {
  if (c->done) return;
  const ConnId id = c->id;
  const bool tell = !c->close_when_written;
  finish(c);
  if (tell && !closing_) {
    core_->on_conn_down(now(), id);
    flush();
  }
}

void UvDriver::close(std::function<void()> done) {
  if (closing_) return;
  closing_ = true;
  on_closed_ = std::move(done);
  std::vector<Conn*> open(conns_.begin(), conns_.end());
  for (Conn* c : open)
    finish(c);
  auto on_close = [](uv_handle_t* h) {
    auto* self = static_cast<UvDriver*>(h->data);
    if (--self->open_handles_ == 0 && self->conns_.empty() && self->on_closed_) {
      auto cb = std::move(self->on_closed_);
      self->on_closed_ = nullptr;
      cb();
    }
  };
  uv_poll_stop(&poll_);
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
  uv_prepare_stop(&prepare_);
  uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), on_close);
  listener_->close([this] {
    if (--open_handles_ == 0 && conns_.empty() && on_closed_) {
      auto cb = std::move(on_closed_);
      on_closed_ = nullptr;
      cb();
    }
  });
}

}  // namespace shoal::cluster
