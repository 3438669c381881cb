#include "supervisor/placement.h"
#include "crdt/hash.h"

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

std::optional<std::string> place(const ChildSpec& spec, const View& view) {
  const std::string* best = nullptr;
  double best_score = 0;
  std::uint64_t best_hash = 0;
  for (const auto& [member, info] : view) {
    if (!satisfies(info.tags, spec.constraints)) continue;
    const std::uint64_t h = weight(spec.name, member);
    // u in (0, 1); -ln(u) > 0. With weight 1 everywhere the order is the hash's.
    const double u = (static_cast<double>(h >> 11) + 0.5) * 0x1p-53;
    const double score = placement_weight(info.tags) / -std::log(u);
    // Ties (never seen) go to the larger hash, then to the first in name order.
    if (best == nullptr || score > best_score || (score == best_score && h > best_hash)) {
      best = &member;
      best_score = score;
      best_hash = h;
    }
  }
  if (best == nullptr) return std::nullopt;
  return *best;
}

}  // namespace shoal::supervisor
