#pragma once

// MsgWriter: appends msgpack to a std::string; every shoal encoder writes through one (the
// decoders read with MsgReader, crdt/msgpack_reader.h).
//
// A thin face over msgpack-c's packer: integers take their smallest encoding (uint(7) is one
// byte), strings and binaries are written with their length header. packer() gives the packer
// itself for what this face does not cover (floats, signed integers).
//
// Not thread-safe; a writer is a short-lived local of one encode call, and `out` must outlive it.

#include <cstdint>
#include <msgpack.hpp>
#include <string>
#include <string_view>

namespace shoal::crdt {

class MsgWriter {
 public:
  // What msgpack-c's packer writes through.
  struct Sink {
    std::string* out;
    void write(const char* data, std::size_t size) { out->append(data, size); }
  };

  explicit MsgWriter(std::string& out) : sink_{&out}, pk_(sink_) {}
  MsgWriter(const MsgWriter&) = delete;
  MsgWriter& operator=(const MsgWriter&) = delete;

  void array(std::size_t n) { pk_.pack_array(static_cast<std::uint32_t>(n)); }
  void map(std::size_t n) { pk_.pack_map(static_cast<std::uint32_t>(n)); }
  void uint(std::uint64_t v) { pk_.pack_uint64(v); }
  void boolean(bool v) { v ? pk_.pack_true() : pk_.pack_false(); }
  void nil() { pk_.pack_nil(); }
  void str(std::string_view s) {
    pk_.pack_str(static_cast<std::uint32_t>(s.size()));
    pk_.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
  }
  void bin(std::string_view s) {
    pk_.pack_bin(static_cast<std::uint32_t>(s.size()));
    pk_.pack_bin_body(s.data(), static_cast<std::uint32_t>(s.size()));
  }
  // Appends bytes that are already msgpack (an encoded element).
  void raw(std::string_view encoded) { sink_.out->append(encoded); }
  msgpack::packer<Sink>& packer() { return pk_; }

 private:
  Sink sink_;
  msgpack::packer<Sink> pk_;
};

}  // namespace shoal::crdt
