#include "registry/pid.h"

#include <charconv>

namespace shoal::registry {

std::string Pid::to_string() const {
  return "<" + node + "." + std::to_string(creation) + "." + std::to_string(id) + ">";
}

std::expected<Pid, std::string> Pid::parse(std::string_view text) {
  if (text.size() < 7 || text.front() != '<' || text.back() != '>') {
    return std::unexpected("a pid looks like <node.creation.id>, got '" + std::string(text) + "'");
  }
  const std::string_view body = text.substr(1, text.size() - 2);
  const auto last = body.rfind('.');
  const auto middle = last == std::string_view::npos ? last : body.rfind('.', last - 1);
  if (middle == std::string_view::npos || middle == 0) {
    return std::unexpected("a pid looks like <node.creation.id>, got '" + std::string(text) + "'");
  }
  Pid pid;
  pid.node = std::string(body.substr(0, middle));
  const std::string_view creation = body.substr(middle + 1, last - middle - 1);
  const std::string_view id = body.substr(last + 1);
  auto parse_u64 = [](std::string_view s, std::uint64_t& out) {
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return !s.empty() && ec == std::errc() && end == s.data() + s.size();
  };
  if (!parse_u64(creation, pid.creation) || !parse_u64(id, pid.id)) {
    return std::unexpected("pid creation and id must be numbers, got '" + std::string(text) + "'");
  }
  return pid;
}

}  // namespace shoal::registry
