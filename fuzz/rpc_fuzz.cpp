// libFuzzer target: the agent's RPC input path: a byte stream split into frames (in chunks of
// the input's choosing), each decoded as a request; values that decode re-encode, and print as
// JSON.

#include <cstdint>
#include <string_view>

#include "bin/rpc/frame.h"
#include "bin/rpc/value.h"
#include "fuzz/fuzz_common.h"

using namespace shoal::bin::rpc;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  Value args = Value::map();
  args.set("name", "web");
  Value argv = Value::array();
  argv.push("sleep");
  argv.push("10");
  args.set("argv", argv);
  shoal::fuzz::write_seeds_if_asked(
      {frame(encode_request("run", args)), frame(encode_request("info", Value::map())) +
                                               frame(encode_request("members", Value::map()))});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  FrameReader reader(64 * 1024);
  // The first byte picks the chunk size, as reads of any size arrive.
  const std::size_t chunk = size > 0 ? 1 + data[0] % 64 : 1;
  for (std::size_t i = size > 0 ? 1 : 0; i < size; i += chunk) {
    reader.feed(bytes.substr(i, chunk));
    while (auto body = reader.take()) {
      if (auto req = decode_request(*body)) {
        (void)to_json(req->args);
        const std::string again = encode_request(req->cmd, req->args);
        if (!decode_request(again)) __builtin_trap();
      }
    }
    if (reader.failed()) break;
  }
  return 0;
}
