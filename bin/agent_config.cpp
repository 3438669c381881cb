#include "bin/agent_config.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "supervisor/uv/exec_runtime.h"

namespace shoal::bin {

namespace {

using Failure = std::unexpected<std::string>;

// "k=v" -> (k, v); nullopt without '=' or with an empty key.
std::optional<std::pair<std::string, std::string>> key_value(std::string_view kv) {
  const auto eq = kv.find('=');
  if (eq == std::string_view::npos || eq == 0) return std::nullopt;
  return std::make_pair(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
}

// --child NAME=COMMAND ARGS... (the command split at spaces and tabs).
std::expected<supervisor::ChildSpec, std::string> child_of(const std::string& text) {
  const auto eq = text.find('=');
  supervisor::ChildSpec spec;
  if (eq != std::string::npos) {
    spec.name = text.substr(0, eq);
    std::string word;
    for (char ch : text.substr(eq + 1) + " ") {
      if (ch == ' ' || ch == '\t') {
        if (!word.empty()) spec.argv.push_back(std::move(word));
        word.clear();
      } else {
        word += ch;
      }
    }
  }
  if (eq == std::string::npos || eq == 0 || spec.argv.empty())
    return Failure("--child: expected NAME=COMMAND ARGS..., got '" + text + "'");
  if (auto bad = supervisor::validate(spec)) return Failure("--child " + spec.name + ": " + *bad);
  return spec;
}

// --worker NAME=TYPE, TYPE one the agent has built in.
std::expected<supervisor::ChildSpec, std::string> worker_of(const std::string& text) {
  const auto eq = text.find('=');
  supervisor::ChildSpec spec;
  spec.kind = supervisor::ChildKind::worker;
  if (eq != std::string::npos) {
    spec.name = text.substr(0, eq);
    spec.worker_type = text.substr(eq + 1);
  }
  if (eq == std::string::npos || eq == 0 || spec.worker_type.empty())
    return Failure("--worker: expected NAME=TYPE, got '" + text + "'");
  if (spec.worker_type != "idle" && spec.worker_type != "counter") {
    return Failure("--worker " + spec.name + ": unknown type '" + spec.worker_type +
                   "' (idle or counter)");
  }
  if (auto bad = supervisor::validate(spec)) return Failure("--worker " + spec.name + ": " + *bad);
  return spec;
}

// --mode, --expect, --quorum-fence-ms, --quorum-lease-ms into the supervisor's config.
std::optional<std::string> supervisor_mode(const AgentOptions& o, AgentConfig& c) {
  supervisor::SupervisorConfig& s = c.stack.supervisor;
  if (o.mode == "ap") {
    if (o.expect != 0 || o.quorum_lease_ms != 0)
      return "--expect and --quorum-lease-ms need --mode quorum";
    s.mode = supervisor::Mode::ap;
    return std::nullopt;
  }
  if (o.mode != "quorum") return "--mode must be ap or quorum";
  if (o.expect == 0) return "--mode quorum needs --expect N (the cluster size)";
  const cluster::MembershipConfig& m = c.stack.membership;
  s.mode = supervisor::Mode::quorum;
  s.expect = o.expect;
  s.fence_after_ms = o.quorum_fence_ms;
  c.safe_lease_ms =
      supervisor::quorum_lease_ms(o.expect, m.probe_interval_ms, m.awareness_max, m.suspicion_mult,
                                  m.suspicion_max_mult, o.quorum_fence_ms);
  s.lease_ms = o.quorum_lease_ms != 0 ? o.quorum_lease_ms : c.safe_lease_ms;
  return std::nullopt;
}

}  // namespace

std::optional<supervisor::LogLevel> parse_log_level(std::string_view text) {
  for (auto level : {supervisor::LogLevel::debug, supervisor::LogLevel::info,
                     supervisor::LogLevel::warn, supervisor::LogLevel::error}) {
    if (text == supervisor::level_name(level)) return level;
  }
  return std::nullopt;
}

std::expected<AgentConfig, std::string> parse_agent_options(const AgentOptions& o,
                                                            const std::string& hostname) {
  AgentConfig c;
  auto level = parse_log_level(o.log_level);
  if (!level) return Failure("--log-level must be debug, info, warn or error");
  c.log_level = *level;
  c.stack.log_level = *level;
  auto bind = cluster::Address::parse(o.bind);
  if (!bind) return Failure("--bind: " + bind.error());
  c.bind = *bind;
  if (!o.advertise.empty()) {
    auto advertise = cluster::Address::parse(o.advertise);
    if (!advertise) return Failure("--advertise: " + advertise.error());
    c.advertise = *advertise;
  }
  for (const std::string& s : o.join) {
    auto seed = cluster::parse_seed(s);
    if (!seed) return Failure("--join: " + seed.error());
    c.seeds.push_back(*seed);
  }
  for (const std::string& t : o.tags) {
    auto kv = key_value(t);
    if (!kv) return Failure("--tag: expected key=value, got '" + t + "'");
    if (kv->first.starts_with("shoal."))
      return Failure("--tag " + t + ": tag keys starting with 'shoal.' are shoal's own");
    c.tags[kv->first] = kv->second;
  }
  if (o.exec != "allow" && o.exec != "deny") return Failure("--exec must be allow or deny");
  if (o.exec == "deny") {
    if (!o.exec_allow.empty())
      return Failure("--exec deny runs no command: drop --exec-allow (or use --exec allow)");
    c.exec_policy = {supervisor::ExecPolicy::Mode::none, {}};
  } else if (!o.exec_allow.empty()) {
    c.exec_policy = {supervisor::ExecPolicy::Mode::globs, o.exec_allow};
  }
  if (auto bad = supervisor::validate_exec_policy(c.exec_policy)) return Failure(*bad);
  if (c.exec_policy.mode != supervisor::ExecPolicy::Mode::any)
    c.tags[std::string(supervisor::kExecPolicyTag)] = supervisor::encode_exec_policy(c.exec_policy);
  for (const std::string& text : o.children) {
    auto spec = child_of(text);
    if (!spec) return Failure(spec.error());
    c.children.push_back(std::move(*spec));
  }
  for (const std::string& text : o.workers) {
    auto spec = worker_of(text);
    if (!spec) return Failure(spec.error());
    c.children.push_back(std::move(*spec));
  }
  if (o.discovery == "multicast") {
    c.discovery = Discovery::multicast;
  } else if (o.discovery == "seeds") {
    c.discovery = Discovery::seeds;
  } else if (o.discovery == "none") {
    c.discovery = Discovery::none;
  } else {
    return Failure("--discovery must be multicast, seeds or none");
  }
  auto group = cluster::Address::parse(o.multicast_group);
  if (!group) return Failure("--multicast-group: " + group.error());
  c.multicast_group = *group;
  if (c.discovery == Discovery::none && !c.seeds.empty())
    return Failure("--discovery none runs a standalone node: drop --join");
  // A standalone node has no peer to wait for before it places children.
  if (c.discovery == Discovery::none) c.stack.startup_settle_ms = 0;
  if (o.probe_interval_ms != 0) c.stack.membership.probe_interval_ms = o.probe_interval_ms;
  if (o.probe_timeout_ms != 0) c.stack.membership.probe_timeout_ms = o.probe_timeout_ms;
  if (auto bad = c.stack.membership.validate()) return Failure(*bad);
  if (auto bad = supervisor_mode(o, c)) return Failure(*bad);
  if (o.fsync == "snapshot") {
    c.fsync = cluster::StoreOptions::Fsync::snapshot;
  } else if (o.fsync == "always") {
    c.fsync = cluster::StoreOptions::Fsync::always;
  } else if (o.fsync == "never") {
    c.fsync = cluster::StoreOptions::Fsync::never;
  } else {
    return Failure("--fsync must be never, snapshot or always");
  }
  c.name = o.name.empty() ? hostname + ":" + std::to_string(c.bind.port) : o.name;
  if (c.name.size() > cluster::kMaxNameBytes)
    return Failure("--name: a node name is 1 to 255 bytes");
  if (auto bad = cluster::tags_fit(c.name, c.advertise.value_or(c.bind), c.tags,
                                   c.stack.membership.max_packet_bytes)) {
    return Failure("--" + *bad);
  }
  c.key_file = o.key_file;
  // Secure by default: without a key, anyone who reaches the port can join, and a member can
  // make every node run any command (child specs are replicated and executed). Loopback-only
  // clusters are reachable from this host only.
  if (!c.bind.is_loopback() && c.key_file.empty()) {
    if (!o.insecure) {
      return Failure("--bind " + c.bind.to_string() +
                     " is reachable from other hosts and no --key-file is set: anyone who reaches "
                     "it could join and run commands on every node; make a key with `shoal keys "
                     "generate > cluster.key` and pass --key-file cluster.key on every node (or "
                     "--insecure to run without one)");
    }
    c.insecure = true;
  }
  c.register_names = o.register_names;
  c.data_dir = o.data_dir.empty() ? "/tmp/shoal-" + supervisor::file_name_for(c.name) : o.data_dir;
  c.rpc_path = o.rpc.empty() ? c.data_dir + "/shoal.sock" : o.rpc;
  c.http = o.http;
  c.stats_interval_ms = o.stats_interval_ms;
  return c;
}

bool repeatable_flag(std::string_view flag) {
  return flag == "join" || flag == "tag" || flag == "register" || flag == "worker" ||
         flag == "child" || flag == "exec-allow";
}

std::expected<ConfigEntries, std::string> parse_config(std::string_view text,
                                                       const std::string& path) {
  std::istringstream in{std::string(text)};
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  std::string line;
  int number = 0;
  auto trim = [](std::string_view v) {
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front())) != 0)
      v.remove_prefix(1);
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back())) != 0)
      v.remove_suffix(1);
    return std::string(v);
  };
  while (std::getline(in, line)) {
    ++number;
    const std::string where = path + ":" + std::to_string(number) + ": ";
    const std::string stripped = trim(line);
    if (stripped.empty() || stripped[0] == '#' || stripped[0] == ';') continue;
    if (stripped.front() == '[' && stripped.back() == ']' &&
        stripped.find('=') == std::string::npos)
      continue;
    const auto eq = stripped.find('=');
    if (eq == std::string::npos) return std::unexpected(where + "expected flag = value");
    std::string key = trim(std::string_view(stripped).substr(0, eq));
    std::replace(key.begin(), key.end(), '_', '-');
    std::string rest = trim(std::string_view(stripped).substr(eq + 1));
    // Items: quoted strings (with \" and \\ escapes) or bare words, in an optional [ ] list.
    std::vector<std::string> values;
    const bool list = !rest.empty() && rest.front() == '[';
    std::size_t i = list ? 1 : 0;
    bool closed = !list;
    while (i < rest.size()) {
      const char c = rest[i];
      if (std::isspace(static_cast<unsigned char>(c)) != 0 || c == ',') {
        ++i;
      } else if (c == '#') {
        break;  // a comment (inside a list, the list is then unterminated)
      } else if (c == ']' && list) {
        closed = true;
        ++i;
        // Only a comment may follow the list: `bind = [::1]:7946` is not a list.
        const std::size_t more = rest.find_first_not_of(" \t", i);
        if (more != std::string::npos && rest[more] != '#')
          return std::unexpected(where + "text after the list's closing ] (quote a value that " +
                                 "starts with '[', such as an IPv6 address)");
        break;
      } else if (c == '"') {
        std::string item;
        ++i;
        bool ended = false;
        while (i < rest.size()) {
          if (rest[i] == '\\' && i + 1 < rest.size()) {
            item += rest[i + 1];
            i += 2;
          } else if (rest[i] == '"') {
            ended = true;
            ++i;
            break;
          } else {
            item += rest[i++];
          }
        }
        if (!ended) return std::unexpected(where + "unterminated string");
        values.push_back(std::move(item));
      } else {
        // A bare word: up to a space, a comma or a comment (and, in a list, its end). Its first
        // character is none of those, so each pass consumes at least one.
        std::size_t end = i;
        while (end < rest.size() && rest[end] != ',' && rest[end] != '#' &&
               !(list && rest[end] == ']') &&
               std::isspace(static_cast<unsigned char>(rest[end])) == 0) {
          ++end;
        }
        values.push_back(rest.substr(i, end - i));
        i = end;
      }
    }
    if (!closed) return std::unexpected(where + "unterminated list");
    if (values.empty()) return std::unexpected(where + "no value for " + key);
    if (values.size() > 1 && !repeatable_flag(key))
      return std::unexpected(where + key + " takes one value");
    out.emplace_back(std::move(key), std::move(values));
  }
  return out;
}

}  // namespace shoal::bin
