#include "crdt/codec.h"

#include <algorithm>
#include <vector>

#include "crdt/msgpack_reader.h"
#include "crdt/msgpack_writer.h"

namespace shoal::crdt {

namespace {

// Deltas with at most this many entries leave their versions' dots out of the context on the
// wire (a reader adds them back). Larger maps are sent as they are: the saving is small there and
// the subtraction would cost a pass over every entry.
constexpr std::size_t kElideDotsUpTo = 64;

// The dots of replica `ix` as inclusive ranges, in order: 1..max first, then the cloud.
std::vector<CounterRange> ranges_of(const CausalContext& ctx, ReplicaIx ix) {
  std::vector<CounterRange> out;
  if (ctx.max(ix) > 0) out.push_back({1, ctx.max(ix)});
  const auto& cloud = ctx.cloud(ix);
  out.insert(out.end(), cloud.begin(), cloud.end());
  return out;
}

// Removes the (sorted, distinct) counters in `drop` from `ranges`.
std::vector<CounterRange> subtract(const std::vector<CounterRange>& ranges,
                                   const std::vector<Counter>& drop) {
  std::vector<CounterRange> out;
  auto d = drop.begin();
  for (CounterRange r : ranges) {
    while (d != drop.end() && *d < r.first)
      ++d;
    while (d != drop.end() && *d <= r.last) {
      if (*d > r.first) out.push_back({r.first, *d - 1});
      r.first = *d + 1;
      ++d;
    }
    if (r.first <= r.last) out.push_back(r);
  }
  return out;
}

}  // namespace

void encode(const AwLwwMap& map, std::string& out) {
  MsgWriter w(out);
  const CausalContext& ctx = map.context();
  const std::size_t replicas = ctx.replica_count();

  w.array(5);
  w.uint(kFormatVersion);
  w.uint(static_cast<std::uint8_t>(map.kind()));

  w.array(replicas);
  for (ReplicaIx ix = 0; ix < replicas; ++ix) {
    const std::string& id = ctx.id(ix);
    w.str(id);
  }

  // Per replica, the counters of listed versions that the reader will add back by itself.
  std::vector<std::vector<Counter>> implied;
  if (map.is_delta() && map.entry_count() <= kElideDotsUpTo) {
    implied.resize(replicas);
    map.for_each_entry([&](std::string_view, std::span<const RawVersion> versions) {
      for (const RawVersion& v : versions)
        implied[v.replica].push_back(v.counter);
    });
    for (auto& counters : implied)
      std::sort(counters.begin(), counters.end());
  }
  std::vector<std::vector<CounterRange>> rows(replicas);
  std::uint32_t nonempty = 0;
  for (ReplicaIx ix = 0; ix < replicas; ++ix) {
    rows[ix] = ranges_of(ctx, ix);
    if (!implied.empty() && !implied[ix].empty()) rows[ix] = subtract(rows[ix], implied[ix]);
    if (!rows[ix].empty()) ++nonempty;
  }
  w.array(nonempty);
  for (ReplicaIx ix = 0; ix < replicas; ++ix) {
    const auto& ranges = rows[ix];
    if (ranges.empty()) continue;
    const bool from_one = ranges.front().first == 1;
    const std::size_t cloud = ranges.size() - (from_one ? 1 : 0);
    w.array(2 + 2 * cloud);
    w.uint(ix);
    w.uint(from_one ? ranges.front().last : 0);
    for (std::size_t i = from_one ? 1 : 0; i < ranges.size(); ++i) {
      w.uint(ranges[i].first);
      w.uint(ranges[i].last);
    }
  }

  w.array(map.entry_count());
  map.for_each_entry([&](std::string_view key, std::span<const RawVersion> versions) {
    w.array(1 + 4 * versions.size());
    w.bin(key);
    for (const RawVersion& v : versions) {
      w.uint(v.counter);
      w.uint(v.replica);
      w.uint(v.ts);
      w.bin(v.value);
    }
  });
}

std::string encode(const AwLwwMap& map) {
  std::string out;
  encode(map, out);
  return out;
}

std::expected<AwLwwMap, Error> decode(std::string_view bytes, const DecodeLimits& limits) {
  MsgReader r(bytes);
  r.array_of("map", 5);
  const std::uint64_t format = r.uint("format");
  if (r.ok() && format != kFormatVersion) {
    r.fail(Errc::bad_version, "format",
           "version " + std::to_string(format) + ", this build reads 1");
  }
  const auto kind = static_cast<AwLwwMap::Kind>(r.uint("kind", 2));
  if (!r.ok()) return std::unexpected(r.error());
  AwLwwMap map(kind);
  CausalContext& ctx = map.mutable_context();

  const std::uint32_t replicas = r.array("replicas", limits.max_replicas);
  for (std::uint32_t i = 0; i < replicas && r.ok(); ++i) {
    r.at("replicas", i);
    const std::string_view id = r.bytes("id", limits.max_replica_id_bytes);
    if (r.ok() && ctx.find(id)) r.fail(Errc::invalid, "id", "duplicate replica id");
    if (r.ok()) ctx.intern(id);
  }
  if (!r.ok()) return std::unexpected(r.error());

  // Reads a replica index into the table above.
  auto replica_ix = [&](const char* field) -> ReplicaIx {
    if (replicas == 0) {
      r.fail(Errc::invalid, field, "no replica table");
      return 0;
    }
    return static_cast<ReplicaIx>(r.uint(field, replicas - 1));
  };

  r.at(nullptr, 0);
  const std::uint32_t rows = r.array("context", replicas);
  std::vector<bool> row_seen(replicas, false);
  for (std::uint32_t i = 0; i < rows && r.ok(); ++i) {
    r.at("context", i);
    const std::uint32_t len = r.array("row", 2 + 2 * limits.max_ranges_per_replica);
    if (r.ok() && (len < 2 || len % 2 != 0)) r.fail(Errc::invalid, "row", "odd or short row");
    const ReplicaIx ix = replica_ix("ix");
    if (r.ok() && row_seen[ix]) r.fail(Errc::invalid, "ix", "second row for one replica");
    const Counter max = r.uint("max", kMaxCounter);
    if (!r.ok()) break;
    row_seen[ix] = true;
    if (max > 0) ctx.add_range(ix, 1, max);
    Counter floor = max + 1;  // every range must start above this
    for (std::uint32_t k = 0; k < (len - 2) / 2 && r.ok(); ++k) {
      const Counter first = r.uint("first", kMaxCounter);
      const Counter last = r.uint("last", kMaxCounter);
      if (!r.ok()) break;
      if (first <= floor || last < first) {
        r.fail(Errc::invalid, "first", "ranges must ascend, above max + 1, without touching");
        break;
      }
      ctx.add_range(ix, first, last);
      floor = last + 1;
    }
  }
  if (!r.ok()) return std::unexpected(r.error());

  r.at(nullptr, 0);
  const std::uint32_t entries = r.array("entries", limits.max_entries);
  std::vector<RawVersion> versions;
  for (std::uint32_t i = 0; i < entries && r.ok(); ++i) {
    r.at("entries", i);
    const std::uint32_t len = r.array("entry", 1 + 4 * limits.max_versions_per_key);
    if (r.ok() && (len < 1 || (len - 1) % 4 != 0)) {
      r.fail(Errc::invalid, "entry", "expected a key and groups of 4 per version");
    }
    const std::string_view key = r.bytes("key", limits.max_key_bytes);
    versions.clear();
    for (std::uint32_t v = 0; v < (len - 1) / 4 && r.ok(); ++v) {
      const Counter counter = r.uint("counter", kMaxCounter);
      const ReplicaIx ix = replica_ix("ix");
      const Timestamp ts = r.uint("ts");
      const std::string_view value = r.bytes("value", limits.max_value_bytes);
      if (r.ok() && counter == 0) r.fail(Errc::invalid, "counter", "counters start at 1");
      versions.push_back(RawVersion{ts, counter, ix, value});
    }
    if (r.ok() && !map.append(key, versions)) {
      r.fail(Errc::invalid, "key",
             "keys must ascend, a key's dots must differ, and a state key needs a version");
    }
  }
  if (r.ok() && r.remaining() != 0) {
    r.at("entries", entries);
    r.fail(Errc::invalid, "end", std::to_string(r.remaining()) + " trailing bytes");
  }
  if (!r.ok()) return std::unexpected(r.error());
  return map;
}

}  // namespace shoal::crdt
