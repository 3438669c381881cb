#include "cluster/keyring.h"

#include <boost/test/unit_test.hpp>
#include <fstream>

using namespace shoal::cluster;

namespace {

Key key_of(char c) {
  return Keyring::parse_key(std::string(64, c)).value();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(keyring)

BOOST_AUTO_TEST_CASE(sealed_bytes_open_with_the_key_and_not_without) {
  Keyring ring;
  ring.install(key_of('a'));
  const std::string sealed = ring.seal("hello");
  BOOST_TEST(sealed.size() == 5 + kSealOverhead);
  BOOST_TEST(sealed.find("hello") == std::string::npos);
  BOOST_TEST(ring.open(sealed).value() == "hello");
  Keyring other;
  other.install(key_of('b'));
  BOOST_TEST(!other.open(sealed).has_value());
  std::string tampered = sealed;
  tampered.back() = static_cast<char>(tampered.back() ^ 1);
  BOOST_TEST(!ring.open(tampered).has_value());
  BOOST_TEST(!ring.open("short").has_value());
}

BOOST_AUTO_TEST_CASE(every_seal_uses_a_fresh_nonce) {
  Keyring ring;
  ring.install(key_of('a'));
  BOOST_TEST(ring.seal("same") != ring.seal("same"));
}

BOOST_AUTO_TEST_CASE(rotation_without_downtime) {
  Keyring old_only;
  old_only.install(key_of('a'));
  Keyring both = old_only;
  both.install(key_of('b'));  // step 1: install the new key everywhere
  BOOST_TEST(old_only.open(both.seal("x")).has_value());
  BOOST_TEST(both.use(key_of('b')));  // step 2: seal with it
  BOOST_TEST(both.open(old_only.seal("y")).has_value());
  BOOST_TEST(!old_only.open(both.seal("z")).has_value());
  BOOST_TEST(!both.remove(key_of('b')));  // the primary cannot go
  BOOST_TEST(both.remove(key_of('a')));   // step 3: drop the old key
  BOOST_TEST(!both.open(old_only.seal("w")).has_value());
}

BOOST_AUTO_TEST_CASE(empty_keyring_passes_data_through) {
  Keyring none;
  BOOST_TEST(!none.enabled());
  BOOST_TEST(none.seal("plain") == "plain");
  BOOST_TEST(none.open("plain").value() == "plain");
}

BOOST_AUTO_TEST_CASE(key_files_accept_hex_and_base64_and_name_bad_lines) {
  const std::string path = "/tmp/shoal-keyring-test.key";
  std::ofstream(path) << "# comment\n\n"
                      << std::string(64, 'c') << "\n"
                      << "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
  auto ring = Keyring::from_file(path);
  BOOST_TEST_REQUIRE(ring.has_value());
  BOOST_TEST(ring->size() == 2u);
  std::ofstream(path) << std::string(64, 'c') << "\nnot-a-key\n";
  auto bad = Keyring::from_file(path);
  BOOST_TEST_REQUIRE(!bad.has_value());
  BOOST_TEST(bad.error().find(":2:") != std::string::npos);
  BOOST_TEST(!Keyring::from_file("/nonexistent/key").has_value());
  std::ofstream(path) << "# nothing\n";
  BOOST_TEST(!Keyring::from_file(path).has_value());
}

BOOST_AUTO_TEST_SUITE_END()
