// crdt_bench: throughput, size and memory of the replicated map (crdt/).
//
// Keys are `k/` and 14 digits (16 bytes), put and joined in an order shuffled by a seeded RNG: in
// key order every insert lands beside the previous one, where the tree walk stays in the CPU
// caches, the tree's best case. The seed is printed first; --seed N replays the order (default: a
// fresh seed).
//
// Figures, each against its target on a 2-core machine in Release:
//   local puts/s              Replica::put of distinct keys with pid values, batched and logged as
//                             a node does it (>= 1,000,000)
//   delta joins/s             one-entry deltas of another replica as a node takes them from the
//                             wire: decoded from their bytes, then Replica::join_batch (>= 500,000)
//   delta joins, join only/s  the same joins of deltas decoded beforehand (no target)
//   encode / decode MB/s      a full state of all entries, one buffer
//   one-entry delta bytes     16-byte key, pid value, realistic replica id (<= 96)
//   memory per entry          resident bytes per entry at 1,000,000 entries, beyond the key and
//                             value bytes (<= 160)
// Prints one line per figure and the headline last, writes the figures as JSON (--json PATH) with
// the seed, the commit, the command line and the date, and exits 1 if a target was missed.

#include <malloc.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench/provenance.h"
#include "crdt/codec.h"
#include "crdt/hash.h"
#include "crdt/msgpack_writer.h"
#include "crdt/replica.h"

namespace {

using shoal::crdt::AwLwwMap;
using shoal::crdt::Replica;
using Clock = std::chrono::steady_clock;

// Replica ids as the upper layers form them: node name (hostname:port) + "." + creation (base 36).
constexpr std::string_view kWriter = "node-03:7946.lx2k9q1c";
constexpr std::string_view kReader = "node-07:7946.lx2k9r4d";

std::string key_of(std::size_t i) {
  return fmt::format("k/{:014d}", i);
}  // 16 bytes

// 0..n-1 in the order `seed` draws: a Fisher-Yates shuffle driven by std::mt19937_64, whose output
// the standard fixes (std::shuffle's use of it is not), so a seed replays on any library.
std::vector<std::size_t> shuffled(std::size_t n, std::uint64_t seed) {
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i)
    order[i] = i;
  std::mt19937_64 rng(shoal::crdt::splitmix64(seed));
  for (std::size_t i = n; i > 1; --i)
    std::swap(order[i - 1], order[rng() % i]);
  return order;
}

// A pid as the registry stores it: [node name, creation ms, local id].
std::string pid_value(std::size_t local_id) {
  std::string out;
  shoal::crdt::MsgWriter w(out);
  w.array(3);
  w.str("node-03:7946");
  w.uint(1732312345123);
  w.uint(local_id);
  return out;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::size_t resident_bytes() {
  long pages = 0;
  long resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<std::size_t>(resident) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

struct Figure {
  std::string name;
  double value;
  std::string unit;
  double target;
  bool higher_is_better;
  // A target of 0 means the figure is reported without one.
  bool met() const {
    if (target == 0) return true;
    return higher_is_better ? value >= target : value <= target;
  }
};

// `s` as a JSON string, quotes included.
void print(const Figure& f) {
  if (f.target == 0) {
    fmt::print("{:<28} {:>14.1f} {:<6}\n", f.name, f.value, f.unit);
    return;
  }
  fmt::print("{:<28} {:>14.1f} {:<6} target {} {:>9.0f}  {}\n", f.name, f.value, f.unit,
             f.higher_is_better ? ">=" : "<=", f.target, f.met() ? "met" : "MISSED");
}

}  // namespace

int main(int argc, char** argv) {
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);  // as the agent does (bin/agent.cpp)
  const shoal::bench::Provenance from = shoal::bench::provenance(argc, argv);
  std::size_t entries = 1'000'000;
  std::uint64_t seed = (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}();
  std::string json_path = "crdt_bench.json";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--entries" && i + 1 < argc) {
      entries = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (arg == "--help" || arg == "-h") {
      fmt::print("usage: crdt_bench [--entries N] [--seed N] [--json PATH]\n");
      return 0;
    } else {
      fmt::print(stderr, "crdt_bench: unknown argument '{}' (try --help)\n", arg);
      return 2;
    }
  }
  if (entries < 1000) {
    fmt::print(stderr, "crdt_bench: --entries must be at least 1000\n");
    return 2;
  }
  fmt::print("crdt_bench: seed={} (--seed {} replays the key order)\n", seed, seed);
  fmt::print("crdt_bench: {} entries, 16-byte keys in shuffled order, {}-byte pid values\n",
             entries, pid_value(entries).size());
  std::fflush(stdout);
  std::vector<Figure> figures;

  // Every phase puts (or joins) keys[j] with values[j] for j = 0, 1, ...: key order[j].
  std::vector<std::string> keys;
  std::vector<std::string> values;
  std::size_t payload = 0;
  {
    const std::vector<std::size_t> order = shuffled(entries, seed);
    keys.reserve(entries);
    values.reserve(entries);
    for (const std::size_t k : order) {
      keys.push_back(key_of(k));
      values.push_back(pid_value(k));
      payload += keys.back().size() + values.back().size();
    }
  }

  // Memory first, on a fresh heap: a bare state of `entries` puts.
  {
    malloc_trim(0);
    const std::size_t before = resident_bytes();
    auto state = std::make_unique<AwLwwMap>();
    for (std::size_t i = 0; i < entries; ++i) {
      state->put(kWriter, shoal::crdt::from_ms(1732312345123 + i), keys[i], values[i]);
    }
    const std::size_t after = resident_bytes();
    const double per_entry =
        (static_cast<double>(after) - static_cast<double>(before) - static_cast<double>(payload)) /
        static_cast<double>(entries);
    figures.push_back({"memory per entry", per_entry, "B", 160, false});
    print(figures.back());
  }
  malloc_trim(0);

  // Local puts through a Replica: applied, batched into the open delta, logged.
  Replica writer{std::string(kWriter)};
  {
    const auto start = Clock::now();
    for (std::size_t i = 0; i < entries; ++i) {
      writer.put(1732312345123 + i / 1000, keys[i], values[i]);
    }
    writer.flush();
    const double s = seconds_since(start);
    figures.push_back({"local puts", static_cast<double>(entries) / s, "/s", 1'000'000, true});
    print(figures.back());
  }

  // One-entry deltas of another replica, encoded beforehand (untimed), joined into a fresh replica
  // twice. First from their wire bytes as the replicator takes a batch (cluster/replicator.cpp:
  // decode, copy the bytes for the log, join_batch): the target is checked against this one. Then
  // the same deltas decoded beforehand, which leaves out the decoding. The heap is trimmed before
  // each (malloc_trim returns freed pages to the system), so that the second does not start on
  // pages the first left resident.
  {
    AwLwwMap source;
    std::vector<shoal::crdt::Encoded> encoded;  // the wire bytes
    encoded.reserve(entries);
    for (std::size_t i = 0; i < entries; ++i) {
      encoded.push_back(std::make_shared<const std::string>(shoal::crdt::encode(
          source.put(kWriter, shoal::crdt::from_ms(1732312345123 + i), keys[i], values[i]))));
    }
    malloc_trim(0);
    {
      Replica reader{std::string(kReader)};
      const auto start = Clock::now();
      for (std::size_t i = 0; i < entries; ++i) {
        const std::string_view wire = *encoded[i];
        auto delta = shoal::crdt::decode(wire);
        if (!delta) {
          fmt::print(stderr, "crdt_bench: delta {} did not decode: {}\n", i + 1,
                     delta.error().to_string());
          return 1;
        }
        reader.join_batch(kWriter, i + 1, *delta, std::make_shared<const std::string>(wire),
                          1732312345123 + i / 1000);
      }
      const double s = seconds_since(start);
      figures.push_back(
          {"delta joins, decode + join", static_cast<double>(entries) / s, "/s", 500'000, true});
      print(figures.back());
      if (!(reader.state() == source)) {
        fmt::print(stderr, "crdt_bench: replicas differ after decoding and joining every delta\n");
        return 1;
      }
    }
    std::vector<AwLwwMap> deltas;
    deltas.reserve(entries);
    for (const shoal::crdt::Encoded& wire : encoded) {
      deltas.push_back(*shoal::crdt::decode(*wire));  // decoded above: cannot fail
    }
    malloc_trim(0);
    {
      Replica reader{std::string(kReader)};
      const auto start = Clock::now();
      for (std::size_t i = 0; i < entries; ++i) {
        reader.join_batch(kWriter, i + 1, deltas[i], encoded[i], 1732312345123 + i / 1000);
      }
      const double s = seconds_since(start);
      figures.push_back(
          {"delta joins, join only", static_cast<double>(entries) / s, "/s", 0, true});
      print(figures.back());
      if (!(reader.state() == source)) {
        fmt::print(stderr, "crdt_bench: replicas differ after joining every delta\n");
        return 1;
      }
    }
  }

  // Encode and decode of the full state.
  {
    std::string bytes;
    bytes.reserve(entries * 64);
    auto start = Clock::now();
    shoal::crdt::encode(writer.state(), bytes);
    const double enc_s = seconds_since(start);
    const double mb = static_cast<double>(bytes.size()) / 1e6;
    figures.push_back({"encode full state", mb / enc_s, "MB/s", 0, true});
    print(figures.back());
    start = Clock::now();
    auto decoded = shoal::crdt::decode(bytes);
    const double dec_s = seconds_since(start);
    if (!decoded || !(*decoded == writer.state())) {
      fmt::print(stderr, "crdt_bench: full state did not round-trip\n");
      return 1;
    }
    figures.push_back({"decode full state", mb / dec_s, "MB/s", 0, true});
    print(figures.back());
  }

  // The size of one put delta on the wire: a new name, and a name written again (the delta then
  // also names the version it replaces).
  writer.put(1732312346123, key_of(entries), pid_value(entries));
  const std::string fresh = *writer.flush().back();
  figures.push_back({"one-entry delta", static_cast<double>(fresh.size()), "B", 96, false});
  print(figures.back());
  writer.put(1732312346124, key_of(7), pid_value(7));
  const std::string again = *writer.flush().back();
  figures.push_back(
      {"one-entry delta, overwrite", static_cast<double>(again.size()), "B", 0, false});
  print(figures.back());

  std::vector<std::string_view> missed;
  for (const Figure& f : figures) {
    if (!f.met()) missed.push_back(f.name);
  }
  std::string json = fmt::format(
      "{{\n  \"bench\": \"crdt\",\n  \"commit\": {},\n  \"command\": {},\n  \"date\": {},\n"
      "  \"seed\": {},\n  \"entries\": {},\n  \"key_order\": \"shuffled\",\n"
      "  \"targets_met\": {},\n  \"figures\": [\n",
      shoal::bench::json_string(from.commit), shoal::bench::json_string(from.command),
      shoal::bench::json_string(from.date), seed, entries, missed.empty() ? "true" : "false");
  for (std::size_t i = 0; i < figures.size(); ++i) {
    const Figure& f = figures[i];
    json +=
        fmt::format("    {{\"name\": {}, \"value\": {:.1f}, \"unit\": {}, ",
                    shoal::bench::json_string(f.name), f.value, shoal::bench::json_string(f.unit));
    if (f.target == 0) {
      json += "\"target\": null, \"met\": null}";
    } else {
      json += fmt::format("\"target\": {}, \"target_is\": \"{}\", \"met\": {}}}", f.target,
                          f.higher_is_better ? "min" : "max", f.met() ? "true" : "false");
    }
    json += i + 1 < figures.size() ? ",\n" : "\n";
  }
  json += "  ]\n}\n";
  if (FILE* out = std::fopen(json_path.c_str(), "w")) {
    std::fputs(json.c_str(), out);
    std::fclose(out);
  } else {
    fmt::print(stderr, "crdt_bench: cannot write {}\n", json_path);
    return 1;
  }

  auto find = [&](std::string_view name) {
    for (const Figure& f : figures) {
      if (f.name == name) return f.value;
    }
    return 0.0;
  };
  fmt::print("json: {}\n", json_path);
  fmt::print(
      "crdt_bench: seed={}, {:.2f}M puts/s, {:.2f}M delta joins/s decoded and joined ({:.2f}M "
      "join only), encode {:.0f} MB/s, decode {:.0f} MB/s, one-entry delta {:.0f} B, {:.0f} "
      "B/entry ({})\n",
      seed, find("local puts") / 1e6, find("delta joins, decode + join") / 1e6,
      find("delta joins, join only") / 1e6, find("encode full state"), find("decode full state"),
      find("one-entry delta"), find("memory per entry"),
      missed.empty() ? "all targets met" : fmt::format("MISSED: {}", fmt::join(missed, ", ")));
  return missed.empty() ? 0 : 1;
}
