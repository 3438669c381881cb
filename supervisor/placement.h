#pragma once

// Placement: which member runs a child. Rendezvous (highest-random-weight) hashing over the live
// members whose tags satisfy the child's constraints and whose exec policy (exec_policy.h, also a
// tag) allows its command: every node computes the same owner from the
// same view, and a membership change moves only the children whose owner joined or went.
//
// Weights: a member tagged `weight=W` (a positive number, at most 1e6; default 1) gets about W
// times the children of a member of weight 1 (weighted rendezvous: the score of a member is
// W / -ln(u), u its hash for the child mapped into (0, 1)). With equal weights the order is the
// hash's, and changing one member's weight moves children only to or from that member.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "cluster/wire.h"
#include "supervisor/child_spec.h"

namespace shoal::supervisor {

struct MemberInfo {
  std::uint64_t creation = 0;
  cluster::Tags tags;
  friend bool operator==(const MemberInfo&, const MemberInfo&) = default;
};
// The live members (this node included), by name.
using View = std::map<std::string, MemberInfo, std::less<>>;

// True iff `tags` has every constraint's key with that value.
bool satisfies(const cluster::Tags& tags,
               const std::map<std::string, std::string, std::less<>>& constraints);
// True iff a member with `tags` may run `spec`: it satisfies the constraints and its exec policy
// allows the command.
bool eligible(const ChildSpec& spec, const cluster::Tags& tags);
// The weight of `member` for child `name`: a 64-bit hash of both.
std::uint64_t weight(std::string_view name, std::string_view member);
// A member's placement weight from its tags (1 when absent or not a positive number).
double placement_weight(const cluster::Tags& tags);
// What a member scores for a child: the highest score owns it, the larger hash breaks ties.
struct Score {
  double score = 0;
  std::uint64_t hash = 0;
};
Score score(std::string_view child, std::string_view member, const cluster::Tags& tags);
// The order place() picks by: the higher score, then the larger hash, then the smaller name (a
// strict order: one member is the best whatever order they are looked at in).
bool beats(const Score& a, std::string_view a_name, const Score& b, std::string_view b_name);
// The owner of `spec` in `view`, or none if no member is eligible.
std::optional<std::string> place(const ChildSpec& spec, const View& view);

}  // namespace shoal::supervisor
