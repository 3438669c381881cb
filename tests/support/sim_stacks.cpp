#include "tests/support/sim_stacks.h"

#include <cstdio>
#include <cstdlib>

namespace shoal::test {

SimStacks::SimStacks(std::size_t n, std::uint64_t seed, supervisor::StackConfig config,
                     cluster::sim::SimNetConfig net)
    : c(
          n, seed,
          [this, config](std::size_t, const cluster::NodeIdentity& self, std::uint64_t node_seed,
                         std::uint64_t now) {
            auto stack = std::make_unique<supervisor::Stack>(config, self, node_seed, now);
            for (const auto& [type, factory] : types_)
              stack->workers().add_type(type, factory);
            return stack;
          },
          net),
      config_(config),
      runtimes_(n),
      pending_kills_(n),
      events_(n),
      inboxes_(n),
      call_results_(n),
      task_events_(n),
      trace_(std::getenv("SHOAL_SIM_TRACE") != nullptr) {
  c.set_after_input([this](std::size_t i) { serve(i); });
  c.join_all(0);
}

void SimStacks::add_worker_type(const std::string& type, supervisor::WorkerFactory factory) {
  types_.emplace_back(type, factory);
  for (std::size_t i = 0; i < c.size(); ++i)
    stack(i).workers().add_type(type, factory);
}

supervisor::Stack& SimStacks::stack(std::size_t i) {
  auto* s = dynamic_cast<supervisor::Stack*>(&c.core(i));
  if (s == nullptr) std::abort();  // every core of a SimStacks is a Stack
  return *s;
}

void SimStacks::serve(std::size_t i) {
  supervisor::Stack& s = stack(i);
  // SIGTERM-ignoring children whose shutdown timeout has run out are killed now.
  std::vector<PendingKill>& kills = pending_kills_[i];
  for (auto it = kills.begin(); it != kills.end();) {
    if (it->due > c.now()) {
      ++it;
      continue;
    }
    Runtime& r = runtimes_[i];
    auto running = r.running.find(it->name);
    if (running != r.running.end() && running->second == it->id) {
      r.running.erase(running);
      ++r.stops[it->name];
      s.on_child_exited(c.now(), it->name, it->id, false, "killed by signal 9");
    }
    it = kills.erase(it);
  }
  // What the stack answers with (a restart after a crash, say) is served in the same pass.
  std::vector<supervisor::StackOutput> outputs;
  for (s.take_outputs(outputs); !outputs.empty(); outputs.clear(), s.take_outputs(outputs)) {
    serve(i, outputs);
  }
}

void SimStacks::serve(std::size_t i, std::vector<supervisor::StackOutput>& outputs) {
  supervisor::Stack& s = stack(i);
  Runtime& r = runtimes_[i];
  for (supervisor::StackOutput& o : outputs) {
    if (auto* start = std::get_if<supervisor::StartChild>(&o)) {
      ++r.starts[start->spec.name];
      r.started_at[start->spec.name].push_back(c.now());
      r.last_checkpoint[start->spec.name] = start->checkpoint;
      if (r.crash_on_start.contains(start->spec.name)) {
        s.on_child_exited(c.now(), start->spec.name, start->id, false, "exit status 1");
      } else {
        r.running[start->spec.name] = start->id;
        s.on_child_started(c.now(), start->spec.name, start->id, 1000 + r.starts.size());
      }
    } else if (auto* stop = std::get_if<supervisor::StopChild>(&o)) {
      if (r.ignore_stop.contains(stop->name)) continue;  // a stuck child: it runs on
      if (r.ignore_sigterm) {
        pending_kills_[i].push_back({c.now() + stop->shutdown_ms, stop->name, stop->id});
        continue;
      }
      ++r.stops[stop->name];
      r.running.erase(stop->name);
      if (stop->handover) {
        // Handing its state on, the child stores a final checkpoint in its grace period, as an
        // exec child would with `shoal checkpoint`.
        std::string final = "final@" + c.name(i) + "#" + std::to_string(stop->id);
        if (s.supervisor().checkpoint(c.now(), stop->name, final)) {
          r.final_checkpoint[stop->name] = std::move(final);
        }
      }
      s.on_child_exited(c.now(), stop->name, stop->id, true, "stopped");
    } else if (auto* event = std::get_if<registry::RegistryEvent>(&o)) {
      if (trace_) {
        std::printf("t=%llu n%zu registry %s name=%s pid=%s\n",
                    static_cast<unsigned long long>(c.now()), i, registry::event_name(event->kind),
                    event->name.c_str(), event->pid ? event->pid->to_string().c_str() : "-");
      }
      events_[i].push_back(std::move(*event));
    } else if (auto* d = std::get_if<messaging::Deliver>(&o)) {
      inboxes_[i].push_back(std::move(*d));
    } else if (auto* done = std::get_if<messaging::CallDone>(&o)) {
      call_results_[i].insert_or_assign(done->call_id, std::move(done->result));
    } else if (auto* task = std::get_if<messaging::TaskRequest>(&o)) {
      std::string out;
      for (const std::string& a : task->argv)
        out += (out.empty() ? "" : " ") + a;
      s.messenger().task_output(c.now(), task->origin, task->task_id, 1, out + "\n");
      s.messenger().task_end(c.now(), task->origin, task->task_id, 0, "");
      s.settle(c.now());
    } else if (auto* task_event = std::get_if<messaging::TaskEvent>(&o)) {
      task_events_[i].push_back(std::move(*task_event));
    } else if (auto* line = std::get_if<supervisor::LogLine>(&o)) {
      if (trace_) {
        std::printf("t=%llu n%zu %s %s\n", static_cast<unsigned long long>(c.now()), i,
                    line->component, line->text.c_str());
      }
    }
  }
}

void SimStacks::settle_all() {
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (c.running(i)) c.settle(i);
  }
}

void SimStacks::kill(std::size_t i) {
  c.kill(i);
  runtimes_[i].running.clear();  // a child never outlives its agent
  pending_kills_[i].clear();
}

void SimStacks::restart(std::size_t i, const std::vector<std::size_t>& seeds) {
  runtimes_[i].running.clear();
  pending_kills_[i].clear();
  events_[i].clear();
  inboxes_[i].clear();
  call_results_[i].clear();
  task_events_[i].clear();
  c.restart(i, seeds);
}

int SimStacks::copies(const std::string& name, const std::vector<std::size_t>& among) const {
  int n = 0;
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (!c.running(i)) continue;
    bool listed = among.empty();
    for (std::size_t a : among)
      listed = listed || a == i;
    if (listed && runtimes_[i].running.contains(name)) ++n;
  }
  return n;
}

std::size_t SimStacks::runner_of(const std::string& name) const {
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (c.running(i) && runtimes_[i].running.contains(name)) return i;
  }
  return c.size();
}

int SimStacks::total(const std::map<std::string, int> Runtime::*field,
                     const std::string& name) const {
  int n = 0;
  for (const Runtime& r : runtimes_) {
    auto it = (r.*field).find(name);
    if (it != (r.*field).end()) n += it->second;
  }
  return n;
}

bool SimStacks::settled(const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    if (copies(name) != 1) return false;
    const std::size_t runner = runner_of(name);
    for (std::size_t i = 0; i < c.size(); ++i) {
      if (!c.running(i)) continue;
      auto where = reg(i).whereis(name);
      if (!where || where->pid.node != c.name(runner) ||
          where->pid.id != runtimes_[runner].running.at(name))
        return false;
    }
  }
  return true;
}

}  // namespace shoal::test
