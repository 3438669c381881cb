#pragma once

// Pid: the identity of a process anywhere in the cluster: {node name, creation, local id}.
// `creation` is the start time (ms) of the node process that owns it, so a pid from before a
// restart never equals one after it. Printed as <node.creation.id>, e.g. <n1.1732312345123.42>.

#include <compare>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace shoal::registry {

struct Pid {
  std::string node;
  std::uint64_t creation = 0;
  std::uint64_t id = 0;

  // <node.creation.id>
  std::string to_string() const;
  // Parses the printed form. Returns a one-line reason on failure.
  static std::expected<Pid, std::string> parse(std::string_view text);

  friend auto operator<=>(const Pid&, const Pid&) = default;
  friend bool operator==(const Pid&, const Pid&) = default;
};

}  // namespace shoal::registry
