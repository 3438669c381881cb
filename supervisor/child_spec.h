#pragma once

// ChildSpec: what the distributed supervisor runs, as it is stored in the replicated map under
// "c/" + name. The name is also the child's registry name.
//
// Wire (msgpack, versioned):
//   [1, name, kind, argv[], env[], cwd, worker_type, restart, max_restarts, window_ms,
//    {constraint key: value}, shutdown_ms, handoff, exec_path]
// kind: 0 exec | 1 worker; restart: 0 permanent | 1 transient | 2 temporary; handoff: 0 state |
// 1 overlap. The last two fields came later: a spec without them (12 elements, from older nodes)
// hands over state and has no exec_path.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::supervisor {

enum class ChildKind : std::uint8_t { exec = 0, worker = 1 };
// permanent: always restarted; transient: restarted after an abnormal exit only; temporary: never
// restarted. A child that is not restarted is removed from the cluster.
enum class Restart : std::uint8_t { permanent = 0, transient = 1, temporary = 2 };

const char* restart_name(Restart r);
std::expected<Restart, std::string> parse_restart(std::string_view text);

// How a child moves from a live node to another (a leave, a drain, the agent's SIGTERM, a member
// that joined or was reweighted):
//  state: the old copy is stopped first and may store a final checkpoint while it stops (a
//    worker's stop, an exec child's SIGTERM grace); the new copy starts once the old one let go of
//    the name, from that checkpoint. Nothing done before the stop is lost; the child is down for
//    the stop plus a round trip.
//  overlap: the new copy starts first and the old one stops once the new one holds the name: no
//    gap, but two copies run for a moment and the new one resumes from the last periodic
//    checkpoint (for stateless children).
// A failover (the old node died) is the same for both: the new copy starts from the last
// checkpoint stored.
enum class Handoff : std::uint8_t { state = 0, overlap = 1 };
const char* handoff_name(Handoff h);
std::expected<Handoff, std::string> parse_handoff(std::string_view text);

struct ChildSpec {
  std::string name;
  ChildKind kind = ChildKind::exec;
  std::vector<std::string> argv;  // exec: the program and its arguments
  std::vector<std::string> env;   // exec: extra "KEY=value" entries
  std::string cwd;                // exec: working directory (empty: the agent's)
  std::string worker_type;        // worker: a type the embedding program registered
  Restart restart = Restart::permanent;
  // More than max_restarts restarts within window_ms mark the child failed cluster-wide.
  std::uint32_t max_restarts = 3;
  std::uint64_t window_ms = 5'000;
  // Member tags a node must have to run it (e.g. role=db).
  std::map<std::string, std::string, std::less<>> constraints;
  // How long a stop may take before the child is killed.
  std::uint64_t shutdown_ms = 5'000;
  Handoff handoff = Handoff::state;
  // exec: the command's resolved executable, absolute (the agent that added the spec resolved
  // argv[0]); what placement checks members' exec policies against (exec_policy.h). Empty: not
  // known (only members that allow any command run it, unless argv[0] is absolute).
  std::string exec_path;

  friend bool operator==(const ChildSpec&, const ChildSpec&) = default;
};

// Bounds: a spec is small, whatever a caller or a peer sends.
struct SpecLimits {
  std::size_t max_name_bytes = 255;
  std::size_t max_args = 256;
  std::size_t max_arg_bytes = 4096;
  std::size_t max_constraints = 32;
  std::size_t max_encoded_bytes = 64 * 1024;
};

// A one-line reason if the spec is not valid (empty name or argv, out of bounds...).
std::optional<std::string> validate(const ChildSpec& spec, const SpecLimits& limits = {});
std::string encode_spec(const ChildSpec& spec);
std::expected<ChildSpec, std::string> decode_spec(std::string_view bytes,
                                                  const SpecLimits& limits = {});

// What a running copy's registration carries (its meta), so that every node can list where and
// how a child runs: msgpack {"os_pid": int|nil, "started": ms, "restarts": n, "kind": "exec"|
// "worker"}.
struct ChildMeta {
  std::optional<int> os_pid;     // exec children
  std::uint64_t started_ms = 0;  // the node's clock (wall-clock ms in the agent)
  std::uint64_t restarts = 0;    // restarts on that node
  ChildKind kind = ChildKind::exec;
};
std::string encode_child_meta(const ChildMeta& meta);
// Fields it cannot read keep their defaults; nullopt if it is not a map at all.
std::optional<ChildMeta> decode_child_meta(std::string_view bytes);

}  // namespace shoal::supervisor
