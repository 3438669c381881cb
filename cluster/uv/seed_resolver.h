#pragma once

// UvSeedResolver: turns seed specs ("host:port") into addresses with libuv's asynchronous
// getaddrinfo. A DNS name yields every address it resolves to, which covers Kubernetes headless
// services (one A record per pod). IP literals need no lookup. A name that does not resolve yet is
// not an error at start: the agent resolves again while it sees no peer.
//
// Loop-bound. Lookups in flight when the resolver is closed are cancelled or, if already running
// in the thread pool, their results are dropped.

#include <uv.h>

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/address.h"

namespace shoal::cluster {

struct SeedSpec {
  std::string host;  // an IP literal or a DNS name
  std::uint16_t port = 0;
  std::string to_string() const;
};

// Parses "host:port" or "[ipv6]:port". Returns a one-line reason on failure.
std::expected<SeedSpec, std::string> parse_seed(std::string_view text);

class UvSeedResolver {
 public:
  // Every address found, and one message per spec that failed.
  using Done = std::function<void(std::vector<Address>, std::vector<std::string>)>;

  UvSeedResolver(uv_loop_t* loop, std::vector<SeedSpec> specs);
  ~UvSeedResolver();

  // Resolves every spec; calls `done` once, on the loop, when all have answered. A call while a
  // previous resolution is in flight is ignored.
  void resolve(Done done);
  // Cancels lookups in flight; `done` of an unfinished resolve() is never called.
  void close();
  bool busy() const;

 private:
  struct Batch;
  uv_loop_t* loop_;
  std::vector<SeedSpec> specs_;
  std::shared_ptr<Batch> current_;
};

}  // namespace shoal::cluster
