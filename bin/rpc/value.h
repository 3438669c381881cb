#pragma once

// Value: the data of the agent's RPC, a small msgpack document model (nil, bool, integers,
// doubles, strings, arrays, string-keyed maps in insertion order). The agent builds its replies
// as Values; the CLI decodes them and prints them as JSON or as tables.
//
// decode_value() never throws and never trusts a count: the whole input must be one msgpack
// object within ValueLimits (sizes, counts, nesting), and map keys must be strings; otherwise it
// returns a one-line reason.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace shoal::bin::rpc {

class Value {
 public:
  using Array = std::vector<Value>;
  using Map = std::vector<std::pair<std::string, Value>>;

  Value() = default;
  Value(std::nullptr_t) {}
  Value(bool b) : v_(b) {}
  // Integers are kept canonical, as msgpack encodes them: unsigned unless negative.
  Value(int i) : Value(static_cast<long long>(i)) {}
  Value(long i) : Value(static_cast<long long>(i)) {}
  Value(long long i) {
    if (i >= 0) {
      v_ = static_cast<std::uint64_t>(i);
    } else {
      v_ = static_cast<std::int64_t>(i);
    }
  }
  Value(unsigned u) : v_(static_cast<std::uint64_t>(u)) {}
  Value(unsigned long u) : v_(static_cast<std::uint64_t>(u)) {}
  Value(unsigned long long u) : v_(static_cast<std::uint64_t>(u)) {}
  Value(double d) : v_(d) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(Array a) : v_(std::move(a)) {}
  Value(Map m) : v_(std::move(m)) {}

  static Value map() { return Value(Map{}); }
  static Value array() { return Value(Array{}); }

  bool is_nil() const { return std::holds_alternative<std::monostate>(v_); }
  bool is_bool() const { return std::holds_alternative<bool>(v_); }
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_array() const { return std::holds_alternative<Array>(v_); }
  bool is_map() const { return std::holds_alternative<Map>(v_); }
  // Integers of either sign, and doubles.
  bool is_number() const;

  // Typed reads; each returns the fallback when the value has another type (or does not fit).
  bool as_bool(bool fallback = false) const;
  std::uint64_t as_u64(std::uint64_t fallback = 0) const;
  std::int64_t as_i64(std::int64_t fallback = 0) const;
  double as_double(double fallback = 0) const;
  const std::string& as_string() const;  // "" unless a string
  const Array& as_array() const;         // empty unless an array
  const Map& as_map() const;             // empty unless a map

  // Map access: the value under `key`, or nullptr (also when this is not a map).
  const Value* find(std::string_view key) const;
  // Sets `key` in a map (replacing its value if it is there; a non-map becomes an empty map
  // first) / appends to an array (likewise).
  Value& set(std::string key, Value v);
  Value& push(Value v);

  const auto& variant() const { return v_; }
  friend bool operator==(const Value& a, const Value& b) { return a.v_ == b.v_; }

 private:
  std::variant<std::monostate, bool, std::int64_t, std::uint64_t, double, std::string, Array, Map>
      v_;
};

struct ValueLimits {
  std::size_t max_bytes = 1024 * 1024;  // the whole encoded value
  std::size_t max_string = 256 * 1024;  // one string
  std::size_t max_items = 100'000;      // elements of one array or map
  std::size_t max_depth = 16;
};

std::string encode_value(const Value& v);
std::expected<Value, std::string> decode_value(std::string_view bytes, const ValueLimits& limits);

// JSON text: compact on one line, or indented by two spaces. Strings that are not valid UTF-8
// have each invalid byte written as \u00XX.
std::string to_json(const Value& v, bool pretty = false);

}  // namespace shoal::bin::rpc
