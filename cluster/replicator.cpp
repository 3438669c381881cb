#include "cluster/replicator.h"

#include <algorithm>

#include "crdt/codec.h"
#include "crdt/msgpack_reader.h"
#include "crdt/msgpack_writer.h"

namespace shoal::cluster {

namespace {

enum class Kind : std::uint8_t { batches = 1, digest = 2, state = 3 };

// Decode bounds: hostile or broken messages are rejected, never allowed to allocate at will.
constexpr std::uint32_t kMaxBatchesPerMessage = 65536;
constexpr std::uint32_t kMaxDigestEntries = 65536;
constexpr std::size_t kMaxOriginBytes = 512;
constexpr std::size_t kMaxMapBytes = 64u * 1024 * 1024;

void pack_head(crdt::MsgWriter& pk, std::uint32_t fields, Kind kind) {
  pk.array(fields);
  pk.uint(1);
  pk.uint(static_cast<std::uint8_t>(kind));
}

void pack_digest(crdt::MsgWriter& pk, const crdt::Digest& digest) {
  pk.array(digest.size());
  for (const auto& [origin, seq] : digest) {
    pk.array(2);
    pk.str(origin);
    pk.uint(seq);
  }
}

void pack_map(crdt::MsgWriter& pk, const crdt::AwLwwMap& map) {
  const std::string encoded = crdt::encode(map);
  pk.bin(encoded);
}

std::optional<crdt::Digest> read_digest(crdt::MsgReader& r) {
  crdt::Digest digest;
  const std::uint32_t n = r.array("digest", kMaxDigestEntries);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    r.array_of("digest entry", 2);
    std::string origin(r.bytes("origin", kMaxOriginBytes));
    const std::uint64_t seq = r.uint("seq");
    if (r.ok()) digest[std::move(origin)] = seq;
  }
  if (!r.ok()) return std::nullopt;
  return digest;
}

}  // namespace

Replicator::Replicator(std::string replica_id, ReplicatorConfig config, std::uint64_t seed,
                       std::uint64_t now_ms)
    : config_(config),
      replica_(std::move(replica_id), config.replica),
      rng_(seed),
      next_round_(now_ms + config.round_ms) {}

crdt::ChangeFn Replicator::recorder() {
  return [this](const crdt::Change& c) {
    ReplicaChange change{std::string(c.key), std::nullopt, std::nullopt, c.versions};
    if (c.before) change.before = std::string(c.before->value);
    if (c.after) change.after = std::string(c.after->value);
    changes_.push_back(std::move(change));
  };
}

void Replicator::set_peers(std::uint64_t /*now_ms*/, std::vector<std::string> peers) {
  std::sort(peers.begin(), peers.end());
  peers.erase(std::unique(peers.begin(), peers.end()), peers.end());
  for (const std::string& old : peers_) {
    if (!std::binary_search(peers.begin(), peers.end(), old)) {
      replica_.forget(old);
      synced_.erase(old);
    }
  }
  for (const std::string& peer : peers) {
    replica_.track(peer);
    // A new peer is asked for its digest at once: each side then sends the other what it lacks
    // without waiting for a round to pick it.
    if (!std::binary_search(peers_.begin(), peers_.end(), peer)) send_full_digest(peer, true);
  }
  peers_ = std::move(peers);
}

void Replicator::put(std::uint64_t now_ms, std::string_view key, std::string_view value) {
  replica_.put(now_ms, key, value, recorder());
}

void Replicator::put_at(std::uint64_t now_ms, crdt::Timestamp ts, std::string_view key,
                        std::string_view value) {
  replica_.put_at(now_ms, ts, key, value, recorder());
}

bool Replicator::remove(std::uint64_t /*now_ms*/, std::string_view key) {
  return replica_.remove(key, recorder());
}

bool Replicator::remove_if(std::uint64_t /*now_ms*/, std::string_view key,
                           const crdt::VersionPredicate& pred) {
  return replica_.remove_if(key, pred, recorder());
}

std::size_t Replicator::remove_where(std::uint64_t /*now_ms*/, const crdt::VersionPredicate& pred) {
  return replica_.remove_where(pred, recorder());
}

std::vector<std::string> Replicator::pick(std::size_t k) {
  // k distinct peers, uniformly (a partial Fisher-Yates over indices: no copy of every peer).
  const std::size_t n = peers_.size();
  k = std::min(k, n);
  std::vector<std::size_t> index(n);
  for (std::size_t i = 0; i < n; ++i)
    index[i] = i;
  std::vector<std::string> chosen;
  chosen.reserve(k);
  for (std::size_t i = 0; i < k; ++i) {
    const std::size_t j = i + static_cast<std::size_t>(rng_() % (n - i));
    std::swap(index[i], index[j]);
    chosen.push_back(peers_[index[i]]);
  }
  return chosen;
}

void Replicator::restore(std::uint64_t now_ms, const crdt::AwLwwMap& map) {
  replica_.join_state(map, {}, now_ms, recorder());
}

void Replicator::flush(std::uint64_t now_ms) {
  const std::vector<crdt::Encoded> sealed = replica_.flush();
  if (sealed.empty()) return;
  if (journal_) {
    for (const crdt::Encoded& batch : sealed)
      journal_(*batch);
  }
  const bool all = peers_.size() <= config_.eager_all_peers;
  for (const std::string& peer : all ? peers_ : pick(config_.eager_fanout))
    push(now_ms, peer);
}

void Replicator::emit(const std::string& to, std::string bytes) {
  const bool stream = bytes.size() > config_.max_datagram_bytes;
  stats_.streams_sent += stream ? 1 : 0;
  stats_.bytes_out += bytes.size();
  effects_.push_back(ReplicaSend{to, std::move(bytes), stream});
}

void Replicator::push(std::uint64_t now_ms, const std::string& peer) {
  auto out = replica_.outgoing(peer, now_ms);
  if (!out) return;
  std::string bytes;
  crdt::MsgWriter pk(bytes);
  if (out->state) {
    // Peers that need the state at about the same time get one encoding: it stands as long as
    // the digest it covers (local writes not yet flushed may be missing from it; they are not
    // claimed, and go out as batches).
    if (!state_cache_ || state_cache_covers_ != out->covers) {
      std::string encoded;
      crdt::MsgWriter cache_pk(encoded);
      pack_head(cache_pk, 4, Kind::state);
      pack_digest(cache_pk, out->covers);
      pack_map(cache_pk, *out->state);
      state_cache_ = std::make_shared<const std::string>(std::move(encoded));
      state_cache_covers_ = out->covers;
      ++stats_.full_states_encoded;
    }
    bytes = *state_cache_;
    ++stats_.full_states_sent;
  } else {
    pack_head(pk, 3, Kind::batches);
    pk.array(out->batches.size());
    for (const crdt::BatchRef& b : out->batches) {
      pk.array(3);
      pk.str(b.origin);
      pk.uint(b.seq);
      pk.bin(*b.bytes);
    }
    stats_.batches_sent += out->batches.size();
    ++stats_.batch_messages_sent;
  }
  emit(peer, std::move(bytes));
}

void Replicator::send_digest(const std::string& to, bool reply_wanted, const crdt::Digest& digest) {
  std::string bytes;
  crdt::MsgWriter pk(bytes);
  pack_head(pk, 4, Kind::digest);
  pk.uint(reply_wanted ? 1 : 0);
  pack_digest(pk, digest);
  ++stats_.digests_sent;
  emit(to, std::move(bytes));
}

void Replicator::send_full_digest(const std::string& to, bool reply_wanted) {
  std::string bytes;
  crdt::MsgWriter pk(bytes);
  pack_head(pk, 4, Kind::digest);
  pk.uint(reply_wanted ? 1 : 0);
  pk.raw(full_digest().packed);
  ++stats_.digests_sent;
  emit(to, std::move(bytes));
}

const Replicator::FullDigest& Replicator::full_digest() {
  if (!full_digest_ || !replica_.digest_is(full_digest_->digest)) {
    FullDigest fresh{replica_.digest(), {}};
    crdt::MsgWriter pk(fresh.packed);
    pack_digest(pk, fresh.digest);
    full_digest_ = std::move(fresh);
  }
  return *full_digest_;
}

void Replicator::on_message(std::uint64_t now_ms, const std::string& from, std::string_view bytes) {
  crdt::MsgReader r(bytes);
  const std::uint32_t len = r.array("message", 4);
  const std::uint64_t version = r.uint("version");
  const auto kind = static_cast<Kind>(r.uint("kind", 255));
  if (!r.ok() || version != 1) {
    ++stats_.rejected;
    return;
  }
  if (kind == Kind::batches && len == 3) {
    // Decode everything first: a message is joined whole or not at all.
    struct Received {
      std::string origin;
      crdt::Seq seq;
      crdt::AwLwwMap map;
      std::string_view bytes;
    };
    std::vector<Received> received;
    const std::uint32_t n = r.array("batches", kMaxBatchesPerMessage);
    for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
      r.array_of("batch", 3);
      std::string origin(r.bytes("origin", kMaxOriginBytes));
      const crdt::Seq seq = r.uint("seq");
      const std::string_view encoded = r.bytes("map", kMaxMapBytes);
      if (!r.ok()) break;
      auto map = crdt::decode(encoded);
      if (!map || origin.empty() || seq == 0) {
        ++stats_.rejected;
        return;
      }
      received.push_back({std::move(origin), seq, std::move(*map), encoded});
    }
    if (!r.ok() || r.remaining() != 0) {
      ++stats_.rejected;
      return;
    }
    std::vector<std::string> origins;
    for (Received& b : received) {
      ++stats_.batches_in;
      if (replica_.join_batch(b.origin, b.seq, b.map, std::make_shared<const std::string>(b.bytes),
                              now_ms, recorder()) &&
          journal_) {
        journal_(b.bytes);
      }
      if (std::find(origins.begin(), origins.end(), b.origin) == origins.end())
        origins.push_back(std::move(b.origin));
    }
    send_digest(from, false, replica_.digest(origins));  // the acknowledgement
    return;
  }
  if (kind == Kind::digest && len == 4) {
    const bool reply_wanted = r.uint("reply_wanted", 1) == 1;
    if (!r.ok()) {
      ++stats_.rejected;
      return;
    }
    // The same digest as this replica's (a quiet cluster's every round) is not decoded again. It
    // stays the same through on_digest(), which can only bring back a retired origin as it was.
    // The kept digest is checked only on a byte match: an acknowledgement (a partial digest)
    // must not rebuild it after every write.
    const bool same = full_digest_ && r.rest() == full_digest_->packed &&
                      replica_.digest_is(full_digest_->digest);
    std::optional<crdt::Digest> decoded;
    if (!same) {
      decoded = read_digest(r);
      if (!decoded || !r.ok() || r.remaining() != 0) {
        ++stats_.rejected;
        return;
      }
    }
    ++stats_.digests_in;
    stats_.digests_in_same += same ? 1 : 0;
    const crdt::Digest& digest = same ? full_digest_->digest : *decoded;
    replica_.on_digest(from, digest, now_ms);
    // A sender that is no longer a peer (it left or died, and its last messages came late) gets
    // nothing: sending to it would track it as a neighbour again, for which the log would be kept
    // and whose acknowledgements would be awaited, for as long as this node runs.
    if (!is_peer(from)) return;
    // Only a round's request carries the sender's full digest (acknowledgements name only the
    // origins just received).
    if (reply_wanted && !synced_.contains(from) && (same || covered(digest))) mark_synced(from);
    push(now_ms, from);
    if (reply_wanted) send_full_digest(from, false);
    return;
  }
  if (kind == Kind::state && len == 4) {
    auto covers = read_digest(r);
    const std::string_view encoded = r.bytes("map", kMaxMapBytes);
    if (!covers || !r.ok() || r.remaining() != 0) {
      ++stats_.rejected;
      return;
    }
    auto map = crdt::decode(encoded);
    if (!map || map->is_delta()) {
      ++stats_.rejected;
      return;
    }
    ++stats_.states_in;
    if (replica_.join_state(*map, *covers, now_ms, recorder()) && journal_) journal_(encoded);
    if (is_peer(from) && !synced_.contains(from) && covered(*covers)) mark_synced(from);
    send_full_digest(from, false);
    return;
  }
  ++stats_.rejected;
}

bool Replicator::covered(const crdt::Digest& theirs) {
  const crdt::Digest& mine = full_digest().digest;
  for (const auto& [origin, seq] : theirs) {
    auto it = mine.find(origin);
    if (it == mine.end() ? seq > 0 : it->second < seq) return false;
  }
  return true;
}

void Replicator::mark_synced(const std::string& peer) {
  if (std::binary_search(peers_.begin(), peers_.end(), peer)) synced_.insert(peer);
}

void Replicator::on_timer(std::uint64_t now_ms) {
  if (now_ms < next_round_) return;
  next_round_ = now_ms + config_.round_ms;
  flush(now_ms);
  replica_.settle(now_ms);
  for (const std::string& peer : pick(config_.fanout))
    send_full_digest(peer, true);
}

void Replicator::take_changes(std::vector<ReplicaChange>& out) {
  if (out.empty()) {
    out.swap(changes_);
    return;
  }
  for (ReplicaChange& c : changes_)
    out.push_back(std::move(c));
  changes_ = {};  // a bulk write's capacity is not kept
}

void Replicator::take_effects(std::vector<ReplicaEffect>& out) {
  // Into an empty `out` the buffer itself moves, so a burst (a join's thousands of member events)
  // leaves no capacity behind here: at 300 simulated nodes, kept capacity was a quarter of memory.
  if (out.empty()) {
    out = std::move(effects_);
    effects_.clear();
    return;
  }
  for (ReplicaEffect& e : effects_)
    out.push_back(std::move(e));
  effects_.clear();
}

}  // namespace shoal::cluster
