#pragma once

// Address: an IPv4 or IPv6 address and a UDP/TCP port, as a plain value. The membership core
// treats addresses as opaque keys; only drivers turn them into sockaddrs.

#include <array>
#include <compare>
#include <cstdint>
#include <expected>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace shoal::cluster {

struct Address {
  std::array<std::uint8_t, 16> ip{};  // the first `ip_len` bytes are used, network order
  std::uint8_t ip_len = 4;            // 4 (IPv4) or 16 (IPv6)
  std::uint16_t port = 0;

  // 127.0.0.1:7946 or [::1]:7946.
  std::string to_string() const;
  std::string_view ip_bytes() const { return {reinterpret_cast<const char*>(ip.data()), ip_len}; }
  bool is_loopback() const;

  static Address v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d,
                    std::uint16_t port);
  // Parses "a.b.c.d:port" or "[v6]:port" (no names: resolving is the driver's job). Returns a
  // one-line reason on failure.
  static std::expected<Address, std::string> parse(std::string_view text);

  friend auto operator<=>(const Address&, const Address&) = default;
  friend bool operator==(const Address&, const Address&) = default;
};

// Splits "host:port" or "[ipv6]:port" into the host (without brackets) and the port. Returns a
// one-line reason on failure. The host is not checked: it may be an IP literal or a name.
std::expected<std::pair<std::string_view, std::uint16_t>, std::string> split_host_port(
    std::string_view text);

struct AddressHash {
  std::size_t operator()(const Address& a) const;
};

}  // namespace shoal::cluster
