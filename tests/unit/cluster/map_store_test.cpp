// The map on disk: snapshot + log round trips, compaction, and torn or corrupt tails that are
// reported and skipped, never loaded.

#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cluster/map_store.h"
#include "crdt/codec.h"

using namespace shoal;
using cluster::MapStore;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/shoal-store-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// A delta putting `key` = `value` on top of `state`.
std::string put(crdt::AwLwwMap& state, const std::string& key, const std::string& value,
                std::uint64_t ts) {
  crdt::AwLwwMap delta(crdt::AwLwwMap::Kind::delta);
  state.put("node-a#1", ts, key, value, delta);
  return crdt::encode(delta);
}

std::optional<std::string> value_of(const crdt::AwLwwMap& m, const std::string& key) {
  auto v = m.get(key);
  if (!v) return std::nullopt;
  return std::string(v->value);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(map_store)

BOOST_AUTO_TEST_CASE(what_is_appended_and_snapshotted_loads_back) {
  TempDir dir;
  crdt::AwLwwMap live(crdt::AwLwwMap::Kind::state);
  {
    auto store = MapStore::open(dir.path);
    BOOST_REQUIRE(store.has_value());
    auto empty = (*store)->load();
    BOOST_REQUIRE(empty.has_value());
    BOOST_TEST(empty->records == 0u);
    BOOST_TEST(empty->problem.empty());
    BOOST_REQUIRE((*store)->append(put(live, "c/web", "spec-1", 100)).has_value());
    BOOST_REQUIRE((*store)->append(put(live, "k/web", "count=7", 200)).has_value());
    BOOST_REQUIRE((*store)->snapshot(live).has_value());
    BOOST_TEST((*store)->log_bytes() == 4u);  // just the log's header after a snapshot
    BOOST_REQUIRE((*store)->append(put(live, "k/web", "count=9", 300)).has_value());
    crdt::AwLwwMap scratch(crdt::AwLwwMap::Kind::delta);
    BOOST_REQUIRE(live.remove("c/web", scratch));
    BOOST_REQUIRE((*store)->append(crdt::encode(scratch)).has_value());
  }
  auto store = MapStore::open(dir.path);
  BOOST_REQUIRE(store.has_value());
  auto loaded = (*store)->load();
  BOOST_REQUIRE(loaded.has_value());
  BOOST_TEST(loaded->problem.empty(), loaded->problem);
  BOOST_TEST(loaded->records == 3u);  // the snapshot and two log records
  BOOST_TEST((value_of(loaded->state, "k/web") == std::optional<std::string>("count=9")));
  BOOST_TEST(!value_of(loaded->state, "c/web").has_value());  // the remove holds
}

BOOST_AUTO_TEST_CASE(a_torn_tail_is_reported_skipped_and_cut_off) {
  TempDir dir;
  crdt::AwLwwMap live(crdt::AwLwwMap::Kind::state);
  {
    auto store = MapStore::open(dir.path);
    BOOST_REQUIRE((*store)->load().has_value());
    (void)(*store)->append(put(live, "c/a", "1", 100));
    (void)(*store)->append(put(live, "c/b", "2", 200));
  }
  // The last record loses its end, as a write cut short by a crash.
  const std::string log = dir.path + "/log";
  const auto full = std::filesystem::file_size(log);
  std::filesystem::resize_file(log, full - 3);
  auto store = MapStore::open(dir.path);
  auto loaded = (*store)->load();
  BOOST_REQUIRE(loaded.has_value());
  BOOST_TEST(loaded->records == 1u);
  BOOST_TEST(value_of(loaded->state, "c/a").has_value());
  BOOST_TEST(!value_of(loaded->state, "c/b").has_value());
  BOOST_TEST(loaded->problem.find("torn record") != std::string::npos, loaded->problem);
  BOOST_TEST(loaded->skipped_bytes > 0u);
  // Appends continue after the last good record, and load back.
  BOOST_REQUIRE((*store)->append(put(live, "c/c", "3", 300)).has_value());
  store->reset();
  auto again = (*MapStore::open(dir.path))->load();
  BOOST_REQUIRE(again.has_value());
  BOOST_TEST(again->problem.empty(), again->problem);
  BOOST_TEST(value_of(again->state, "c/c").has_value());
  BOOST_TEST(value_of(again->state, "c/a").has_value());
}

BOOST_AUTO_TEST_CASE(a_corrupt_record_and_what_follows_are_never_loaded) {
  TempDir dir;
  crdt::AwLwwMap live(crdt::AwLwwMap::Kind::state);
  {
    auto store = MapStore::open(dir.path);
    BOOST_REQUIRE((*store)->load().has_value());
    (void)(*store)->append(put(live, "c/a", "1", 100));
    (void)(*store)->append(put(live, "c/b", "value-two", 200));
    (void)(*store)->append(put(live, "c/c", "3", 300));
  }
  // Flip a byte inside the second record's payload.
  std::string bytes = slurp(dir.path + "/log");
  const auto at = bytes.find("value-two");
  BOOST_REQUIRE(at != std::string::npos);
  bytes[at] ^= 0x20;
  std::ofstream(dir.path + "/log", std::ios::binary | std::ios::trunc) << bytes;
  auto loaded = (*MapStore::open(dir.path))->load();
  BOOST_REQUIRE(loaded.has_value());
  BOOST_TEST(loaded->problem.find("CRC mismatch") != std::string::npos, loaded->problem);
  BOOST_TEST(value_of(loaded->state, "c/a").has_value());
  BOOST_TEST(!value_of(loaded->state, "c/b").has_value());
  BOOST_TEST(!value_of(loaded->state, "c/c").has_value());  // after the corruption: skipped
}

BOOST_AUTO_TEST_CASE(a_corrupt_snapshot_or_a_foreign_file_is_reported_and_ignored) {
  TempDir dir;
  std::ofstream(dir.path + "/snapshot", std::ios::binary) << "SHS1 not really a snapshot";
  std::ofstream(dir.path + "/log", std::ios::binary) << "hello, not a log";
  auto loaded = (*MapStore::open(dir.path))->load();
  BOOST_REQUIRE(loaded.has_value());
  BOOST_TEST(loaded->records == 0u);
  BOOST_TEST(loaded->problem.find("snapshot: corrupt") != std::string::npos, loaded->problem);
  BOOST_TEST(loaded->problem.find("not a shoal log") != std::string::npos, loaded->problem);
}

BOOST_AUTO_TEST_CASE(crc32_matches_the_standard_check_value) {
  BOOST_TEST(cluster::crc32("123456789") == 0xCBF43926u);
  BOOST_TEST(cluster::crc32("") == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
