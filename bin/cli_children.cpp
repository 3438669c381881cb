// The CLI's commands for children: run, ps, stop, checkpoint, and the agent's graceful leave.

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "bin/cli_client.h"

namespace shoal::bin::cli {

namespace {

constexpr std::size_t kMaxCheckpointBytes = 64 * 1024;

void add_run(CLI::App& app, CliState& state) {
  struct Options {
    Common common;
    std::string name, worker, restart, cwd, handoff;
    std::vector<std::string> argv, constraints, env;
    std::uint64_t max_restarts = 3, window_ms = 5'000, shutdown_ms = 5'000;
    bool replace = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "run", "Run a supervised child somewhere in the cluster: shoal run --name N -- CMD ARGS...");
  add_common(cmd, o->common);
  cmd->add_option("--name", o->name, "The child's name (also its registry name)")->required();
  cmd->add_option("--worker", o->worker,
                  "Run an in-process worker of this type instead of a command (idle, counter)");
  cmd->add_option("--restart", o->restart, "permanent, transient or temporary (permanent)")
      ->check(CLI::IsMember({"permanent", "transient", "temporary"}));
  cmd->add_option("--handoff", o->handoff,
                  "How a graceful move (leave, drain, a join) hands the child on: state (stop the "
                  "old copy, which may checkpoint as it stops, then start the new one from it) or "
                  "overlap (start the new copy first: no gap, for stateless children) (state)")
      ->check(CLI::IsMember({"state", "overlap"}));
  cmd->add_option("--constraint", o->constraints,
                  "Run only on members with this tag key=value (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--env", o->env, "Extra environment NAME=value for the command (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--cwd", o->cwd, "Working directory of the command");
  cmd->add_option("--max-restarts", o->max_restarts,
                  "More restarts than this within the window mark the child failed")
      ->capture_default_str();
  cmd->add_option("--window-ms", o->window_ms, "The restart window")->capture_default_str();
  cmd->add_option("--shutdown-ms", o->shutdown_ms,
                  "How long a stop may take before the child is killed")
      ->capture_default_str();
  cmd->add_flag("--replace", o->replace, "Replace a child of the same name");
  // Repeatable flags take one value each, so a "--" before the command ends them.
  cmd->add_option("command", o->argv, "The command and its arguments (after --)");
  cmd->callback([&state, o] {
    Value args = Value::map();
    args.set("name", o->name);
    if (!o->worker.empty()) args.set("worker", o->worker);
    args.set("argv", strings_value(o->argv));
    if (!o->restart.empty()) args.set("restart", o->restart);
    if (!o->handoff.empty()) args.set("handoff", o->handoff);
    args.set("constraints", strings_value(o->constraints));
    args.set("env", strings_value(o->env));
    if (!o->cwd.empty()) args.set("cwd", o->cwd);
    args.set("max_restarts", o->max_restarts);
    args.set("window_ms", o->window_ms);
    args.set("shutdown_ms", o->shutdown_ms);
    if (o->replace) args.set("replace", true);
    int code = 0;
    auto result = call(o->common, "run", std::move(args), code);
    state.exit_code = code;
    if (!result) return;
    if (o->common.json()) {
      print_json(*result);
    } else {
      std::printf("added %s\n", o->name.c_str());
    }
  });
}

void add_ps(CLI::App& app, CliState& state) {
  struct Options {
    Common common;
    std::string node;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("ps", "List the cluster's children");
  add_common(cmd, o->common);
  cmd->add_option("--node", o->node, "Only children running on this node");
  cmd->callback([&state, o] {
    Value args = Value::map();
    if (!o->node.empty()) args.set("node", o->node);
    listing(state, o->common, "ps", std::move(args),
            {{"name", "NAME"},
             {"node", "NODE"},
             {"status", "STATUS"},
             {"restarts", "RESTARTS"},
             {"os_pid", "OS_PID"},
             {"uptime_ms", "UPTIME", duration},
             {"command", "COMMAND"},
             {"last_exit", "LAST_EXIT"}});
  });
}

void add_stop(CLI::App& app, CliState& state) {
  struct Options {
    Common common;
    std::vector<std::string> stop_names;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("stop", "Stop children and remove them from the cluster");
  add_common(cmd, o->common);
  cmd->add_option("name", o->stop_names, "The children's names")->required();
  cmd->callback([&state, o] {
    if (o->stop_names.size() == 1) {
      Value args = Value::map();
      args.set("name", o->stop_names[0]);
      int code = 0;
      auto result = call(o->common, "stop", std::move(args), code);
      state.exit_code = code;
      if (!result) return;
      if (o->common.json()) {
        print_json(*result);
      } else {
        std::printf("stopped %s\n", o->stop_names[0].c_str());
      }
      return;
    }
    Value args = Value::map();
    args.set("names", strings_value(o->stop_names));
    int code = 0;
    auto result = call(o->common, "stop-batch", std::move(args), code);
    state.exit_code = code;
    if (!result) return;
    const Value* missing = result->find("missing");
    if (missing != nullptr && !missing->as_array().empty()) {
      fail("no child named " + cell(*missing));
      state.exit_code = kExitError;
    }
    if (o->common.json()) {
      print_json(*result);
    } else {
      std::printf("stopped %s\n", cell(at(*result, "stopped")).c_str());
    }
  });
}

void add_checkpoint(CLI::App& app, CliState& state) {
  struct Options {
    Common common;
    std::string name;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "checkpoint", "Store a child's checkpoint, read from stdin (from the node it runs on)");
  add_common(cmd, o->common);
  cmd->add_option("name", o->name, "The child's name (default: $SHOAL_CHILD_NAME)");
  cmd->callback([&state, o] {
    std::string name = o->name;
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
    auto result = call(o->common, "checkpoint", std::move(args), code);
    state.exit_code = code;
    if (!result) return;
    if (o->common.json()) {
      print_json(*result);
    } else {
      std::printf("stored %zu bytes for %s\n", data.size(), name.c_str());
    }
  });
}

void add_leave(CLI::App& app, CliState& state) {
  struct Options {
    Common common;
    int leave_timeout_s = 60;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "leave", "Leave the cluster gracefully: hand this node's children over, then stop the agent");
  add_common(cmd, o->common);
  cmd->add_option("--timeout", o->leave_timeout_s, "Seconds to wait for the agent to be gone")
      ->capture_default_str();
  cmd->callback([&state, o] {
    int code = 0;
    std::unique_ptr<Connection> conn;
    auto result = call(o->common, "leave", Value::map(), code, &conn);
    state.exit_code = code;
    if (!result) return;
    if (!o->common.json())
      std::printf("leaving: handing over %s children\n", cell(at(*result, "children")).c_str());
    // The agent closes the connection when it is gone.
    std::string error;
    while (conn->next(o->leave_timeout_s * 1000, error)) {
    }
    if (!error.empty()) {
      fail("leave: " + error);
      state.exit_code = kExitError;
      return;
    }
    if (o->common.json()) {
      print_json(*result);
    } else {
      std::printf("left\n");
    }
  });
}

}  // namespace

void add_children_commands(CLI::App& app, CliState& state) {
  add_run(app, state);
  add_ps(app, state);
  add_stop(app, state);
  add_checkpoint(app, state);
  add_leave(app, state);
}

}  // namespace shoal::bin::cli
