#pragma once

// The key spaces of the replicated map: every kind of entry lives under its own prefix, and each
// prefix has one owner, the only layer that writes its entries and decodes its values. Every
// other layer reads them through the owner's API (the supervisor asks registry::Registry where a
// name is; the HTTP views ask it for groups). A new key space is added here, with its owner.
//
// clang-format off
//   prefix  owner        key                      value
//   n/      registry     n/<name>                 registration [node, creation, id, meta]
//   g/      registry     g/<group>\0<pid text>    registration
//   p/      registry     p/<node>\0<creation>     empty: a life presumed dead, purged
//   c/      supervisor   c/<child>                child spec (supervisor/child_spec.h)
//   f/      supervisor   f/<child>                failure [node, at_ms, why]
//   k/      supervisor   k/<child>                checkpoint blob
//   d/      supervisor   d/<node>#<creation>      "1": that life is draining
//   K/      bin (agent)  K/<node>                 {"primary": fp, "keys": [fp...]}
// clang-format on
//
// Names, groups and child names are opaque bytes (at most 255); a group name holds no '\0'.

#include <string_view>

namespace shoal::cluster::keys {

inline constexpr std::string_view kName = "n/";
inline constexpr std::string_view kGroup = "g/";
inline constexpr std::string_view kPresumedDead = "p/";
inline constexpr std::string_view kChild = "c/";
inline constexpr std::string_view kFailed = "f/";
inline constexpr std::string_view kCheckpoint = "k/";
inline constexpr std::string_view kDraining = "d/";
inline constexpr std::string_view kKeyring = "K/";

}  // namespace shoal::cluster::keys
