// The CLI's cluster commands: members, info, names and groups, watch.

#include <memory>

#include "bin/cli_client.h"

namespace shoal::bin::cli {

namespace {

const std::vector<Column>& name_columns() {
  static const std::vector<Column> columns{{"name", "NAME"}, {"pid", "PID"}, {"node", "NODE"}};
  return columns;
}

void add_members(CLI::App& app, CliState& state) {
  struct Options {
    Common common;
    std::string status;
    std::vector<std::string> tags;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("members", "List the cluster's members");
  add_common(cmd, o->common);
  cmd->add_option("--status", o->status, "Only members with this status")
      ->check(CLI::IsMember({"alive", "suspect", "dead", "left"}));
  cmd->add_option("--tag", o->tags, "Only members with this tag key=value (repeatable)")
      ->allow_extra_args(false);
  cmd->callback([&state, o] {
    Value args = Value::map();
    if (!o->status.empty()) args.set("status", o->status);
    args.set("tags", strings_value(o->tags));
    listing(state, o->common, "members", std::move(args),
            {{"name", "NAME"},
             {"addr", "ADDR"},
             {"status", "STATUS"},
             {"incarnation", "INCARNATION"},
             {"tags", "TAGS"}});
  });
}

void add_info(CLI::App& app, CliState& state) {
  auto o = std::make_shared<Common>();
  CLI::App* cmd = app.add_subcommand("info", "This node, the cluster's size, names and children");
  add_common(cmd, *o);
  cmd->callback([&state, o] {
    simple(state, *o, "info", Value::map(), [](const Value& r) { print_fields(r); });
  });
}

// A command about one name or group: `shoal CMD ARG`, its reply a table of `columns`.
void add_named(CLI::App& app, CliState& state, const char* name, const char* help, const char* arg,
               const char* arg_help, const std::vector<Column>& columns) {
  struct Options {
    Common common;
    std::string value;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(name, help);
  add_common(cmd, o->common);
  cmd->add_option(arg, o->value, arg_help)->required();
  cmd->callback([&state, o, name, arg, columns] {
    Value args = Value::map();
    args.set(arg, o->value);
    listing(state, o->common, name, std::move(args), columns);
  });
}

void add_names(CLI::App& app, CliState& state) {
  struct Options {
    Common common;
    std::string prefix;
    std::uint64_t limit = 0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("names", "List registered names");
  add_common(cmd, o->common);
  cmd->add_option("--prefix", o->prefix, "Only names starting with this");
  cmd->add_option("--limit", o->limit, "At most this many (0: all)");
  cmd->callback([&state, o] {
    Value args = Value::map();
    args.set("prefix", o->prefix);
    if (o->limit > 0) args.set("limit", o->limit);
    listing(state, o->common, "names", std::move(args), name_columns());
  });
}

void add_watch(CLI::App& app, CliState& state) {
  struct Options {
    Common common;
    std::string prefix;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "watch",
      "Stream membership, registry and child events (names starting with PREFIX), until ^C");
  add_common(cmd, o->common);
  cmd->add_option("prefix", o->prefix, "Only events about names starting with this");
  cmd->callback([&state, o] {
    Value args = Value::map();
    args.set("prefix", o->prefix);
    int code = 0;
    std::unique_ptr<Connection> conn;
    auto result = call(o->common, "watch", std::move(args), code, &conn);
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
      // member: its address; name: the holder's pid; child: the node it runs on, and why it
      // stopped or how it ended.
      const std::string type = at(*event, "type").as_string();
      const char* where = type == "member" ? "addr" : type == "child" ? "node" : "pid";
      std::string line = cell(at(*event, "type")) + " " + cell(at(*event, "event")) + " " +
                         cell(at(*event, "name")) + " " + cell(at(*event, where));
      if (type == "child" && !at(*event, "detail").as_string().empty())
        line += " " + cell(at(*event, "detail"));
      std::printf("%s\n", line.c_str());
    }
    if (!error.empty()) {
      fail("watch: " + error);
      state.exit_code = kExitError;
    }
  });
}

}  // namespace

void add_cluster_commands(CLI::App& app, CliState& state) {
  add_members(app, state);
  add_info(app, state);
  add_named(app, state, "whereis", "Where a global name is registered (exit 1 if it is not)",
            "name", "The name", name_columns());
  add_names(app, state);
  add_named(app, state, "register", "Register a global name held by the agent itself", "name",
            "The name", name_columns());
  add_named(app, state, "unregister", "Remove a name the agent itself holds", "name", "The name",
            name_columns());
  add_named(app, state, "join-group", "Make the agent a member of a group", "group", "The group",
            {{"group", "GROUP"}, {"pid", "PID"}});
  add_named(app, state, "leave-group", "Take the agent out of a group", "group", "The group",
            {{"group", "GROUP"}});
  add_named(app, state, "group", "List a group's members", "group", "The group",
            {{"pid", "PID"}, {"node", "NODE"}});
  add_watch(app, state);
}

}  // namespace shoal::bin::cli
