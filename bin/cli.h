#pragma once

// The shoal CLI: every command but `agent` talks to a local agent over its RPC socket
// (bin/rpc/frame.h) and prints a table for people or, with --format json, JSON for scripts.
//
// The socket: --rpc PATH, else $SHOAL_RPC, else the one agent socket found at
// /tmp/shoal-*/shoal.sock (the default data dirs). Exit codes: 0 done; 1 the agent answered with
// an error (a name not registered, a child not found...); 2 no agent could be reached, or bad
// usage. Errors are one line on stderr.

#include <CLI/CLI.hpp>

namespace shoal::bin {

struct CliState {
  int exit_code = 0;
};

// Adds the client subcommands to `app`; each sets state.exit_code when it has run.
void add_cli_commands(CLI::App& app, CliState& state);

}  // namespace shoal::bin
