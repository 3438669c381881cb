// The CLI's key rotation: shoal keys list | generate | install | use | remove.

#include <unistd.h>

#include <chrono>
#include <iostream>
#include <memory>

#include "bin/cli_client.h"
#include "cluster/keyring.h"

namespace shoal::bin::cli {

void add_key_commands(CLI::App& app, CliState& state) {
  struct Options {
    Common common;
    std::string key;
    bool force = false;
    int keys_timeout_s = 10;
  };
  auto o = std::make_shared<Options>();
  CLI::App* keys = app.add_subcommand(
      "keys", "The cluster keys: list, generate, install, use, remove (rotation without downtime)");
  keys->require_subcommand(1);
  CLI::App* keys_list = keys->add_subcommand("list",
                                             "Each key's fingerprint and how many live "
                                             "members hold it and seal with it");
  add_common(keys_list, o->common);
  keys_list->callback([&state, o] {
    Value args = Value::map();
    args.set("op", "list");
    int code = 0;
    auto result = call(o->common, "keys", std::move(args), code);
    state.exit_code = code;
    if (!result) return;
    if (o->common.json()) {
      print_json(*result);
      return;
    }
    if (!at(*result, "encrypted").as_bool()) std::printf("this agent runs without encryption\n");
    std::printf("%s live members\n", cell(at(*result, "members")).c_str());
    print_table(at(*result, "keys"), {{"fingerprint", "FINGERPRINT"},
                                      {"members", "MEMBERS"},
                                      {"primary_on", "PRIMARY_ON"},
                                      {"here", "HERE"},
                                      {"primary_here", "PRIMARY_HERE"}});
  });
  CLI::App* keys_generate =
      keys->add_subcommand("generate",
                           "Print a new random key (64 hex digits), for a key file "
                           "or `shoal keys install`");
  keys_generate->callback([&state, o] {
    std::printf("%s\n", cluster::Keyring::to_hex(cluster::Keyring::generate()).c_str());
    state.exit_code = 0;
  });
  // install / use / remove, then wait until every live member agrees.
  for (const char* op : {"install", "use", "remove"}) {
    const std::string what =
        std::string(op) == "install" ? "Install a key on every member (it opens packets at once)"
        : std::string(op) == "use"   ? "Make an installed key primary on every member (it seals)"
                                     : "Remove a key from every member (not the primary one)";
    CLI::App* sub = keys->add_subcommand(op, what);
    add_common(sub, o->common);
    sub->add_option("key", o->key, "The key: 64 hex digits or base64, or - to read it from stdin")
        ->required();
    sub->add_flag("--force", o->force, "Skip the check that every member is ready for it");
    sub->add_option("--timeout", o->keys_timeout_s, "Seconds to wait for every member to apply it")
        ->capture_default_str();
    sub->callback([&state, o, op] {
      std::string key = o->key;
      if (key == "-") std::getline(std::cin, key);
      auto parsed = cluster::Keyring::parse_key(key);
      if (!parsed) {
        fail("keys " + std::string(op) + ": " + parsed.error());
        state.exit_code = kExitNoAgent;
        return;
      }
      Value args = Value::map();
      args.set("op", op);
      args.set("key", key);
      if (o->force) args.set("force", true);
      int code = 0;
      auto result = call(o->common, "keys", std::move(args), code);
      state.exit_code = code;
      if (!result) return;
      const std::string fp = at(*result, "fingerprint").as_string();
      // Wait until every live member reports the change.
      const std::string verb = std::string(op);
      Value last;
      auto agreed = [&] {
        Value list_args = Value::map();
        list_args.set("op", "list");
        int c = 0;
        auto listing = call(o->common, "keys", std::move(list_args), c);
        if (!listing) return false;
        last = *listing;
        const std::uint64_t live = at(*listing, "members").as_u64();
        std::uint64_t holders = 0, primaries = 0;
        for (const Value& k : at(*listing, "keys").as_array()) {
          if (at(k, "fingerprint").as_string() != fp) continue;
          holders = at(k, "members").as_u64();
          primaries = at(k, "primary_on").as_u64();
        }
        if (verb == "install") return holders == live;
        if (verb == "use") return primaries == live;
        return holders == 0;
      };
      const auto deadline =
          std::chrono::steady_clock::now() + std::chrono::seconds(o->keys_timeout_s);
      bool done = agreed();
      while (!done && std::chrono::steady_clock::now() < deadline) {
        ::usleep(50'000);  // polling the agent's view until the deadline
        done = agreed();
      }
      if (o->common.json()) {
        Value out = *result;
        out.set("agreed", done);
        print_json(out);
      } else {
        std::printf("%s %s: %s\n", op, fp.c_str(),
                    done ? "done on every live member" : "not yet applied everywhere");
      }
      if (!done) {
        fail("keys " + verb + ": not every live member applied it within " +
             std::to_string(o->keys_timeout_s) + " s (see `shoal keys list`)");
        state.exit_code = kExitError;
      }
    });
  }
}

}  // namespace shoal::bin::cli
