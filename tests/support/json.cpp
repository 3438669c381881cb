#include "tests/support/json.h"

#include <cctype>
#include <cstdlib>
#include <string>

namespace shoal::test {

namespace {

using bin::rpc::Value;

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  std::optional<Value> document() {
    auto v = value(0);
    space();
    if (!v || pos_ != s_.size()) return std::nullopt;
    return v;
  }

 private:
  void space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_])) != 0)
      ++pos_;
  }
  bool eat(char c) {
    space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool word(std::string_view w) {
    if (s_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }

  std::optional<Value> value(int depth) {
    if (depth > 64) return std::nullopt;
    space();
    if (pos_ >= s_.size()) return std::nullopt;
    const char c = s_[pos_];
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') {
      auto str = string();
      if (!str) return std::nullopt;
      return Value(std::move(*str));
    }
    if (word("true")) return Value(true);
    if (word("false")) return Value(false);
    if (word("null")) return Value();
    return number();
  }

  std::optional<Value> object(int depth) {
    ++pos_;
    Value out = Value::map();
    if (eat('}')) return out;
    do {
      space();
      auto key = string();
      if (!key || !eat(':')) return std::nullopt;
      auto v = value(depth + 1);
      if (!v) return std::nullopt;
      out.set(std::move(*key), std::move(*v));
    } while (eat(','));
    if (!eat('}')) return std::nullopt;
    return out;
  }

  std::optional<Value> array(int depth) {
    ++pos_;
    Value out = Value::array();
    if (eat(']')) return out;
    do {
      auto v = value(depth + 1);
      if (!v) return std::nullopt;
      out.push(std::move(*v));
    } while (eat(','));
    if (!eat(']')) return std::nullopt;
    return out;
  }

  std::optional<std::string> string() {
    if (pos_ >= s_.size() || s_[pos_] != '"') return std::nullopt;
    ++pos_;
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (static_cast<unsigned char>(c) < 0x20) return std::nullopt;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) return std::nullopt;
      c = s_[pos_++];
      switch (c) {
        case '"':
        case '\\':
        case '/':
          out += c;
          break;
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          if (pos_ + 4 > s_.size()) return std::nullopt;
          const std::string hex(s_.substr(pos_, 4));
          pos_ += 4;
          char* end = nullptr;
          const long code = std::strtol(hex.c_str(), &end, 16);
          if (end != hex.c_str() + 4) return std::nullopt;
          // Tests only meet \u escapes of single bytes (control characters, invalid UTF-8).
          if (code < 0x100) {
            out += static_cast<char>(code);
          } else {
            out += '?';
          }
          break;
        }
        default:
          return std::nullopt;
      }
    }
    if (pos_ >= s_.size()) return std::nullopt;
    ++pos_;
    return out;
  }

  std::optional<Value> number() {
    const std::size_t start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    bool integral = true;
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
        ++pos_;
      } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
        integral = false;
        ++pos_;
      } else {
        break;
      }
    }
    const std::string text(s_.substr(start, pos_ - start));
    if (text.empty() || text == "-") return std::nullopt;
    char* end = nullptr;
    if (integral) {
      if (text[0] == '-') {
        const long long v = std::strtoll(text.c_str(), &end, 10);
        if (end != text.c_str() + text.size()) return std::nullopt;
        return Value(v);
      }
      const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
      if (end != text.c_str() + text.size()) return std::nullopt;
      return Value(v);
    }
    const double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) return std::nullopt;
    return Value(v);
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

}  // namespace

std::optional<Value> parse_json(std::string_view text) {
  return Parser(text).document();
}

}  // namespace shoal::test
