#pragma once

// Placement: which member runs a child. Rendezvous (highest-random-weight) hashing over the live
// members whose tags satisfy the child's constraints: every node computes the same owner from the
// same view, and a membership change moves only the children whose owner joined or went.

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
};
// The live members (this node included), by name.
using View = std::map<std::string, MemberInfo, std::less<>>;

// True iff `tags` has every constraint's key with that value.
bool satisfies(const cluster::Tags& tags,
               const std::map<std::string, std::string, std::less<>>& constraints);
// The weight of `member` for child `name`: a 64-bit hash of both.
std::uint64_t weight(std::string_view name, std::string_view member);
// The owner of `spec` in `view`, or none if no member satisfies its constraints.
std::optional<std::string> place(const ChildSpec& spec, const View& view);

}  // namespace shoal::supervisor
