#include "supervisor/exec_policy.h"

#include <fnmatch.h>

namespace shoal::supervisor {

namespace {

constexpr std::string_view kAny = "any";
constexpr std::string_view kNone = "none";

}  // namespace

std::string encode_exec_policy(const ExecPolicy& policy) {
  switch (policy.mode) {
    case ExecPolicy::Mode::any:
      return std::string(kAny);
    case ExecPolicy::Mode::none:
      return std::string(kNone);
    case ExecPolicy::Mode::globs:
      break;
  }
  std::string out;
  for (const std::string& g : policy.globs) {
    if (!out.empty()) out += ':';
    out += g;
  }
  return out;
}

std::optional<std::string> validate_exec_policy(const ExecPolicy& policy) {
  if (policy.mode != ExecPolicy::Mode::globs) return std::nullopt;
  if (policy.globs.empty()) return "--exec-allow: give at least one glob";
  for (const std::string& g : policy.globs) {
    if (g.empty() || g.front() != '/')
      return "--exec-allow '" + g + "': a glob is an absolute path pattern (/usr/bin/*)";
    if (g.find(':') != std::string::npos)
      return "--exec-allow '" + g + "': a glob may not contain ':'";
  }
  if (encode_exec_policy(policy).size() > cluster::kMaxTagValueBytes) {
    return "--exec-allow: the globs take at most " + std::to_string(cluster::kMaxTagValueBytes) +
           " bytes together, ':' between them (they are advertised in a member tag)";
  }
  return std::nullopt;
}

ExecPolicy exec_policy_of(const cluster::Tags& tags) {
  auto it = tags.find(kExecPolicyTag);
  if (it == tags.end() || it->second == kAny) return {};
  if (it->second == kNone) return {ExecPolicy::Mode::none, {}};
  ExecPolicy policy{ExecPolicy::Mode::globs, {}};
  std::string_view rest = it->second;
  while (!rest.empty()) {
    const std::size_t colon = rest.find(':');
    const std::string_view glob = rest.substr(0, colon);
    if (!glob.empty() && glob.front() == '/') policy.globs.emplace_back(glob);
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return policy;  // unreadable globs are left out: they admit nothing
}

bool admits(const ExecPolicy& policy, std::string_view path) {
  switch (policy.mode) {
    case ExecPolicy::Mode::any:
      return true;
    case ExecPolicy::Mode::none:
      return false;
    case ExecPolicy::Mode::globs:
      break;
  }
  if (path.empty() || path.front() != '/') return false;
  const std::string p(path);
  for (const std::string& g : policy.globs) {
    if (::fnmatch(g.c_str(), p.c_str(), FNM_PATHNAME) == 0) return true;
  }
  return false;
}

std::string_view exec_path_of(const ChildSpec& spec) {
  if (!spec.exec_path.empty()) return spec.exec_path;
  if (!spec.argv.empty() && spec.argv.front().starts_with('/')) return spec.argv.front();
  return {};
}

bool may_run(const ChildSpec& spec, const cluster::Tags& tags) {
  if (spec.kind != ChildKind::exec) return true;
  auto it = tags.find(kExecPolicyTag);
  if (it == tags.end() || it->second == kAny) return true;  // the common case, without parsing
  return admits(exec_policy_of(tags), exec_path_of(spec));
}

std::optional<std::string> refused_everywhere(const ChildSpec& spec,
                                              const std::vector<const cluster::Tags*>& members) {
  if (spec.kind != ChildKind::exec) return std::nullopt;
  for (const cluster::Tags* tags : members) {
    if (may_run(spec, *tags)) return std::nullopt;
  }
  const std::string_view path = exec_path_of(spec);
  return "no live member's exec policy allows " +
         (path.empty() ? "'" + spec.argv.front() + "' (its path is not known)"
                       : std::string(path)) +
         " (see `shoal members`: tag shoal.exec)";
}

}  // namespace shoal::supervisor
