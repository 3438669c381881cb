#pragma once

// The client side of the agent's RPC socket, blocking: connecting, and writing a whole frame.
// Shared by the CLI and the benchmarks that drive agents.

#include <string>
#include <string_view>

namespace shoal::bin::rpc {

// Connects to the Unix socket at `path`. Returns the descriptor, or -1 with errno set (ENAMETOOLONG
// for a path too long for a socket address).
int connect_unix(const std::string& path);
// Writes all of `bytes` (retrying on EINTR, no SIGPIPE). False on an error or a closed peer.
bool send_all(int fd, std::string_view bytes);

}  // namespace shoal::bin::rpc
