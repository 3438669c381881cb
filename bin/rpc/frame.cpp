#include "bin/rpc/frame.h"

namespace shoal::bin::rpc {

std::string frame(std::string_view body) {
  std::string out;
  out.reserve(body.size() + 4);
  const auto n = static_cast<std::uint32_t>(body.size());
  out += static_cast<char>(n >> 24);
  out += static_cast<char>(n >> 16);
  out += static_cast<char>(n >> 8);
  out += static_cast<char>(n);
  out.append(body);
  return out;
}

void FrameReader::feed(std::string_view bytes) {
  if (failed_) return;
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  buf_.append(bytes);
}

std::optional<std::string> FrameReader::take() {
  if (failed_ || buf_.size() - pos_ < 4) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
  const std::size_t n = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) |
                        (std::size_t{p[2]} << 8) | std::size_t{p[3]};
  if (n > max_) {
    failed_ = true;
    announced_ = n;
    buf_.clear();
    pos_ = 0;
    return std::nullopt;
  }
  if (buf_.size() - pos_ - 4 < n) return std::nullopt;
  std::string body = buf_.substr(pos_ + 4, n);
  pos_ += 4 + n;
  if (pos_ == buf_.size() || pos_ > 64 * 1024) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return body;
}

std::expected<Request, std::string> decode_request(std::string_view body) {
  ValueLimits limits;
  limits.max_bytes = kMaxRequestBytes;
  auto v = decode_value(body, limits);
  if (!v) return std::unexpected("request: " + v.error());
  if (!v->is_map()) return std::unexpected("request: not a map");
  const Value* version = v->find("v");
  if (version == nullptr || version->as_u64(0) != kVersion) {
    return std::unexpected("request: v: expected protocol version " + std::to_string(kVersion));
  }
  const Value* cmd = v->find("cmd");
  if (cmd == nullptr || !cmd->is_string() || cmd->as_string().empty())
    return std::unexpected("request: cmd: expected a command name");
  Request req{cmd->as_string(), Value::map()};
  if (const Value* args = v->find("args"); args != nullptr && !args->is_nil()) {
    if (!args->is_map()) return std::unexpected("request: args: expected a map");
    req.args = *args;
  }
  return req;
}

std::string encode_request(std::string_view cmd, Value args) {
  Value req = Value::map();
  req.set("v", kVersion);
  req.set("cmd", cmd);
  req.set("args", std::move(args));
  return encode_value(req);
}

std::string encode_ok(Value result) {
  Value reply = Value::map();
  reply.set("ok", true);
  reply.set("result", std::move(result));
  return encode_value(reply);
}

std::string encode_event(Value event) {
  Value reply = Value::map();
  reply.set("ok", true);
  reply.set("event", std::move(event));
  return encode_value(reply);
}

std::string encode_error(std::string_view code, std::string_view message) {
  Value reply = Value::map();
  reply.set("ok", false);
  reply.set("error", message);
  reply.set("code", code);
  return encode_value(reply);
}

}  // namespace shoal::bin::rpc
