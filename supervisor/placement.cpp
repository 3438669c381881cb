#include "supervisor/placement.h"

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
  // FNV-1a over both (with a separator), then a 64-bit finalizer so that weights of one child
  // across members are independent.
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : name)
    h = (h ^ c) * 1099511628211ULL;
  h = (h ^ 0xff) * 1099511628211ULL;
  for (unsigned char c : member)
    h = (h ^ c) * 1099511628211ULL;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  return h ^ (h >> 33);
}

std::optional<std::string> place(const ChildSpec& spec, const View& view) {
  const std::string* best = nullptr;
  std::uint64_t best_weight = 0;
  for (const auto& [member, info] : view) {
    if (!satisfies(info.tags, spec.constraints)) continue;
    const std::uint64_t w = weight(spec.name, member);
    if (best == nullptr || w > best_weight) {  // ties (never seen) go to the first in name order
      best = &member;
      best_weight = w;
    }
  }
  if (best == nullptr) return std::nullopt;
  return *best;
}

}  // namespace shoal::supervisor
