// shoal_fault_netem: loss, delay and jitter for the fault lab, in user space.
//
// The kernels this project is tested on may lack the `netem` queueing discipline (the CI VMs do),
// so the lab does what netem would with the kernel's packet queue instead: an iptables rule in the
// lab's switch namespace (`-j NFQUEUE --queue-num Q`, on bridged frames through br_netfilter)
// hands every forwarded IPv4 packet to this program, which answers each one later:
//
//   - with probability `--loss` it drops the packet (verdict NF_DROP);
//   - otherwise it holds the packet for `--delay` ms plus a uniform draw in [-jitter, +jitter]
//     ms (at least 0) and then lets it go (NF_ACCEPT). Verdicts go out in due-time order, not
//     arrival order, so jitter reorders packets the way netem's does.
//
// The kernel keeps the packets; this program sees only their ids (NFQNL_COPY_META), so it holds
// no packet data and its memory is bounded by the queue length (`--max-held`, beyond which a
// packet is dropped and counted). It speaks nfnetlink directly; libnetfilter_queue is not needed.
//
// It runs until SIGTERM or SIGINT, then accepts every held packet, prints its counters as one
// line ("netem: seed=S seen=N dropped=D delayed=A overflow=O") and exits 0. The seed is printed
// at start too, so a run can be replayed: the draws depend only on the seed and packet order.
//
// Usage: shoal_fault_netem --queue Q [--loss P] [--delay MS] [--jitter MS] [--seed S]
//                          [--max-held N]

// glibc's <netinet/in.h> must come before the kernel's headers, which then defer to it.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

volatile sig_atomic_t g_stop = 0;

void on_signal(int) {
  g_stop = 1;
}

struct Options {
  std::uint16_t queue = 0;
  double loss = 0.0;
  int delay_ms = 0;
  int jitter_ms = 0;
  std::uint64_t seed = 0;
  std::size_t max_held = 20'000;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "shoal_fault_netem: %s\nusage: shoal_fault_netem --queue Q [--loss P] "
               "[--delay MS] [--jitter MS] [--seed S] [--max-held N]\n",
               why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  std::random_device rd;
  o.seed = (static_cast<std::uint64_t>(rd()) << 32) | rd();
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) usage("a flag needs a value");
    const char* value = argv[++i];
    char* end = nullptr;
    if (flag == "--queue") {
      o.queue = static_cast<std::uint16_t>(std::strtoul(value, &end, 10));
    } else if (flag == "--loss") {
      o.loss = std::strtod(value, &end);
      if (o.loss < 0 || o.loss > 1) usage("--loss is a probability in [0, 1]");
    } else if (flag == "--delay") {
      o.delay_ms = static_cast<int>(std::strtol(value, &end, 10));
    } else if (flag == "--jitter") {
      o.jitter_ms = static_cast<int>(std::strtol(value, &end, 10));
    } else if (flag == "--seed") {
      o.seed = std::strtoull(value, &end, 10);
    } else if (flag == "--max-held") {
      o.max_held = std::strtoul(value, &end, 10);
    } else {
      usage("unknown flag");
    }
    if (end == nullptr || *end != '\0') usage("a value is not a number");
  }
  if (o.delay_ms < 0 || o.jitter_ms < 0) usage("--delay and --jitter are >= 0");
  return o;
}

// One netlink request: nlmsghdr + nfgenmsg + attributes, built in place.
class Request {
 public:
  Request(std::uint16_t type, std::uint16_t queue) {
    buf_.resize(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg)));
    auto* nh = reinterpret_cast<nlmsghdr*>(buf_.data());
    nh->nlmsg_type = static_cast<std::uint16_t>((NFNL_SUBSYS_QUEUE << 8) | type);
    nh->nlmsg_flags = NLM_F_REQUEST;
    auto* g = reinterpret_cast<nfgenmsg*>(buf_.data() + NLMSG_HDRLEN);
    g->nfgen_family = AF_UNSPEC;
    g->version = NFNETLINK_V0;
    g->res_id = htons(queue);
  }
  void attr(std::uint16_t type, const void* data, std::size_t len) {
    const std::size_t at = buf_.size();
    buf_.resize(at + NLA_ALIGN(NLA_HDRLEN + len));
    auto* a = reinterpret_cast<nlattr*>(buf_.data() + at);
    a->nla_type = type;
    a->nla_len = static_cast<std::uint16_t>(NLA_HDRLEN + len);
    std::memcpy(buf_.data() + at + NLA_HDRLEN, data, len);
  }
  bool send(int fd) {
    reinterpret_cast<nlmsghdr*>(buf_.data())->nlmsg_len = static_cast<std::uint32_t>(buf_.size());
    sockaddr_nl to{};
    to.nl_family = AF_NETLINK;
    return ::sendto(fd, buf_.data(), buf_.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
           static_cast<ssize_t>(buf_.size());
  }

 private:
  std::vector<char> buf_;
};

bool verdict(int fd, std::uint16_t queue, std::uint32_t id, std::uint32_t what) {
  Request r(NFQNL_MSG_VERDICT, queue);
  nfqnl_msg_verdict_hdr v{htonl(what), htonl(id)};
  r.attr(NFQA_VERDICT_HDR, &v, sizeof v);
  return r.send(fd);
}

struct Held {
  std::chrono::steady_clock::time_point due;
  std::uint64_t order;  // arrival order breaks ties, so equal due times keep their order
  std::uint32_t id;
  bool operator>(const Held& o) const { return due != o.due ? due > o.due : order > o.order; }
};

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::fprintf(stderr, "netem: queue=%u loss=%.3f delay=%dms jitter=%dms seed=%llu\n", o.queue,
               o.loss, o.delay_ms, o.jitter_ms, static_cast<unsigned long long>(o.seed));
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);

  const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) {
    std::perror("netem: netlink socket");
    return 1;
  }
  const int big = 8 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  sockaddr_nl self{};
  self.nl_family = AF_NETLINK;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&self), sizeof self) != 0) {
    std::perror("netem: bind");
    return 1;
  }
  {
    Request bind_queue(NFQNL_MSG_CONFIG, o.queue);
    nfqnl_msg_config_cmd cmd{NFQNL_CFG_CMD_BIND, 0, htons(AF_INET)};
    bind_queue.attr(NFQA_CFG_CMD, &cmd, sizeof cmd);
    nfqnl_msg_config_params params{htonl(0), NFQNL_COPY_META};
    bind_queue.attr(NFQA_CFG_PARAMS, &params, sizeof params);
    const std::uint32_t maxlen = htonl(static_cast<std::uint32_t>(o.max_held));
    bind_queue.attr(NFQA_CFG_QUEUE_MAXLEN, &maxlen, sizeof maxlen);
    if (!bind_queue.send(fd)) {
      std::perror("netem: bind queue");
      return 1;
    }
  }

  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<int> jitter(-o.jitter_ms, o.jitter_ms);
  std::priority_queue<Held, std::vector<Held>, std::greater<>> held;
  std::uint64_t seen = 0, dropped = 0, delayed = 0, overflow = 0;
  std::vector<char> buf(1 << 16);

  std::fprintf(stderr, "netem: ready\n");
  while (g_stop == 0) {
    auto now = std::chrono::steady_clock::now();
    while (!held.empty() && held.top().due <= now) {
      verdict(fd, o.queue, held.top().id, NF_ACCEPT);
      held.pop();
    }
    int timeout = 200;
    if (!held.empty()) {
      const auto wait =
          std::chrono::duration_cast<std::chrono::milliseconds>(held.top().due - now).count();
      timeout = static_cast<int>(std::max<long long>(0, std::min<long long>(wait + 1, 200)));
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout) <= 0) continue;
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n <= 0) continue;
    now = std::chrono::steady_clock::now();
    int left = static_cast<int>(n);
    for (auto* nh = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(nh, left);
         nh = NLMSG_NEXT(nh, left)) {
      if (nh->nlmsg_type == NLMSG_ERROR) {
        const auto* err = reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(nh));
        if (err->error != 0) std::fprintf(stderr, "netem: netlink error %d\n", err->error);
        continue;
      }
      if ((nh->nlmsg_type & 0xff) != NFQNL_MSG_PACKET) continue;
      // Attributes follow the nfgenmsg; the packet header carries the id.
      const std::size_t start = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg));
      std::size_t at = start;
      const std::size_t end = nh->nlmsg_len;
      std::uint32_t id = 0;
      bool have_id = false;
      while (at + NLA_HDRLEN <= end) {
        const auto* a = reinterpret_cast<const nlattr*>(reinterpret_cast<char*>(nh) + at);
        if (a->nla_len < NLA_HDRLEN || at + a->nla_len > end) break;
        if ((a->nla_type & NLA_TYPE_MASK) == NFQA_PACKET_HDR &&
            a->nla_len >= NLA_HDRLEN + sizeof(nfqnl_msg_packet_hdr)) {
          nfqnl_msg_packet_hdr ph;
          std::memcpy(&ph, reinterpret_cast<const char*>(a) + NLA_HDRLEN, sizeof ph);
          id = ntohl(ph.packet_id);
          have_id = true;
        }
        at += NLA_ALIGN(a->nla_len);
      }
      if (!have_id) continue;
      ++seen;
      if (unit(rng) < o.loss) {
        ++dropped;
        verdict(fd, o.queue, id, NF_DROP);
        continue;
      }
      if (held.size() >= o.max_held) {
        ++overflow;
        verdict(fd, o.queue, id, NF_DROP);
        continue;
      }
      const int ms = std::max(0, o.delay_ms + (o.jitter_ms > 0 ? jitter(rng) : 0));
      ++delayed;
      held.push(Held{now + std::chrono::milliseconds(ms), seen, id});
    }
  }
  while (!held.empty()) {
    verdict(fd, o.queue, held.top().id, NF_ACCEPT);
    held.pop();
  }
  std::fprintf(stderr, "netem: seed=%llu seen=%llu dropped=%llu delayed=%llu overflow=%llu\n",
               static_cast<unsigned long long>(o.seed), static_cast<unsigned long long>(seen),
               static_cast<unsigned long long>(dropped), static_cast<unsigned long long>(delayed),
               static_cast<unsigned long long>(overflow));
  ::close(fd);
  return 0;
}
