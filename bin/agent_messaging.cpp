// The agent's messaging: the RPC commands send, call, publish, recv, reply and exec, the mailboxes
// of exec children and of `shoal recv`, and the commands peers ask this node to run.
//
// Mailboxes. A message for a local pid that is no worker's goes to the mailbox of that pid: an exec
// child's (open while it runs; its program reads it with the RPC stream `recv`, SHOAL_CHILD_NAME
// naming it), or a `shoal recv` client's (a pid of the agent's, registered under the names and
// groups it asked for, all let go when the client goes). A mailbox holds at most kMailboxMessages
// messages and kMailboxBytes bytes while nobody reads it; beyond, a send is dropped (and counted)
// and a call fails with overloaded. A call that a mailbox still holds when it closes fails with
// noproc.
//
// Remote commands (shoal exec). The origin asks a node's messenger; the node runs the command once
// (a process of its own, killed at its timeout, and with the agent if the agent dies, where
// setpriv(1) is there to ask for it; SHOAL_NODE names the node, no other SHOAL_* variable of the
// agent's is passed on), streams its output back and then its exit status.
//
// Events on a stream: {"type": "message", "from": pid, "data": bytes, "token": reply token|nil}
// (recv); {"type": "out"|"err", "data": bytes} and {"type": "end", "status": n, "error": text}
// (exec).

#include <signal.h>
#include <unistd.h>
#include <uv.h>

#include <deque>
#include <filesystem>

#include "bin/agent_args.h"
#include "bin/agent_state.h"
#include "supervisor/placement.h"

extern char** environ;

namespace shoal::bin {

namespace {

using args::bad;
using args::Failure;
using args::Result;
using args::text;
using Level = supervisor::LogLevel;
using rpc::Value;

constexpr std::size_t kMailboxMessages = 10'000;
constexpr std::size_t kMailboxBytes = 16 * 1024 * 1024;
constexpr std::uint64_t kDefaultTaskTimeoutMs = 60'000;
// The pid the agent sends and calls from for its clients (<node.creation.0>).
constexpr std::uint64_t kAgentId = 0;

Failure error_of(messaging::CallError e, const std::string& what) {
  switch (e) {
    case messaging::CallError::noproc:
      return {"noproc", "no process " + what};
    case messaging::CallError::nodedown:
      return {"nodedown", "the node of " + what + " went down"};
    case messaging::CallError::timeout:
      return {"timeout", "no reply from " + what + " in time"};
    case messaging::CallError::overloaded:
      return {"overloaded", "the queue to " + what + " is full"};
    case messaging::CallError::too_large:
      return {"too_large",
              "a message is at most " + std::to_string(messaging::kMaxPayloadBytes) + " bytes"};
  }
  return {"failed", what};
}

// {"name": N} | {"group": G} | {"pid": "<node.creation.id>"}
std::expected<messaging::Target, Failure> target_of(const Value& args) {
  const Value* t = args.find("target");
  if (t == nullptr || !t->is_map()) return std::unexpected(bad("target: expected a map"));
  if (const Value* pid = t->find("pid"); pid != nullptr) {
    auto parsed = registry::Pid::parse(pid->as_string());
    if (!parsed) return std::unexpected(bad("target.pid: " + parsed.error()));
    return messaging::Target::of_pid(*parsed);
  }
  if (const Value* g = t->find("group"); g != nullptr && !g->as_string().empty())
    return messaging::Target::of_group(g->as_string());
  if (const Value* n = t->find("name"); n != nullptr && !n->as_string().empty())
    return messaging::Target::of_name(n->as_string());
  return std::unexpected(bad("target: expected a name, a group or a pid"));
}

std::expected<std::string, Failure> data_of(const Value& args) {
  const Value* d = args.find("data");
  if (d == nullptr || d->is_nil()) return std::string();
  if (!d->is_string()) return std::unexpected(bad("data: expected bytes"));
  if (d->as_string().size() > messaging::kMaxPayloadBytes)
    return std::unexpected(error_of(messaging::CallError::too_large, ""));
  return d->as_string();
}

Value message_event(const messaging::Deliver& d) {
  Value ev = Value::map();
  ev.set("type", "message");
  ev.set("from", d.from.to_string());
  ev.set("data", d.payload);
  ev.set("token", d.reply_to ? Value(d.reply_to->token()) : Value());
  return ev;
}

Agent::Messaging::Mailbox* mailbox(Agent& a, std::uint64_t id) {
  auto it = a.messaging.mailboxes.find(id);
  return it == a.messaging.mailboxes.end() ? nullptr : &it->second;
}

// Streams what a mailbox holds to its reader, within the reader's count.
void pump(Agent& a, std::uint64_t id) {
  Agent::Messaging::Mailbox* box = mailbox(a, id);
  if (box == nullptr || !box->reader) return;
  while (!box->queue.empty()) {
    messaging::Deliver d = std::move(box->queue.front());
    box->queue.pop_front();
    box->bytes -= d.payload.size();
    if (!a.endpoints.rpc->send(*box->reader, rpc::encode_event(message_event(d)))) {
      if (d.reply_to)
        a.stack().messenger().fail(a.now(), *d.reply_to, messaging::FailureCode::noproc);
      continue;
    }
    if (box->left > 0 && --box->left == 0) {
      a.endpoints.rpc->hang_up(*box->reader);
      break;
    }
  }
}

void deliver(Agent& a, messaging::Deliver d) {
  Agent::Messaging::Mailbox* box = mailbox(a, d.to);
  if (box == nullptr || box->queue.size() >= kMailboxMessages ||
      box->bytes + d.payload.size() > kMailboxBytes) {
    if (d.reply_to) {
      a.stack().messenger().fail(
          a.now(), *d.reply_to,
          box == nullptr ? messaging::FailureCode::noproc : messaging::FailureCode::overloaded);
    } else {
      ++a.messaging.dropped;
    }
    return;
  }
  box->bytes += d.payload.size();
  const std::uint64_t id = d.to;
  box->queue.push_back(std::move(d));
  pump(a, id);
}

// Closes a mailbox: its waiting calls fail with noproc.
void close_mailbox(Agent& a, std::uint64_t id) {
  auto it = a.messaging.mailboxes.find(id);
  if (it == a.messaging.mailboxes.end()) return;
  for (const messaging::Deliver& d : it->second.queue) {
    if (d.reply_to)
      a.stack().messenger().fail(a.now(), *d.reply_to, messaging::FailureCode::noproc);
  }
  if (it->second.reader) a.messaging.receivers.erase(*it->second.reader);
  a.messaging.mailboxes.erase(it);
}

// --- Commands run here for a peer (or this node) ---

}  // namespace

struct Agent::Messaging::Task {
  Agent* agent = nullptr;
  cluster::Life origin;
  std::uint64_t task_id = 0;
  uv_process_t process{};
  uv_pipe_t out{};
  uv_pipe_t err{};
  uv_timer_t timer{};
  int open = 0;     // handles not yet closed
  int streams = 2;  // pipes not yet at their end
  bool exited = false;
  std::int64_t status = 0;
  int signal = 0;
  std::string error;
  char buf[64 * 1024];
};

namespace {

using Task = Agent::Messaging::Task;

void task_handle_closed(uv_handle_t* h) {
  auto* t = static_cast<Task*>(h->data);
  if (--t->open > 0) return;
  t->agent->messaging.running.erase({t->origin.key(), t->task_id});
  delete t;
}

// Ends the task once the process exited and both pipes are drained.
void task_maybe_end(Task* t) {
  if (!t->exited || t->streams > 0) return;
  Agent& a = *t->agent;
  const std::uint64_t status =
      t->signal != 0 ? 128 + static_cast<std::uint64_t>(t->signal)
                     : static_cast<std::uint64_t>(std::max<std::int64_t>(0, t->status)) & 255;
  a.stack().messenger().task_end(a.now(), t->origin, t->task_id, status, t->error);
  a.settle();
  uv_close(reinterpret_cast<uv_handle_t*>(&t->timer), task_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&t->process), task_handle_closed);
}

void task_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* t = static_cast<Task*>(s->data);
  Agent& a = *t->agent;
  if (n > 0) {
    const int stream = s == reinterpret_cast<uv_stream_t*>(&t->err) ? 2 : 1;
    a.stack().messenger().task_output(a.now(), t->origin, t->task_id, stream,
                                      std::string_view(buf->base, static_cast<std::size_t>(n)));
    a.settle();
    return;
  }
  if (n == 0) return;
  uv_read_stop(s);
  uv_close(reinterpret_cast<uv_handle_t*>(s), task_handle_closed);
  --t->streams;
  task_maybe_end(t);
}

void start_reading(Task* t, uv_pipe_t* pipe) {
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(pipe),
      [](uv_handle_t* h, std::size_t, uv_buf_t* b) {
        auto* task = static_cast<Task*>(h->data);
        *b = uv_buf_init(task->buf, sizeof task->buf);
      },
      task_read);
  (void)t;
}

void run_task(Agent& a, messaging::TaskRequest request) {
  auto allowed = supervisor::allowed_executable(a.config.exec_policy, request.argv.front(), "");
  if (!allowed) {
    const std::string& refused = allowed.error();
    a.log.log(Level::warn, "messaging", "exec refused task={} origin={} reason=\"{}\"",
              request.task_id, request.origin.key(), refused);
    a.stack().messenger().task_end(a.now(), request.origin, request.task_id, 126, refused);
    a.settle();
    return;
  }
  if (!allowed->empty()) request.argv.front() = std::move(*allowed);  // the path checked is run
  auto* t = new Task;
  t->agent = &a;
  t->origin = request.origin;
  t->task_id = request.task_id;
  for (uv_handle_t* h :
       {reinterpret_cast<uv_handle_t*>(&t->process), reinterpret_cast<uv_handle_t*>(&t->out),
        reinterpret_cast<uv_handle_t*>(&t->err), reinterpret_cast<uv_handle_t*>(&t->timer)})
    h->data = t;
  uv_pipe_init(a.loop, &t->out, 0);
  uv_pipe_init(a.loop, &t->err, 0);
  uv_timer_init(a.loop, &t->timer);
  t->open = 4;  // uv_spawn initialises the process handle even when it fails
  a.messaging.running[{request.origin.key(), request.task_id}] = t;
  // Ask the kernel to kill the command with the agent (setpriv sets PR_SET_PDEATHSIG, kept across
  // its exec), where setpriv is installed.
  std::vector<std::string> argv;
  if (std::filesystem::exists("/usr/bin/setpriv"))
    argv = {"/usr/bin/setpriv", "--pdeathsig", "KILL", "--"};
  argv.insert(argv.end(), request.argv.begin(), request.argv.end());
  std::vector<char*> cargv;
  for (std::string& s : argv)
    cargv.push_back(s.data());
  cargv.push_back(nullptr);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!std::string_view(*e).starts_with("SHOAL_")) env.emplace_back(*e);
  }
  env.push_back("SHOAL_NODE=" + a.config.name);  // where it runs; the agent's other SHOAL_* stay
  std::vector<char*> cenv;
  for (std::string& s : env)
    cenv.push_back(s.data());
  cenv.push_back(nullptr);
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[1].data.stream = reinterpret_cast<uv_stream_t*>(&t->out);
  stdio[2].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[2].data.stream = reinterpret_cast<uv_stream_t*>(&t->err);
  uv_process_options_t options{};
  options.file = cargv[0];
  options.args = cargv.data();
  options.env = cenv.data();
  options.stdio = stdio;
  options.stdio_count = 3;
  options.flags = UV_PROCESS_DETACHED;  // its own process group: a timeout kills it all
  options.exit_cb = [](uv_process_t* p, std::int64_t status, int signal) {
    auto* task = static_cast<Task*>(p->data);
    uv_timer_stop(&task->timer);
    task->exited = true;
    task->status = status;
    task->signal = signal;
    task_maybe_end(task);
  };
  a.log.log(Level::info, "messaging", "exec task={} origin={} command={}", request.task_id,
            request.origin.key(), request.argv.front());
  if (const int rc = uv_spawn(a.loop, &t->process, &options); rc != 0) {
    t->error = "cannot run " + request.argv.front() + ": " + uv_strerror(rc);
    t->status = 127;
    t->exited = true;
    t->streams = 0;
    uv_close(reinterpret_cast<uv_handle_t*>(&t->out), task_handle_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&t->err), task_handle_closed);
    task_maybe_end(t);
    return;
  }
  start_reading(t, &t->out);
  start_reading(t, &t->err);
  if (request.timeout_ms > 0) {
    uv_timer_start(
        &t->timer,
        [](uv_timer_t* timer) {
          auto* task = static_cast<Task*>(timer->data);
          task->error = "killed at its timeout";
          ::kill(-task->process.pid, SIGKILL);
        },
        request.timeout_ms, 0);
  }
}

// --- RPC commands ---

Result send(Agent& a, const Value& args) {
  auto target = target_of(args);
  if (!target) return std::unexpected(target.error());
  auto data = data_of(args);
  if (!data) return std::unexpected(data.error());
  if (target->kind == messaging::Target::Kind::group) {
    auto count = a.stack().messenger().publish(a.now(), target->name, kAgentId, *data);
    if (!count) return std::unexpected(error_of(count.error(), target->to_string()));
    Value out = Value::map();
    out.set("sent", *count);
    return out;
  }
  auto sent = a.stack().messenger().send(a.now(), *target, kAgentId, *data);
  if (!sent) return std::unexpected(error_of(sent.error(), target->to_string()));
  Value out = Value::map();
  out.set("sent", 1);
  return out;
}

Result publish(Agent& a, const Value& args) {
  auto group = text(args, "group");
  if (!group) return std::unexpected(group.error());
  auto data = data_of(args);
  if (!data) return std::unexpected(data.error());
  auto count = a.stack().messenger().publish(a.now(), *group, kAgentId, *data);
  if (!count) return std::unexpected(error_of(count.error(), "in group " + *group));
  Value out = Value::map();
  out.set("sent", *count);
  return out;
}

// Starts a call; its reply goes to the client when it ends. Nothing to answer now on success.
std::optional<Failure> call(Agent& a, const Value& args, rpc::ClientId client) {
  auto target = target_of(args);
  if (!target) return target.error();
  if (target->kind == messaging::Target::Kind::group)
    return bad("target: a call goes to a name or a pid (publish to a group)");
  auto data = data_of(args);
  if (!data) return data.error();
  auto timeout = args::number(args, "timeout_ms", 5'000, 3'600'000);
  if (!timeout) return timeout.error();
  auto id = a.stack().messenger().call(a.now(), *target, kAgentId, *data,
                                       std::max<std::uint64_t>(*timeout, 1));
  if (!id) return error_of(id.error(), target->to_string());
  a.messaging.calls[*id] = {client, target->to_string()};
  return std::nullopt;
}

Result reply(Agent& a, const Value& args) {
  auto token = text(args, "token");
  if (!token) return std::unexpected(token.error());
  auto to = messaging::ReplyTo::parse(*token);
  if (!to) return std::unexpected(bad("token: not a reply token"));
  auto data = data_of(args);
  if (!data) return std::unexpected(data.error());
  a.stack().messenger().reply(a.now(), *to, *data);
  Value out = Value::map();
  out.set("replied", *token);
  return out;
}

// {"child": NAME} (an exec child's mailbox), or {"names": [...], "groups": [...]} (a pid of the
// agent's for as long as the client stays), and "count": messages before the stream ends.
std::expected<Value, Failure> recv(Agent& a, const Value& args, rpc::ClientId client) {
  if (a.messaging.receivers.contains(client))
    return std::unexpected(Failure{"busy", "this connection already receives"});
  auto count = args::number(args, "count", 0, UINT64_MAX - 1);
  if (!count) return std::unexpected(count.error());
  const std::string child = args::optional_text(args, "child");
  std::uint64_t id = 0;
  Value out = Value::map();
  if (!child.empty()) {
    auto local = a.supervisor().local().find(child);
    Agent::Messaging::Mailbox* box =
        local == a.supervisor().local().end() ? nullptr : mailbox(a, local->second.id);
    if (box == nullptr)
      return std::unexpected(Failure{"not_found", child + " does not run on this node"});
    if (box->reader.has_value())
      return std::unexpected(Failure{"busy", child + "'s mailbox has a reader"});
    id = local->second.id;
    out.set("child", child);
  } else {
    auto names = args::strings(args, "names");
    auto groups = args::strings(args, "groups");
    if (!names) return std::unexpected(names.error());
    if (!groups) return std::unexpected(groups.error());
    if (names->empty() && groups->empty())
      return std::unexpected(bad("give a name or a group to receive for (or run from a child)"));
    id = ++a.endpoints.next_local_id;
    const cluster::Membership& m = a.membership();
    const registry::Pid pid{m.name(), m.creation(), id};
    Agent::Messaging::Mailbox& box = a.messaging.mailboxes[id];
    a.stack().messenger().open(id);
    for (const std::string& n : *names) {
      if (auto done = a.registry().register_name(a.now(), n, pid); !done) {
        const Failure f{done.error().code == registry::RegisterErrc::already_registered
                            ? "conflict"
                            : "bad_request",
                        done.error().message};
        release_receiver(a, id);
        return std::unexpected(f);
      }
      box.names.push_back(n);
    }
    for (const std::string& g : *groups) {
      if (auto done = a.registry().join(a.now(), g, pid); !done) {
        release_receiver(a, id);
        return std::unexpected(bad(done.error().message));
      }
      box.groups.push_back(g);
    }
    out.set("pid", pid.to_string());
  }
  Agent::Messaging::Mailbox* box = mailbox(a, id);
  if (box == nullptr) return std::unexpected(Failure{"failed", "the mailbox went away"});
  box->reader = client;
  box->left = *count;
  a.messaging.receivers[client] = id;
  return out;
}

// {"node": N} | {"key": K}, "argv": [...], "timeout_ms": ms. The first answer names the node and
// the task; the output and the end follow as events.
std::optional<Failure> exec(Agent& a, const Value& args, rpc::ClientId client, Value& started) {
  auto argv = args::strings(args, "argv");
  if (!argv) return argv.error();
  if (argv->empty()) return bad("argv: expected a command to run");
  auto timeout = args::number(args, "timeout_ms", kDefaultTaskTimeoutMs, 86'400'000);
  if (!timeout) return timeout.error();
  std::string node = args::optional_text(args, "node");
  const std::string key = args::optional_text(args, "key");
  if (!node.empty() && !key.empty()) return bad("give --node or --key, not both");
  if (node.empty() && !key.empty()) {
    // The node a child of that name would be placed on: the seeds' router.
    supervisor::View view;
    for (const auto& [name, m] : a.membership().members()) {
      if (m.status == cluster::MemberStatus::alive || m.status == cluster::MemberStatus::suspect)
        view[name] = supervisor::MemberInfo{m.creation, m.tags};
    }
    // Members whose exec policy refuses the command are skipped, as for a child.
    supervisor::ChildSpec spec;
    spec.name = key;
    spec.argv = *argv;
    spec.exec_path = supervisor::resolve_executable(argv->front(), "").value_or("");
    auto owner = supervisor::place(spec, view);
    if (!owner) {
      std::vector<const cluster::Tags*> tags;
      for (const auto& [name, info] : view)
        tags.push_back(&info.tags);
      return Failure{
          "noproc",
          supervisor::refused_everywhere(spec, tags).value_or("no live member to run it")};
    }
    node = *owner;
  }
  if (node.empty()) node = a.membership().name();
  auto id = a.stack().messenger().start_task(a.now(), node, std::move(*argv),
                                             std::max<std::uint64_t>(*timeout, 1));
  if (!id) return error_of(id.error(), "node " + node);
  a.messaging.tasks[*id] = client;
  started = Value::map();
  started.set("node", node);
  started.set("task", *id);
  return std::nullopt;
}

}  // namespace

void release_receiver(Agent& a, std::uint64_t id) {
  Agent::Messaging::Mailbox* box = mailbox(a, id);
  if (box == nullptr) return;
  const cluster::Membership& m = a.membership();
  const registry::Pid pid{m.name(), m.creation(), id};
  for (const std::string& n : box->names)
    a.registry().release(a.now(), n, pid);
  for (const std::string& g : box->groups)
    a.registry().leave(a.now(), g, pid);
  a.stack().messenger().close(id);
  close_mailbox(a, id);
}

bool handle_messaging_rpc(Agent& a, rpc::ClientId client, const rpc::Request& request) {
  const std::string& cmd = request.cmd;
  auto answer = [&](const std::expected<Value, Failure>& r) {
    a.endpoints.rpc->send(
        client, r ? rpc::encode_ok(*r) : rpc::encode_error(r.error().code, r.error().message));
  };
  if (cmd == "send") {
    answer(send(a, request.args));
  } else if (cmd == "publish") {
    answer(publish(a, request.args));
  } else if (cmd == "reply") {
    answer(reply(a, request.args));
  } else if (cmd == "call") {
    if (auto failed = call(a, request.args, client)) answer(std::unexpected(*failed));
  } else if (cmd == "recv") {
    auto r = recv(a, request.args, client);
    answer(r);
    if (r) pump(a, a.messaging.receivers.at(client));
  } else if (cmd == "exec") {
    Value started;
    if (auto failed = exec(a, request.args, client, started)) {
      answer(std::unexpected(*failed));
    } else {
      answer(started);
    }
  } else {
    return false;
  }
  a.settle();
  return true;
}

void messaging_client_closed(Agent& a, rpc::ClientId client) {
  if (auto it = a.messaging.receivers.find(client); it != a.messaging.receivers.end()) {
    const std::uint64_t id = it->second;
    a.messaging.receivers.erase(it);
    Agent::Messaging::Mailbox* box = mailbox(a, id);
    if (box != nullptr && box->child.empty()) {
      release_receiver(a, id);  // a `shoal recv` pid lives as long as its client
    } else if (box != nullptr) {
      box->reader.reset();  // a child's mailbox waits for its next reader
    }
  }
  std::erase_if(a.messaging.calls, [&](const auto& c) { return c.second.first == client; });
  std::erase_if(a.messaging.tasks, [&](const auto& t) { return t.second == client; });
}

void open_child_mailbox(Agent& a, const std::string& child, std::uint64_t id) {
  a.messaging.mailboxes[id].child = child;
}

void close_child_mailbox(Agent& a, std::uint64_t id) {
  close_mailbox(a, id);
}

bool on_messaging_output(Agent& a, supervisor::StackOutput& o) {
  if (auto* d = std::get_if<messaging::Deliver>(&o)) {
    deliver(a, std::move(*d));
  } else if (auto* done = std::get_if<messaging::CallDone>(&o)) {
    auto it = a.messaging.calls.find(done->call_id);
    if (it == a.messaging.calls.end()) return true;
    const auto [client, what] = it->second;
    a.messaging.calls.erase(it);
    if (done->result) {
      Value r = Value::map();
      r.set("reply", *done->result);
      a.endpoints.rpc->send(client, rpc::encode_ok(std::move(r)));
    } else {
      const Failure f = error_of(done->result.error(), what);
      a.endpoints.rpc->send(client, rpc::encode_error(f.code, f.message));
    }
  } else if (auto* request = std::get_if<messaging::TaskRequest>(&o)) {
    run_task(a, std::move(*request));
  } else if (auto* event = std::get_if<messaging::TaskEvent>(&o)) {
    auto it = a.messaging.tasks.find(event->task_id);
    if (it == a.messaging.tasks.end()) return true;
    Value ev = Value::map();
    using Kind = messaging::TaskEvent::Kind;
    ev.set("type", event->kind == Kind::out ? "out" : event->kind == Kind::err ? "err" : "end");
    if (event->kind == Kind::end) {
      ev.set("status", event->status);
      ev.set("error", event->error ? Value(std::string(messaging::call_error_name(*event->error)) +
                                           ": " + event->bytes)
                                   : Value(event->bytes));
    } else {
      ev.set("data", event->bytes);
    }
    a.endpoints.rpc->send(it->second, rpc::encode_event(std::move(ev)));
    if (event->kind == Kind::end) {
      a.endpoints.rpc->hang_up(it->second);
      a.messaging.tasks.erase(it);
    }
  } else {
    return false;
  }
  return true;
}

void close_messaging(Agent& a) {
  for (auto& [key, task] : a.messaging.running) {
    if (!task->exited) ::kill(-task->process.pid, SIGKILL);
  }
}

}  // namespace shoal::bin
