#pragma once

// Random histories of AwLwwMap operations, shared by the property and codec tests.

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "crdt/aw_lww_map.h"

namespace shoal::test {

// One writer: a state map, its replica id, a clock, and the deltas it produced in order.
struct Writer {
  std::string id;
  crdt::AwLwwMap state;
  std::uint64_t clock_ms = 1000;
  std::vector<crdt::AwLwwMap> deltas;
};

// Random bytes of length [0, max_len].
inline std::string random_bytes(std::mt19937_64& rng, std::size_t max_len) {
  std::string out(rng() % (max_len + 1), '\0');
  for (char& c : out)
    c = static_cast<char>(rng());
  return out;
}

// Applies one random operation to `w` (put 60%, remove 25%, remove_where 5%, or joining a
// random earlier delta of `others` 10%), recording the produced delta. Keys come from a space of
// `keys` names so that operations collide; timestamps sometimes tie on purpose.
inline void random_op(std::mt19937_64& rng, Writer& w, std::vector<Writer>& others, int keys) {
  const int roll = static_cast<int>(rng() % 100);
  const std::string key = "k" + std::to_string(rng() % keys);
  if (rng() % 4 != 0) w.clock_ms += rng() % 3;  // often the same millisecond as another writer
  const crdt::Timestamp ts = crdt::from_ms(w.clock_ms) + rng() % 2;
  if (roll < 60) {
    w.deltas.push_back(w.state.put(w.id, ts, key, "v" + std::to_string(rng() % 1000)));
  } else if (roll < 85) {
    crdt::AwLwwMap d = w.state.remove(key);
    if (d.entry_count() > 0) w.deltas.push_back(std::move(d));
  } else if (roll < 90) {
    const auto digit = static_cast<char>('0' + rng() % 10);
    crdt::AwLwwMap d = w.state.remove_where(
        [digit](std::string_view, const crdt::VersionView& v) { return v.value.back() == digit; });
    if (d.entry_count() > 0) w.deltas.push_back(std::move(d));
  } else if (!others.empty()) {
    const Writer& from = others[rng() % others.size()];
    if (!from.deltas.empty()) w.state.join(from.deltas[rng() % from.deltas.size()]);
  }
}

// A state built by `ops` random operations of writer `id`, with some deltas of `others` joined.
inline crdt::AwLwwMap random_state(std::mt19937_64& rng, const std::string& id,
                                   std::vector<Writer>& others, int ops, int keys) {
  Writer w{id, {}, 1000 + rng() % 50, {}};
  for (int i = 0; i < ops; ++i)
    random_op(rng, w, others, keys);
  return w.state;
}

}  // namespace shoal::test
