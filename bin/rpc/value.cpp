#include "bin/rpc/value.h"

#include <cmath>
#include <cstdio>
#include <msgpack.hpp>

#include "crdt/msgpack_writer.h"

namespace shoal::bin::rpc {

namespace {

const std::string kEmptyString;
const Value::Array kEmptyArray;
const Value::Map kEmptyMap;

void pack(crdt::MsgWriter& w, const Value& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          w.nil();
        } else if constexpr (std::is_same_v<T, std::string>) {
          w.str(x);
        } else if constexpr (std::is_same_v<T, Value::Array>) {
          w.array(x.size());
          for (const Value& e : x)
            pack(w, e);
        } else if constexpr (std::is_same_v<T, Value::Map>) {
          w.map(x.size());
          for (const auto& [k, e] : x) {
            w.str(k);
            pack(w, e);
          }
        } else {
          w.packer().pack(x);
        }
      },
      v.variant());
}

std::expected<Value, std::string> convert(const msgpack::object& o, std::size_t depth,
                                          const ValueLimits& limits) {
  if (depth > limits.max_depth) return std::unexpected("nested too deeply");
  switch (o.type) {
    case msgpack::type::NIL:
      return Value();
    case msgpack::type::BOOLEAN:
      return Value(o.via.boolean);
    case msgpack::type::POSITIVE_INTEGER:
      return Value(static_cast<unsigned long long>(o.via.u64));
    case msgpack::type::NEGATIVE_INTEGER:
      return Value(static_cast<long long>(o.via.i64));
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return Value(o.via.f64);
    case msgpack::type::STR:
      return Value(std::string(o.via.str.ptr, o.via.str.size));
    case msgpack::type::BIN:
      return Value(std::string(o.via.bin.ptr, o.via.bin.size));
    case msgpack::type::ARRAY: {
      Value::Array out;
      out.reserve(o.via.array.size);
      for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
        auto e = convert(o.via.array.ptr[i], depth + 1, limits);
        if (!e) return std::unexpected("[" + std::to_string(i) + "]: " + e.error());
        out.push_back(std::move(*e));
      }
      return Value(std::move(out));
    }
    case msgpack::type::MAP: {
      Value::Map out;
      out.reserve(o.via.map.size);
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const msgpack::object_kv& kv = o.via.map.ptr[i];
        if (kv.key.type != msgpack::type::STR) return std::unexpected("a map key is not a string");
        std::string key(kv.key.via.str.ptr, kv.key.via.str.size);
        auto e = convert(kv.val, depth + 1, limits);
        if (!e) return std::unexpected(key + ": " + e.error());
        out.emplace_back(std::move(key), std::move(*e));
      }
      return Value(std::move(out));
    }
    case msgpack::type::EXT:
      return std::unexpected("an ext value (not used by the RPC)");
  }
  return std::unexpected("an unknown msgpack type");
}

void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    char buf[8];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      // A valid UTF-8 sequence goes through as it is; an invalid byte is escaped alone.
      std::size_t len = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
      if (c >= 0xf5) len = 0;
      bool ok = len != 0 && i + len <= s.size();
      for (std::size_t k = 1; ok && k < len; ++k)
        ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
      if (ok) {
        out.append(s.substr(i, len));
        i += len;
        continue;
      }
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    }
    ++i;
  }
  out += '"';
}

void json(std::string& out, const Value& v, bool pretty, int indent) {
  auto newline = [&](int level) {
    if (!pretty) return;
    out += '\n';
    out.append(static_cast<std::size_t>(level) * 2, ' ');
  };
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          out += "null";
        } else if constexpr (std::is_same_v<T, bool>) {
          out += x ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::int64_t> || std::is_same_v<T, std::uint64_t>) {
          out += std::to_string(x);
        } else if constexpr (std::is_same_v<T, double>) {
          if (!std::isfinite(x)) {
            out += "null";
          } else {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.17g", x);
            out += buf;
          }
        } else if constexpr (std::is_same_v<T, std::string>) {
          json_string(out, x);
        } else if constexpr (std::is_same_v<T, Value::Array>) {
          out += '[';
          for (std::size_t i = 0; i < x.size(); ++i) {
            if (i > 0) out += ',';
            newline(indent + 1);
            json(out, x[i], pretty, indent + 1);
          }
          if (!x.empty()) newline(indent);
          out += ']';
        } else {
          out += '{';
          for (std::size_t i = 0; i < x.size(); ++i) {
            if (i > 0) out += ',';
            newline(indent + 1);
            json_string(out, x[i].first);
            out += pretty ? ": " : ":";
            json(out, x[i].second, pretty, indent + 1);
          }
          if (!x.empty()) newline(indent);
          out += '}';
        }
      },
      v.variant());
}

}  // namespace

bool Value::is_number() const {
  return std::holds_alternative<std::int64_t>(v_) || std::holds_alternative<std::uint64_t>(v_) ||
         std::holds_alternative<double>(v_);
}

bool Value::as_bool(bool fallback) const {
  const bool* b = std::get_if<bool>(&v_);
  return b ? *b : fallback;
}

std::uint64_t Value::as_u64(std::uint64_t fallback) const {
  if (const auto* u = std::get_if<std::uint64_t>(&v_)) return *u;
  if (const auto* i = std::get_if<std::int64_t>(&v_); i && *i >= 0)
    return static_cast<std::uint64_t>(*i);
  return fallback;
}

std::int64_t Value::as_i64(std::int64_t fallback) const {
  if (const auto* i = std::get_if<std::int64_t>(&v_)) return *i;
  if (const auto* u = std::get_if<std::uint64_t>(&v_);
      u && *u <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(*u);
  }
  return fallback;
}

double Value::as_double(double fallback) const {
  if (const auto* d = std::get_if<double>(&v_)) return *d;
  if (const auto* i = std::get_if<std::int64_t>(&v_)) return static_cast<double>(*i);
  if (const auto* u = std::get_if<std::uint64_t>(&v_)) return static_cast<double>(*u);
  return fallback;
}

const std::string& Value::as_string() const {
  const auto* s = std::get_if<std::string>(&v_);
  return s ? *s : kEmptyString;
}

const Value::Array& Value::as_array() const {
  const auto* a = std::get_if<Array>(&v_);
  return a ? *a : kEmptyArray;
}

const Value::Map& Value::as_map() const {
  const auto* m = std::get_if<Map>(&v_);
  return m ? *m : kEmptyMap;
}

const Value* Value::find(std::string_view key) const {
  for (const auto& [k, v] : as_map()) {
    if (k == key) return &v;
  }
  return nullptr;
}

Value& Value::set(std::string key, Value v) {
  if (!is_map()) v_ = Map{};
  Map& m = std::get<Map>(v_);
  for (auto& [k, e] : m) {
    if (k == key) {
      e = std::move(v);
      return *this;
    }
  }
  m.emplace_back(std::move(key), std::move(v));
  return *this;
}

Value& Value::push(Value v) {
  if (!is_array()) v_ = Array{};
  std::get<Array>(v_).push_back(std::move(v));
  return *this;
}

std::string encode_value(const Value& v) {
  std::string out;
  crdt::MsgWriter w(out);
  pack(w, v);
  return out;
}

std::expected<Value, std::string> decode_value(std::string_view bytes, const ValueLimits& limits) {
  if (bytes.size() > limits.max_bytes) {
    return std::unexpected("too large (" + std::to_string(bytes.size()) + " bytes > " +
                           std::to_string(limits.max_bytes) + ")");
  }
  if (bytes.empty()) return std::unexpected("empty");
  try {
    std::size_t offset = 0;
    const msgpack::unpack_limit bounds(limits.max_items, limits.max_items, limits.max_string,
                                       limits.max_string, limits.max_string, limits.max_depth);
    msgpack::object_handle handle =
        msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, bounds);
    if (offset != bytes.size()) return std::unexpected("trailing bytes after the value");
    return convert(handle.get(), 0, limits);
  } catch (const msgpack::insufficient_bytes&) {
    return std::unexpected("truncated");
  } catch (const std::exception& e) {
    return std::unexpected(std::string("not msgpack (") + e.what() + ")");
  }
}

std::string to_json(const Value& v, bool pretty) {
  std::string out;
  json(out, v, pretty, 0);
  return out;
}

}  // namespace shoal::bin::rpc
