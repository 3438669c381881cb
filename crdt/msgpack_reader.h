#pragma once

// MsgReader: a bounded pull reader over msgpack bytes, used by every shoal decoder.
//
// msgpack-c's own unpacker builds an object tree and reports errors by exception; a decoder of
// hostile input wants neither. MsgReader reads one value at a time straight from the buffer:
// every read checks the type byte, the caller's bound and the bytes left before it touches data,
// so no read runs past the end and no count read from the wire can make anyone allocate more
// than the buffer could describe. The first failure is sticky: afterwards every read returns an
// empty value (0, "", an array of 0 elements), so decoding loops end at once, and error() says
// what failed first and where.
//
// Not thread-safe; a reader is a short-lived local of one decode call. It never owns the bytes:
// string_views it returns point into the buffer it was given.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "crdt/error.h"

namespace shoal::crdt {

class MsgReader {
 public:
  explicit MsgReader(std::string_view bytes) : data_(bytes) {}
  // The reader keeps a view: a temporary string would dangle.
  explicit MsgReader(std::string&&) = delete;

  // True iff no read has failed so far.
  bool ok() const { return !failed_; }
  // The first failure. REQUIRES: !ok().
  const Error& error() const { return error_; }
  // Bytes not yet consumed.
  std::size_t remaining() const { return data_.size() - pos_; }
  // The bytes not yet consumed.
  std::string_view rest() const { return data_.substr(pos_); }

  // Names the element being decoded, for error messages: after at("entries", 3) a failure to
  // read field "key" reports "entries[3].key". `section` must outlive the reader (a literal).
  void at(const char* section, std::size_t index) {
    section_ = section;
    index_ = index;
  }

  // Reads an array header and returns its element count. Fails with too_large if the count
  // exceeds `max`, and with truncated if fewer bytes are left than the count needs (each element
  // takes at least one byte), so callers may reserve() the returned count.
  std::uint32_t array(const char* field, std::uint32_t max);
  // Reads a map header and returns its pair count, bounded like array() (each pair takes at least
  // two bytes); the caller then reads key, value, key, value...
  std::uint32_t map(const char* field, std::uint32_t max);
  // Reads an array header that must announce exactly `count` elements.
  void array_of(const char* field, std::uint32_t count);
  // Reads an array header that must announce at least `min` (and at most `max`) elements: a
  // record whose newer writers may append fields. Returns the count.
  std::uint32_t array_at_least(const char* field, std::uint32_t min, std::uint32_t max);
  // Skips one value of any type (a field or a message this reader does not know). Nesting deeper
  // than kMaxSkipDepth fails: skipping never recurses without bound.
  void skip(const char* field);
  static constexpr int kMaxSkipDepth = 16;
  // Reads a non-negative integer in any msgpack integer format. Fails if it exceeds `max`.
  std::uint64_t uint(const char* field, std::uint64_t max = UINT64_MAX);
  // Reads a byte string (msgpack bin or str) of at most `max` bytes.
  std::string_view bytes(const char* field, std::size_t max);
  // True iff the next value is nil, which it then consumes; otherwise reads nothing.
  bool nil() {
    if (failed_ || pos_ >= data_.size() || static_cast<unsigned char>(data_[pos_]) != 0xc0)
      return false;
    ++pos_;
    return true;
  }

  // Marks the reader failed (if it is not already) with the given error.
  void fail(Errc code, const char* field, std::string detail = {});

 private:
  bool need(const char* field, std::size_t n);
  void skip(const char* field, int depth);
  std::uint64_t read_be(std::size_t n);

  std::string_view data_;
  std::size_t pos_ = 0;
  bool failed_ = false;
  Error error_{Errc::invalid, {}, {}};
  const char* section_ = nullptr;
  std::size_t index_ = 0;
};

}  // namespace shoal::crdt
