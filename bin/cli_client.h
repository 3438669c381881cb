#pragma once

// What every CLI command shares: finding the agent and talking to it over its RPC socket
// (bin/rpc/frame.h), and printing its replies as tables for people or JSON for scripts.
//
// The socket: --rpc PATH, else $SHOAL_RPC, else the one agent socket found at
// /tmp/shoal-*/shoal.sock (the default data dirs). Exit codes: 0 done; 1 the agent answered with
// an error; 2 no agent could be reached, or bad usage. Errors are one line on stderr.

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bin/cli.h"
#include "bin/rpc/frame.h"
#include "bin/rpc/value.h"

namespace shoal::bin::cli {

using rpc::Value;

inline constexpr int kExitError = 1;  // the agent answered with an error
inline constexpr int kExitNoAgent = 2;
inline constexpr int kReplyTimeoutMs = 30'000;

// Options every client command takes.
struct Common {
  std::string rpc;
  std::string format = "table";
  bool json() const { return format == "json"; }
};

// "shoal: MESSAGE" on stderr.
void fail(const std::string& message);

// A connection to the agent.
class Connection {
 public:
  // Connects to the agent; on failure prints why (with a hint) and returns null.
  static std::unique_ptr<Connection> open(const Common& common);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool send(std::string_view cmd, Value args);
  // The next reply frame, decoded. nullopt: the agent closed the connection (error empty) or
  // something went wrong (error says what). timeout_ms < 0: wait for ever.
  std::optional<Value> next(int timeout_ms, std::string& error);
  int fd() const { return fd_; }

 private:
  explicit Connection(int fd) : fd_(fd) {}
  int fd_;
  rpc::FrameReader reader_{rpc::kMaxReplyBytes};
};

// One request, one reply. On an error reply, prints it and sets `code`. With `keep`, the
// connection stays open there (for streams).
std::optional<Value> call(const Common& common, std::string_view cmd, Value args, int& code,
                          std::unique_ptr<Connection>* keep = nullptr);

// --- Printing ---

// A value as one table cell ("-" for nothing).
std::string cell(const Value& v);
// Milliseconds as 5s, 3m2s, 4h1m, 2d3h.
std::string duration(const Value& v);
struct Column {
  std::string key;
  std::string header;
  std::function<std::string(const Value&)> show = cell;
};
void print_table(const Value& rows, const std::vector<Column>& columns);
// key: value lines, nested maps as dotted keys.
void print_fields(const Value& v, const std::string& prefix = "");
// v[key], or nil.
const Value& at(const Value& v, std::string_view key);
void print_json(const Value& v);

// --- Building commands ---

void add_common(CLI::App* cmd, Common& common);
Value strings_value(const std::vector<std::string>& list);
// A command whose reply is printed as a table (or JSON) with `columns`.
void listing(CliState& state, const Common& common, std::string_view cmd, Value args,
             const std::vector<Column>& columns);
// Runs `cmd` and prints its result as JSON, or `table` of it.
void simple(CliState& state, const Common& common, std::string_view cmd, Value args,
            const std::function<void(const Value&)>& table);

// The command groups (bin/cli_*.cpp).
void add_cluster_commands(CLI::App& app, CliState& state);   // members, info, names, groups, watch
void add_children_commands(CLI::App& app, CliState& state);  // run, ps, stop, checkpoint, leave
void add_key_commands(CLI::App& app, CliState& state);       // keys list|generate|install|...
void add_messaging_commands(CLI::App& app, CliState& state);
// completion: a bash or zsh script from the subcommands and flags `app` has when it runs (add it
// last).
void add_completion_command(CLI::App& app, CliState& state);  // send, call, publish, recv, exec

}  // namespace shoal::bin::cli
