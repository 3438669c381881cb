#pragma once

// A strict JSON parser for tests: checks that the CLI's --format json output is JSON and reads it
// into the RPC's Value model (objects keep their key order). Numbers without a fraction or
// exponent become integers. Returns nullopt on anything that is not exactly one JSON value.

#include <optional>
#include <string_view>

#include "bin/rpc/value.h"

namespace shoal::test {

std::optional<bin::rpc::Value> parse_json(std::string_view text);

}  // namespace shoal::test
