#pragma once

// Keyring: the cluster keys that seal every UDP packet and TCP frame (XChaCha20-Poly1305, an AEAD
// from libsodium). The first key seals; every key is tried to open, so keys rotate without
// downtime: install the new key everywhere, make it primary everywhere, then remove the old one.
//
// Sealed form: [version 0x01][24-byte random nonce][ciphertext + 16-byte tag], 41 bytes more than
// the plain text. The version byte is authenticated as associated data.
//
// A packet that opens with no key is rejected (the caller counts it); a node without the key can
// neither join nor change anyone's view. Thread-compatible: const methods may run concurrently.

#include <array>
#include <cstddef>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::cluster {

inline constexpr std::size_t kKeyBytes = 32;
inline constexpr std::size_t kSealOverhead = 1 + 24 + 16;

using Key = std::array<unsigned char, kKeyBytes>;

class Keyring {
 public:
  // An empty keyring: seal() and open() pass data through unchanged (no encryption).
  Keyring() = default;

  // Reads keys from a file: one key per line, 64 hex digits or 44 base64 characters; blank lines
  // and lines starting with '#' are skipped; the first key is primary. Errors name the line.
  static std::expected<Keyring, std::string> from_file(const std::string& path);
  // Parses one key (hex or base64).
  static std::expected<Key, std::string> parse_key(std::string_view text);

  // A new random key.
  static Key generate();
  // A short public name of a key: 16 hex digits of a keyed hash of it (reveals nothing usable).
  static std::string fingerprint(const Key& key);
  // 64 hex digits.
  static std::string to_hex(const Key& key);

  bool enabled() const { return !keys_.empty(); }
  // Primary first.
  const std::vector<Key>& keys() const { return keys_; }
  bool has(const Key& key) const;
  std::size_t size() const { return keys_.size(); }

  // Adds a key (not primary) if it is not there yet.
  void install(const Key& key);
  // Makes an installed key primary. Returns false if it is not installed.
  bool use(const Key& key);
  // Removes a key. Returns false if it is the primary (make another primary first) or absent.
  bool remove(const Key& key);

  // Seals with the primary key (or copies, when the keyring is empty).
  std::string seal(std::string_view plain) const;
  // Opens with any key; nullopt if none authenticates it.
  std::optional<std::string> open(std::string_view sealed) const;

 private:
  std::vector<Key> keys_;  // keys_[0] is primary
};

}  // namespace shoal::cluster
