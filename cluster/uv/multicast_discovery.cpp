#include "cluster/uv/multicast_discovery.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cluster/wire.h"

namespace shoal::cluster {

void UvMulticastDiscovery::set_keyring(Keyring keyring) {
  keyring_ = std::move(keyring);
  announcement_ = keyring_.seal(encode_announcement({options_.name, options_.advertise}));
}

std::expected<std::unique_ptr<UvMulticastDiscovery>, std::string> UvMulticastDiscovery::start(
    uv_loop_t* loop, MulticastOptions options, Keyring keyring, PeerFn on_peer, PeersFn peers) {
  if (options.group.ip_len != 4 || options.group.ip[0] < 224 || options.group.ip[0] > 239) {
    return std::unexpected("multicast group must be an IPv4 address in 224.0.0.0/4");
  }
  if (options.interface.ip_len != 4) {
    return std::unexpected("multicast discovery needs an IPv4 bind address");
  }
  static constexpr std::array<std::uint8_t, 16> kAny{};
  if (options.interface.ip == kAny) {
    return std::unexpected(
        "multicast discovery needs a specific --bind address: its interface carries the "
        "announcements (use --discovery seeds with a wildcard bind)");
  }
  std::unique_ptr<UvMulticastDiscovery> self(new UvMulticastDiscovery());
  self->loop_ = loop;
  self->options_ = options;
  self->keyring_ = std::move(keyring);
  self->on_peer_ = std::move(on_peer);
  self->peers_ = std::move(peers);
  self->announcement_ = self->keyring_.seal(encode_announcement({options.name, options.advertise}));

  self->fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (self->fd_ < 0) return std::unexpected(std::string("multicast socket: ") + strerror(errno));
  const int on = 1;
  setsockopt(self->fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  setsockopt(self->fd_, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
  sockaddr_in group{};
  group.sin_family = AF_INET;
  group.sin_port = htons(options.group.port);
  std::memcpy(&group.sin_addr, options.group.ip.data(), 4);
  if (::bind(self->fd_, reinterpret_cast<sockaddr*>(&group), sizeof group) != 0) {
    return std::unexpected("cannot bind multicast group " + options.group.to_string() + ": " +
                           strerror(errno));
  }
  in_addr iface{};
  std::memcpy(&iface, options.interface.ip.data(), 4);
  ip_mreq mreq{};
  mreq.imr_multiaddr = group.sin_addr;
  mreq.imr_interface = iface;
  if (setsockopt(self->fd_, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0) {
    return std::unexpected("cannot join multicast group " + options.group.to_string() + " on " +
                           options.interface.to_string() + ": " + strerror(errno));
  }
  // Sent only on the bind address's interface, never routed beyond it.
  setsockopt(self->fd_, IPPROTO_IP, IP_MULTICAST_IF, &iface, sizeof iface);
  const unsigned char ttl = 1;
  const unsigned char loop_back = 1;
  setsockopt(self->fd_, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
  setsockopt(self->fd_, IPPROTO_IP, IP_MULTICAST_LOOP, &loop_back, sizeof loop_back);

  uv_poll_init_socket(loop, &self->poll_, self->fd_);
  self->poll_.data = self.get();
  uv_timer_init(loop, &self->timer_);
  self->timer_.data = self.get();
  self->open_handles_ = 2;
  uv_poll_start(&self->poll_, UV_READABLE, poll_cb);
  self->announce();
  return self;
}

void UvMulticastDiscovery::poll_cb(uv_poll_t* handle, int status, int /*events*/) {
  auto* self = static_cast<UvMulticastDiscovery*>(handle->data);
  if (self->closing_) return;
  if (status < 0) uv_poll_start(&self->poll_, UV_READABLE, poll_cb);  // libuv stops on POLLERR
  self->on_readable();
}

UvMulticastDiscovery::~UvMulticastDiscovery() {
  if (fd_ >= 0) ::close(fd_);
}

void UvMulticastDiscovery::announce() {
  if (closing_) return;
  sockaddr_in group{};
  group.sin_family = AF_INET;
  group.sin_port = htons(options_.group.port);
  std::memcpy(&group.sin_addr, options_.group.ip.data(), 4);
  if (::sendto(fd_, announcement_.data(), announcement_.size(), MSG_DONTWAIT,
               reinterpret_cast<sockaddr*>(&group), sizeof group) >= 0) {
    ++sent_;
  }
  const std::uint64_t next = peers_() == 0 ? options_.alone_interval_ms : options_.interval_ms;
  uv_timer_start(
      &timer_, [](uv_timer_t* t) { static_cast<UvMulticastDiscovery*>(t->data)->announce(); }, next,
      0);
}

void UvMulticastDiscovery::on_readable() {
  char buffer[2048];
  for (int i = 0; i < 64; ++i) {
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n < 0) return;
    auto plain = keyring_.open(std::string_view(buffer, static_cast<std::size_t>(n)));
    if (!plain) {
      ++rejected_;
      continue;
    }
    auto announcement = decode_announcement(*plain);
    if (!announcement) {
      ++rejected_;
      continue;
    }
    if (announcement->name == options_.name) continue;  // our own, looped back
    on_peer_(announcement->addr, announcement->name);
  }
}

void UvMulticastDiscovery::close(std::function<void()> done) {
  if (closing_) return;
  closing_ = true;
  on_closed_ = std::move(done);
  auto on_close = [](uv_handle_t* h) {
    auto* d = static_cast<UvMulticastDiscovery*>(h->data);
    if (--d->open_handles_ == 0 && d->on_closed_) {
      auto cb = std::move(d->on_closed_);
      d->on_closed_ = nullptr;
      cb();
    }
  };
  uv_poll_stop(&poll_);
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
}

}  // namespace shoal::cluster
