// The agent's --http endpoint: the operator's dashboard, Prometheus metrics, JSON views of the
// cluster, an event stream, and a health check.
//
//   GET /               the dashboard: one page (bin/http/dashboard.html, compiled in), read-only,
//                       fed by the JSON views and /v1/events
//   GET /metrics        Prometheus text format (version 0.0.4)
//   GET /v1/members     as `shoal members --format json` (?status=alive)
//   GET /v1/names       as `shoal names --format json` (?prefix=P&limit=N)
//   GET /v1/groups      [{"group": G, "members": as `shoal group G --format json`}...]
//                       (?prefix=P&limit=N)
//   GET /v1/children    as `shoal ps --format json` (?node=N)
//   GET /v1/info        as `shoal info --format json`
//   GET /v1/events      Server-Sent Events: each event `shoal watch --format json` prints, as one
//                       `data:` line (?prefix=P: events about names starting with P); a comment
//                       every 15 s; at most 8 streams (503 beyond); see bin/http/server.h
//   GET /health         200 {"status":"ok",...} while the agent serves; 503 while it leaves

#include "bin/agent_state.h"
#include "bin/http/dashboard.h"

namespace shoal::bin {

namespace {

using rpc::Value;

class Metrics {
 public:
  // One metric family: its help and type lines, then its samples.
  void family(const char* name, const char* type, const char* help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void sample(const char* name, double value, const std::string& labels = {}) {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += fmt::format(" {}\n", value);
  }
  void one(const char* name, const char* type, const char* help, double value) {
    family(name, type, help);
    sample(name, value);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// A label value, escaped as the text format asks.
std::string label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string metrics(Agent& a) {
  Metrics m;
  const auto& core = a.membership();
  const auto& s = core.stats();
  const auto& uv = a.node.driver->stats();
  m.family("shoal_info", "gauge", "This agent: its node name, version and supervisor mode.");
  m.sample("shoal_info", 1,
           fmt::format("name=\"{}\",version=\"{}\",mode=\"{}\"", label(core.name()), kShoalVersion,
                       supervisor::mode_name(a.supervisor().mode())));
  m.one("shoal_uptime_seconds", "gauge", "Seconds since the agent started.",
        static_cast<double>(a.now() - a.started_ms) / 1000.0);

  m.family("shoal_members", "gauge", "Members by status, as this node sees them.");
  for (auto st : {cluster::MemberStatus::alive, cluster::MemberStatus::suspect,
                  cluster::MemberStatus::dead, cluster::MemberStatus::left}) {
    m.sample("shoal_members", static_cast<double>(core.count(st)),
             fmt::format("status=\"{}\"", cluster::status_name(st)));
  }
  m.one("shoal_names", "gauge", "Registered global names (live owners).",
        static_cast<double>(a.registry().names("", SIZE_MAX).size()));
  m.one("shoal_groups", "gauge", "Groups with at least one live member.",
        static_cast<double>(a.registry().groups().size()));

  std::size_t running = 0, pending = 0, failed = 0;
  for (const auto& c : a.supervisor().children()) {
    if (c.failed) {
      ++failed;
    } else if (c.pid) {
      ++running;
    } else {
      ++pending;
    }
  }
  m.family("shoal_children", "gauge", "Children in the cluster by status, as this node sees them.");
  m.sample("shoal_children", static_cast<double>(running), "status=\"running\"");
  m.sample("shoal_children", static_cast<double>(pending), "status=\"pending\"");
  m.sample("shoal_children", static_cast<double>(failed), "status=\"failed\"");
  m.one("shoal_children_here", "gauge", "Children running on this node.",
        static_cast<double>(a.children_here()));

  m.family("shoal_packets_total", "counter", "Membership datagrams.");
  m.sample("shoal_packets_total", static_cast<double>(s.packets_in), "direction=\"in\"");
  m.sample("shoal_packets_total", static_cast<double>(s.packets_out), "direction=\"out\"");
  m.family("shoal_bytes_total", "counter", "Bytes on the wire, by transport.");
  m.sample("shoal_bytes_total", static_cast<double>(uv.udp_bytes_in),
           "transport=\"udp\",direction=\"in\"");
  m.sample("shoal_bytes_total", static_cast<double>(uv.udp_bytes_out),
           "transport=\"udp\",direction=\"out\"");
  m.sample("shoal_bytes_total", static_cast<double>(uv.tcp_bytes_in),
           "transport=\"tcp\",direction=\"in\"");
  m.sample("shoal_bytes_total", static_cast<double>(uv.tcp_bytes_out),
           "transport=\"tcp\",direction=\"out\"");
  m.family("shoal_rejected_packets_total", "counter",
           "Packets and frames dropped: undecodable, not opened by any key, seen before (a replay "
           "or a network duplicate), from an older life.");
  m.sample("shoal_rejected_packets_total", static_cast<double>(s.rejected), "reason=\"malformed\"");
  m.sample("shoal_rejected_packets_total", static_cast<double>(uv.rejected_auth),
           "reason=\"auth\"");
  m.sample("shoal_rejected_packets_total", static_cast<double>(uv.rejected_replay),
           "reason=\"replay\"");
  m.sample("shoal_rejected_packets_total", static_cast<double>(s.stale), "reason=\"stale\"");

  m.family("shoal_probe_rtt_seconds", "histogram",
           "Round trips of direct probes (millisecond resolution).");
  std::uint64_t cumulative = 0;
  const auto& bounds = cluster::MembershipStats::kRttBucketsMs;
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    cumulative += s.rtt_buckets[i];
    m.sample("shoal_probe_rtt_seconds_bucket", static_cast<double>(cumulative),
             fmt::format("le=\"{}\"", static_cast<double>(bounds[i]) / 1000.0));
  }
  cumulative += s.rtt_buckets[bounds.size()];
  m.sample("shoal_probe_rtt_seconds_bucket", static_cast<double>(cumulative), "le=\"+Inf\"");
  m.sample("shoal_probe_rtt_seconds_sum", static_cast<double>(s.rtt_sum_ms) / 1000.0);
  m.sample("shoal_probe_rtt_seconds_count", static_cast<double>(s.rtt_count));
  m.one("shoal_probes_total", "counter", "Probes sent.", static_cast<double>(s.probes));
  m.one("shoal_probes_failed_total", "counter", "Probes without an ack.",
        static_cast<double>(s.probes_failed));
  m.one("shoal_suspicions_total", "counter", "Suspicions raised or learned.",
        static_cast<double>(s.suspicions));
  m.one("shoal_deaths_declared_total", "counter", "Members this node declared dead.",
        static_cast<double>(s.deaths_declared));
  m.one("shoal_refutes_total", "counter", "Suspicions of this node it refuted.",
        static_cast<double>(s.refutes));

  const auto& sup = a.supervisor().stats();
  m.one("shoal_failovers_total", "counter",
        "Children this node took over from a member that left the view.",
        static_cast<double>(sup.failovers));
  m.one("shoal_restarts_total", "counter", "Restarts of children on this node after an exit.",
        static_cast<double>(sup.restarts));
  m.one("shoal_child_starts_total", "counter", "Children started on this node.",
        static_cast<double>(sup.starts));
  m.one("shoal_child_stops_total", "counter", "Children stopped by this node.",
        static_cast<double>(sup.stops));
  m.one("shoal_children_failed_total", "counter", "Children this node marked failed.",
        static_cast<double>(sup.failed));
  m.one("shoal_children_fenced_total", "counter",
        "Children stopped here for want of a majority (quorum mode).",
        static_cast<double>(sup.fenced));
  const messaging::Messenger& msg = a.stack().messenger();
  const messaging::MessengerStats& ms = msg.stats();
  m.family("shoal_messages_total", "counter",
           "Messaging frames (sends, calls, replies...) to and from peers.");
  m.sample("shoal_messages_total", static_cast<double>(ms.messages_out), "direction=\"out\"");
  m.sample("shoal_messages_total", static_cast<double>(ms.messages_in), "direction=\"in\"");
  m.family("shoal_message_bytes_total", "counter", "Messaging bytes to and from peers.");
  m.sample("shoal_message_bytes_total", static_cast<double>(ms.bytes_out), "direction=\"out\"");
  m.sample("shoal_message_bytes_total", static_cast<double>(ms.bytes_in), "direction=\"in\"");
  m.one("shoal_messages_delivered_total", "counter", "Messages handed to receivers here.",
        static_cast<double>(ms.delivered));
  m.family("shoal_messages_dropped_total", "counter",
           "Sends with no receiver, and sends refused for a full queue or mailbox.");
  m.sample("shoal_messages_dropped_total", static_cast<double>(ms.dropped), "reason=\"noproc\"");
  m.sample("shoal_messages_dropped_total", static_cast<double>(ms.overloaded),
           "reason=\"overloaded\"");
  m.sample("shoal_messages_dropped_total", static_cast<double>(a.messaging.dropped),
           "reason=\"mailbox\"");
  m.family("shoal_calls_total", "counter", "Calls made from this node, by outcome.");
  m.sample("shoal_calls_total", static_cast<double>(ms.calls_ok), "outcome=\"ok\"");
  m.sample("shoal_calls_total", static_cast<double>(ms.calls_noproc), "outcome=\"noproc\"");
  m.sample("shoal_calls_total", static_cast<double>(ms.calls_nodedown), "outcome=\"nodedown\"");
  m.sample("shoal_calls_total", static_cast<double>(ms.calls_timeout), "outcome=\"timeout\"");
  m.sample("shoal_calls_total", static_cast<double>(ms.calls_overloaded), "outcome=\"overloaded\"");
  m.one("shoal_calls_pending", "gauge", "Calls waiting for their reply.",
        static_cast<double>(msg.pending_calls()));
  m.one("shoal_message_queue_bytes", "gauge", "Messaging bytes waiting for peers' connections.",
        static_cast<double>(msg.queued_bytes()));
  m.one("shoal_message_connections", "gauge", "Messaging connections up.",
        static_cast<double>(msg.connections_up()));
  m.one("shoal_message_bad_frames_total", "counter",
        "Messaging frames that did not decode (their connection was closed).",
        static_cast<double>(ms.bad_frames));
  if (a.endpoints.rpc) {
    m.one("shoal_rpc_requests_total", "counter", "RPC requests served.",
          static_cast<double>(a.endpoints.rpc->stats().requests));
    m.one("shoal_rpc_bad_requests_total", "counter", "RPC frames refused.",
          static_cast<double>(a.endpoints.rpc->stats().bad_requests));
  }
  return m.take();
}

http::Response json(Agent& a, std::string_view cmd, Value args) {
  auto v = query(a, cmd, args);
  if (!v) {
    Value e = Value::map();
    e.set("error", v.error());
    return {400, "application/json", rpc::to_json(e) + "\n"};
  }
  return {200, "application/json", rpc::to_json(*v) + "\n"};
}

// The groups whose names start with args' prefix (at most args' limit), each with its members.
http::Response groups(Agent& a, const Value& args) {
  const Value* prefix = args.find("prefix");
  const Value* limit = args.find("limit");
  const std::uint64_t most = limit != nullptr ? limit->as_u64() : UINT64_MAX;
  Value out = Value::array();
  for (const std::string& g : a.registry().groups()) {
    if (out.as_array().size() >= most) break;
    if (prefix != nullptr && !g.starts_with(prefix->as_string())) continue;
    Value which = Value::map();
    which.set("group", g);
    Value row = Value::map();
    row.set("group", g);
    row.set("members", query(a, "group", which).value_or(Value::array()));
    out.push(std::move(row));
  }
  return {200, "application/json", rpc::to_json(out) + "\n"};
}

}  // namespace

void http_event(Agent& a, const std::string& subject, const Value& event) {
  if (a.endpoints.http && a.endpoints.http->streams() > 0)
    a.endpoints.http->publish(subject, http::sse_event(rpc::to_json(event)));
}

http::Response http_request(Agent& a, const std::string& path, const std::string& q) {
  if (path == "/") return {200, "text/html; charset=utf-8", std::string(http::dashboard_html())};
  if (path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", metrics(a)};
  if (path == "/health") {
    Value v = Value::map();
    v.set("status", a.stack().leaving() ? "leaving" : "ok");
    v.set("name", a.membership().name());
    v.set("alive", a.membership().count(cluster::MemberStatus::alive));
    return {a.stack().leaving() ? 503 : 200, "application/json", rpc::to_json(v) + "\n"};
  }
  Value args = Value::map();
  for (const char* key : {"status", "prefix", "node"}) {
    if (auto v = http::query_param(q, key)) args.set(key, *v);
  }
  if (auto limit = http::query_param(q, "limit")) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(limit->c_str(), &end, 10);
    if (limit->empty() || *end != '\0')
      return {400, "application/json", "{\"error\":\"limit: expected a number\"}\n"};
    args.set("limit", n);
  }
  if (path == "/v1/members") return json(a, "members", std::move(args));
  if (path == "/v1/names") return json(a, "names", std::move(args));
  if (path == "/v1/groups") return groups(a, args);
  if (path == "/v1/children") return json(a, "ps", std::move(args));
  if (path == "/v1/info") return json(a, "info", Value::map());
  if (path == "/v1/events") {
    // The client reconnects 2 s after the stream ends; the events start with the next change.
    http::Response r{200, "text/event-stream; charset=utf-8", "retry: 2000\n\n"};
    r.stream = true;
    r.stream_prefix = http::query_param(q, "prefix").value_or("");
    return r;
  }
  return {404, "text/plain; charset=utf-8",
          "not found: try /, /metrics, /health, /v1/members, /v1/names, /v1/groups, "
          "/v1/children, /v1/info, /v1/events\n"};
}

}  // namespace shoal::bin
