#pragma once

// The RPC commands' arguments and errors (agent_rpc.cpp, agent_messaging.cpp): every argument is
// checked, and a bad one named in a bad_request error.

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bin/rpc/value.h"

namespace shoal::bin::args {

using rpc::Value;

struct Failure {
  std::string code;
  std::string message;
};
using Result = std::expected<Value, Failure>;

inline Failure bad(std::string message) {
  return {"bad_request", std::move(message)};
}

// --- Arguments ---

inline std::expected<std::string, Failure> text(const Value& args, std::string_view key) {
  const Value* v = args.find(key);
  if (v == nullptr || !v->is_string() || v->as_string().empty())
    return std::unexpected(bad(std::string(key) + ": expected a non-empty string"));
  return v->as_string();
}

inline std::string optional_text(const Value& args, std::string_view key) {
  const Value* v = args.find(key);
  return v != nullptr ? v->as_string() : std::string();
}

inline std::expected<std::vector<std::string>, Failure> strings(const Value& args,
                                                                std::string_view key) {
  std::vector<std::string> out;
  const Value* v = args.find(key);
  if (v == nullptr || v->is_nil()) return out;
  if (!v->is_array())
    return std::unexpected(bad(std::string(key) + ": expected a list of strings"));
  for (const Value& e : v->as_array()) {
    if (!e.is_string())
      return std::unexpected(bad(std::string(key) + ": expected a list of strings"));
    out.push_back(e.as_string());
  }
  return out;
}

inline std::expected<std::uint64_t, Failure> number(const Value& args, std::string_view key,
                                                    std::uint64_t fallback, std::uint64_t max) {
  const Value* v = args.find(key);
  if (v == nullptr || v->is_nil()) return fallback;
  const std::uint64_t n = v->as_u64(UINT64_MAX);
  if (!v->is_number() || n == UINT64_MAX || n > max) {
    return std::unexpected(
        bad(std::string(key) + ": expected a whole number up to " + std::to_string(max)));
  }
  return n;
}

// "k=v" -> (k, v)
inline std::optional<std::pair<std::string, std::string>> key_value(std::string_view kv) {
  const auto eq = kv.find('=');
  if (eq == std::string_view::npos || eq == 0) return std::nullopt;
  return std::make_pair(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
}

}  // namespace shoal::bin::args
