#include "cluster/config.h"

namespace shoal::cluster {

std::optional<std::string> MembershipConfig::validate() const {
  if (probe_interval_ms == 0) return "probe_interval_ms must be positive";
  if (probe_timeout_ms == 0 || probe_timeout_ms >= probe_interval_ms) {
    return "probe_timeout_ms must be positive and below probe_interval_ms";
  }
  if (suspicion_mult < 2) return "suspicion_mult must be at least 2";
  if (suspicion_max_mult < 1) return "suspicion_max_mult must be at least 1";
  if (retransmit_mult == 0) return "retransmit_mult must be positive";
  if (gossip_interval_ms == 0) return "gossip_interval_ms must be positive";
  if (push_pull_interval_ms == 0) return "push_pull_interval_ms must be positive";
  if (join_retry_min_ms == 0 || join_retry_max_ms < join_retry_min_ms) {
    return "join retry bounds must satisfy 0 < min <= max";
  }
  if (awareness_max < 0) return "awareness_max must not be negative";
  if (gossip_share <= 0 || gossip_share > 1) return "gossip_share must be in (0, 1]";
  if (max_packet_bytes < 512 || max_packet_bytes > 65'000) {
    return "max_packet_bytes must be within 512..65000";
  }
  return std::nullopt;
}

}  // namespace shoal::cluster
