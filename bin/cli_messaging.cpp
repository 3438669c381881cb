// The CLI's messaging: send, call, publish, recv, reply, and exec (a command run once on a node).
//
// A TARGET is a global name, a pid as printed (<node.creation.id>), or a group with --group. A
// message is the MSG argument, or stdin with `-` (at most 1 MiB). `call` prints the reply and
// exits 1 with the error's code name (noproc, nodedown, timeout, overloaded) on stderr when there
// is none; `recv` prints one line per message: KIND FROM TOKEN DATA (KIND send or call; TOKEN "-"
// for a send; DATA with "\" and newlines escaped), or with --format json one JSON object per line.

#include <cstdio>
#include <memory>

#include "bin/cli_client.h"
#include "messaging/wire.h"
#include "registry/pid.h"

namespace shoal::bin::cli {

namespace {

// The message: MSG, or stdin for "-" or when MSG is absent and stdin is not a terminal.
std::optional<std::string> message_of(const std::string& arg, bool given, CliState& state) {
  if (given && arg != "-") return arg;
  if (!given) return std::string();
  std::string data;
  char buf[64 * 1024];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) {
    data.append(buf, n);
    if (data.size() > messaging::kMaxPayloadBytes) {
      fail("a message is at most " + std::to_string(messaging::kMaxPayloadBytes) +
           " bytes (stdin has more)");
      state.exit_code = kExitError;
      return std::nullopt;
    }
  }
  return data;
}

Value target_value(const std::string& target, bool group) {
  Value t = Value::map();
  if (group) {
    t.set("group", target);
  } else if (target.starts_with("<") && registry::Pid::parse(target).has_value()) {
    t.set("pid", target);
  } else {
    t.set("name", target);
  }
  return t;
}

struct MessageOptions {
  Common common;
  std::string target;
  std::string message;
  bool group = false;
  std::uint64_t timeout_ms = 5'000;
};

CLI::App* add_message_command(CLI::App& app, const char* name, const char* help,
                              const std::shared_ptr<MessageOptions>& o, bool group_flag) {
  CLI::App* cmd = app.add_subcommand(name, help);
  add_common(cmd, o->common);
  cmd->add_option("target", o->target,
                  group_flag ? "A global name, a pid <node.creation.id>, or a group with --group"
                             : "The group")
      ->required();
  cmd->add_option("message", o->message, "The message; - reads it from stdin (at most 1 MiB)");
  if (group_flag) cmd->add_flag("--group", o->group, "TARGET is a group: every member once");
  return cmd;
}

void add_send(CLI::App& app, CliState& state) {
  auto o = std::make_shared<MessageOptions>();
  CLI::App* cmd = add_message_command(
      app, "send", "Send a message to a name, a pid or a group (at most once, in order)", o, true);
  cmd->callback([&state, o, cmd] {
    auto data = message_of(o->message, cmd->count("message") > 0, state);
    if (!data) return;
    Value args = Value::map();
    args.set("target", target_value(o->target, o->group));
    args.set("data", *data);
    simple(state, o->common, "send", std::move(args),
           [](const Value& r) { std::printf("sent to %s\n", cell(at(r, "sent")).c_str()); });
  });
}

void add_publish(CLI::App& app, CliState& state) {
  auto o = std::make_shared<MessageOptions>();
  CLI::App* cmd = add_message_command(
      app, "publish", "Send a message to every live member of a group; prints how many", o, false);
  cmd->callback([&state, o, cmd] {
    auto data = message_of(o->message, cmd->count("message") > 0, state);
    if (!data) return;
    Value args = Value::map();
    args.set("group", o->target);
    args.set("data", *data);
    simple(state, o->common, "publish", std::move(args),
           [](const Value& r) { std::printf("%s\n", cell(at(r, "sent")).c_str()); });
  });
}

void add_call(CLI::App& app, CliState& state) {
  auto o = std::make_shared<MessageOptions>();
  CLI::App* cmd = add_message_command(
      app, "call",
      "Call a name or a pid and print its reply (exit 1: noproc, nodedown, timeout...)", o, false);
  cmd->add_option("--timeout", o->timeout_ms, "Milliseconds to wait for the reply")
      ->check(CLI::Range(1u, 3'600'000u))
      ->capture_default_str();
  cmd->callback([&state, o, cmd] {
    auto data = message_of(o->message, cmd->count("message") > 0, state);
    if (!data) return;
    Value args = Value::map();
    args.set("target", target_value(o->target, false));
    args.set("data", *data);
    args.set("timeout_ms", o->timeout_ms);
    auto conn = Connection::open(o->common);
    if (!conn) {
      state.exit_code = kExitNoAgent;
      return;
    }
    if (!conn->send("call", std::move(args))) {
      fail("sending to the agent failed");
      state.exit_code = kExitNoAgent;
      return;
    }
    std::string error;
    auto reply = conn->next(static_cast<int>(o->timeout_ms) + kReplyTimeoutMs, error);
    if (!reply) {
      fail(error.empty() ? "the agent closed the connection without a reply" : error);
      state.exit_code = kExitNoAgent;
      return;
    }
    if (!at(*reply, "ok").as_bool()) {
      fail(cell(at(*reply, "code")) + ": " + cell(at(*reply, "error")));
      state.exit_code = kExitError;
      return;
    }
    const Value& result = at(*reply, "result");
    if (o->common.json()) {
      print_json(result);
    } else {
      const std::string& bytes = at(result, "reply").as_string();
      std::fwrite(bytes.data(), 1, bytes.size(), stdout);
      if (bytes.empty() || bytes.back() != '\n') std::fputc('\n', stdout);
    }
  });
}

void add_reply(CLI::App& app, CliState& state) {
  auto o = std::make_shared<MessageOptions>();
  CLI::App* cmd = app.add_subcommand("reply", "Answer a call received with `shoal recv`");
  add_common(cmd, o->common);
  cmd->add_option("token", o->target, "The call's reply token (from `shoal recv`)")->required();
  cmd->add_option("message", o->message, "The reply; - reads it from stdin (at most 1 MiB)");
  cmd->callback([&state, o, cmd] {
    auto data = message_of(o->message, cmd->count("message") > 0, state);
    if (!data) return;
    Value args = Value::map();
    args.set("token", o->target);
    args.set("data", *data);
    simple(state, o->common, "reply", std::move(args), [](const Value&) {});
  });
}

// DATA for a line of text: backslashes and newlines escaped.
std::string escaped(const std::string& data) {
  std::string out;
  for (char c : data) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void add_recv(CLI::App& app, CliState& state) {
  struct Options {
    Common common;
    std::vector<std::string> names, groups;
    std::uint64_t count = 0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "recv",
      "Print the messages sent to NAME or group G (held for as long as this runs), or to this "
      "exec child (SHOAL_CHILD_NAME), one per line, until ^C or --count");
  add_common(cmd, o->common);
  cmd->add_option("--name", o->names, "Register this name for the receiver (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--group", o->groups, "Join this group (repeatable)")->allow_extra_args(false);
  cmd->add_option("--count", o->count, "Stop after this many messages");
  cmd->callback([&state, o] {
    Value args = Value::map();
    if (o->names.empty() && o->groups.empty()) {
      const char* child = std::getenv("SHOAL_CHILD_NAME");
      if (child == nullptr || *child == '\0') {
        fail("recv: give --name or --group (or run it from an exec child)");
        state.exit_code = kExitNoAgent;
        return;
      }
      args.set("child", std::string(child));
    }
    args.set("names", strings_value(o->names));
    args.set("groups", strings_value(o->groups));
    if (o->count > 0) args.set("count", o->count);
    int code = 0;
    std::unique_ptr<Connection> conn;
    auto result = call(o->common, "recv", std::move(args), code, &conn);
    state.exit_code = code;
    if (!result) return;
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    std::string error;
    while (auto frame = conn->next(-1, error)) {
      const Value* event = frame->find("event");
      if (event == nullptr) continue;
      if (o->common.json()) {
        print_json(*event);
        continue;
      }
      const bool is_call = !at(*event, "token").is_nil();
      std::printf("%s %s %s %s\n", is_call ? "call" : "send", cell(at(*event, "from")).c_str(),
                  is_call ? at(*event, "token").as_string().c_str() : "-",
                  escaped(at(*event, "data").as_string()).c_str());
    }
    if (!error.empty()) {
      fail("recv: " + error);
      state.exit_code = kExitError;
    }
  });
}

void add_exec(CLI::App& app, CliState& state) {
  struct Options {
    Common common;
    std::string node, key;
    std::uint64_t timeout_ms = 60'000;
    std::vector<std::string> argv;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "exec",
      "Run a command once on a node (--node, or --key: the node a child of that name would be "
      "placed on; default this one), stream its output, exit with its status: -- CMD ARGS...");
  add_common(cmd, o->common);
  cmd->add_option("--node", o->node, "The node to run it on");
  cmd->add_option("--key", o->key, "Run it on the node this key belongs to (rendezvous)");
  cmd->add_option("--timeout", o->timeout_ms, "Milliseconds before the command is killed")
      ->check(CLI::Range(1u, 86'400'000u))
      ->capture_default_str();
  cmd->add_option("command", o->argv, "The command and its arguments (after --)")->required();
  cmd->callback([&state, o] {
    Value args = Value::map();
    if (!o->node.empty()) args.set("node", o->node);
    if (!o->key.empty()) args.set("key", o->key);
    args.set("argv", strings_value(o->argv));
    args.set("timeout_ms", o->timeout_ms);
    int code = 0;
    std::unique_ptr<Connection> conn;
    auto result = call(o->common, "exec", std::move(args), code, &conn);
    state.exit_code = code;
    if (!result) return;
    if (o->common.json()) print_json(*result);
    std::string error;
    while (auto frame = conn->next(static_cast<int>(o->timeout_ms) + kReplyTimeoutMs, error)) {
      const Value* event = frame->find("event");
      if (event == nullptr) continue;
      if (o->common.json()) {
        print_json(*event);
      }
      const std::string type = at(*event, "type").as_string();
      if (type == "out" || type == "err") {
        if (o->common.json()) continue;
        const std::string& bytes = at(*event, "data").as_string();
        std::fwrite(bytes.data(), 1, bytes.size(), type == "out" ? stdout : stderr);
        std::fflush(type == "out" ? stdout : stderr);
      } else if (type == "end") {
        const std::string why = at(*event, "error").as_string();
        if (!why.empty()) fail("exec on " + cell(at(*result, "node")) + ": " + why);
        state.exit_code = static_cast<int>(at(*event, "status").as_u64(1));
        if (!why.empty() && state.exit_code == 0) state.exit_code = kExitError;
        return;
      }
    }
    fail("exec: " + (error.empty() ? std::string("the agent went away before the end") : error));
    state.exit_code = kExitError;
  });
}

}  // namespace

void add_messaging_commands(CLI::App& app, CliState& state) {
  add_send(app, state);
  add_call(app, state);
  add_publish(app, state);
  add_recv(app, state);
  add_reply(app, state);
  add_exec(app, state);
}

}  // namespace shoal::bin::cli
