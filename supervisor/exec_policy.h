#pragma once

// ExecPolicy: which commands a node lets the cluster run on it, as `exec` children or as
// `shoal exec` tasks (workers are code the agent was built with: not concerned).
//
// A node advertises its policy to every member in the reserved tag "shoal.exec" (so placement,
// computed by every node from the same view, skips the nodes that may not run a child, as it skips
// those that lack a constraint's tag):
//   absent, or "any"    every command (the default; older nodes advertise nothing)
//   "none"              no command at all
//   "GLOB:GLOB:..."     only executables whose resolved path matches one of the globs
// A glob is an absolute path pattern matched with fnmatch(3) and FNM_PATHNAME: `*`, `?` and `[..]`
// do not match a '/'. The resolved path is the absolute, canonical path of the executable (PATH
// searched, symlinks and ".." resolved): a child spec records it when it is added
// (ChildSpec::exec_path); the node that starts the child resolves the command again, checks it
// against its own policy and runs exactly the path it checked.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/wire.h"
#include "supervisor/child_spec.h"

namespace shoal::supervisor {

inline constexpr std::string_view kExecPolicyTag = "shoal.exec";

struct ExecPolicy {
  enum class Mode { any, none, globs };
  Mode mode = Mode::any;
  std::vector<std::string> globs;  // Mode::globs

  friend bool operator==(const ExecPolicy&, const ExecPolicy&) = default;
};

// The tag value ("any", "none" or the globs joined by ':').
std::string encode_exec_policy(const ExecPolicy& policy);
// A policy from flags: `deny` (no command) or the allowed globs (none: any command). A one-line
// reason when a glob is not absolute, holds a ':', or the whole does not fit a tag value.
std::optional<std::string> validate_exec_policy(const ExecPolicy& policy);
// A member's policy from its tags. A value that does not parse admits nothing (a member that
// says something this node cannot read is not trusted to mean "any").
ExecPolicy exec_policy_of(const cluster::Tags& tags);
// Whether `policy` admits the executable at `path` (absolute; empty: not known, which only `any`
// admits).
bool admits(const ExecPolicy& policy, std::string_view path);
// The path placement checks a child's command against: its recorded exec_path, else argv[0] if
// that is absolute, else none (only `any` admits it).
std::string_view exec_path_of(const ChildSpec& spec);
// Whether a member with `tags` may run `spec` by its exec policy (workers: always).
bool may_run(const ChildSpec& spec, const cluster::Tags& tags);
// Why no member of `tags_of_members` may run `spec` (its policy is the reason), or none if one may.
std::optional<std::string> refused_everywhere(const ChildSpec& spec,
                                              const std::vector<const cluster::Tags*>& members);

}  // namespace shoal::supervisor
