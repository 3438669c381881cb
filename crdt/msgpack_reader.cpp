#include "crdt/msgpack_reader.h"

#include <string>

namespace shoal::crdt {

void MsgReader::fail(Errc code, const char* field, std::string detail) {
  if (failed_) return;
  failed_ = true;
  std::string where;
  if (section_ != nullptr) {
    where = section_;
    where += '[';
    where += std::to_string(index_);
    where += "].";
  }
  where += field;
  error_ = Error{code, std::move(where), std::move(detail)};
}

bool MsgReader::need(const char* field, std::size_t n) {
  if (failed_) return false;
  if (remaining() < n) {
    fail(Errc::truncated, field,
         "needs " + std::to_string(n) + " bytes, " + std::to_string(remaining()) + " left");
    return false;
  }
  return true;
}

std::uint64_t MsgReader::read_be(std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    v = (v << 8) | static_cast<std::uint8_t>(data_[pos_ + i]);
  }
  pos_ += n;
  return v;
}

std::uint32_t MsgReader::map(const char* field, std::uint32_t max) {
  if (!need(field, 1)) return 0;
  const auto tag = static_cast<std::uint8_t>(data_[pos_]);
  std::uint64_t count = 0;
  if ((tag & 0xf0) == 0x80) {
    ++pos_;
    count = tag & 0x0f;
  } else if (tag == 0xde) {
    if (!need(field, 3)) return 0;
    ++pos_;
    count = read_be(2);
  } else if (tag == 0xdf) {
    if (!need(field, 5)) return 0;
    ++pos_;
    count = read_be(4);
  } else {
    fail(Errc::bad_type, field, "expected a map");
    return 0;
  }
  if (count > max) {
    fail(Errc::too_large, field, std::to_string(count) + " pairs > " + std::to_string(max));
    return 0;
  }
  if (count * 2 > remaining()) {
    fail(Errc::truncated, field,
         std::to_string(count) + " pairs in " + std::to_string(remaining()) + " bytes");
    return 0;
  }
  return static_cast<std::uint32_t>(count);
}

std::uint32_t MsgReader::array(const char* field, std::uint32_t max) {
  if (!need(field, 1)) return 0;
  const auto tag = static_cast<std::uint8_t>(data_[pos_]);
  std::uint64_t count = 0;
  if ((tag & 0xf0) == 0x90) {
    ++pos_;
    count = tag & 0x0f;
  } else if (tag == 0xdc) {
    if (!need(field, 3)) return 0;
    ++pos_;
    count = read_be(2);
  } else if (tag == 0xdd) {
    if (!need(field, 5)) return 0;
    ++pos_;
    count = read_be(4);
  } else {
    fail(Errc::bad_type, field, "expected an array");
    return 0;
  }
  if (count > max) {
    fail(Errc::too_large, field, std::to_string(count) + " elements > " + std::to_string(max));
    return 0;
  }
  if (count > remaining()) {
    fail(Errc::truncated, field,
         std::to_string(count) + " elements in " + std::to_string(remaining()) + " bytes");
    return 0;
  }
  return static_cast<std::uint32_t>(count);
}

void MsgReader::array_of(const char* field, std::uint32_t count) {
  const std::size_t before = pos_;
  const std::uint32_t n = array(field, UINT32_MAX);
  if (!failed_ && n != count) {
    pos_ = before;
    fail(Errc::invalid, field,
         "expected " + std::to_string(count) + " elements, got " + std::to_string(n));
  }
}

std::uint64_t MsgReader::uint(const char* field, std::uint64_t max) {
  if (!need(field, 1)) return 0;
  const auto tag = static_cast<std::uint8_t>(data_[pos_]);
  std::uint64_t v = 0;
  bool negative = false;
  if (tag <= 0x7f) {
    ++pos_;
    v = tag;
  } else if (tag >= 0xcc && tag <= 0xcf) {  // uint 8/16/32/64
    const std::size_t n = std::size_t{1} << (tag - 0xcc);
    if (!need(field, 1 + n)) return 0;
    ++pos_;
    v = read_be(n);
  } else if (tag >= 0xd0 && tag <= 0xd3) {  // int 8/16/32/64: accepted when not negative
    const std::size_t n = std::size_t{1} << (tag - 0xd0);
    if (!need(field, 1 + n)) return 0;
    ++pos_;
    v = read_be(n);
    negative = (v >> (8 * n - 1)) & 1;
  } else if (tag >= 0xe0) {
    negative = true;
  } else {
    fail(Errc::bad_type, field, "expected an unsigned integer");
    return 0;
  }
  if (negative) {
    fail(Errc::invalid, field, "negative integer");
    return 0;
  }
  if (v > max) {
    fail(Errc::too_large, field, std::to_string(v) + " > " + std::to_string(max));
    return 0;
  }
  return v;
}

std::string_view MsgReader::bytes(const char* field, std::size_t max) {
  if (!need(field, 1)) return {};
  const auto tag = static_cast<std::uint8_t>(data_[pos_]);
  std::size_t header = 1;
  std::uint64_t len = 0;
  if ((tag & 0xe0) == 0xa0) {  // fixstr
    len = tag & 0x1f;
  } else if (tag == 0xc4 || tag == 0xd9) {  // bin 8, str 8
    header = 2;
  } else if (tag == 0xc5 || tag == 0xda) {  // bin 16, str 16
    header = 3;
  } else if (tag == 0xc6 || tag == 0xdb) {  // bin 32, str 32
    header = 5;
  } else {
    fail(Errc::bad_type, field, "expected a byte string");
    return {};
  }
  if (!need(field, header)) return {};
  ++pos_;
  if (header > 1) len = read_be(header - 1);
  if (len > max) {
    pos_ -= header;
    fail(Errc::too_large, field, std::to_string(len) + " bytes > " + std::to_string(max));
    return {};
  }
  if (!need(field, len)) return {};
  std::string_view out = data_.substr(pos_, len);
  pos_ += len;
  return out;
}

}  // namespace shoal::crdt
