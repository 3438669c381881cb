#include "crdt/error.h"

namespace shoal::crdt {

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::truncated:
      return "truncated";
    case Errc::bad_type:
      return "bad type";
    case Errc::too_large:
      return "too large";
    case Errc::bad_version:
      return "bad version";
    case Errc::invalid:
      return "invalid";
  }
  return "unknown";
}

std::string Error::to_string() const {
  std::string out = field.empty() ? std::string("(message)") : field;
  out += ": ";
  out += errc_name(code);
  if (!detail.empty()) {
    out += " (";
    out += detail;
    out += ")";
  }
  return out;
}

}  // namespace shoal::crdt
