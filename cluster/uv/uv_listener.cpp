#include "cluster/uv/uv_listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace shoal::cluster {

namespace {

// Does a process answer on the Unix socket `path`? (A blocking connect to a local socket returns at
// once.)
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

}  // namespace

UvListener::~UvListener() = default;

std::expected<std::unique_ptr<UvListener>, std::string> UvListener::listen_tcp(uv_loop_t* loop,
                                                                               const Address& addr,
                                                                               AcceptFn on_accept,
                                                                               int backlog) {
  std::unique_ptr<UvListener> self(new UvListener(std::move(on_accept)));
  uv_tcp_init(loop, &self->handle_.tcp);
  self->stream_ = reinterpret_cast<uv_stream_t*>(&self->handle_.tcp);
  self->stream_->data = self.get();
  self->address_ = addr;
  sockaddr_storage ss;
  to_sockaddr(addr, ss);
  const int rc = uv_tcp_bind(&self->handle_.tcp, reinterpret_cast<const sockaddr*>(&ss), 0);
  if (rc != 0) {
    const std::string why = "cannot listen on TCP " + addr.to_string() + ": " + uv_strerror(rc);
    self->close([] {});
    uv_run(loop, UV_RUN_NOWAIT);
    return std::unexpected(why);
  }
  if (auto started = self->start(loop, backlog, "TCP " + addr.to_string()); !started)
    return std::unexpected(started.error());
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&self->handle_.tcp, reinterpret_cast<sockaddr*>(&bound), &len);
  self->address_.port =
      ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  return self;
}

std::expected<std::unique_ptr<UvListener>, std::string> UvListener::listen_unix(
    uv_loop_t* loop, const std::string& path, AcceptFn on_accept, int backlog) {
  if (path.empty()) return std::unexpected("empty socket path");
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return std::unexpected(path + ": too long for a Unix socket path (" +
                           std::to_string(path.size()) + " bytes > " +
                           std::to_string(sizeof(sockaddr_un::sun_path) - 1) + ")");
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return std::unexpected(path + ": exists and is not a socket");
    if (someone_listens(path)) return std::unexpected("another process serves " + path);
    ::unlink(path.c_str());  // left by a process that died
  }
  std::unique_ptr<UvListener> self(new UvListener(std::move(on_accept)));
  uv_pipe_init(loop, &self->handle_.pipe, 0);
  self->stream_ = reinterpret_cast<uv_stream_t*>(&self->handle_.pipe);
  self->stream_->data = self.get();
  self->path_ = path;
  // Owner-only from the start: no moment in which others could connect.
  const mode_t old_mask = ::umask(0077);
  const int rc = uv_pipe_bind(&self->handle_.pipe, path.c_str());
  ::umask(old_mask);
  if (rc != 0) {
    const std::string why = path + ": " + uv_strerror(rc);
    self->close([] {});
    uv_run(loop, UV_RUN_NOWAIT);
    return std::unexpected(why);
  }
  self->bound_path_ = true;
  ::chmod(path.c_str(), 0600);
  if (auto started = self->start(loop, backlog, path); !started)
    return std::unexpected(started.error());
  return self;
}

std::expected<void, std::string> UvListener::start(uv_loop_t* loop, int backlog,
                                                   const std::string& what) {
  const int rc = uv_listen(stream_, backlog, [](uv_stream_t* server, int status) {
    auto* self = static_cast<UvListener*>(server->data);
    if (status == 0 && !self->closing_) self->on_accept_(server);
  });
  if (rc == 0) return {};
  const std::string why = "cannot listen on " + what + ": " + uv_strerror(rc);
  close([] {});
  uv_run(loop, UV_RUN_NOWAIT);
  return std::unexpected(why);
}

void UvListener::close(std::function<void()> done) {
  if (closing_) return;
  closing_ = true;
  on_closed_ = std::move(done);
  if (bound_path_) ::unlink(path_.c_str());
  uv_close(reinterpret_cast<uv_handle_t*>(stream_), [](uv_handle_t* h) {
    auto* self = static_cast<UvListener*>(h->data);
    if (self->on_closed_) {
      auto cb = std::move(self->on_closed_);
      self->on_closed_ = nullptr;
      cb();
    }
  });
}

}  // namespace shoal::cluster
