#pragma once

// Life: one run of a node process, {name, creation}. A node restarted under the same name is a new
// life (a greater creation: its start time in ms), so nothing said by or about an earlier life
// (its pids, its replication origin, its draining mark) is taken for the new one.
//
// Its text form, "name#creation", is the replica id of the life's copy of the map and the key of
// per-life marks in the map ("d/" + life, "p/" uses its own form: see cluster/key_spaces.h).

#include <charconv>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shoal::cluster {

struct Life {
  std::string name;
  std::uint64_t creation = 0;

  // "name#creation"
  std::string key() const { return name + "#" + std::to_string(creation); }
  // Parses key()'s form; nullopt unless it is "name#digits" with a non-empty name.
  static std::optional<Life> parse(std::string_view key) {
    const auto hash = key.rfind('#');
    if (hash == std::string_view::npos || hash == 0 || hash + 1 == key.size()) return std::nullopt;
    Life life{std::string(key.substr(0, hash)), 0};
    const char* first = key.data() + hash + 1;
    const char* last = key.data() + key.size();
    auto [end, ec] = std::from_chars(first, last, life.creation);
    if (ec != std::errc() || end != last) return std::nullopt;
    return life;
  }
  // The name part of a key ("name#creation" -> "name"); the whole key if it has no '#'.
  static std::string_view name_of(std::string_view key) { return key.substr(0, key.rfind('#')); }

  friend auto operator<=>(const Life&, const Life&) = default;
  friend bool operator==(const Life&, const Life&) = default;
};

}  // namespace shoal::cluster
