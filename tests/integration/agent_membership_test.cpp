// Real `shoal agent` processes on 127.0.0.1: joining by seeds, kill -9, graceful leave, a wrong
// cluster key, hostile packets. Conditions are awaited with generous deadlines.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/agent_process.h"
#include "tests/support/seed.h"

using namespace std::chrono_literals;
using shoal::test::AgentProcess;
using shoal::test::sleepers;

namespace {

struct Cluster {
  std::string dir;
  std::uint16_t base;
  std::vector<std::unique_ptr<AgentProcess>> agents;

  explicit Cluster(std::uint16_t ports) : base(shoal::test::free_ports(ports)) {
    char tmpl[] = "/tmp/shoal-it-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  std::string addr(int i) const { return "127.0.0.1:" + std::to_string(base + i); }
  AgentProcess& start(int i, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--name", "n" + std::to_string(i), "--bind", addr(i)};
    if (std::find(extra.begin(), extra.end(), "--discovery") == extra.end()) {
      // Seeds only: tests running side by side must not find each other by multicast.
      args.insert(args.end(), {"--discovery", "seeds"});
    }
    if (i != 0 && std::find(extra.begin(), extra.end(), "multicast") == extra.end()) {
      args.push_back("--join");
      args.push_back(addr(0));
    }
    args.insert(args.end(), extra.begin(), extra.end());
    // Each agent's own data dir (its map on disk), inside this test's directory.
    if (std::find(extra.begin(), extra.end(), "--data-dir") == extra.end())
      args.insert(args.end(), {"--data-dir", dir + "/data" + std::to_string(i)});
    if (agents.size() <= static_cast<std::size_t>(i)) agents.resize(i + 1);
    agents[i] = std::make_unique<AgentProcess>(args, dir + "/n" + std::to_string(i) + ".log");
    return *agents[i];
  }
  AgentProcess& operator[](int i) { return *agents[i]; }
  // Every agent in `who` has logged "joined" for every other agent in `who`.
  bool converged(const std::vector<int>& who) {
    for (int i : who) {
      for (int j : who) {
        if (i != j &&
            agents[i]->count({"membership joined", "name=n" + std::to_string(j) + " "}) == 0) {
          return false;
        }
      }
    }
    return true;
  }
  std::string key_file(const std::string& name, const std::string& hex) const {
    const std::string path = dir + "/" + name;
    std::ofstream(path) << "# test key\n" << hex << "\n";
    return path;
  }
};

const std::vector<int> kFive{0, 1, 2, 3, 4};

}  // namespace

BOOST_AUTO_TEST_SUITE(agent_membership)

BOOST_AUTO_TEST_CASE(five_agents_join_through_a_seed_and_a_killed_one_is_declared_failed) {
  Cluster c(5);
  for (int i : kFive)
    c.start(i);
  BOOST_TEST_REQUIRE(shoal::test::eventually([&] { return c.converged(kFive); }, 20s));
  const auto killed = std::chrono::steady_clock::now();
  c[3].signal(SIGKILL);
  for (int i : {0, 1, 2, 4}) {
    BOOST_TEST(c[i].wait_for({"membership failed", "name=n3 "}, 20s), "n" << i << " log:\n"
                                                                          << c[i].log());
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - killed);
  BOOST_TEST_MESSAGE("kill -9 seen as failed by all 4 survivors within " << ms.count() << " ms");
}

BOOST_AUTO_TEST_CASE(five_agents_find_each_other_by_multicast_on_loopback) {
  Cluster c(6);  // the last port is this test's own multicast group port
  const std::string group = "239.255.77.46:" + std::to_string(c.base + 5);
  for (int i : kFive)
    c.start(i, {"--discovery", "multicast", "--multicast-group", group});
  BOOST_TEST(shoal::test::eventually([&] { return c.converged(kFive); }, 20s), c[0].log());
}

BOOST_AUTO_TEST_CASE(seed_given_by_dns_name_resolves_and_joins) {
  Cluster c(2);
  c.start(0);
  // "localhost" resolves to 127.0.0.1 (and maybe ::1, which nobody answers: harmless).
  AgentProcess& b = c.start(1, {"--join", "localhost:" + std::to_string(c.base)});
  BOOST_TEST(b.wait_for({"membership joined", "name=n0 "}, 20s), b.log());
}

BOOST_AUTO_TEST_CASE(graceful_leave_is_seen_as_left_not_failed_and_exits_zero) {
  Cluster c(5);
  for (int i : kFive)
    c.start(i);
  BOOST_TEST_REQUIRE(shoal::test::eventually([&] { return c.converged(kFive); }, 20s));
  c[4].signal(SIGTERM);
  BOOST_TEST(c[4].wait_exit(10s) == 0);
  for (int i : {0, 1, 2, 3}) {
    BOOST_TEST(c[i].wait_for({"membership left", "name=n4 "}, 10s), "n" << i << " log:\n"
                                                                        << c[i].log());
    BOOST_TEST(c[i].count({"membership failed", "name=n4 "}) == 0u);
  }
}

BOOST_AUTO_TEST_CASE(node_with_a_wrong_key_is_refused_and_counted) {
  Cluster c(4);
  const std::string good = c.key_file("good.key", std::string(64, 'a'));
  const std::string bad = c.key_file("bad.key", std::string(64, 'b'));
  for (int i : {0, 1, 2})
    c.start(i, {"--key-file", good});
  BOOST_TEST_REQUIRE(shoal::test::eventually([&] { return c.converged({0, 1, 2}); }, 20s));
  c.start(3, {"--key-file", bad});
  // The intruder's join attempts reach n0 and are rejected (n0 reports them once a second); by
  // then nobody may have let it in.
  BOOST_TEST(c[0].wait_for({"rejected packets auth="}, 10s), c[0].log());
  BOOST_TEST(c[0].count({"rejected packets auth=0 "}) == 0u);
  for (int i : {0, 1, 2}) {
    BOOST_TEST(c[i].count({"membership joined", "name=n3 "}) == 0u);
  }
  BOOST_TEST(c[3].count({"membership joined"}) == 0u);
}

BOOST_AUTO_TEST_CASE(hostile_datagrams_and_frames_do_not_crash_a_node) {
  const auto seed = shoal::test::test_seed();
  auto rng = shoal::test::rng_for(seed);
  Cluster c(3);
  for (int i : {0, 1})
    c.start(i);
  BOOST_TEST_REQUIRE(shoal::test::eventually([&] { return c.converged({0, 1}); }, 20s));
  sockaddr_in target{};
  target.sin_family = AF_INET;
  target.sin_port = htons(c.base);
  target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int udp = ::socket(AF_INET, SOCK_DGRAM, 0);
  for (int i = 0; i < 20'000; ++i) {
    std::string junk(rng() % 1500, '\0');
    for (char& ch : junk)
      ch = static_cast<char>(rng());
    if (i % 4 == 0 && !junk.empty()) junk[0] = static_cast<char>(0x94);  // looks like a packet
    ::sendto(udp, junk.data(), junk.size(), 0, reinterpret_cast<sockaddr*>(&target), sizeof target);
  }
  ::close(udp);
  for (int i = 0; i < 50; ++i) {
    const int tcp = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(tcp, reinterpret_cast<sockaddr*>(&target), sizeof target) == 0) {
      std::string junk(1 + rng() % 4096, '\0');
      for (char& ch : junk)
        ch = static_cast<char>(rng());
      if (i % 2 == 0) junk.replace(0, 4, "\xff\xff\xff\xff");  // announces a 4 GiB frame
      (void)!::write(tcp, junk.data(), junk.size());
    }
    ::close(tcp);
  }
  // Still alive, still serving: a new node joins through it.
  c.start(2);
  BOOST_TEST(shoal::test::eventually([&] { return c.converged({0, 1, 2}); }, 20s), c[0].log());
  BOOST_TEST(c[0].running());
  BOOST_TEST(c[1].count({"membership failed", "name=n0 "}) == 0u);
}

BOOST_AUTO_TEST_CASE(names_registered_on_one_agent_are_found_on_every_other) {
  Cluster c(4);
  c.start(0, {"--register", "svc-a", "--register", "svc-b"});
  for (int i : {1, 2, 3})
    c.start(i);
  for (int i : {1, 2, 3}) {
    for (const char* name : {"name=svc-a ", "name=svc-b "}) {
      BOOST_TEST(c[i].wait_for({"registry registered", name, "pid=<n0."}, 20s), c[i].log());
    }
  }
  // The owner dies: every survivor stops answering for its names, and they leave the map.
  c[0].signal(SIGKILL);
  for (int i : {1, 2, 3}) {
    BOOST_TEST(c[i].wait_for({"registry unregistered", "name=svc-a "}, 20s), c[i].log());
  }
  std::size_t purgers = 0;
  for (int i : {1, 2, 3})
    purgers += c[i].count({"registry purged entries=2"});
  BOOST_TEST(purgers >= 1u);
}

BOOST_AUTO_TEST_CASE(bad_flags_fail_fast_with_one_line) {
  Cluster c(1);
  AgentProcess bad_bind({"--bind", "not-an-address", "--discovery", "seeds"}, c.dir + "/bad.log");
  BOOST_TEST(bad_bind.wait_exit(10s) == 2);
  BOOST_TEST(bad_bind.count({"--bind"}) == 1u);
  AgentProcess first({"--name", "a", "--bind", c.addr(0), "--discovery", "seeds"},
                     c.dir + "/a.log");
  BOOST_TEST_REQUIRE(first.wait_for({"agent started"}, 10s));
  AgentProcess second({"--name", "b", "--bind", c.addr(0), "--discovery", "seeds"},
                      c.dir + "/b.log");
  BOOST_TEST(second.wait_exit(10s) == 1);
  BOOST_TEST(second.count({"Address already in use"}) == 1u, second.log());
}

BOOST_AUTO_TEST_CASE(exec_children_of_a_killed_agent_die_with_it_and_run_once_on_survivors) {
  const auto seed = shoal::test::test_seed();
  Cluster c(3);
  // Sleep durations unique to this run name the children's OS processes.
  const std::uint64_t token = 7'000'000 + (seed % 1'000'000) * 10;
  std::vector<std::string> args;
  for (int k = 0; k < 6; ++k) {
    args.push_back("--child");
    args.push_back("job" + std::to_string(k) + "=sleep " + std::to_string(token + k));
  }
  for (int i = 0; i < 3; ++i) {
    std::vector<std::string> extra{"--data-dir", c.dir + "/data" + std::to_string(i), "--log-level",
                                   "debug"};
    if (i == 0) extra.insert(extra.end(), args.begin(), args.end());
    c.start(i, extra);
  }
  BOOST_TEST_REQUIRE(shoal::test::eventually([&] { return c.converged({0, 1, 2}); }, 20s));
  // Every agent knows every child (a spec that only its writer held would die with it).
  BOOST_TEST_REQUIRE(shoal::test::eventually(
      [&] {
        for (int i = 0; i < 3; ++i) {
          for (int k = 0; k < 6; ++k) {
            if (c[i].count({"child spec added", "name=job" + std::to_string(k)}) == 0) return false;
          }
        }
        return true;
      },
      20s));
  auto one_each = [&] {
    for (int k = 0; k < 6; ++k) {
      if (sleepers(std::to_string(token + k)).size() != 1) return false;
    }
    return true;
  };
  BOOST_TEST_REQUIRE(shoal::test::eventually(one_each, 20s));
  // The agent that runs the most children is the victim.
  std::map<pid_t, std::vector<pid_t>> by_agent;
  for (int k = 0; k < 6; ++k) {
    for (auto [pid, parent] : sleepers(std::to_string(token + k)))
      by_agent[parent].push_back(pid);
  }
  int victim = 0;
  for (int i = 0; i < 3; ++i) {
    if (by_agent[c[i].pid()].size() > by_agent[c[victim].pid()].size()) victim = i;
  }
  const std::vector<pid_t> orphans = by_agent[c[victim].pid()];
  BOOST_TEST_REQUIRE(!orphans.empty());
  c[victim].signal(SIGKILL);
  // Its children die with it (parent-death signal), and each runs again, once, on a survivor;
  // never two copies of one child meanwhile.
  // (An orphan the kernel has just handed to init, on its way out, is no survivor's copy.)
  std::size_t most = 0;
  const bool recovered = shoal::test::eventually(
      [&] {
        for (int k = 0; k < 6; ++k)
          most = std::max(most, sleepers(std::to_string(token + k)).size());
        for (int k = 0; k < 6; ++k) {
          auto procs = sleepers(std::to_string(token + k));
          if (procs.size() != 1) return false;
          const pid_t parent = procs[0].second;
          bool survivor = false;
          for (int i = 0; i < 3; ++i)
            survivor = survivor || (i != victim && parent == c[i].pid());
          if (!survivor) return false;
        }
        return true;
      },
      30s);
  BOOST_TEST(recovered, "seed=" << seed);
  BOOST_TEST(most <= 1u);
  std::vector<pid_t> now_running;
  for (int k = 0; k < 6; ++k) {
    for (auto [pid, parent] : sleepers(std::to_string(token + k)))
      now_running.push_back(pid);
  }
  for (pid_t pid : orphans) {
    BOOST_TEST((std::find(now_running.begin(), now_running.end(), pid) == now_running.end()),
               "orphan " << pid << " still runs");
  }
  int restarted = 0;
  for (int i = 0; i < 3; ++i) {
    if (i != victim) restarted += static_cast<int>(c[i].count({"supervisor started"}));
  }
  BOOST_TEST(restarted >= static_cast<int>(orphans.size()));
  // A graceful leave hands the children over (handoff state, the default): each old copy ends
  // before its new one starts, so no two copies of a child run at once, and all end on the last
  // agent.
  int leaver = -1;
  int last = -1;
  for (int i = 0; i < 3; ++i) {
    if (i == victim) continue;
    if (leaver < 0) {
      leaver = i;
    } else {
      last = i;
    }
  }
  c[leaver].signal(SIGTERM);
  bool two = false;
  const bool handed = shoal::test::eventually(
      [&] {
        for (int k = 0; k < 6; ++k)
          two = two || sleepers(std::to_string(token + k)).size() > 1;
        if (c[leaver].running()) return false;
        for (int k = 0; k < 6; ++k) {
          auto procs = sleepers(std::to_string(token + k));
          if (procs.size() != 1 || procs[0].second != c[last].pid()) return false;
        }
        return true;
      },
      30s);
  BOOST_TEST(handed, "seed=" << seed);
  BOOST_TEST(!two, "two copies of a child ran at once during the graceful leave");
  BOOST_TEST(c[leaver].wait_exit(10s) == 0);
  // The last one stops its children when it stops (nobody is left to take them).
  c[last].signal(SIGTERM);
  BOOST_TEST(c[last].wait_exit(20s) == 0);
  BOOST_TEST(shoal::test::eventually(
      [&] {
        for (int k = 0; k < 6; ++k) {
          if (!sleepers(std::to_string(token + k)).empty()) return false;
        }
        return true;
      },
      10s));
}

BOOST_AUTO_TEST_CASE(a_counter_worker_fails_over_and_resumes_from_its_checkpoint) {
  const auto seed = shoal::test::test_seed();
  Cluster c(3);
  for (int i = 0; i < 3; ++i) {
    std::vector<std::string> extra{"--data-dir", c.dir + "/data" + std::to_string(i), "--log-level",
                                   "debug"};
    if (i == 0) extra.insert(extra.end(), {"--worker", "tally=counter"});
    c.start(i, extra);
  }
  BOOST_TEST_REQUIRE(shoal::test::eventually([&] { return c.converged({0, 1, 2}); }, 20s));
  const std::vector<std::string> started{"supervisor started", "name=tally worker=yes"};
  const std::vector<std::string> ended{"supervisor", "name=tally how="};
  // The agents where a copy runs (started more often than ended).
  auto runners = [&] {
    std::vector<int> out;
    for (int i = 0; i < 3; ++i) {
      if (c[i].running() && c[i].count(started) > c[i].count(ended)) out.push_back(i);
    }
    return out;
  };
  BOOST_TEST_REQUIRE(shoal::test::eventually([&] { return runners().size() == 1; }, 20s));
  const int first = runners().front();
  // Two checkpoints stored: the first has long reached the others.
  BOOST_TEST_REQUIRE(shoal::test::eventually(
      [&] {
        return c[first].count({"supervisor checkpoint", "name=tally"}) >= 2;
      },
      20s));
  c[first].signal(SIGKILL);
  BOOST_TEST(c[first].wait_exit(10s) != 0);
  BOOST_TEST_REQUIRE(shoal::test::eventually([&] { return runners().size() == 1; }, 30s),
                     "seed=" << seed);
  const int second = runners().front();
  const int third = 3 - first - second;
  const std::size_t third_before = c[third].count(started);
  // A graceful leave hands it on; the copy that stops says where it had resumed from.
  c[second].signal(SIGTERM);
  BOOST_TEST_REQUIRE(c[second].wait_for({"supervisor stopped", "name=tally"}, 30s));
  BOOST_TEST(c[second].wait_exit(20s) == 0);
  BOOST_TEST(shoal::test::eventually([&] { return c[third].count(started) > third_before; }, 20s));
  const std::string log = c[second].log();
  const auto at = log.rfind("resumed from ");
  BOOST_TEST_REQUIRE(at != std::string::npos, log);
  BOOST_TEST(std::stoul(log.substr(at + 13)) > 0u, "the new copy did not resume from a checkpoint");
}

BOOST_AUTO_TEST_CASE(a_whole_cluster_killed_at_once_comes_back_from_its_data_dirs) {
  const auto seed = shoal::test::test_seed();
  Cluster c(3);
  const std::string token = std::to_string(8'000'000 + seed % 1'000'000);
  // "counted", an exec child: at each start it logs the count it resumed from, then stores five
  // checkpoints, one count higher each, logging each once `shoal checkpoint` has returned, and
  // then idles. Its log says which checkpoint was the last written before the kill.
  const std::string counts = c.dir + "/counts";
  const std::string script = c.dir + "/counted.sh";
  std::ofstream(script) << "n=0; [ -f \"$SHOAL_CHECKPOINT_FILE\" ] && n=$(cat "
                           "\"$SHOAL_CHECKPOINT_FILE\")\n"
                        << "echo \"resumed $n\" >> " << counts << "\n"
                        << "end=$((n+5))\n"
                        << "while [ $n -lt $end ]; do\n"
                        << "  n=$((n+1))\n"
                        << "  printf %s $n | " << shoal::test::shoal_binary()
                        << " checkpoint || exit 1\n"
                        << "  echo \"wrote $n\" >> " << counts << "\n"
                        << "  sleep 0.1\n"
                        << "done\n"
                        << "exec sleep 3600\n";
  // The lines of the counts log.
  auto slurp = [](const std::string& path) {
    std::ifstream in(path);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  };
  auto count_lines = [&] {
    std::vector<std::string> out;
    std::ifstream in(counts);
    for (std::string line; std::getline(in, line);)
      out.push_back(line);
    return out;
  };
  auto start_all = [&](const std::string& life) {
    for (int i = 0; i < 3; ++i) {
      std::vector<std::string> args{"--name",      "n" + std::to_string(i),
                                    "--bind",      c.addr(i),
                                    "--discovery", "seeds",
                                    "--data-dir",  c.dir + "/data" + std::to_string(i),
                                    "--log-level", "debug"};
      if (i != 0) args.insert(args.end(), {"--join", c.addr(0)});
      if (life == "first" && i == 0) {
        args.insert(args.end(), {"--child", "sleeper=sleep " + token, "--child",
                                 "counted=sh " + script, "--worker", "tally=counter"});
      }
      if (c.agents.size() <= static_cast<std::size_t>(i)) c.agents.resize(i + 1);
      c.agents[i] = std::make_unique<AgentProcess>(
          args, c.dir + "/n" + std::to_string(i) + "-" + life + ".log");
    }
  };
  auto count = [&](const std::vector<std::string>& parts) {
    std::size_t n = 0;
    for (int i = 0; i < 3; ++i)
      n += c[i].count(parts);
    return n;
  };
  start_all("first");
  BOOST_TEST_REQUIRE(shoal::test::eventually([&] { return c.converged({0, 1, 2}); }, 20s));
  BOOST_TEST_REQUIRE(shoal::test::eventually([&] { return sleepers(token).size() == 1; }, 20s));
  // The counter has stored a checkpoint or two (replicated, and logged on every agent's disk),
  // and the copy of "counted" that started last has written all five of its checkpoints.
  std::string last_written;
  BOOST_TEST_REQUIRE(shoal::test::eventually(
                         [&] {
                           const auto lines = count_lines();
                           const auto resumed = std::find_if(
                               lines.rbegin(), lines.rend(),
                               [](const auto& l) { return l.starts_with("resumed "); });
                           if (resumed == lines.rend() || resumed == lines.rbegin()) return false;
                           const long from = std::stol(resumed->substr(8));
                           last_written = lines.back();
                           return last_written == "wrote " + std::to_string(from + 5) &&
                                  count({"supervisor checkpoint", "name=tally"}) >= 2;
                         },
                         30s),
                     "counts:\n"
                         << slurp(counts));
  const std::size_t lines_before = count_lines().size();
  for (int i = 0; i < 3; ++i)
    c[i].signal(SIGKILL);
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(c[i].wait_exit(10s) != 0);
  BOOST_TEST_REQUIRE(shoal::test::eventually([&] { return sleepers(token).empty(); }, 10s));

  start_all("second");
  // Each agent restored the map from its data dir; every child runs again, once; so does the
  // worker.
  BOOST_TEST(shoal::test::eventually([&] { return count({"store restored"}) == 3; }, 20s));
  const std::vector<std::string> sleeper_started{"supervisor started", "name=sleeper "};
  const std::vector<std::string> counted_started{"supervisor started", "name=counted "};
  const std::vector<std::string> tally_started{"supervisor started", "name=tally worker=yes"};
  BOOST_TEST_REQUIRE(shoal::test::eventually(
                         [&] {
                           return sleepers(token).size() == 1 && count(sleeper_started) >= 1 &&
                                  count(counted_started) >= 1 && count(tally_started) >= 1;
                         },
                         30s),
                     "seed=" << seed);
  // "counted" resumed from exactly the last checkpoint written before the kill.
  BOOST_TEST_REQUIRE(
      shoal::test::eventually([&] { return count_lines().size() > lines_before; }, 20s));
  BOOST_TEST(
      count_lines()[lines_before] == "resumed " + last_written.substr(6), "counts:\n"
                                                                              << slurp(counts));
  // Then one copy each, over a window: once every agent says it started, the starts are sampled
  // until none has been added for 5 s (a child started early on a node that saw only part of
  // the cluster moves once to its owner, the old copy stopped before the new one starts), and
  // the OS table never holds two copies of the sleeper, and one at the end of that window.
  for (int i = 0; i < 3; ++i)
    BOOST_TEST_REQUIRE(c[i].wait_for({"agent started"}, 30s));
  std::vector<std::size_t> starts;
  auto quiet_since = std::chrono::steady_clock::now();
  std::size_t looks = 0;
  const bool quiet = shoal::test::eventually(
      [&] {
        BOOST_TEST_REQUIRE(sleepers(token).size() <= 1u, "seed=" << seed);
        ++looks;
        std::vector<std::size_t> now{count(sleeper_started), count(counted_started),
                                     count(tally_started)};
        if (now != starts) {
          starts = std::move(now);
          quiet_since = std::chrono::steady_clock::now();
          return false;
        }
        return std::chrono::steady_clock::now() - quiet_since >= 5s;
      },
      60s);
  BOOST_TEST_REQUIRE(quiet, "starts kept coming; seed=" << seed);
  BOOST_TEST(sleepers(token).size() == 1u);
  BOOST_TEST_MESSAGE("starts since the restart (sleeper, counted, tally): "
                     << starts[0] << ", " << starts[1] << ", " << starts[2] << "; " << looks
                     << " looks at the OS table");
  BOOST_TEST(looks > 10u);
  // Every copy of "counted" since the restart resumed from where the one before it stopped
  // writing (the first from the last checkpoint before the kill, checked above): from its last
  // "wrote", or one past it when that copy was stopped between storing a checkpoint and logging
  // it. A copy stopped before its first line logs nothing, so there are at most as many resumes
  // as starts.
  const auto after = count_lines();
  std::size_t resumes = 0;
  long written = std::stol(last_written.substr(6));
  for (std::size_t i = lines_before; i < after.size(); ++i) {
    const long n = std::stol(after[i].substr(after[i].find(' ') + 1));
    if (after[i].starts_with("wrote ")) {
      written = n;
      continue;
    }
    ++resumes;
    BOOST_TEST((n == written || n == written + 1),
               "line " << i << " resumed from " << n << " after wrote " << written << "; counts:\n"
                       << slurp(counts));
  }
  BOOST_TEST(resumes >= 1u);
  BOOST_TEST(resumes <= starts[1], "counts:\n" << slurp(counts));
  // The counter resumed from its checkpoint: its stop says where from. Each agent is told to
  // stop only once it says it started, that is once SIGTERM means a graceful leave.
  for (int i = 0; i < 3; ++i)
    c[i].signal(SIGTERM);
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(c[i].wait_exit(30s) == 0);
  std::string stopped;
  for (int i = 0; i < 3; ++i) {
    const std::string log = c[i].log();
    if (auto at = log.rfind("resumed from "); at != std::string::npos)
      stopped = log.substr(at + 13, 20);
  }
  BOOST_TEST_REQUIRE(!stopped.empty());
  BOOST_TEST(std::stoul(stopped) > 0u, "the counter started from scratch: " << stopped);
  BOOST_TEST(sleepers(token).empty());
}

BOOST_AUTO_TEST_SUITE_END()
