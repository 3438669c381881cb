#include "cluster/map_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "crdt/codec.h"

namespace shoal::cluster {

namespace {

constexpr std::string_view kSnapshotMagic = "SHS1";
constexpr std::string_view kLogMagic = "SHL1";

std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k)
      c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

void put_u32(std::string& out, std::uint32_t v) {
  out += static_cast<char>(v >> 24);
  out += static_cast<char>(v >> 16);
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}

std::uint32_t get_u32(std::string_view in, std::size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(in.data() + at);
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

std::string record(std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 8);
  put_u32(out, static_cast<std::uint32_t>(payload.size()));
  put_u32(out, crc32(payload));
  out.append(payload);
  return out;
}

std::expected<std::string, std::string> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::string();
    return std::unexpected(path + ": " + std::strerror(errno));
  }
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = path + ": " + std::strerror(errno);
      ::close(fd);
      return std::unexpected(why);
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

std::uint32_t crc32(std::string_view bytes) {
  static const std::array<std::uint32_t, 256> table = make_crc_table();
  std::uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : bytes)
    c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::expected<std::unique_ptr<MapStore>, std::string> MapStore::open(std::string dir,
                                                                     StoreOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return std::unexpected(dir + ": " + ec.message());
  return std::unique_ptr<MapStore>(new MapStore(std::move(dir), options));
}

MapStore::~MapStore() {
  if (log_fd_ >= 0) ::close(log_fd_);
}

std::expected<StoreLoad, std::string> MapStore::load() {
  StoreLoad out;
  auto join = [&](std::string_view payload, const std::string& what) -> bool {
    auto map = crdt::decode(payload);
    if (!map) {
      out.problem = what + ": " + map.error().to_string();
      return false;
    }
    out.state.join(*map);
    ++out.records;
    return true;
  };
  // The snapshot: one record after the magic.
  auto snap = read_file(dir_ + "/snapshot");
  if (!snap) return std::unexpected(snap.error());
  if (!snap->empty()) {
    const std::string_view s = *snap;
    bool ok = s.size() >= 12 && s.substr(0, 4) == kSnapshotMagic;
    if (ok) {
      const std::size_t len = get_u32(s, 4);
      ok = len == s.size() - 12 && get_u32(s, 8) == crc32(s.substr(12));
      if (ok) ok = join(s.substr(12), "snapshot");
    }
    if (!ok && out.problem.empty()) out.problem = "snapshot: corrupt (ignored)";
  }
  // The log: records until the end, or until the first torn or corrupt one.
  auto log = read_file(dir_ + "/log");
  if (!log) return std::unexpected(log.error());
  const std::string_view l = *log;
  std::size_t pos = 0;
  if (!l.empty()) {
    if (l.size() < 4 || l.substr(0, 4) != kLogMagic) {
      out.problem +=
          std::string(out.problem.empty() ? "" : "; ") + "log: not a shoal log (ignored)";
      out.skipped_bytes = l.size();
    } else {
      pos = 4;
      while (pos < l.size()) {
        std::string why;
        if (l.size() - pos < 8) {
          why = "a torn record header";
        } else {
          const std::size_t len = get_u32(l, pos);
          if (len > options_.max_record_bytes || len > l.size() - pos - 8) {
            why = "a torn record (length " + std::to_string(len) + " past the end)";
          } else if (get_u32(l, pos + 4) != crc32(l.substr(pos + 8, len))) {
            why = "a corrupt record (CRC mismatch)";
          } else {
            std::string problem_before = out.problem;
            if (!join(l.substr(pos + 8, len), "log record at byte " + std::to_string(pos))) {
              why = out.problem;
              out.problem = problem_before;
            } else {
              pos += 8 + len;
              continue;
            }
          }
        }
        out.skipped_bytes = l.size() - pos;
        out.problem += std::string(out.problem.empty() ? "" : "; ") + "log: " + why + " at byte " +
                       std::to_string(pos) + ", " + std::to_string(out.skipped_bytes) +
                       " bytes skipped";
        break;
      }
    }
  }
  // Appends continue after the last valid record.
  const std::string path = dir_ + "/log";
  if (out.skipped_bytes > 0 && pos >= 4) {
    if (::truncate(path.c_str(), static_cast<off_t>(pos)) != 0)
      return std::unexpected(path + ": cannot truncate: " + std::strerror(errno));
    log_bytes_ = pos;
  } else if (out.skipped_bytes > 0) {
    ::unlink(path.c_str());
    log_bytes_ = 0;
  } else {
    log_bytes_ = l.size();
  }
  if (auto opened = open_log(); !opened) return std::unexpected(opened.error());
  return out;
}

std::expected<void, std::string> MapStore::open_log() {
  const std::string path = dir_ + "/log";
  log_fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd_ < 0) return std::unexpected(path + ": " + std::strerror(errno));
  if (log_bytes_ == 0) {
    if (!write_all(log_fd_, kLogMagic)) return std::unexpected(path + ": " + std::strerror(errno));
    log_bytes_ = kLogMagic.size();
  }
  return {};
}

std::expected<void, std::string> MapStore::append(std::string_view encoded) {
  if (log_fd_ < 0) return std::unexpected("the store is not loaded");
  const std::string r = record(encoded);
  if (!write_all(log_fd_, r)) return std::unexpected(dir_ + "/log: " + std::strerror(errno));
  log_bytes_ += r.size();
  if (options_.fsync == StoreOptions::Fsync::always) ::fdatasync(log_fd_);
  return {};
}

std::expected<void, std::string> MapStore::snapshot(const crdt::AwLwwMap& state) {
  const std::string path = dir_ + "/snapshot";
  const std::string tmp = path + ".tmp";
  std::string bytes(kSnapshotMagic);
  bytes += record(crdt::encode(state));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return std::unexpected(tmp + ": " + std::strerror(errno));
  const bool ok =
      write_all(fd, bytes) && (options_.fsync == StoreOptions::Fsync::never || ::fsync(fd) == 0);
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0)
    return std::unexpected(path + ": " + std::strerror(errno));
  if (options_.fsync != StoreOptions::Fsync::never) {
    const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }
  // The snapshot holds everything: the log starts again.
  if (log_fd_ >= 0) ::close(log_fd_);
  const std::string log = dir_ + "/log";
  if (::truncate(log.c_str(), 0) != 0 && errno != ENOENT)
    return std::unexpected(log + ": " + std::strerror(errno));
  log_bytes_ = 0;
  return open_log();
}

}  // namespace shoal::cluster
