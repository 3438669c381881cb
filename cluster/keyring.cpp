#include "cluster/keyring.h"

#include <sodium.h>

#include <algorithm>
#include <fstream>

namespace shoal::cluster {

namespace {

constexpr unsigned char kVersion = 0x01;
constexpr std::size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;
static_assert(kSealOverhead == 1 + kNonce + kTag);

bool sodium_ready() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

std::expected<Key, std::string> Keyring::parse_key(std::string_view text) {
  if (!sodium_ready()) return std::unexpected("libsodium failed to initialise");
  text = trim(text);
  Key key{};
  std::size_t len = 0;
  if (text.size() == 2 * kKeyBytes &&
      sodium_hex2bin(key.data(), key.size(), text.data(), text.size(), nullptr, &len, nullptr) ==
          0 &&
      len == kKeyBytes) {
    return key;
  }
  if (sodium_base642bin(key.data(), key.size(), text.data(), text.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) == 0 &&
      len == kKeyBytes) {
    return key;
  }
  return std::unexpected("a key must be 32 bytes as 64 hex digits or 44 base64 characters");
}

std::expected<Keyring, std::string> Keyring::from_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::unexpected("cannot read key file " + path);
  Keyring ring;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string_view text = trim(line);
    if (text.empty() || text.front() == '#') continue;
    auto key = parse_key(text);
    if (!key) return std::unexpected(path + ":" + std::to_string(number) + ": " + key.error());
    ring.install(*key);
  }
  if (!ring.enabled()) return std::unexpected("key file " + path + " holds no key");
  return ring;
}

Key Keyring::generate() {
  sodium_ready();
  Key key;
  randombytes_buf(key.data(), key.size());
  return key;
}

std::string Keyring::fingerprint(const Key& key) {
  sodium_ready();
  static constexpr unsigned char kContext[] = "shoal keyring fingerprint";
  unsigned char out[8];
  crypto_generichash(out, sizeof out, key.data(), key.size(), kContext, sizeof kContext - 1);
  char hex[sizeof out * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, out, sizeof out);
  return hex;
}

std::string Keyring::to_hex(const Key& key) {
  char hex[kKeyBytes * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, key.data(), key.size());
  return hex;
}

bool Keyring::has(const Key& key) const {
  for (const Key& k : keys_) {
    if (k == key) return true;
  }
  return false;
}

void Keyring::install(const Key& key) {
  if (std::find(keys_.begin(), keys_.end(), key) == keys_.end()) keys_.push_back(key);
}

bool Keyring::use(const Key& key) {
  auto it = std::find(keys_.begin(), keys_.end(), key);
  if (it == keys_.end()) return false;
  std::rotate(keys_.begin(), it, it + 1);
  return true;
}

bool Keyring::remove(const Key& key) {
  auto it = std::find(keys_.begin(), keys_.end(), key);
  if (it == keys_.end() || it == keys_.begin()) return false;
  keys_.erase(it);
  return true;
}

std::string Keyring::seal(std::string_view plain) const {
  if (keys_.empty()) return std::string(plain);
  sodium_ready();
  std::string out(kSealOverhead + plain.size(), '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  bytes[0] = kVersion;
  randombytes_buf(bytes + 1, kNonce);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      bytes + 1 + kNonce, &written, reinterpret_cast<const unsigned char*>(plain.data()),
      plain.size(), bytes, 1, nullptr, bytes + 1, keys_.front().data());
  out.resize(1 + kNonce + written);
  return out;
}

std::optional<std::string> Keyring::open(std::string_view sealed) const {
  if (keys_.empty()) return std::string(sealed);
  if (sealed.size() < kSealOverhead || static_cast<unsigned char>(sealed[0]) != kVersion) {
    return std::nullopt;
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(sealed.data());
  std::string plain(sealed.size() - kSealOverhead, '\0');
  for (const Key& key : keys_) {
    unsigned long long len = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            reinterpret_cast<unsigned char*>(plain.data()), &len, nullptr, bytes + 1 + kNonce,
            sealed.size() - 1 - kNonce, bytes, 1, bytes + 1, key.data()) == 0) {
      plain.resize(len);
      return plain;
    }
  }
  return std::nullopt;
}

}  // namespace shoal::cluster
