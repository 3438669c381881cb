// parse_agent_options: flags as given -> the agent's typed configuration, or one reason naming
// the flag. Pure: no file, socket or clock.

#include "bin/agent_config.h"

#include <boost/test/unit_test.hpp>

using namespace shoal;
using bin::AgentOptions;
using bin::parse_agent_options;

namespace {

std::string error_of(const AgentOptions& o) {
  auto c = parse_agent_options(o, "host");
  return c ? std::string("(parsed)") : c.error();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(agent_config)

BOOST_AUTO_TEST_CASE(defaults_name_the_node_after_the_host_and_port_and_place_after_a_settle) {
  auto c = parse_agent_options(AgentOptions{}, "box");
  BOOST_TEST_REQUIRE(c.has_value(), (c ? "" : c.error()));
  BOOST_TEST(c->name == "box:7946");
  BOOST_TEST(c->bind.to_string() == "127.0.0.1:7946");
  BOOST_TEST(!c->advertise.has_value());
  BOOST_TEST((c->discovery == bin::Discovery::multicast));
  BOOST_TEST((c->fsync == cluster::StoreOptions::Fsync::snapshot));
  BOOST_TEST((c->log_level == supervisor::LogLevel::info));
  BOOST_TEST((c->stack.supervisor.mode == supervisor::Mode::ap));
  BOOST_TEST(c->stack.startup_settle_ms == 2'000u);
  BOOST_TEST(c->data_dir == "/tmp/shoal-box_7946-" + c->data_dir.substr(c->data_dir.size() - 16));
  BOOST_TEST(c->rpc_path == c->data_dir + "/shoal.sock");
}

BOOST_AUTO_TEST_CASE(every_flag_is_typed) {
  AgentOptions o;
  o.name = "n1";
  o.bind = "127.0.0.1:8000";
  o.advertise = "127.0.0.2:9000";
  o.join = {"127.0.0.1:8001", "seeds.example:8002"};
  o.discovery = "seeds";
  o.tags = {"zone=a", "weight=2"};
  o.children = {"web=sleep  100"};
  o.workers = {"tally=counter"};
  o.mode = "quorum";
  o.expect = 5;
  o.fsync = "always";
  o.log_level = "debug";
  o.data_dir = "/var/lib/x";
  o.probe_interval_ms = 500;
  auto c = parse_agent_options(o, "host");
  BOOST_TEST_REQUIRE(c.has_value(), (c ? "" : c.error()));
  BOOST_TEST(c->name == "n1");
  BOOST_TEST(c->advertise->to_string() == "127.0.0.2:9000");
  BOOST_TEST_REQUIRE(c->seeds.size() == 2u);
  BOOST_TEST(c->seeds[1].host == "seeds.example");
  BOOST_TEST((c->discovery == bin::Discovery::seeds));
  BOOST_TEST(c->tags.at("weight") == "2");
  BOOST_TEST_REQUIRE(c->children.size() == 2u);
  BOOST_TEST((c->children[0].argv == std::vector<std::string>{"sleep", "100"}));
  BOOST_TEST((c->children[1].kind == supervisor::ChildKind::worker));
  BOOST_TEST((c->stack.supervisor.mode == supervisor::Mode::quorum));
  BOOST_TEST(c->stack.supervisor.expect == 5u);
  // No lease given: the safe bound, computed from the probe timing given.
  BOOST_TEST(c->stack.supervisor.lease_ms == c->safe_lease_ms);
  BOOST_TEST(c->safe_lease_ms > 4u * 500u);
  BOOST_TEST((c->fsync == cluster::StoreOptions::Fsync::always));
  BOOST_TEST((c->stack.log_level == supervisor::LogLevel::debug));
  BOOST_TEST(c->stack.membership.probe_interval_ms == 500u);
  BOOST_TEST(c->rpc_path == "/var/lib/x/shoal.sock");
}

BOOST_AUTO_TEST_CASE(a_reachable_address_needs_a_key_or_an_explicit_insecure) {
  for (const char* bind : {"0.0.0.0:7946", "10.0.0.11:7946", "[::]:7946", "[2001:db8::1]:7946"}) {
    AgentOptions o;
    o.bind = bind;
    const std::string why = error_of(o);
    BOOST_TEST(why.starts_with(std::string("--bind ")), bind << ": " << why);
    BOOST_TEST(why.find("shoal keys generate") != std::string::npos, why);
    BOOST_TEST(why.find("--insecure") != std::string::npos, why);
    BOOST_TEST(why.find('\n') == std::string::npos, why);

    o.key_file = "/etc/shoal/cluster.key";  // read later, by the agent
    auto keyed = parse_agent_options(o, "host");
    BOOST_TEST_REQUIRE(keyed.has_value(), (keyed ? "" : keyed.error()));
    BOOST_TEST(!keyed->insecure);  // nothing to warn about

    o.key_file.clear();
    o.insecure = true;
    auto open = parse_agent_options(o, "host");
    BOOST_TEST_REQUIRE(open.has_value(), (open ? "" : open.error()));
    BOOST_TEST(open->insecure);  // the agent warns at start and every hour
  }
  // Loopback-only clusters need no key, and --insecure changes nothing there.
  for (const char* bind : {"127.0.0.1:7946", "127.3.4.5:7000", "[::1]:7946"}) {
    AgentOptions o;
    o.bind = bind;
    o.insecure = true;
    auto c = parse_agent_options(o, "host");
    BOOST_TEST_REQUIRE(c.has_value(), bind << ": " << (c ? "" : c.error()));
    BOOST_TEST(!c->insecure);
  }
}

BOOST_AUTO_TEST_CASE(the_exec_policy_is_checked_and_advertised_in_a_reserved_tag) {
  AgentOptions o;
  auto any = parse_agent_options(o, "host");
  BOOST_TEST_REQUIRE(any.has_value());
  BOOST_TEST((any->exec_policy.mode == supervisor::ExecPolicy::Mode::any));
  BOOST_TEST(!any->tags.contains("shoal.exec"));  // any: nothing advertised
  o.exec = "deny";
  auto deny = parse_agent_options(o, "host");
  BOOST_TEST_REQUIRE(deny.has_value());
  BOOST_TEST(deny->tags.at("shoal.exec") == "none");
  o.exec_allow = {"/usr/bin/*"};
  BOOST_TEST(error_of(o).find("drop --exec-allow") != std::string::npos, error_of(o));
  o.exec = "allow";
  o.exec_allow = {"/usr/bin/*", "/opt/app/bin/*"};
  auto globs = parse_agent_options(o, "host");
  BOOST_TEST_REQUIRE(globs.has_value());
  BOOST_TEST(globs->tags.at("shoal.exec") == "/usr/bin/*:/opt/app/bin/*");
  o.exec_allow = {"bin/*"};
  BOOST_TEST(error_of(o).find("absolute") != std::string::npos, error_of(o));
  o.exec_allow.clear();
  o.exec = "sometimes";
  BOOST_TEST(error_of(o).find("--exec must be") != std::string::npos, error_of(o));
  // The tag is shoal's: an operator cannot forge a policy with --tag.
  o.exec = "allow";
  o.tags = {"shoal.exec=any"};
  BOOST_TEST(error_of(o).find("shoal.") != std::string::npos, error_of(o));
}

BOOST_AUTO_TEST_CASE(tags_must_fit_what_peers_read_of_the_node) {
  AgentOptions o;
  o.tags = {"zone=" + std::string(255, 'a')};
  BOOST_TEST_REQUIRE(parse_agent_options(o, "host").has_value());
  o.tags = {"zone=" + std::string(256, 'a')};
  BOOST_TEST(error_of(o) == "--tag zone: a tag value takes at most 255 bytes");
  o.tags = {std::string(65, 'k') + "=v"};
  BOOST_TEST(error_of(o) == "--tag: a tag key takes at most 64 bytes");
  o.tags.clear();
  for (int i = 0; i < 33; ++i)
    o.tags.push_back("t" + std::to_string(i) + "=v");
  BOOST_TEST(error_of(o).starts_with("--tag: at most 32 tags"), error_of(o));
  // Each within its limits, together more than the packet that announces the node holds.
  o.tags.clear();
  for (int i = 0; i < 8; ++i)
    o.tags.push_back("t" + std::to_string(i) + "=" + std::string(200, 'v'));
  BOOST_TEST(error_of(o).find("too many bytes") != std::string::npos, error_of(o));
}

BOOST_AUTO_TEST_CASE(a_standalone_node_places_at_once) {
  AgentOptions o;
  o.discovery = "none";
  auto c = parse_agent_options(o, "host");
  BOOST_TEST_REQUIRE(c.has_value());
  BOOST_TEST(c->stack.startup_settle_ms == 0u);
  o.join = {"127.0.0.1:1"};
  BOOST_TEST(error_of(o) == "--discovery none runs a standalone node: drop --join");
}

BOOST_AUTO_TEST_CASE(bad_values_name_their_flag) {
  auto bad = [](auto change) {
    AgentOptions o;
    change(o);
    return error_of(o);
  };
  BOOST_TEST(bad([](AgentOptions& o) { o.log_level = "loud"; }).starts_with("--log-level"));
  BOOST_TEST(bad([](AgentOptions& o) { o.bind = "localhost:1"; }).starts_with("--bind: "));
  BOOST_TEST(bad([](AgentOptions& o) { o.advertise = "1.2.3"; }).starts_with("--advertise: "));
  BOOST_TEST(bad([](AgentOptions& o) { o.join = {"nohost"}; }).starts_with("--join: "));
  BOOST_TEST(bad([](AgentOptions& o) { o.tags = {"=v"}; }).starts_with("--tag: "));
  BOOST_TEST(bad([](AgentOptions& o) { o.children = {"web"}; }).starts_with("--child: "));
  BOOST_TEST(bad([](AgentOptions& o) { o.children = {"=ls"}; }).starts_with("--child: "));
  BOOST_TEST(bad([](AgentOptions& o) { o.workers = {"w=gpu"}; }) ==
             "--worker w: unknown type 'gpu' (idle or counter)");
  BOOST_TEST(bad([](AgentOptions& o) { o.discovery = "dns"; }).starts_with("--discovery"));
  BOOST_TEST(bad([](AgentOptions& o) { o.multicast_group = "x"; }).starts_with("--multicast"));
  BOOST_TEST(bad([](AgentOptions& o) { o.mode = "cp"; }) == "--mode must be ap or quorum");
  BOOST_TEST(bad([](AgentOptions& o) { o.mode = "quorum"; }).starts_with("--mode quorum needs"));
  BOOST_TEST(bad([](AgentOptions& o) { o.expect = 3; }).starts_with("--expect and"));
  BOOST_TEST(bad([](AgentOptions& o) { o.fsync = "sometimes"; }).starts_with("--fsync"));
  BOOST_TEST(bad([](AgentOptions& o) { o.name = std::string(300, 'n'); }).starts_with("--name"));
  BOOST_TEST(bad([](AgentOptions& o) {
               o.probe_interval_ms = 100;
               o.probe_timeout_ms = 150;
             }).find("probe") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_lease_below_the_safe_bound_is_kept_and_reported_by_the_bound) {
  AgentOptions o;
  o.mode = "quorum";
  o.expect = 3;
  o.quorum_lease_ms = 1;
  auto c = parse_agent_options(o, "host");
  BOOST_TEST_REQUIRE(c.has_value());
  BOOST_TEST(c->stack.supervisor.lease_ms == 1u);
  BOOST_TEST(c->safe_lease_ms > 1u);  // the agent warns at start
}

BOOST_AUTO_TEST_CASE(the_config_file_reads_words_strings_and_lists_and_names_the_bad_line) {
  const auto read = bin::parse_config(
      "# shoal.conf\n"
      "[agent]\n"
      "name = \"n1\"   # trailing comment\n"
      "bind=127.0.0.1:7946\n"
      "  join = [\"127.0.0.1:7947\", 127.0.0.1:7948]\n"
      "; another comment\n"
      "exec_allow = [\"/usr/bin/*\", \"/opt/a b/*\"]\n"
      "child = \"web=sh -c \\\"echo \\\\ hi\\\"\"\n",
      "shoal.conf");
  BOOST_TEST_REQUIRE(read.has_value(), read.error());
  const bin::ConfigEntries want{{"name", {"n1"}},
                                {"bind", {"127.0.0.1:7946"}},
                                {"join", {"127.0.0.1:7947", "127.0.0.1:7948"}},
                                {"exec-allow", {"/usr/bin/*", "/opt/a b/*"}},
                                {"child", {"web=sh -c \"echo \\ hi\""}}};
  BOOST_TEST((*read == want));
  const auto error = [](std::string_view text) {
    auto r = bin::parse_config(text, "f.conf");
    return r ? std::string("accepted") : r.error();
  };
  BOOST_TEST(error("name = n1\nbind 127.0.0.1:1\n") == "f.conf:2: expected flag = value");
  BOOST_TEST(error("name = \"n1\n") == "f.conf:1: unterminated string");
  BOOST_TEST(error("join = [\"a\", \"b\"\n") == "f.conf:1: unterminated list");
  BOOST_TEST(error("\n\nname =\n") == "f.conf:3: no value for name");
  BOOST_TEST(error("name = [a, b]\n") == "f.conf:1: name takes one value");
  // A ']' outside a list is part of a word; a '#' inside one starts a comment, so the list is
  // unterminated; nothing but a comment may follow a list.
  BOOST_TEST((bin::parse_config("exec = ze]ny\n", "f")->at(0).second ==
              std::vector<std::string>{"ze]ny"}));
  BOOST_TEST(error("join = [#]\n") == "f.conf:1: unterminated list");
  BOOST_TEST(error("bind = [::1]:7946\n") ==
             "f.conf:1: text after the list's closing ] (quote a value that starts with '[', "
             "such as an IPv6 address)");
  BOOST_TEST((bin::parse_config("bind = \"[::1]:7946\" # v6\njoin = [a] # seeds\n", "f") ==
              bin::ConfigEntries{{"bind", {"[::1]:7946"}}, {"join", {"a"}}}));
}

BOOST_AUTO_TEST_SUITE_END()
