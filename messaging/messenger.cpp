#include "messaging/messenger.h"

#include <algorithm>
#include <charconv>

namespace shoal::messaging {

namespace {

// Accepted connections that have not said hello yet, at most (beyond, new ones are closed).
constexpr std::size_t kMaxUnnamedConns = 64;

}  // namespace

const char* call_error_name(CallError e) {
  switch (e) {
    case CallError::noproc:
      return "noproc";
    case CallError::nodedown:
      return "nodedown";
    case CallError::timeout:
      return "timeout";
    case CallError::overloaded:
      return "overloaded";
    case CallError::too_large:
      return "too_large";
  }
  return "error";
}

std::string Target::to_string() const {
  switch (kind) {
    case Kind::name:
      return name;
    case Kind::group:
      return "group " + name;
    case Kind::pid:
      return pid.to_string();
  }
  return name;
}

std::string ReplyTo::token() const {
  return caller.key() + "#" + std::to_string(call_id);
}

std::optional<ReplyTo> ReplyTo::parse(std::string_view token) {
  const auto hash = token.rfind('#');
  if (hash == std::string_view::npos || hash + 1 == token.size()) return std::nullopt;
  ReplyTo out;
  const char* first = token.data() + hash + 1;
  const char* last = token.data() + token.size();
  auto [end, ec] = std::from_chars(first, last, out.call_id);
  if (ec != std::errc() || end != last) return std::nullopt;
  auto life = cluster::Life::parse(token.substr(0, hash));
  if (!life) return std::nullopt;
  out.caller = std::move(*life);
  return out;
}

Messenger::Messenger(MessengerConfig config, cluster::Life self, const registry::Registry& registry)
    : config_(config), self_(std::move(self)), registry_(registry) {}

// --- Resolution and queues ---

Messenger::Peer* Messenger::peer(std::string_view node) {
  auto it = peers_.find(node);
  return it == peers_.end() ? nullptr : &it->second;
}

std::expected<std::vector<Pid>, CallError> Messenger::resolve(const Target& target) const {
  std::vector<Pid> out;
  switch (target.kind) {
    case Target::Kind::name:
      if (auto where = registry_.whereis(target.name)) out.push_back(where->pid);
      break;
    case Target::Kind::group:
      for (registry::Registration& r : registry_.members(target.name))
        out.push_back(std::move(r.pid));
      break;
    case Target::Kind::pid: {
      const Pid& p = target.pid;
      const bool here = p.node == self_.name && p.creation == self_.creation;
      auto it = peers_.find(p.node);
      if (here || (it != peers_.end() && it->second.info.creation == p.creation)) out.push_back(p);
      break;
    }
  }
  if (out.empty()) return std::unexpected(CallError::noproc);
  return out;
}

template <typename Append>
bool Messenger::enqueue(std::uint64_t now, Peer& p, Append&& append) {
  if (p.queue.size() >= config_.max_queue_bytes) {
    ++stats_.overloaded;
    return false;
  }
  append(p.queue);
  ++stats_.messages_out;
  if (p.conn != 0) {
    if (conns_.at(p.conn).state == ConnState::up) ready_.insert(p.name);
  } else if (p.redial_at == 0) {
    dial(now, p.name, p);
  }
  return true;
}

void Messenger::dial(std::uint64_t, const std::string& node, Peer& p) {
  const cluster::ConnId id = next_conn_++;
  Conn& c = conns_[id];
  c.state = ConnState::dialing;
  c.peer = node;
  p.conn = id;
  p.redial_at = 0;
  effects_.emplace_back(cluster::ConnOpen{id, p.info.addr});
}

void Messenger::deliver_local(std::uint64_t to, const Pid& from, std::string_view payload,
                              std::optional<ReplyTo> reply_to) {
  if (!open_.contains(to)) {
    ++stats_.dropped;
    return;
  }
  ++stats_.delivered;
  outputs_.emplace_back(Deliver{to, from, std::string(payload), std::move(reply_to)});
}

// --- API ---

std::expected<void, CallError> Messenger::send(std::uint64_t now, const Target& target,
                                               std::uint64_t from, std::string_view payload) {
  if (payload.size() > kMaxPayloadBytes) return std::unexpected(CallError::too_large);
  auto pids = resolve(target);
  if (!pids) return std::unexpected(pids.error());
  bool refused = false;
  for (const Pid& to : *pids) {
    if (to.node == self_.name) {
      deliver_local(to.id, Pid{self_.name, self_.creation, from}, payload, std::nullopt);
      continue;
    }
    Peer* p = peer(to.node);
    if (p == nullptr) continue;  // resolve() vouched for it: only a group's member can be missing
    refused |= !enqueue(now, *p, [&](std::string& q) { append_send(q, to.id, from, payload); });
  }
  // One receiver's full queue fails a send to a name or a pid; a group's send goes to the others.
  if (refused && pids->size() == 1) return std::unexpected(CallError::overloaded);
  return {};
}

std::expected<std::uint64_t, CallError> Messenger::call(std::uint64_t now, const Target& target,
                                                        std::uint64_t from,
                                                        std::string_view payload,
                                                        std::uint64_t timeout_ms) {
  if (payload.size() > kMaxPayloadBytes) return std::unexpected(CallError::too_large);
  if (target.kind == Target::Kind::group) return std::unexpected(CallError::noproc);
  if (calls_.size() >= config_.max_pending_calls) {
    ++stats_.calls_overloaded;
    return std::unexpected(CallError::overloaded);
  }
  auto pids = resolve(target);
  if (!pids) {
    ++stats_.calls_noproc;
    return std::unexpected(pids.error());
  }
  const Pid& to = pids->front();
  const std::uint64_t id = next_call_++;
  const std::uint64_t deadline =
      now + (timeout_ms != 0 ? timeout_ms : config_.default_call_timeout_ms);
  if (to.node == self_.name) {
    if (!open_.contains(to.id)) {
      ++stats_.calls_noproc;
      return std::unexpected(CallError::noproc);
    }
    calls_[id] = PendingCall{self_.name, deadline};
  } else {
    Peer* p = peer(to.node);
    if (p == nullptr ||
        !enqueue(now, *p, [&](std::string& q) { append_call(q, to.id, id, from, payload); })) {
      ++stats_.calls_overloaded;
      return std::unexpected(CallError::overloaded);
    }
    calls_[id] = PendingCall{to.node, deadline};
  }
  call_deadlines_.emplace(deadline, id);
  ++stats_.calls;
  if (to.node == self_.name) {
    deliver_local(to.id, Pid{self_.name, self_.creation, from}, payload, ReplyTo{self_, id});
  }
  return id;
}

std::expected<std::size_t, CallError> Messenger::publish(std::uint64_t now, std::string_view group,
                                                         std::uint64_t from,
                                                         std::string_view payload) {
  if (payload.size() > kMaxPayloadBytes) return std::unexpected(CallError::too_large);
  auto pids = resolve(Target::of_group(std::string(group)));
  if (!pids) return std::unexpected(pids.error());
  // One frame per node, naming its receivers (at most kMaxMulticast each).
  std::map<std::string, std::vector<std::uint64_t>, std::less<>> by_node;
  for (const Pid& p : *pids)
    by_node[p.node].push_back(p.id);
  std::size_t sent = 0;
  for (auto& [node, ids] : by_node) {
    if (node == self_.name) {
      for (std::uint64_t id : ids)
        deliver_local(id, Pid{self_.name, self_.creation, from}, payload, std::nullopt);
      sent += ids.size();
      continue;
    }
    Peer* p = peer(node);
    if (p == nullptr) continue;
    for (std::size_t i = 0; i < ids.size(); i += kMaxMulticast) {
      Multicast m;
      m.to.assign(
          ids.begin() + static_cast<std::ptrdiff_t>(i),
          ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), i + kMaxMulticast)));
      m.from = from;
      m.payload = payload;
      if (enqueue(now, *p, [&](std::string& q) { append_frame(q, m); })) sent += m.to.size();
    }
  }
  return sent;
}

void Messenger::reply(std::uint64_t now, const ReplyTo& to, std::string_view payload) {
  if (to.caller == self_) {
    if (calls_.contains(to.call_id)) finish_call(to.call_id, std::string(payload));
    return;
  }
  Peer* p = peer(to.caller.name);
  if (p == nullptr || p->info.creation != to.caller.creation || payload.size() > kMaxPayloadBytes) {
    ++stats_.dropped;
    return;
  }
  enqueue(now, *p, [&](std::string& q) { append_reply(q, to.call_id, payload); });
}

void Messenger::fail(std::uint64_t now, const ReplyTo& to, FailureCode code) {
  if (to.caller == self_) {
    if (calls_.contains(to.call_id)) {
      finish_call(to.call_id, std::unexpected(code == FailureCode::noproc ? CallError::noproc
                                                                          : CallError::overloaded));
    }
    return;
  }
  Peer* p = peer(to.caller.name);
  if (p == nullptr || p->info.creation != to.caller.creation) return;
  enqueue(now, *p, [&](std::string& q) { append_frame(q, Failure{to.call_id, code}); });
}

std::expected<std::uint64_t, CallError> Messenger::start_task(std::uint64_t now,
                                                              std::string_view node,
                                                              std::vector<std::string> argv,
                                                              std::uint64_t timeout_ms) {
  if (tasks_.size() >= config_.max_tasks) return std::unexpected(CallError::overloaded);
  const bool here = node == self_.name;
  Peer* p = here ? nullptr : peer(node);
  if (!here && p == nullptr) return std::unexpected(CallError::noproc);
  const std::uint64_t id = next_task_++;
  // The command has its timeout where it runs; the origin waits a little longer for its end.
  tasks_[id] = OutgoingTask{std::string(node), now + timeout_ms + 5'000};
  if (here) {
    running_.emplace(self_.key(), id);
    outputs_.emplace_back(TaskRequest{self_, id, std::move(argv), timeout_ms});
    return id;
  }
  Task t{id, std::move(argv), timeout_ms};
  if (!enqueue(now, *p, [&](std::string& q) { append_frame(q, t); })) {
    tasks_.erase(id);
    return std::unexpected(CallError::overloaded);
  }
  return id;
}

void Messenger::task_output(std::uint64_t now, const cluster::Life& origin, std::uint64_t task_id,
                            int stream, std::string_view bytes) {
  if (!running_.contains({origin.key(), task_id})) return;
  if (origin == self_) {
    if (tasks_.contains(task_id)) {
      outputs_.emplace_back(TaskEvent{task_id,
                                      stream == 2 ? TaskEvent::Kind::err : TaskEvent::Kind::out,
                                      std::string(bytes), 0, std::nullopt});
    }
    return;
  }
  Peer* p = peer(origin.name);
  if (p == nullptr || p->info.creation != origin.creation) return;
  for (std::size_t i = 0; i < bytes.size() || i == 0; i += kMaxPayloadBytes) {
    TaskOut out{task_id, static_cast<std::uint8_t>(stream == 2 ? 2 : 1),
                bytes.substr(i, kMaxPayloadBytes)};
    if (!enqueue(now, *p, [&](std::string& q) { append_frame(q, out); })) break;
    if (bytes.empty()) break;
  }
}

void Messenger::task_end(std::uint64_t now, const cluster::Life& origin, std::uint64_t task_id,
                         std::uint64_t status, std::string_view error) {
  if (running_.erase({origin.key(), task_id}) == 0) return;
  if (origin == self_) {
    if (tasks_.erase(task_id) > 0) {
      outputs_.emplace_back(
          TaskEvent{task_id, TaskEvent::Kind::end, std::string(error), status, std::nullopt});
    }
    return;
  }
  Peer* p = peer(origin.name);
  if (p == nullptr || p->info.creation != origin.creation) return;
  enqueue(now, *p, [&](std::string& q) {
    append_frame(q, TaskEnd{task_id, status, error.substr(0, 4096)});
  });
}

// --- Membership ---

void Messenger::set_members(std::uint64_t now, PeerView view) {
  std::vector<std::string> gone;
  for (const auto& [node, p] : peers_) {
    auto it = view.find(node);
    if (it == view.end() || it->second.creation != p.info.creation) gone.push_back(node);
  }
  for (const std::string& node : gone)
    drop_peer(now, node);
  for (auto& [node, info] : view) {
    if (node == self_.name) continue;
    auto [it, added] = peers_.try_emplace(node);
    if (added) it->second.name = node;
    it->second.info = info;
  }
}

void Messenger::drop_peer(std::uint64_t, const std::string& node) {
  auto it = peers_.find(node);
  if (it == peers_.end()) return;
  if (it->second.conn != 0) {
    effects_.emplace_back(cluster::ConnClose{it->second.conn});
    conns_.erase(it->second.conn);
  }
  ready_.erase(node);
  peers_.erase(it);
  // Every call and task waiting on that node ends now: it is down.
  std::vector<std::uint64_t> calls;
  for (const auto& [id, c] : calls_) {
    if (c.node == node) calls.push_back(id);
  }
  for (std::uint64_t id : calls)
    finish_call(id, std::unexpected(CallError::nodedown));
  for (auto t = tasks_.begin(); t != tasks_.end();) {
    if (t->second.node != node) {
      ++t;
      continue;
    }
    outputs_.emplace_back(
        TaskEvent{t->first, TaskEvent::Kind::end, "the node went down", 0, CallError::nodedown});
    t = tasks_.erase(t);
  }
}

void Messenger::finish_call(std::uint64_t call_id, CallResult result) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  call_deadlines_.erase({it->second.deadline, call_id});
  calls_.erase(it);
  if (result) {
    ++stats_.calls_ok;
  } else {
    switch (result.error()) {
      case CallError::noproc:
        ++stats_.calls_noproc;
        break;
      case CallError::nodedown:
        ++stats_.calls_nodedown;
        break;
      case CallError::timeout:
        ++stats_.calls_timeout;
        break;
      case CallError::overloaded:
      case CallError::too_large:
        ++stats_.calls_overloaded;
        break;
    }
  }
  outputs_.emplace_back(CallDone{call_id, std::move(result)});
}

// --- Connections ---

void Messenger::on_conn_up(std::uint64_t, cluster::ConnId id) {
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.state != ConnState::dialing) return;
  Peer* p = peer(it->second.peer);
  if (p == nullptr) return;
  std::string hello;
  append_frame(hello, Hello{self_.name, self_.creation, it->second.peer, p->info.creation});
  it->second.state = ConnState::hello_sent;
  stats_.bytes_out += hello.size();
  it->second.inflight += hello.size();
  effects_.emplace_back(cluster::ConnSend{id, std::move(hello)});
}

void Messenger::on_conn_accepted(std::uint64_t now, cluster::ConnId id, const cluster::Address&) {
  std::size_t unnamed = 0;
  for (const auto& [cid, c] : conns_)
    unnamed += c.state == ConnState::awaiting_hello ? 1 : 0;
  if (unnamed >= kMaxUnnamedConns) {
    ++stats_.refused;
    effects_.emplace_back(cluster::ConnClose{id});
    return;
  }
  Conn& c = conns_[id];
  c.state = ConnState::awaiting_hello;
  c.hello_deadline = now + config_.hello_timeout_ms;
}

void Messenger::on_conn_sent(std::uint64_t, cluster::ConnId id, std::size_t bytes) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  it->second.inflight -= std::min(bytes, it->second.inflight);
  Peer* p = it->second.peer.empty() ? nullptr : peer(it->second.peer);
  if (p != nullptr && p->conn == id && !p->queue.empty() && it->second.state == ConnState::up)
    ready_.insert(it->second.peer);
}

void Messenger::on_conn_down(std::uint64_t now, cluster::ConnId id) {
  connection_lost(now, id, true);
}

void Messenger::connection_lost(std::uint64_t now, cluster::ConnId id, bool redial) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  const std::string node = it->second.peer;
  conns_.erase(it);
  Peer* p = node.empty() ? nullptr : peer(node);
  if (p == nullptr || p->conn != id) return;
  p->conn = 0;
  ready_.erase(node);
  bool waiting = !p->queue.empty();
  for (const auto& [cid, c] : calls_)
    waiting = waiting || c.node == node;
  if (redial && waiting) {
    p->backoff_ms = std::clamp(p->backoff_ms * 2, config_.redial_min_ms, config_.redial_max_ms);
    p->redial_at = now + p->backoff_ms;
  }
}

void Messenger::bad_frame(std::uint64_t now, cluster::ConnId id) {
  ++stats_.bad_frames;
  effects_.emplace_back(cluster::ConnClose{id});
  connection_lost(now, id, true);
}

void Messenger::on_conn_data(std::uint64_t now, cluster::ConnId id, std::string_view bytes) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  stats_.bytes_in += bytes.size();
  // Whole frames are read from the bytes as they are; only an unfinished one is kept.
  std::string joined;
  std::string_view rest = bytes;
  if (!it->second.inbox.empty()) {
    joined = std::move(it->second.inbox);
    joined.append(bytes);
    rest = joined;
  }
  it->second.inbox.clear();
  while (rest.size() >= 4) {
    const auto* p = reinterpret_cast<const unsigned char*>(rest.data());
    const std::size_t n = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) |
                          (std::size_t{p[2]} << 8) | std::size_t{p[3]};
    if (n > kMaxFrameBytes) {
      bad_frame(now, id);
      return;
    }
    if (rest.size() < 4 + n) break;
    FrameReader reader(rest.substr(0, 4 + n));
    rest.remove_prefix(4 + n);
    auto frame = reader.next();
    if (!frame) {
      bad_frame(now, id);
      return;
    }
    ++stats_.messages_in;
    handle(now, id, it->second, *frame);
    // The frame may have closed or replaced the connection.
    it = conns_.find(id);
    if (it == conns_.end()) return;
  }
  it->second.inbox.assign(rest);
}

void Messenger::on_hello(std::uint64_t now, cluster::ConnId id, Conn& c, const Hello& hello) {
  auto refuse = [&] {
    ++stats_.refused;
    std::string no;
    append_frame(no, Welcome{false});
    effects_.emplace_back(cluster::ConnSend{id, std::move(no)});
    effects_.emplace_back(cluster::ConnClose{id});
    conns_.erase(id);
  };
  Peer* p = peer(hello.sender);
  if (hello.peer != self_.name || hello.peer_creation != self_.creation || p == nullptr ||
      p->info.creation != hello.creation) {
    refuse();  // meant for another life, or from a life this node does not see live
    return;
  }
  if (p->conn != 0) {
    auto mine = conns_.find(p->conn);
    const bool dialing = mine != conns_.end() && mine->second.state != ConnState::up;
    const bool theirs_wins = cluster::Life{hello.sender, hello.creation}.key() < self_.key();
    if (dialing && !theirs_wins) {
      refuse();  // both dialled: ours wins on both sides
      return;
    }
    // Ours loses, or the peer dials again because it lost the connection this node still has.
    effects_.emplace_back(cluster::ConnClose{p->conn});
    conns_.erase(p->conn);
  }
  c.state = ConnState::up;
  c.peer = hello.sender;
  p->conn = id;
  p->redial_at = 0;
  p->backoff_ms = 0;
  ++stats_.connections;
  std::string yes;
  append_frame(yes, Welcome{true});
  c.inflight += yes.size();
  effects_.emplace_back(cluster::ConnSend{id, std::move(yes)});
  if (!p->queue.empty()) ready_.insert(hello.sender);
  (void)now;
}

void Messenger::handle(std::uint64_t now, cluster::ConnId id, Conn& c, Frame& frame) {
  if (c.state == ConnState::awaiting_hello) {
    if (auto* hello = std::get_if<Hello>(&frame)) {
      on_hello(now, id, c, *hello);
    } else {
      bad_frame(now, id);
    }
    return;
  }
  Peer* p = peer(c.peer);
  if (p == nullptr) return;  // the peer left the view; its connection is closing
  if (c.state == ConnState::hello_sent) {
    auto* welcome = std::get_if<Welcome>(&frame);
    if (welcome == nullptr) {
      bad_frame(now, id);
    } else if (welcome->accepted) {
      c.state = ConnState::up;
      p->backoff_ms = 0;
      ++stats_.connections;
      if (!p->queue.empty()) ready_.insert(c.peer);
    } else {
      // Refused: the peer's own dial wins, or it does not see this life yet. Dial again later if
      // nothing comes the other way.
      effects_.emplace_back(cluster::ConnClose{id});
      connection_lost(now, id, true);
    }
    return;
  }
  if (c.state != ConnState::up) {
    bad_frame(now, id);
    return;
  }
  auto from = [&](std::uint64_t local) { return Pid{c.peer, p->info.creation, local}; };
  std::visit(
      [&](auto& f) {
        using T = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<T, Send>) {
          deliver_local(f.to, from(f.from), f.payload, std::nullopt);
        } else if constexpr (std::is_same_v<T, Call>) {
          if (open_.contains(f.to)) {
            deliver_local(f.to, from(f.from), f.payload,
                          ReplyTo{cluster::Life{c.peer, p->info.creation}, f.call_id});
          } else {
            enqueue(now, *p, [&](std::string& q) {
              append_frame(q, Failure{f.call_id, FailureCode::noproc});
            });
          }
        } else if constexpr (std::is_same_v<T, Reply>) {
          auto call = calls_.find(f.call_id);
          if (call != calls_.end() && call->second.node == c.peer)
            finish_call(f.call_id, std::string(f.payload));
        } else if constexpr (std::is_same_v<T, Failure>) {
          auto call = calls_.find(f.call_id);
          if (call != calls_.end() && call->second.node == c.peer) {
            finish_call(f.call_id,
                        std::unexpected(f.code == FailureCode::noproc ? CallError::noproc
                                                                      : CallError::overloaded));
          }
        } else if constexpr (std::is_same_v<T, Multicast>) {
          for (std::uint64_t to : f.to)
            deliver_local(to, from(f.from), f.payload, std::nullopt);
        } else if constexpr (std::is_same_v<T, Task>) {
          const cluster::Life origin{c.peer, p->info.creation};
          if (running_.size() >= config_.max_tasks) {
            enqueue(now, *p, [&](std::string& q) {
              append_frame(q, TaskEnd{f.task_id, 255, "busy: too many commands run here"});
            });
          } else {
            running_.emplace(origin.key(), f.task_id);
            outputs_.emplace_back(TaskRequest{origin, f.task_id, std::move(f.argv), f.timeout_ms});
          }
        } else if constexpr (std::is_same_v<T, TaskOut>) {
          auto t = tasks_.find(f.task_id);
          if (t != tasks_.end() && t->second.node == c.peer) {
            outputs_.emplace_back(
                TaskEvent{f.task_id, f.stream == 2 ? TaskEvent::Kind::err : TaskEvent::Kind::out,
                          std::string(f.bytes), 0, std::nullopt});
          }
        } else if constexpr (std::is_same_v<T, TaskEnd>) {
          auto t = tasks_.find(f.task_id);
          if (t != tasks_.end() && t->second.node == c.peer) {
            tasks_.erase(t);
            outputs_.emplace_back(TaskEvent{f.task_id, TaskEvent::Kind::end, std::string(f.error),
                                            f.status, std::nullopt});
          }
        } else {
          bad_frame(now, id);  // a hello or welcome on an established connection
        }
      },
      frame);
}

// --- Time ---

void Messenger::on_timer(std::uint64_t now) {
  while (!call_deadlines_.empty() && call_deadlines_.begin()->first <= now)
    finish_call(call_deadlines_.begin()->second, std::unexpected(CallError::timeout));
  for (auto t = tasks_.begin(); t != tasks_.end();) {
    if (t->second.deadline > now) {
      ++t;
      continue;
    }
    outputs_.emplace_back(TaskEvent{t->first, TaskEvent::Kind::end, "no end heard by the deadline",
                                    0, CallError::timeout});
    t = tasks_.erase(t);
  }
  std::vector<cluster::ConnId> late;
  for (const auto& [id, c] : conns_) {
    if (c.state == ConnState::awaiting_hello && c.hello_deadline <= now) late.push_back(id);
  }
  for (cluster::ConnId id : late) {
    ++stats_.refused;
    effects_.emplace_back(cluster::ConnClose{id});
    conns_.erase(id);
  }
  for (auto& [node, p] : peers_) {
    if (p.redial_at != 0 && p.redial_at <= now && p.conn == 0) dial(now, node, p);
  }
}

std::uint64_t Messenger::next_deadline() const {
  std::uint64_t next = UINT64_MAX;
  if (!call_deadlines_.empty()) next = call_deadlines_.begin()->first;
  for (const auto& [id, t] : tasks_)
    next = std::min(next, t.deadline);
  for (const auto& [id, c] : conns_) {
    if (c.state == ConnState::awaiting_hello) next = std::min(next, c.hello_deadline);
  }
  for (const auto& [node, p] : peers_) {
    if (p.redial_at != 0 && p.conn == 0) next = std::min(next, p.redial_at);
  }
  return next;
}

void Messenger::flush(std::uint64_t) {
  for (auto it = ready_.begin(); it != ready_.end();) {
    Peer* p = peer(*it);
    auto c = p != nullptr && p->conn != 0 ? conns_.find(p->conn) : conns_.end();
    if (c == conns_.end() || c->second.state != ConnState::up || p->queue.empty()) {
      it = ready_.erase(it);
      continue;
    }
    if (c->second.inflight >= config_.max_inflight_bytes) {
      it = ready_.erase(it);  // the driver has enough: on_conn_sent makes it ready again
      continue;
    }
    // The driver gets at most what keeps it under max_inflight_bytes (at least one frame), in
    // batches of whole frames of at most kBatchBytes: each is sealed as one and read back without
    // reassembly. The rest waits in the queue for on_conn_sent().
    const std::size_t budget = config_.max_inflight_bytes - c->second.inflight;
    std::string_view rest = p->queue;
    std::size_t handed = 0;
    while (!rest.empty() && handed < budget) {
      std::size_t cut = 0;
      while (cut < rest.size()) {
        const auto* f = reinterpret_cast<const unsigned char*>(rest.data() + cut);
        const std::size_t n = 4 + ((std::size_t{f[0]} << 24) | (std::size_t{f[1]} << 16) |
                                   (std::size_t{f[2]} << 8) | std::size_t{f[3]});
        if (cut > 0 && (cut + n > kBatchBytes || handed + cut + n > budget)) break;
        cut += n;
      }
      cut = std::min(cut, rest.size());
      if (handed == 0 && cut == p->queue.size()) break;  // all of it, as it is: moved below
      effects_.emplace_back(cluster::ConnSend{p->conn, std::string(rest.substr(0, cut))});
      handed += cut;
      rest.remove_prefix(cut);
    }
    if (handed == 0) {
      handed = p->queue.size();
      effects_.emplace_back(cluster::ConnSend{p->conn, std::move(p->queue)});
      p->queue.clear();
    } else {
      p->queue.erase(0, handed);
    }
    c->second.inflight += handed;
    stats_.bytes_out += handed;
    it = ready_.erase(it);
  }
}

void Messenger::take_effects(std::vector<cluster::Effect>& out) {
  if (out.empty()) {
    out.swap(effects_);  // no moves; the caller's capacity comes back for the next ones
    return;
  }
  for (cluster::Effect& e : effects_)
    out.push_back(std::move(e));
  effects_.clear();
}

void Messenger::take_outputs(std::vector<MessengerOutput>& out) {
  if (out.empty()) {
    out.swap(outputs_);
    return;
  }
  for (MessengerOutput& o : outputs_)
    out.push_back(std::move(o));
  outputs_.clear();
}

std::size_t Messenger::queued_bytes() const {
  std::size_t n = 0;
  for (const auto& [node, p] : peers_)
    n += p.queue.size();
  return n;
}

std::size_t Messenger::connections_up() const {
  std::size_t n = 0;
  for (const auto& [id, c] : conns_)
    n += c.state == ConnState::up ? 1 : 0;
  return n;
}

}  // namespace shoal::messaging
