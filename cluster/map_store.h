#pragma once

// MapStore: the replicated map on disk, in an agent's data dir, so that a whole cluster that stops
// and starts again finds its child specs, checkpoints and failure marks again (no peer of ours
// keeps anything when every node stops).
//
// Layout (<dir>/snapshot and <dir>/log):
//   snapshot  "SHS1", then one record: the whole map (crdt/codec.h), written to a temporary file,
//             fsync'd and renamed over the old one, after which the log starts afresh;
//   log       "SHL1", then records appended as the map changes: every local batch sealed, every
//             batch and state joined from a peer (crdt/codec.h encodings).
//   record    [u32 length][u32 CRC-32 of the payload][payload], big-endian.
// Loading joins the snapshot, then every log record, into one map: the CRDT join makes the order
// and any repetition harmless, and joining an old state into a live cluster cannot bring back what
// the cluster removed since (its causal context covers the old dots). A record whose length runs
// past the end of the file (a torn write) or whose CRC does not match (corruption) ends the log:
// it and everything after it are reported and skipped, never loaded, and the log is truncated
// there so that later appends follow valid records. A corrupt snapshot is reported and ignored.
//
// Fsync policy (StoreOptions::fsync): `snapshot` (the default) fsyncs snapshots only: appends are
// plain writes, which survive the agent's crash (kill -9) but not the machine's (the kernel writes
// them back within about 30 s); `always` also fdatasyncs the log after every append; `never`
// fsyncs nothing. Not thread-safe; the agent calls it from its loop.

#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>

#include "crdt/aw_lww_map.h"

namespace shoal::cluster {

struct StoreOptions {
  enum class Fsync { never, snapshot, always };
  Fsync fsync = Fsync::snapshot;
  // A snapshot is due once the log holds this many bytes.
  std::size_t snapshot_after_bytes = 16 * 1024 * 1024;
  // Largest record accepted on load (a longer length field is corruption).
  std::size_t max_record_bytes = 256 * 1024 * 1024;
};

struct StoreLoad {
  crdt::AwLwwMap state{crdt::AwLwwMap::Kind::state};
  std::size_t records = 0;        // snapshot and log records joined
  std::size_t skipped_bytes = 0;  // of a torn or corrupt tail
  std::string problem;            // what was skipped and why (empty when all was well)
};

class MapStore {
 public:
  // Creates `dir` if needed and opens the log for appending (after load()).
  static std::expected<std::unique_ptr<MapStore>, std::string> open(std::string dir,
                                                                    StoreOptions options = {});
  ~MapStore();
  MapStore(const MapStore&) = delete;
  MapStore& operator=(const MapStore&) = delete;

  // Reads the snapshot and the log. Call once, before the first append.
  std::expected<StoreLoad, std::string> load();
  // Appends one encoded map (a delta or a state). Returns a reason on an IO error.
  std::expected<void, std::string> append(std::string_view encoded);
  // Writes `state` as the new snapshot and empties the log.
  std::expected<void, std::string> snapshot(const crdt::AwLwwMap& state);
  bool snapshot_due() const { return log_bytes_ >= options_.snapshot_after_bytes; }
  std::size_t log_bytes() const { return log_bytes_; }
  const std::string& dir() const { return dir_; }

 private:
  MapStore(std::string dir, StoreOptions options) : dir_(std::move(dir)), options_(options) {}
  std::expected<void, std::string> open_log();

  std::string dir_;
  StoreOptions options_;
  int log_fd_ = -1;
  std::size_t log_bytes_ = 0;
};

// CRC-32 (IEEE 802.3, reflected), as the records carry it.
std::uint32_t crc32(std::string_view bytes);

}  // namespace shoal::cluster
