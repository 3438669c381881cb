// The public library (include/shoal/shoal.h) as a program uses it: only the public header, real
// nodes on loopback in this process. examples/embed (tests/packaging/check_embed.sh) runs the
// happy path against an installed copy; this covers the contract's edges: bad options, the
// insecure default, errors of the registry and messaging, the thread rule, and a stopped node.

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "shoal/shoal.h"

using namespace std::chrono_literals;

namespace {

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return cond();
}

shoal::NodeOptions options(std::string name) {
  shoal::NodeOptions o;
  o.name = std::move(name);
  o.startup_settle = 0ms;
  return o;
}

// Answers a call with its payload reversed; a call to "ask:NAME" calls NAME from inside the
// worker and answers with what the blocking Node API said there.
class Echo final : public shoal::Worker {
 public:
  explicit Echo(shoal::Node** node) : node_(node) {}
  void start(shoal::WorkerContext&, const std::optional<std::string>&) override {}
  void on_message(shoal::WorkerContext& ctx, const shoal::Message& msg) override {
    if (!msg.reply_token) return;
    if (msg.payload == "blocking") {
      auto r = (*node_)->whereis("anything");
      ctx.reply(*msg.reply_token, r ? "allowed" : shoal::errc_name(r.error().code));
      return;
    }
    ctx.reply(*msg.reply_token, std::string(msg.payload.rbegin(), msg.payload.rend()));
  }

 private:
  shoal::Node** node_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(library)

BOOST_AUTO_TEST_CASE(bad_options_are_refused_with_the_option_named) {
  auto no_name = shoal::Node::start(options(""));
  BOOST_TEST_REQUIRE(!no_name.has_value());
  BOOST_TEST((no_name.error().code == shoal::Errc::bad_option));
  BOOST_TEST(no_name.error().message.starts_with("name:"), no_name.error().message);

  auto o = options("n1");
  o.bind = "localhost:99999";
  auto bad_bind = shoal::Node::start(o);
  BOOST_TEST_REQUIRE(!bad_bind.has_value());
  BOOST_TEST(bad_bind.error().message.starts_with("bind:"), bad_bind.error().message);

  o = options("n1");
  o.keys = {"not a key"};
  auto bad_key = shoal::Node::start(o);
  BOOST_TEST_REQUIRE(!bad_key.has_value());
  BOOST_TEST(bad_key.error().message.starts_with("keys:"), bad_key.error().message);

  o = options("n1");
  o.tags["shoal.exec"] = "any";  // shoal's own tag: a program cannot forge it
  auto forged = shoal::Node::start(o);
  BOOST_TEST_REQUIRE(!forged.has_value());
  BOOST_TEST(forged.error().message.starts_with("tags:"), forged.error().message);

  o = options("n1");
  o.expect = 3;  // only quorum mode uses it
  BOOST_TEST(!shoal::Node::start(o).has_value());
}

BOOST_AUTO_TEST_CASE(a_reachable_address_without_keys_needs_insecure) {
  auto o = options("n1");
  o.bind = "0.0.0.0:0";
  auto refused = shoal::Node::start(o);
  BOOST_TEST_REQUIRE(!refused.has_value());
  BOOST_TEST((refused.error().code == shoal::Errc::insecure));
  // With a key, the same address is fine (the node is only started and stopped: nothing is sent
  // beyond loopback, having no seeds).
  o.keys = {std::string(64, 'a')};
  auto keyed = shoal::Node::start(o);
  BOOST_TEST_REQUIRE(keyed.has_value(), (keyed ? "" : keyed.error().message));
  // Without a key, only by saying so; and the node says it in its log.
  o.name = "n2";
  o.keys.clear();
  o.insecure = true;
  std::string warned;  // written on the caller's thread, in start()
  o.log = [&warned](std::string_view level, std::string_view, std::string_view text) {
    if (level == "warn" && text.starts_with("insecure")) warned = text;
  };
  auto open = shoal::Node::start(o);
  BOOST_TEST_REQUIRE(open.has_value(), (open ? "" : open.error().message));
  BOOST_TEST(!warned.empty());
}

BOOST_AUTO_TEST_CASE(names_messages_and_the_thread_rule) {
  shoal::Node* holder = nullptr;
  auto o = options("n1");
  o.workers["echo"] = [&holder] { return std::make_unique<Echo>(&holder); };
  auto n1 = shoal::Node::start(o);
  BOOST_TEST_REQUIRE(n1.has_value(), (n1 ? "" : n1.error().message));
  holder = n1->get();
  auto o2 = options("n2");
  o2.seeds = {(*n1)->address()};
  auto n2 = shoal::Node::start(o2);
  BOOST_TEST_REQUIRE(n2.has_value(), (n2 ? "" : n2.error().message));
  BOOST_TEST(eventually(
      [&] {
        auto m = (*n1)->members();
        return m && m->size() == 2 && m->at(0).status == shoal::MemberStatus::alive &&
               m->at(1).status == shoal::MemberStatus::alive;
      },
      10s));

  // A name: registered, seen from the other node, refused to a second holder.
  BOOST_TEST_REQUIRE((*n2)->register_name("svc", "meta").has_value());
  BOOST_TEST(eventually(
      [&] {
        auto w = (*n1)->whereis("svc");
        return w && *w && **w == (*n2)->pid();
      },
      10s));
  auto taken = (*n1)->register_name("svc");
  BOOST_TEST_REQUIRE(!taken.has_value());
  BOOST_TEST((taken.error().code == shoal::Errc::already_registered));
  auto listed = (*n1)->names("sv");
  BOOST_TEST_REQUIRE(listed.has_value());
  BOOST_TEST(listed->size() == 1u);

  // Messaging errors.
  auto none = (*n1)->call("nobody", "x", 1s);
  BOOST_TEST_REQUIRE(!none.has_value());
  BOOST_TEST((none.error().code == shoal::Errc::noproc));
  BOOST_TEST((!(*n1)->publish("no-group", "x").has_value()));

  // A worker child, called by name; a blocking Node method from its callback is refused.
  // The type is on n1 only: placement puts it there.
  shoal::ChildOptions echo;
  echo.name = "echo-1";
  echo.worker_type = "echo";
  BOOST_TEST_REQUIRE((*n2)->run(echo).has_value());
  BOOST_TEST(eventually(
      [&] {
        auto w = (*n2)->whereis("echo-1");
        return w && *w && (*w)->node == "n1";
      },
      10s));
  auto reply = (*n2)->call("echo-1", "abc");
  BOOST_TEST_REQUIRE(reply.has_value(), (reply ? "" : reply.error().message));
  BOOST_TEST(*reply == "cba");
  auto inside = (*n2)->call("echo-1", "blocking");
  BOOST_TEST_REQUIRE(inside.has_value());
  BOOST_TEST(*inside == "wrong_thread");
  auto children = (*n2)->children();
  BOOST_TEST_REQUIRE(children.has_value());
  BOOST_TEST_REQUIRE(children->size() == 1u);
  BOOST_TEST(children->front().node.value_or("") == "n1");

  // Unregister, then a stopped node refuses everything.
  BOOST_TEST((*n2)->unregister("svc").value_or(false));
  (*n2)->leave(5s);
  auto after = (*n2)->whereis("svc");
  BOOST_TEST_REQUIRE(!after.has_value());
  BOOST_TEST((after.error().code == shoal::Errc::stopped));
  BOOST_TEST(eventually(
      [&] {
        auto m = (*n1)->members();
        if (!m) return false;
        for (const shoal::Member& member : *m) {
          if (member.name == "n2") return member.status == shoal::MemberStatus::left;
        }
        return false;
      },
      10s));
}

BOOST_AUTO_TEST_CASE(the_version_is_the_projects) {
  BOOST_TEST(std::string(shoal::version()) == SHOAL_VERSION_STRING);
  BOOST_TEST(shoal::wire_version() == SHOAL_WIRE_VERSION);
}

BOOST_AUTO_TEST_SUITE_END()
