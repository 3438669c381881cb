#pragma once

// UvMulticastDiscovery: finds peers on the local network by UDP multicast announcements.
//
// Each node sends a small sealed announcement (its name and address) to the group, on the
// interface of its bind address only (IP_MULTICAST_IF, TTL 1), and listens on the group; an
// announcement from a node it does not know starts a push-pull join with it. Announcements go out
// every 500 ms while this node sees no peer and every 10 s after, so that late starters and the
// halves of a healed partition find each other. With a cluster key, announcements are sealed, so
// a foreign cluster on the same group is ignored.
//
// Loop-bound; close() before destroying, like UvDriver.

#include <uv.h>

#include <expected>
#include <functional>
#include <memory>
#include <string>

#include "cluster/address.h"
#include "cluster/keyring.h"

namespace shoal::cluster {

struct MulticastOptions {
  Address group = Address::v4(239, 255, 77, 46, 7900);
  Address interface;  // the bind address: announcements leave and arrive on its interface
  std::string name;
  Address advertise;  // what peers should join
  std::uint64_t alone_interval_ms = 500;
  std::uint64_t interval_ms = 10'000;
};

class UvMulticastDiscovery {
 public:
  using PeerFn = std::function<void(const Address& addr, const std::string& name)>;
  using PeersFn = std::function<std::size_t()>;  // how many live peers this node sees

  static std::expected<std::unique_ptr<UvMulticastDiscovery>, std::string> start(
      uv_loop_t* loop, MulticastOptions options, Keyring keyring, PeerFn on_peer, PeersFn peers);
  ~UvMulticastDiscovery();

  void close(std::function<void()> done);
  // New keys for announcements (key rotation).
  void set_keyring(Keyring keyring);
  std::uint64_t announcements_sent() const { return sent_; }
  std::uint64_t rejected() const { return rejected_; }

 private:
  UvMulticastDiscovery() = default;
  void announce();
  void on_readable();
  static void poll_cb(uv_poll_t* handle, int status, int events);

  uv_loop_t* loop_ = nullptr;
  MulticastOptions options_;
  Keyring keyring_;
  PeerFn on_peer_;
  PeersFn peers_;
  int fd_ = -1;
  uv_poll_t poll_{};
  uv_timer_t timer_{};
  std::string announcement_;
  std::uint64_t sent_ = 0;
  std::uint64_t rejected_ = 0;
  int open_handles_ = 0;
  bool closing_ = false;
  std::function<void()> on_closed_;
};

}  // namespace shoal::cluster
