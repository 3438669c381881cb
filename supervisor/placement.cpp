#include "supervisor/placement.h"
#include "crdt/hash.h"
#include "supervisor/exec_policy.h"

#include <charconv>
#include <cmath>

namespace shoal::supervisor {

bool satisfies(const cluster::Tags& tags,
               const std::map<std::string, std::string, std::less<>>& constraints) {
  for (const auto& [key, value] : constraints) {
    auto it = tags.find(key);
    if (it == tags.end() || it->second != value) return false;
  }
  return true;
}

bool eligible(const ChildSpec& spec, const cluster::Tags& tags) {
  return satisfies(tags, spec.constraints) && may_run(spec, tags);
}

std::uint64_t weight(std::string_view name, std::string_view member) {
  return crdt::rendezvous(name, member);
}

double placement_weight(const cluster::Tags& tags) {
  auto it = tags.find("weight");
  if (it == tags.end()) return 1.0;
  double w = 0;
  const char* first = it->second.data();
  const char* last = first + it->second.size();
  auto [end, ec] = std::from_chars(first, last, w);
  if (ec != std::errc() || end != last || !(w > 0) || w > 1e6) return 1.0;
  return w;
}

Score score(std::string_view child, std::string_view member, const cluster::Tags& tags) {
  const std::uint64_t h = weight(child, member);
  // u in (0, 1); -ln(u) > 0. With weight 1 everywhere the order is the hash's.
  const double u = (static_cast<double>(h >> 11) + 0.5) * 0x1p-53;
  return Score{placement_weight(tags) / -std::log(u), h};
}

bool beats(const Score& a, std::string_view a_name, const Score& b, std::string_view b_name) {
  if (a.score != b.score) return a.score > b.score;
  if (a.hash != b.hash) return a.hash > b.hash;
  return a_name < b_name;
}

std::optional<std::string> place(const ChildSpec& spec, const View& view) {
  const std::string* best = nullptr;
  Score best_score;
  for (const auto& [member, info] : view) {
    if (!eligible(spec, info.tags)) continue;
    const Score s = score(spec.name, member, info.tags);
    if (best == nullptr || beats(s, member, best_score, *best)) {
      best = &member;
      best_score = s;
    }
  }
  if (best == nullptr) return std::nullopt;
  return *best;
}

}  // namespace shoal::supervisor
