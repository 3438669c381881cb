#pragma once

// Shared by the libFuzzer targets.
//
// Seed writing: with SHOAL_FUZZ_SEEDS=DIR in the environment, a target writes its seed inputs
// (valid encodings) into DIR and exits; the seeds in fuzz/corpus/ were made that way
// (scripts/fuzz.sh --seeds).
//
// Structured inputs: a target that drives a core with a sequence of inputs reads them from the
// fuzz input as fields (FieldReader) and writes its seeds with the matching FieldWriter.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::fuzz {

inline void write_seeds_if_asked(const std::vector<std::string>& seeds) {
  const char* dir = std::getenv("SHOAL_FUZZ_SEEDS");
  if (dir == nullptr || *dir == '\0') return;
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    std::ofstream(std::string(dir) + "/seed-" + std::to_string(i), std::ios::binary) << seeds[i];
  }
  std::printf("wrote %zu seeds to %s\n", seeds.size(), dir);
  std::exit(0);
}

// The fuzz input as a stream of fields, read from the front: integers big-endian, byte strings
// after a u16 length. A field past the end reads as zero (or empty), so every input is a valid
// stream, and a mutation of one byte changes one field.
class FieldReader {
 public:
  FieldReader(const std::uint8_t* data, std::size_t size)
      : rest_(reinterpret_cast<const char*>(data), size) {}

  bool done() const { return rest_.empty(); }
  std::uint8_t u8() {
    if (rest_.empty()) return 0;
    const auto v = static_cast<std::uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return v;
  }
  std::uint16_t u16() { return static_cast<std::uint16_t>(uint(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(uint(4)); }
  std::uint64_t u64() { return uint(8); }
  // Up to `max` bytes: a u16 length, then that many bytes (fewer at the end of the input).
  std::string_view bytes(std::size_t max = 65535) {
    std::size_t n = u16();
    if (n > max) n = max;
    if (n > rest_.size()) n = rest_.size();
    const std::string_view out = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return out;
  }

 private:
  std::uint64_t uint(int width) {
    std::uint64_t v = 0;
    for (int i = 0; i < width; ++i)
      v = v << 8 | u8();
    return v;
  }

  std::string_view rest_;
};

// Writes what FieldReader reads: a target's seeds.
class FieldWriter {
 public:
  FieldWriter& u8(std::uint8_t v) {
    out_ += static_cast<char>(v);
    return *this;
  }
  FieldWriter& u16(std::uint16_t v) { return uint(v, 2); }
  FieldWriter& u32(std::uint32_t v) { return uint(v, 4); }
  FieldWriter& u64(std::uint64_t v) { return uint(v, 8); }
  // REQUIRES: b.size() <= 65535.
  FieldWriter& bytes(std::string_view b) {
    u16(static_cast<std::uint16_t>(b.size()));
    out_ += b;
    return *this;
  }
  const std::string& str() const { return out_; }

 private:
  FieldWriter& uint(std::uint64_t v, int width) {
    for (int i = width - 1; i >= 0; --i)
      out_ += static_cast<char>(v >> (8 * i));
    return *this;
  }

  std::string out_;
};

}  // namespace shoal::fuzz
