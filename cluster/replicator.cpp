#include "cluster/replicator.h"

#include <algorithm>
#include <msgpack.hpp>

#include "crdt/codec.h"
#include "crdt/msgpack_reader.h"

namespace shoal::cluster {

namespace {

enum class Kind : std::uint8_t { delta = 1, ack = 2 };

struct Sink {
  std::string& out;
  void write(const char* data, std::size_t size) { out.append(data, size); }
};
using Packer = msgpack::packer<Sink>;

// [1, kind, upto, ...]: the common head of both messages; `fields` counts all of them.
void pack_head(Packer& pk, std::uint32_t fields, Kind kind, std::uint64_t upto) {
  pk.pack_array(fields);
  pk.pack_uint8(1);
  pk.pack_uint8(static_cast<std::uint8_t>(kind));
  pk.pack_uint64(upto);
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
    effects_.push_back(std::move(change));
  };
}

void Replicator::set_peers(std::uint64_t /*now_ms*/, std::vector<std::string> peers) {
  std::sort(peers.begin(), peers.end());
  peers.erase(std::unique(peers.begin(), peers.end()), peers.end());
  for (const std::string& old : peers_) {
    if (!std::binary_search(peers.begin(), peers.end(), old)) {
      replica_.forget(old);
      in_flight_.erase(old);
    }
  }
  peers_ = std::move(peers);
}

void Replicator::put(std::uint64_t now_ms, std::string_view key, std::string_view value) {
  replica_.put(now_ms, key, value, recorder());
}

bool Replicator::remove(std::uint64_t /*now_ms*/, std::string_view key) {
  return replica_.remove(key, recorder());
}

std::size_t Replicator::remove_where(std::uint64_t /*now_ms*/, const crdt::VersionPredicate& pred) {
  return replica_.remove_where(pred, recorder());
}

std::vector<std::string> Replicator::pick(std::size_t k) {
  std::vector<std::string> chosen = peers_;
  std::shuffle(chosen.begin(), chosen.end(), rng_);
  if (chosen.size() > k) chosen.resize(k);
  return chosen;
}

void Replicator::flush(std::uint64_t /*now_ms*/) {
  const auto batches = replica_.flush();
  if (batches.empty()) return;
  const auto targets = pick(config_.eager_fanout);
  for (const auto& batch : batches) {
    for (const std::string& to : targets) {
      send(to, 0, *batch);
      ++stats_.eager_sent;
    }
  }
}

void Replicator::send(const std::string& to, std::uint64_t upto, const crdt::AwLwwMap& map) {
  std::string bytes;
  Sink sink{bytes};
  Packer pk(sink);
  pack_head(pk, 4, Kind::delta, upto);
  const std::string encoded = crdt::encode(map);
  pk.pack_bin(static_cast<std::uint32_t>(encoded.size()));
  pk.pack_bin_body(encoded.data(), static_cast<std::uint32_t>(encoded.size()));
  const bool stream = bytes.size() > config_.max_datagram_bytes;
  stats_.streams_sent += stream ? 1 : 0;
  stats_.bytes_out += bytes.size();
  effects_.push_back(ReplicaSend{to, std::move(bytes), stream});
}

void Replicator::send_ack(const std::string& to, std::uint64_t upto) {
  std::string bytes;
  Sink sink{bytes};
  Packer pk(sink);
  pack_head(pk, 3, Kind::ack, upto);
  stats_.bytes_out += bytes.size();
  effects_.push_back(ReplicaSend{to, std::move(bytes), false});
}

void Replicator::on_message(std::uint64_t now_ms, const std::string& from, std::string_view bytes) {
  crdt::MsgReader r(bytes);
  const std::uint32_t len = r.array("message", 4);
  const std::uint64_t version = r.uint("version");
  const auto kind = static_cast<Kind>(r.uint("kind", 255));
  const std::uint64_t upto = r.uint("upto");
  if (!r.ok() || version != 1) {
    ++stats_.rejected;
    return;
  }
  if (kind == Kind::ack && len == 3 && r.remaining() == 0) {
    ++stats_.acks_in;
    replica_.on_ack(from, upto);
    auto it = in_flight_.find(from);
    if (it != in_flight_.end() && it->second.upto <= upto) in_flight_.erase(it);
    return;
  }
  if (kind != Kind::delta || len != 4) {
    ++stats_.rejected;
    return;
  }
  const std::string_view encoded = r.bytes("map", crdt::DecodeLimits{}.max_value_bytes * 64u);
  if (!r.ok() || r.remaining() != 0) {
    ++stats_.rejected;
    return;
  }
  auto map = crdt::decode(encoded);
  if (!map) {
    ++stats_.rejected;
    return;
  }
  ++stats_.deltas_in;
  replica_.join(from, std::make_shared<const crdt::AwLwwMap>(std::move(*map)), now_ms, recorder());
  if (upto != 0) send_ack(from, upto);
}

void Replicator::on_timer(std::uint64_t now_ms) {
  if (now_ms < next_round_) return;
  next_round_ = now_ms + config_.round_ms;
  flush(now_ms);
  for (const std::string& peer : pick(config_.fanout)) {
    auto flight = in_flight_.find(peer);
    if (flight != in_flight_.end() && now_ms - flight->second.sent_ms < config_.ack_timeout_ms) {
      continue;  // backpressure: one interval in flight per peer
    }
    auto out = replica_.outgoing(peer);
    if (!out) continue;
    if (out->kind == crdt::Outgoing::Kind::full_state) {
      ++stats_.full_states_sent;
    } else {
      ++stats_.intervals_sent;
    }
    send(peer, out->upto, *out->payload);
    in_flight_[peer] = InFlight{out->upto, now_ms};
  }
}

void Replicator::take_effects(std::vector<ReplicaEffect>& out) {
  for (ReplicaEffect& e : effects_)
    out.push_back(std::move(e));
  effects_.clear();
}

}  // namespace shoal::cluster
