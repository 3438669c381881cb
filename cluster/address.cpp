#include "cluster/address.h"
#include "crdt/hash.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace shoal::cluster {

std::string Address::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ip_len == 4) {
    inet_ntop(AF_INET, ip.data(), buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(port);
  }
  inet_ntop(AF_INET6, ip.data(), buf, sizeof buf);
  return "[" + std::string(buf) + "]:" + std::to_string(port);
}

bool Address::is_loopback() const {
  if (ip_len == 4) return ip[0] == 127;
  static constexpr std::array<std::uint8_t, 16> kV6Loopback{0, 0, 0, 0, 0, 0, 0, 0,
                                                            0, 0, 0, 0, 0, 0, 0, 1};
  return ip == kV6Loopback;
}

Address Address::v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d,
                    std::uint16_t port) {
  Address out;
  out.ip[0] = a;
  out.ip[1] = b;
  out.ip[2] = c;
  out.ip[3] = d;
  out.ip_len = 4;
  out.port = port;
  return out;
}

std::expected<std::pair<std::string_view, std::uint16_t>, std::string> split_host_port(
    std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::unexpected("expected [ipv6]:port, got '" + std::string(text) + "'");
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return std::unexpected("expected host:port, got '" + std::string(text) + "'");
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (host.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return std::unexpected("expected host:port with a port in 0..65535, got '" + std::string(text) +
                           "'");
  }
  return std::pair{host, static_cast<std::uint16_t>(port)};
}

std::expected<Address, std::string> Address::parse(std::string_view text) {
  auto parts = split_host_port(text);
  if (!parts) return std::unexpected(parts.error());
  Address out;
  out.port = parts->second;
  const std::string host(parts->first);
  if (inet_pton(AF_INET, host.c_str(), out.ip.data()) == 1) {
    out.ip_len = 4;
  } else if (inet_pton(AF_INET6, host.c_str(), out.ip.data()) == 1) {
    out.ip_len = 16;
  } else {
    return std::unexpected("not an IP address: '" + host + "'");
  }
  return out;
}

std::size_t AddressHash::operator()(const Address& a) const {
  return static_cast<std::size_t>(crdt::Fnv1a().bytes(a.ip_bytes()).word(a.port).value());
}

}  // namespace shoal::cluster
