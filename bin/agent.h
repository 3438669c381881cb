#pragma once

// `shoal agent`: runs one node (a supervisor::Stack on the libuv driver) until SIGTERM or SIGINT
// (a graceful leave, exit 0) or a second signal. Every event is one line on stderr (time, level,
// component, message, key=value fields). bin/agent_config.h turns the flags into the config.

#include "bin/agent_config.h"

namespace shoal::bin {

// Returns the process exit code; prints a one-line reason to stderr on failure.
int run_agent(const AgentConfig& config);

}  // namespace shoal::bin
