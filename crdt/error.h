#pragma once

// Errors returned as values by crdt/ (decoders and validators). Nothing in crdt/ throws on bad
// input: a function that can fail on input returns std::expected<T, Error>.

#include <string>

namespace shoal::crdt {

enum class Errc {
  truncated,    // the buffer ended inside a value
  bad_type,     // a value of another msgpack type stood where the format wants this one
  too_large,    // a length, count or number exceeds the format's limit
  bad_version,  // the format version is not one this build reads
  invalid,      // well-formed msgpack that breaks the format's rules (order, ranges, references)
};

// What went wrong and where: `field` names the element of the format ("entries[3].key").
struct Error {
  Errc code;
  std::string field;
  std::string detail;

  // "entries[3].key: too large (300 bytes > 255)": one line for logs and test output.
  std::string to_string() const;
};

const char* errc_name(Errc code);

}  // namespace shoal::crdt
