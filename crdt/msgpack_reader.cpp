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

std::uint32_t MsgReader::array_at_least(const char* field, std::uint32_t min, std::uint32_t max) {
  const std::size_t before = pos_;
  const std::uint32_t n = array(field, max);
  if (!failed_ && n < min) {
    pos_ = before;
    fail(Errc::invalid, field,
         "expected at least " + std::to_string(min) + " elements, got " + std::to_string(n));
  }
  return failed_ ? 0 : n;
}

void MsgReader::skip(const char* field) {
  skip(field, 0);
}

void MsgReader::skip(const char* field, int depth) {
  if (depth > kMaxSkipDepth) {
    fail(Errc::invalid, field, "nested too deep");
    return;
  }
  if (!need(field, 1)) return;
  const auto tag = static_cast<std::uint8_t>(data_[pos_]);
  // Fixed-size values: the tag byte and what follows it.
  auto fixed = [&](std::size_t n) {
    if (need(field, 1 + n)) pos_ += 1 + n;
  };
  // Length-prefixed bytes (str, bin, ext): `len_bytes` of length, then `extra` bytes and the data.
  auto sized = [&](std::size_t len_bytes, std::size_t extra) {
    if (!need(field, 1 + len_bytes)) return;
    ++pos_;
    const std::uint64_t len = read_be(len_bytes);
    if (need(field, extra + len)) pos_ += extra + len;
  };
  // `count` elements (maps: twice the pairs), after `header` bytes.
  auto elements = [&](std::size_t header, std::uint64_t count) {
    pos_ += header;
    for (std::uint64_t i = 0; i < count && !failed_; ++i)
      skip(field, depth + 1);
  };
  if (tag <= 0x7f || tag >= 0xe0 || tag == 0xc0 || tag == 0xc2 || tag == 0xc3) {
    ++pos_;  // fixint, nil, bool
  } else if ((tag & 0xe0) == 0xa0) {
    const std::size_t len = tag & 0x1f;  // fixstr
    if (need(field, 1 + len)) pos_ += 1 + len;
  } else if ((tag & 0xf0) == 0x90) {
    elements(1, tag & 0x0f);
  } else if ((tag & 0xf0) == 0x80) {
    elements(1, 2 * std::uint64_t{tag & 0x0fu});
  } else if (tag == 0xdc || tag == 0xdd || tag == 0xde || tag == 0xdf) {
    const std::size_t n = (tag == 0xdc || tag == 0xde) ? 2 : 4;
    if (!need(field, 1 + n)) return;
    const std::size_t at = pos_;
    ++pos_;
    std::uint64_t count = read_be(n);
    pos_ = at;
    if (tag >= 0xde) count *= 2;
    // Each element takes at least a byte: a count beyond what is left is a lie.
    if (count > remaining()) {
      fail(Errc::truncated, field, "more elements than bytes");
      return;
    }
    elements(1 + n, count);
  } else if (tag >= 0xcc && tag <= 0xcf) {
    fixed(std::size_t{1} << (tag - 0xcc));  // uint 8..64
  } else if (tag >= 0xd0 && tag <= 0xd3) {
    fixed(std::size_t{1} << (tag - 0xd0));  // int 8..64
  } else if (tag == 0xca || tag == 0xcb) {
    fixed(tag == 0xca ? 4 : 8);  // float 32, 64
  } else if (tag >= 0xd4 && tag <= 0xd8) {
    fixed(1 + (std::size_t{1} << (tag - 0xd4)));  // fixext 1..16: type byte and data
  } else if (tag == 0xd9 || tag == 0xc4) {
    sized(1, 0);  // str 8, bin 8
  } else if (tag == 0xda || tag == 0xc5) {
    sized(2, 0);
  } else if (tag == 0xdb || tag == 0xc6) {
    sized(4, 0);
  } else if (tag >= 0xc7 && tag <= 0xc9) {
    sized(std::size_t{1} << (tag - 0xc7), 1);  // ext 8/16/32: length, type byte, data
  } else {
    fail(Errc::bad_type, field, "never used byte 0xc1");
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
