// The floor under bench/messaging's call round trip: two processes on 127.0.0.1 bounce 64 bytes
// over one TCP connection (TCP_NODELAY, each side waiting in epoll as a libuv loop does), with no
// framing, no loop and no stack. Prints one JSON line: {"calls", "p50_us", "p99_us"}.
//
// Usage: tcp_floor [ROUND_TRIPS]   (default 20000, after 2000 of warm-up)

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

constexpr std::size_t kSize = 64;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "tcp_floor: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

void no_delay(int fd) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) die("setsockopt");
}

// Waits until fd is readable, then reads exactly kSize bytes.
bool read_all(int ep, int fd, char* buf) {
  std::size_t got = 0;
  while (got < kSize) {
    epoll_event ev{};
    if (epoll_wait(ep, &ev, 1, -1) < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    ssize_t n = read(fd, buf + got, kSize - got);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      die("read");
    }
    got += static_cast<std::size_t>(n);
  }
  return true;
}

void write_all(int fd, const char* buf) {
  std::size_t put = 0;
  while (put < kSize) {
    ssize_t n = write(fd, buf + put, kSize - put);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    put += static_cast<std::size_t>(n);
  }
}

int watch(int fd) {
  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
  return ep;
}

}  // namespace

int main(int argc, char** argv) {
  long trips = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 20000;
  if (trips <= 0 || trips > 10'000'000) {
    std::fprintf(stderr, "usage: tcp_floor [ROUND_TRIPS: 1..10000000]\n");
    return 2;
  }
  const long warm = 2000;
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  if (ls < 0) die("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind");
  if (listen(ls, 1) != 0) die("listen");
  if (getsockname(ls, reinterpret_cast<sockaddr*>(&addr), &len) != 0) die("getsockname");

  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    int c = accept(ls, nullptr, nullptr);
    if (c < 0) die("accept");
    no_delay(c);
    int ep = watch(c);
    char buf[kSize];
    while (read_all(ep, c, buf))
      write_all(c, buf);
    _exit(0);
  }
  close(ls);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) die("socket");
  if (connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("connect");
  no_delay(s);
  int ep = watch(s);
  char buf[kSize] = {};
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(trips));
  for (long i = 0; i < warm + trips; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    write_all(s, buf);
    if (!read_all(ep, s, buf)) {
      std::fprintf(stderr, "tcp_floor: the echo process closed the connection\n");
      return 1;
    }
    if (i >= warm) {
      us.push_back(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  close(s);
  int status = 0;
  waitpid(child, &status, 0);
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) { return us[static_cast<std::size_t>(p / 100 * (us.size() - 1))]; };
  std::printf("{\"calls\": %zu, \"p50_us\": %.1f, \"p99_us\": %.1f}\n", us.size(), pct(50),
              pct(99));
  return 0;
}
