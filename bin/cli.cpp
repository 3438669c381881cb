#include "bin/cli.h"

#include <glob.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <expected>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "bin/rpc/client.h"
#include "bin/rpc/frame.h"
#include "bin/rpc/value.h"
#include "cluster/keyring.h"

namespace shoal::bin {

namespace {

using rpc::Value;

constexpr int kExitError = 1;  // the agent answered with an error
constexpr int kExitNoAgent = 2;
constexpr int kReplyTimeoutMs = 30'000;
constexpr std::size_t kMaxCheckpointBytes = 64 * 1024;

// Options every client command takes.
struct Common {
  std::string rpc;
  std::string format = "table";
};

void fail(const std::string& message) {
  std::fprintf(stderr, "shoal: %s\n", message.c_str());
}

// --- Finding and talking to the agent ---

std::vector<std::string> default_sockets() {
  std::vector<std::string> out;
  glob_t g{};
  if (::glob("/tmp/shoal-*/shoal.sock", 0, nullptr, &g) == 0) {
    for (std::size_t i = 0; i < g.gl_pathc; ++i)
      out.emplace_back(g.gl_pathv[i]);
  }
  ::globfree(&g);
  return out;
}

const char* const kStartHint =
    "start one with `shoal agent` (it serves <data-dir>/shoal.sock), or point to its socket "
    "with --rpc PATH or SHOAL_RPC";

class Connection {
 public:
  // Connects to the agent; on failure prints why (with a hint) and returns nullopt.
  static std::unique_ptr<Connection> open(const Common& common) {
    std::string path = common.rpc;
    if (path.empty()) {
      if (const char* env = std::getenv("SHOAL_RPC"); env != nullptr && *env != '\0') path = env;
    }
    if (path.empty()) {
      std::vector<std::string> live;
      for (const std::string& p : default_sockets()) {
        const int fd = rpc::connect_unix(p);
        if (fd >= 0) {
          ::close(fd);
          live.push_back(p);
        }
      }
      if (live.empty()) {
        fail(std::string("no agent found on this host: ") + kStartHint);
        return nullptr;
      }
      if (live.size() > 1) {
        std::string list;
        for (const std::string& p : live)
          list += (list.empty() ? "" : ", ") + p;
        fail("several agents on this host (" + list + "): choose one with --rpc PATH");
        return nullptr;
      }
      path = live.front();
    }
    const int fd = rpc::connect_unix(path);
    if (fd < 0) {
      fail("no agent at " + path + " (" + std::strerror(errno) + "): " + kStartHint);
      return nullptr;
    }
    return std::unique_ptr<Connection>(new Connection(fd));
  }

  ~Connection() { ::close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool send(std::string_view cmd, Value args) {
    return rpc::send_all(fd_, rpc::frame(rpc::encode_request(cmd, std::move(args))));
  }

  // The next reply frame, decoded. nullopt: the agent closed the connection (error empty) or
  // something went wrong (error says what). timeout_ms < 0: wait for ever.
  std::optional<Value> next(int timeout_ms, std::string& error) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      if (auto body = reader_.take()) {
        rpc::ValueLimits limits;
        limits.max_bytes = rpc::kMaxReplyBytes;
        limits.max_items = 10'000'000;
        limits.max_string = 64 * 1024 * 1024;
        auto v = rpc::decode_value(*body, limits);
        if (!v) {
          error = "bad reply from the agent: " + v.error();
          return std::nullopt;
        }
        return std::move(*v);
      }
      if (reader_.failed()) {
        error = "reply from the agent too large";
        return std::nullopt;
      }
      int wait = -1;
      if (timeout_ms >= 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
          error = "no reply from the agent within " + std::to_string(timeout_ms / 1000) + " s";
          return std::nullopt;
        }
        wait = static_cast<int>(left.count());
      }
      pollfd p{fd_, POLLIN, 0};
      const int r = ::poll(&p, 1, wait);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) continue;
      char buf[64 * 1024];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        error = std::string("reading from the agent: ") + std::strerror(errno);
        return std::nullopt;
      }
      if (n == 0) {
        error.clear();
        return std::nullopt;
      }
      reader_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    }
  }

 private:
  explicit Connection(int fd) : fd_(fd) {}
  int fd_;
  rpc::FrameReader reader_{rpc::kMaxReplyBytes};
};

// One request, one reply. On an error reply, prints it and sets `code`.
std::optional<Value> call(const Common& common, std::string_view cmd, Value args, int& code,
                          std::unique_ptr<Connection>* keep = nullptr) {
  auto conn = Connection::open(common);
  if (!conn) {
    code = kExitNoAgent;
    return std::nullopt;
  }
  if (!conn->send(cmd, std::move(args))) {
    fail(std::string("sending to the agent: ") + std::strerror(errno));
    code = kExitNoAgent;
    return std::nullopt;
  }
  std::string error;
  auto reply = conn->next(kReplyTimeoutMs, error);
  if (!reply) {
    fail(error.empty() ? "the agent closed the connection without a reply" : error);
    code = kExitNoAgent;
    return std::nullopt;
  }
  const Value* ok = reply->find("ok");
  if (ok == nullptr || !ok->as_bool()) {
    const Value* message = reply->find("error");
    fail(message != nullptr ? message->as_string() : "the agent answered with an error");
    code = kExitError;
    return std::nullopt;
  }
  if (keep != nullptr) *keep = std::move(conn);
  const Value* result = reply->find("result");
  return result != nullptr ? *result : Value();
}

// --- Printing ---

std::string cell(const Value& v) {
  if (v.is_nil()) return "-";
  if (v.is_bool()) return v.as_bool() ? "yes" : "no";
  if (v.is_string()) return v.as_string().empty() ? "-" : v.as_string();
  if (v.is_array()) {
    std::string out;
    for (const Value& e : v.as_array())
      out += (out.empty() ? "" : ",") + cell(e);
    return out.empty() ? "-" : out;
  }
  if (v.is_map()) {
    std::string out;
    for (const auto& [k, e] : v.as_map())
      out += (out.empty() ? "" : ",") + k + "=" + cell(e);
    return out.empty() ? "-" : out;
  }
  const std::string json = rpc::to_json(v);
  return json;
}

std::string duration(const Value& v) {
  if (!v.is_number()) return "-";
  std::uint64_t s = v.as_u64() / 1000;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  if (s < 86'400) return std::to_string(s / 3600) + "h" + std::to_string(s % 3600 / 60) + "m";
  return std::to_string(s / 86'400) + "d" + std::to_string(s % 86'400 / 3600) + "h";
}

struct Column {
  std::string key;
  std::string header;
  std::function<std::string(const Value&)> show = cell;
};

void print_table(const Value& rows, const std::vector<Column>& columns) {
  std::vector<std::vector<std::string>> cells;
  std::vector<std::size_t> width;
  for (const Column& c : columns)
    width.push_back(c.header.size());
  for (const Value& row : rows.as_array()) {
    std::vector<std::string> line;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      const Value* v = row.find(columns[i].key);
      line.push_back(columns[i].show(v != nullptr ? *v : Value()));
      width[i] = std::max(width[i], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  auto print_line = [&](const std::vector<std::string>& line) {
    std::string out;
    for (std::size_t i = 0; i < line.size(); ++i) {
      out += line[i];
      if (i + 1 < line.size()) out.append(width[i] - line[i].size() + 2, ' ');
    }
    std::printf("%s\n", out.c_str());
  };
  std::vector<std::string> header;
  for (const Column& c : columns)
    header.push_back(c.header);
  print_line(header);
  for (const auto& line : cells)
    print_line(line);
}

// key: value lines, nested maps as dotted keys.
void print_fields(const Value& v, const std::string& prefix = "") {
  for (const auto& [k, e] : v.as_map()) {
    if (e.is_map() && !e.as_map().empty() && k != "tags") {
      print_fields(e, prefix + k + ".");
    } else {
      std::printf("%s%s: %s\n", prefix.c_str(), k.c_str(),
                  (k.ends_with("_ms") ? duration(e) : cell(e)).c_str());
    }
  }
}

// v[key], or nil.
const Value& at(const Value& v, std::string_view key) {
  static const Value nil;
  const Value* e = v.find(key);
  return e != nullptr ? *e : nil;
}

void print_json(const Value& v) {
  std::printf("%s\n", rpc::to_json(v).c_str());
}

// --- Commands ---

void add_common(CLI::App* cmd, Common& common) {
  cmd->add_option("--rpc", common.rpc,
                  "The agent's RPC socket (default: $SHOAL_RPC, else the one agent found at "
                  "/tmp/shoal-*/shoal.sock)");
  cmd->add_option("--format", common.format, "table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
}

Value strings_value(const std::vector<std::string>& list) {
  Value out = Value::array();
  for (const std::string& s : list)
    out.push(s);
  return out;
}

// A command whose reply is printed as a table (or JSON) with `columns`.
void listing(CliState& state, const Common& common, std::string_view cmd, Value args,
             const std::vector<Column>& columns) {
  int code = 0;
  auto result = call(common, cmd, std::move(args), code);
  state.exit_code = code;
  if (!result) return;
  if (common.format == "json") {
    print_json(*result);
  } else if (result->is_array()) {
    print_table(*result, columns);
  } else {
    Value rows = Value::array();
    rows.push(*result);
    print_table(rows, columns);
  }
}

const std::vector<Column>& name_columns() {
  static const std::vector<Column> columns{{"name", "NAME"}, {"pid", "PID"}, {"node", "NODE"}};
  return columns;
}

}  // namespace

void add_cli_commands(CLI::App& app, CliState& state) {
  // Options live as long as the app: one block for all of them.
  struct All {
    Common members, info, whereis, names, reg, unreg, join, leave_group, group, run, ps, stop,
        checkpoint, leave, watch, keys;
    std::string key;
    bool force = false;
    int keys_timeout_s = 10;
    std::string status, name, prefix, group_name, worker, restart, cwd, node;
    std::vector<std::string> tags, argv, constraints, env, stop_names;
    std::uint64_t limit = 0, max_restarts = 3, window_ms = 5'000, shutdown_ms = 5'000;
    bool replace = false;
    int leave_timeout_s = 60;
  };
  static All o;

  CLI::App* members = app.add_subcommand("members", "List the cluster's members");
  add_common(members, o.members);
  members->add_option("--status", o.status, "Only members with this status")
      ->check(CLI::IsMember({"alive", "suspect", "dead", "left"}));
  members->add_option("--tag", o.tags, "Only members with this tag key=value (repeatable)");
  members->callback([&state] {
    Value args = Value::map();
    if (!o.status.empty()) args.set("status", o.status);
    args.set("tags", strings_value(o.tags));
    listing(state, o.members, "members", std::move(args),
            {{"name", "NAME"},
             {"addr", "ADDR"},
             {"status", "STATUS"},
             {"incarnation", "INCARNATION"},
             {"tags", "TAGS"}});
  });

  CLI::App* info = app.add_subcommand("info", "This node, the cluster's size, names and children");
  add_common(info, o.info);
  info->callback([&state] {
    int code = 0;
    auto result = call(o.info, "info", Value::map(), code);
    state.exit_code = code;
    if (!result) return;
    if (o.info.format == "json") {
      print_json(*result);
    } else {
      print_fields(*result);
    }
  });

  CLI::App* whereis = app.add_subcommand("whereis",
                                         "Where a global name is registered (exit 1 "
                                         "if it is not)");
  add_common(whereis, o.whereis);
  whereis->add_option("name", o.name, "The name")->required();
  whereis->callback([&state] {
    Value args = Value::map();
    args.set("name", o.name);
    listing(state, o.whereis, "whereis", std::move(args), name_columns());
  });

  CLI::App* names = app.add_subcommand("names", "List registered names");
  add_common(names, o.names);
  names->add_option("--prefix", o.prefix, "Only names starting with this");
  names->add_option("--limit", o.limit, "At most this many (0: all)");
  names->callback([&state] {
    Value args = Value::map();
    args.set("prefix", o.prefix);
    if (o.limit > 0) args.set("limit", o.limit);
    listing(state, o.names, "names", std::move(args), name_columns());
  });

  CLI::App* reg = app.add_subcommand("register", "Register a global name held by the agent itself");
  add_common(reg, o.reg);
  reg->add_option("name", o.name, "The name")->required();
  reg->callback([&state] {
    Value args = Value::map();
    args.set("name", o.name);
    listing(state, o.reg, "register", std::move(args), name_columns());
  });

  CLI::App* unreg = app.add_subcommand("unregister", "Remove a name the agent itself holds");
  add_common(unreg, o.unreg);
  unreg->add_option("name", o.name, "The name")->required();
  unreg->callback([&state] {
    Value args = Value::map();
    args.set("name", o.name);
    listing(state, o.unreg, "unregister", std::move(args), name_columns());
  });

  CLI::App* join = app.add_subcommand("join-group", "Make the agent a member of a group");
  add_common(join, o.join);
  join->add_option("group", o.group_name, "The group")->required();
  join->callback([&state] {
    Value args = Value::map();
    args.set("group", o.group_name);
    listing(state, o.join, "join-group", std::move(args), {{"group", "GROUP"}, {"pid", "PID"}});
  });

  CLI::App* leave_group = app.add_subcommand("leave-group", "Take the agent out of a group");
  add_common(leave_group, o.leave_group);
  leave_group->add_option("group", o.group_name, "The group")->required();
  leave_group->callback([&state] {
    Value args = Value::map();
    args.set("group", o.group_name);
    listing(state, o.leave_group, "leave-group", std::move(args), {{"group", "GROUP"}});
  });

  CLI::App* group = app.add_subcommand("group", "List a group's members");
  add_common(group, o.group);
  group->add_option("group", o.group_name, "The group")->required();
  group->callback([&state] {
    Value args = Value::map();
    args.set("group", o.group_name);
    listing(state, o.group, "group", std::move(args), {{"pid", "PID"}, {"node", "NODE"}});
  });

  CLI::App* run = app.add_subcommand(
      "run", "Run a supervised child somewhere in the cluster: shoal run --name N -- CMD ARGS...");
  add_common(run, o.run);
  run->add_option("--name", o.name, "The child's name (also its registry name)")->required();
  run->add_option("--worker", o.worker,
                  "Run an in-process worker of this type instead of a command (idle, counter)");
  run->add_option("--restart", o.restart, "permanent, transient or temporary (permanent)")
      ->check(CLI::IsMember({"permanent", "transient", "temporary"}));
  run->add_option("--constraint", o.constraints,
                  "Run only on members with this tag key=value (repeatable)");
  run->add_option("--env", o.env, "Extra environment NAME=value for the command (repeatable)");
  run->add_option("--cwd", o.cwd, "Working directory of the command");
  run->add_option("--max-restarts", o.max_restarts,
                  "More restarts than this within the window mark the child failed")
      ->capture_default_str();
  run->add_option("--window-ms", o.window_ms, "The restart window")->capture_default_str();
  run->add_option("--shutdown-ms", o.shutdown_ms,
                  "How long a stop may take before the child is killed")
      ->capture_default_str();
  run->add_flag("--replace", o.replace, "Replace a child of the same name");
  run->add_option("command", o.argv, "The command and its arguments (after --)");
  run->callback([&state] {
    Value args = Value::map();
    args.set("name", o.name);
    if (!o.worker.empty()) args.set("worker", o.worker);
    args.set("argv", strings_value(o.argv));
    if (!o.restart.empty()) args.set("restart", o.restart);
    args.set("constraints", strings_value(o.constraints));
    args.set("env", strings_value(o.env));
    if (!o.cwd.empty()) args.set("cwd", o.cwd);
    args.set("max_restarts", o.max_restarts);
    args.set("window_ms", o.window_ms);
    args.set("shutdown_ms", o.shutdown_ms);
    if (o.replace) args.set("replace", true);
    int code = 0;
    auto result = call(o.run, "run", std::move(args), code);
    state.exit_code = code;
    if (!result) return;
    if (o.run.format == "json") {
      print_json(*result);
    } else {
      std::printf("added %s\n", o.name.c_str());
    }
  });

  CLI::App* ps = app.add_subcommand("ps", "List the cluster's children");
  add_common(ps, o.ps);
  ps->add_option("--node", o.node, "Only children running on this node");
  ps->callback([&state] {
    Value args = Value::map();
    if (!o.node.empty()) args.set("node", o.node);
    listing(state, o.ps, "ps", std::move(args),
            {{"name", "NAME"},
             {"node", "NODE"},
             {"status", "STATUS"},
             {"restarts", "RESTARTS"},
             {"os_pid", "OS_PID"},
             {"uptime_ms", "UPTIME", duration},
             {"command", "COMMAND"},
             {"last_exit", "LAST_EXIT"}});
  });

  CLI::App* stop = app.add_subcommand("stop", "Stop children and remove them from the cluster");
  add_common(stop, o.stop);
  stop->add_option("name", o.stop_names, "The children's names")->required();
  stop->callback([&state] {
    if (o.stop_names.size() == 1) {
      Value args = Value::map();
      args.set("name", o.stop_names[0]);
      int code = 0;
      auto result = call(o.stop, "stop", std::move(args), code);
      state.exit_code = code;
      if (!result) return;
      if (o.stop.format == "json") {
        print_json(*result);
      } else {
        std::printf("stopped %s\n", o.stop_names[0].c_str());
      }
      return;
    }
    Value args = Value::map();
    args.set("names", strings_value(o.stop_names));
    int code = 0;
    auto result = call(o.stop, "stop-batch", std::move(args), code);
    state.exit_code = code;
    if (!result) return;
    const Value* missing = result->find("missing");
    if (missing != nullptr && !missing->as_array().empty()) {
      fail("no child named " + cell(*missing));
      state.exit_code = kExitError;
    }
    if (o.stop.format == "json") {
      print_json(*result);
    } else {
      std::printf("stopped %s\n", cell(at(*result, "stopped")).c_str());
    }
  });

  CLI::App* checkpoint = app.add_subcommand(
      "checkpoint", "Store a child's checkpoint, read from stdin (from the node it runs on)");
  add_common(checkpoint, o.checkpoint);
  checkpoint->add_option("name", o.name, "The child's name (default: $SHOAL_CHILD_NAME)");
  checkpoint->callback([&state] {
    std::string name = o.name;
    if (name.empty()) {
      if (const char* env = std::getenv("SHOAL_CHILD_NAME")) name = env;
    }
    if (name.empty()) {
      fail("checkpoint: give the child's name (or run it from a child: $SHOAL_CHILD_NAME)");
      state.exit_code = kExitNoAgent;
      return;
    }
    std::string data;
    char buf[8192];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) {
      data.append(buf, n);
      if (data.size() > kMaxCheckpointBytes) {
        fail("checkpoint: more than " + std::to_string(kMaxCheckpointBytes) +
             " bytes on stdin (a checkpoint is a small state blob)");
        state.exit_code = kExitError;
        return;
      }
    }
    Value args = Value::map();
    args.set("name", name);
    args.set("data", data);
    int code = 0;
    auto result = call(o.checkpoint, "checkpoint", std::move(args), code);
    state.exit_code = code;
    if (!result) return;
    if (o.checkpoint.format == "json") {
      print_json(*result);
    } else {
      std::printf("stored %zu bytes for %s\n", data.size(), name.c_str());
    }
  });

  CLI::App* leave = app.add_subcommand(
      "leave", "Leave the cluster gracefully: hand this node's children over, then stop the agent");
  add_common(leave, o.leave);
  leave->add_option("--timeout", o.leave_timeout_s, "Seconds to wait for the agent to be gone")
      ->capture_default_str();
  leave->callback([&state] {
    int code = 0;
    std::unique_ptr<Connection> conn;
    auto result = call(o.leave, "leave", Value::map(), code, &conn);
    state.exit_code = code;
    if (!result) return;
    if (o.leave.format == "table")
      std::printf("leaving: handing over %s children\n", cell(at(*result, "children")).c_str());
    // The agent closes the connection when it is gone.
    std::string error;
    while (conn->next(o.leave_timeout_s * 1000, error)) {
    }
    if (!error.empty()) {
      fail("leave: " + error);
      state.exit_code = kExitError;
      return;
    }
    if (o.leave.format == "json") {
      print_json(*result);
    } else {
      std::printf("left\n");
    }
  });

  CLI::App* keys = app.add_subcommand(
      "keys", "The cluster keys: list, generate, install, use, remove (rotation without downtime)");
  keys->require_subcommand(1);
  CLI::App* keys_list = keys->add_subcommand("list",
                                             "Each key's fingerprint and how many live "
                                             "members hold it and seal with it");
  add_common(keys_list, o.keys);
  keys_list->callback([&state] {
    Value args = Value::map();
    args.set("op", "list");
    int code = 0;
    auto result = call(o.keys, "keys", std::move(args), code);
    state.exit_code = code;
    if (!result) return;
    if (o.keys.format == "json") {
      print_json(*result);
      return;
    }
    if (!at(*result, "encrypted").as_bool()) std::printf("this agent runs without encryption\n");
    std::printf("%s live members\n", cell(at(*result, "members")).c_str());
    print_table(at(*result, "keys"), {{"fingerprint", "FINGERPRINT"},
                                      {"members", "MEMBERS"},
                                      {"primary_on", "PRIMARY_ON"},
                                      {"here", "HERE"},
                                      {"primary_here", "PRIMARY_HERE"}});
  });
  CLI::App* keys_generate =
      keys->add_subcommand("generate",
                           "Print a new random key (64 hex digits), for a key file "
                           "or `shoal keys install`");
  keys_generate->callback([&state] {
    std::printf("%s\n", cluster::Keyring::to_hex(cluster::Keyring::generate()).c_str());
    state.exit_code = 0;
  });
  // install / use / remove, then wait until every live member agrees.
  for (const char* op : {"install", "use", "remove"}) {
    const std::string what =
        std::string(op) == "install" ? "Install a key on every member (it opens packets at once)"
        : std::string(op) == "use"   ? "Make an installed key primary on every member (it seals)"
                                     : "Remove a key from every member (not the primary one)";
    CLI::App* sub = keys->add_subcommand(op, what);
    add_common(sub, o.keys);
    sub->add_option("key", o.key, "The key: 64 hex digits or base64, or - to read it from stdin")
        ->required();
    sub->add_flag("--force", o.force, "Skip the check that every member is ready for it");
    sub->add_option("--timeout", o.keys_timeout_s, "Seconds to wait for every member to apply it")
        ->capture_default_str();
    sub->callback([&state, op] {
      std::string key = o.key;
      if (key == "-") std::getline(std::cin, key);
      auto parsed = cluster::Keyring::parse_key(key);
      if (!parsed) {
        fail("keys " + std::string(op) + ": " + parsed.error());
        state.exit_code = kExitNoAgent;
        return;
      }
      Value args = Value::map();
      args.set("op", op);
      args.set("key", key);
      if (o.force) args.set("force", true);
      int code = 0;
      auto result = call(o.keys, "keys", std::move(args), code);
      state.exit_code = code;
      if (!result) return;
      const std::string fp = at(*result, "fingerprint").as_string();
      // Wait until every live member reports the change.
      const std::string verb = std::string(op);
      Value last;
      auto agreed = [&] {
        Value list_args = Value::map();
        list_args.set("op", "list");
        int c = 0;
        auto listing = call(o.keys, "keys", std::move(list_args), c);
        if (!listing) return false;
        last = *listing;
        const std::uint64_t live = at(*listing, "members").as_u64();
        std::uint64_t holders = 0, primaries = 0;
        for (const Value& k : at(*listing, "keys").as_array()) {
          if (at(k, "fingerprint").as_string() != fp) continue;
          holders = at(k, "members").as_u64();
          primaries = at(k, "primary_on").as_u64();
        }
        if (verb == "install") return holders == live;
        if (verb == "use") return primaries == live;
        return holders == 0;
      };
      const auto deadline =
          std::chrono::steady_clock::now() + std::chrono::seconds(o.keys_timeout_s);
      bool done = agreed();
      while (!done && std::chrono::steady_clock::now() < deadline) {
        ::usleep(50'000);  // polling the agent's view until the deadline
        done = agreed();
      }
      if (o.keys.format == "json") {
        Value out = *result;
        out.set("agreed", done);
        print_json(out);
      } else {
        std::printf("%s %s: %s\n", op, fp.c_str(),
                    done ? "done on every live member" : "not yet applied everywhere");
      }
      if (!done) {
        fail("keys " + verb + ": not every live member applied it within " +
             std::to_string(o.keys_timeout_s) + " s (see `shoal keys list`)");
        state.exit_code = kExitError;
      }
    });
  }

  CLI::App* watch = app.add_subcommand(
      "watch", "Stream membership and registry events (names starting with PREFIX), until ^C");
  add_common(watch, o.watch);
  watch->add_option("prefix", o.prefix, "Only events about names starting with this");
  watch->callback([&state] {
    Value args = Value::map();
    args.set("prefix", o.prefix);
    int code = 0;
    std::unique_ptr<Connection> conn;
    auto result = call(o.watch, "watch", std::move(args), code, &conn);
    state.exit_code = code;
    if (!result) return;
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    std::string error;
    while (auto frame = conn->next(-1, error)) {
      const Value* event = frame->find("event");
      if (event == nullptr) continue;
      if (o.watch.format == "json") {
        print_json(*event);
        continue;
      }
      const bool member = at(*event, "type").as_string() == "member";
      std::printf("%s %s %s %s\n", cell(at(*event, "type")).c_str(),
                  cell(at(*event, "event")).c_str(), cell(at(*event, "name")).c_str(),
                  cell(at(*event, member ? "addr" : "pid")).c_str());
    }
    if (!error.empty()) {
      fail("watch: " + error);
      state.exit_code = kExitError;
    }
  });
}

}  // namespace shoal::bin
