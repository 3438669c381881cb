#include "supervisor/child_spec.h"

#include <optional>

#include "crdt/msgpack_reader.h"
#include "crdt/msgpack_writer.h"

namespace shoal::supervisor {

namespace {

void pack_strings(crdt::MsgWriter& pk, const std::vector<std::string>& v) {
  pk.array(v.size());
  for (const std::string& s : v)
    pk.str(s);
}

std::vector<std::string> read_strings(crdt::MsgReader& r, const char* field, std::size_t count,
                                      std::size_t bytes) {
  std::vector<std::string> out;
  const std::uint32_t n = r.array(field, static_cast<std::uint32_t>(count));
  for (std::uint32_t i = 0; i < n && r.ok(); ++i)
    out.emplace_back(r.bytes(field, bytes));
  return out;
}

}  // namespace

const char* restart_name(Restart r) {
  switch (r) {
    case Restart::permanent:
      return "permanent";
    case Restart::transient:
      return "transient";
    case Restart::temporary:
      return "temporary";
  }
  return "unknown";
}

std::expected<Restart, std::string> parse_restart(std::string_view text) {
  if (text == "permanent") return Restart::permanent;
  if (text == "transient") return Restart::transient;
  if (text == "temporary") return Restart::temporary;
  return std::unexpected("restart must be permanent, transient or temporary, not '" +
                         std::string(text) + "'");
}

const char* handoff_name(Handoff h) {
  return h == Handoff::overlap ? "overlap" : "state";
}

std::expected<Handoff, std::string> parse_handoff(std::string_view text) {
  if (text == "state") return Handoff::state;
  if (text == "overlap") return Handoff::overlap;
  return std::unexpected("handoff must be state or overlap, not '" + std::string(text) + "'");
}

std::optional<std::string> validate(const ChildSpec& spec, const SpecLimits& limits) {
  if (spec.name.empty() || spec.name.size() > limits.max_name_bytes)
    return "a child name is 1 to " + std::to_string(limits.max_name_bytes) + " bytes";
  if (spec.kind == ChildKind::exec && spec.argv.empty())
    return "an exec child needs a command (argv)";
  if (spec.kind == ChildKind::worker && spec.worker_type.empty())
    return "a worker child needs a worker type";
  if (spec.argv.size() > limits.max_args || spec.env.size() > limits.max_args)
    return "at most " + std::to_string(limits.max_args) + " arguments and environment entries";
  for (const auto* list : {&spec.argv, &spec.env}) {
    for (const std::string& a : *list) {
      if (a.size() > limits.max_arg_bytes)
        return "an argument or environment entry is at most " +
               std::to_string(limits.max_arg_bytes) + " bytes";
    }
  }
  for (const std::string& e : spec.env) {
    if (e.find('=') == std::string::npos || e.front() == '=')
      return "environment entries are KEY=value, not '" + e + "'";
  }
  if (spec.constraints.size() > limits.max_constraints)
    return "at most " + std::to_string(limits.max_constraints) + " constraints";
  if (spec.window_ms == 0) return "the restart window must be at least 1 ms";
  if (!spec.exec_path.empty() &&
      (spec.exec_path.front() != '/' || spec.exec_path.size() > limits.max_arg_bytes))
    return "an exec path is absolute and at most " + std::to_string(limits.max_arg_bytes) +
           " bytes";
  if (encode_spec(spec).size() > limits.max_encoded_bytes)
    return "the spec is larger than " + std::to_string(limits.max_encoded_bytes) + " bytes";
  return std::nullopt;
}

std::string encode_spec(const ChildSpec& spec) {
  std::string out;
  crdt::MsgWriter pk(out);
  pk.array(14);
  pk.uint(1);
  pk.str(spec.name);
  pk.uint(static_cast<std::uint8_t>(spec.kind));
  pack_strings(pk, spec.argv);
  pack_strings(pk, spec.env);
  pk.str(spec.cwd);
  pk.str(spec.worker_type);
  pk.uint(static_cast<std::uint8_t>(spec.restart));
  pk.uint(spec.max_restarts);
  pk.uint(spec.window_ms);
  pk.map(spec.constraints.size());
  for (const auto& [k, v] : spec.constraints) {
    pk.str(k);
    pk.str(v);
  }
  pk.uint(spec.shutdown_ms);
  pk.uint(static_cast<std::uint8_t>(spec.handoff));
  pk.str(spec.exec_path);
  return out;
}

std::expected<ChildSpec, std::string> decode_spec(std::string_view bytes,
                                                  const SpecLimits& limits) {
  if (bytes.size() > limits.max_encoded_bytes) return std::unexpected("child spec too large");
  crdt::MsgReader r(bytes);
  const std::uint32_t fields = r.array("spec", 14);
  if (r.ok() && fields < 12) return std::unexpected("bad child spec: too few fields");
  if (r.uint("version") != 1 && r.ok()) return std::unexpected("unknown child spec version");
  ChildSpec spec;
  spec.name = std::string(r.bytes("name", limits.max_name_bytes));
  spec.kind = static_cast<ChildKind>(r.uint("kind", 1));
  spec.argv = read_strings(r, "argv", limits.max_args, limits.max_arg_bytes);
  spec.env = read_strings(r, "env", limits.max_args, limits.max_arg_bytes);
  spec.cwd = std::string(r.bytes("cwd", limits.max_arg_bytes));
  spec.worker_type = std::string(r.bytes("worker_type", limits.max_name_bytes));
  spec.restart = static_cast<Restart>(r.uint("restart", 2));
  spec.max_restarts = static_cast<std::uint32_t>(r.uint("max_restarts", UINT32_MAX));
  spec.window_ms = r.uint("window_ms");
  const std::uint32_t n = r.map("constraints", static_cast<std::uint32_t>(limits.max_constraints));
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    std::string k(r.bytes("constraint key", limits.max_name_bytes));
    std::string v(r.bytes("constraint value", limits.max_name_bytes));
    spec.constraints.emplace(std::move(k), std::move(v));
  }
  spec.shutdown_ms = r.uint("shutdown_ms");
  if (fields > 12) spec.handoff = static_cast<Handoff>(r.uint("handoff", 1));
  if (fields > 13) spec.exec_path = std::string(r.bytes("exec_path", limits.max_arg_bytes));
  if (!r.ok()) return std::unexpected("bad child spec: " + r.error().to_string());
  if (r.remaining() != 0) return std::unexpected("bad child spec: trailing bytes");
  if (auto bad = validate(spec, limits)) return std::unexpected("bad child spec: " + *bad);
  return spec;
}

std::string encode_child_meta(const ChildMeta& meta) {
  std::string out;
  crdt::MsgWriter w(out);
  w.map(4);
  w.str("os_pid");
  if (meta.os_pid && *meta.os_pid >= 0) {
    w.uint(static_cast<std::uint64_t>(*meta.os_pid));
  } else {
    w.nil();
  }
  w.str("started");
  w.uint(meta.started_ms);
  w.str("restarts");
  w.uint(meta.restarts);
  w.str("kind");
  w.str(meta.kind == ChildKind::worker ? "worker" : "exec");
  return out;
}

std::optional<ChildMeta> decode_child_meta(std::string_view bytes) {
  crdt::MsgReader r(bytes);
  const std::uint32_t n = r.map("meta", 16);
  if (!r.ok()) return std::nullopt;
  ChildMeta meta;
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    const std::string_view key = r.bytes("key", 32);
    if (key == "os_pid") {
      if (r.nil()) continue;
      meta.os_pid = static_cast<int>(r.uint("os_pid", INT32_MAX));
    } else if (key == "started") {
      meta.started_ms = r.uint("started");
    } else if (key == "restarts") {
      meta.restarts = r.uint("restarts");
    } else if (key == "kind") {
      meta.kind = r.bytes("kind", 16) == "worker" ? ChildKind::worker : ChildKind::exec;
    } else {
      break;  // a field of a later version: what was read stands
    }
  }
  if (!r.ok()) return std::nullopt;
  return meta;
}

}  // namespace shoal::supervisor
