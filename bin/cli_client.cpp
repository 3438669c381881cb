#include "bin/cli_client.h"

#include <glob.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bin/rpc/client.h"

namespace shoal::bin {

void add_cli_commands(CLI::App& app, CliState& state) {
  cli::add_cluster_commands(app, state);
  cli::add_children_commands(app, state);
  cli::add_messaging_commands(app, state);
  cli::add_key_commands(app, state);
  cli::add_completion_command(app, state);
}

namespace cli {

void fail(const std::string& message) {
  std::fprintf(stderr, "shoal: %s\n", message.c_str());
}

// --- Finding and talking to the agent ---

namespace {

std::vector<std::string> default_sockets() {
  std::vector<std::string> out;
  glob_t g{};
  if (::glob("/tmp/shoal-*/shoal.sock", 0, nullptr, &g) == 0) {
    for (std::size_t i = 0; i < g.gl_pathc; ++i)
      out.emplace_back(g.gl_pathv[i]);
  }
  ::globfree(&g);
  return out;
}

const char* const kStartHint =
    "start one with `shoal agent` (it serves <data-dir>/shoal.sock), or point to its socket "
    "with --rpc PATH or SHOAL_RPC";

}  // namespace

std::unique_ptr<Connection> Connection::open(const Common& common) {
  std::string path = common.rpc;
  if (path.empty()) {
    if (const char* env = std::getenv("SHOAL_RPC"); env != nullptr && *env != '\0') path = env;
  }
  if (path.empty()) {
    std::vector<std::string> live;
    for (const std::string& p : default_sockets()) {
      const int fd = rpc::connect_unix(p);
      if (fd >= 0) {
        ::close(fd);
        live.push_back(p);
      }
    }
    if (live.empty()) {
      fail(std::string("no agent found on this host: ") + kStartHint);
      return nullptr;
    }
    if (live.size() > 1) {
      std::string list;
      for (const std::string& p : live)
        list += (list.empty() ? "" : ", ") + p;
      fail("several agents on this host (" + list + "): choose one with --rpc PATH");
      return nullptr;
    }
    path = live.front();
  }
  const int fd = rpc::connect_unix(path);
  if (fd < 0) {
    fail("no agent at " + path + " (" + std::strerror(errno) + "): " + kStartHint);
    return nullptr;
  }
  return std::unique_ptr<Connection>(new Connection(fd));
}

Connection::~Connection() {
  ::close(fd_);
}

bool Connection::send(std::string_view cmd, Value args) {
  return rpc::send_all(fd_, rpc::frame(rpc::encode_request(cmd, std::move(args))));
}

std::optional<Value> Connection::next(int timeout_ms, std::string& error) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (auto body = reader_.take()) {
      rpc::ValueLimits limits;
      limits.max_bytes = rpc::kMaxReplyBytes;
      limits.max_items = 10'000'000;
      limits.max_string = 64 * 1024 * 1024;
      auto v = rpc::decode_value(*body, limits);
      if (!v) {
        error = "bad reply from the agent: " + v.error();
        return std::nullopt;
      }
      return std::move(*v);
    }
    if (reader_.failed()) {
      error = "reply from the agent too large";
      return std::nullopt;
    }
    int wait = -1;
    if (timeout_ms >= 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        error = "no reply from the agent within " + std::to_string(timeout_ms / 1000) + " s";
        return std::nullopt;
      }
      wait = static_cast<int>(left.count());
    }
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, wait);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[64 * 1024];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = std::string("reading from the agent: ") + std::strerror(errno);
      return std::nullopt;
    }
    if (n == 0) {
      error.clear();
      return std::nullopt;
    }
    reader_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
  }
}

// One request, one reply. On an error reply, prints it and sets `code`.
std::optional<Value> call(const Common& common, std::string_view cmd, Value args, int& code,
                          std::unique_ptr<Connection>* keep) {
  auto conn = Connection::open(common);
  if (!conn) {
    code = kExitNoAgent;
    return std::nullopt;
  }
  if (!conn->send(cmd, std::move(args))) {
    fail(std::string("sending to the agent: ") + std::strerror(errno));
    code = kExitNoAgent;
    return std::nullopt;
  }
  std::string error;
  auto reply = conn->next(kReplyTimeoutMs, error);
  if (!reply) {
    fail(error.empty() ? "the agent closed the connection without a reply" : error);
    code = kExitNoAgent;
    return std::nullopt;
  }
  const Value* ok = reply->find("ok");
  if (ok == nullptr || !ok->as_bool()) {
    const Value* message = reply->find("error");
    fail(message != nullptr ? message->as_string() : "the agent answered with an error");
    code = kExitError;
    return std::nullopt;
  }
  if (keep != nullptr) *keep = std::move(conn);
  const Value* result = reply->find("result");
  return result != nullptr ? *result : Value();
}

// --- Printing ---

std::string cell(const Value& v) {
  if (v.is_nil()) return "-";
  if (v.is_bool()) return v.as_bool() ? "yes" : "no";
  if (v.is_string()) return v.as_string().empty() ? "-" : v.as_string();
  if (v.is_array()) {
    std::string out;
    for (const Value& e : v.as_array())
      out += (out.empty() ? "" : ",") + cell(e);
    return out.empty() ? "-" : out;
  }
  if (v.is_map()) {
    std::string out;
    for (const auto& [k, e] : v.as_map())
      out += (out.empty() ? "" : ",") + k + "=" + cell(e);
    return out.empty() ? "-" : out;
  }
  const std::string json = rpc::to_json(v);
  return json;
}

std::string duration(const Value& v) {
  if (!v.is_number()) return "-";
  std::uint64_t s = v.as_u64() / 1000;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  if (s < 86'400) return std::to_string(s / 3600) + "h" + std::to_string(s % 3600 / 60) + "m";
  return std::to_string(s / 86'400) + "d" + std::to_string(s % 86'400 / 3600) + "h";
}

void print_table(const Value& rows, const std::vector<Column>& columns) {
  std::vector<std::vector<std::string>> cells;
  std::vector<std::size_t> width;
  for (const Column& c : columns)
    width.push_back(c.header.size());
  for (const Value& row : rows.as_array()) {
    std::vector<std::string> line;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      const Value* v = row.find(columns[i].key);
      line.push_back(columns[i].show(v != nullptr ? *v : Value()));
      width[i] = std::max(width[i], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  auto print_line = [&](const std::vector<std::string>& line) {
    std::string out;
    for (std::size_t i = 0; i < line.size(); ++i) {
      out += line[i];
      if (i + 1 < line.size()) out.append(width[i] - line[i].size() + 2, ' ');
    }
    std::printf("%s\n", out.c_str());
  };
  std::vector<std::string> header;
  for (const Column& c : columns)
    header.push_back(c.header);
  print_line(header);
  for (const auto& line : cells)
    print_line(line);
}

// key: value lines, nested maps as dotted keys.
void print_fields(const Value& v, const std::string& prefix) {
  for (const auto& [k, e] : v.as_map()) {
    if (e.is_map() && !e.as_map().empty() && k != "tags") {
      print_fields(e, prefix + k + ".");
    } else {
      std::printf("%s%s: %s\n", prefix.c_str(), k.c_str(),
                  (k.ends_with("_ms") ? duration(e) : cell(e)).c_str());
    }
  }
}

// v[key], or nil.
const Value& at(const Value& v, std::string_view key) {
  static const Value nil;
  const Value* e = v.find(key);
  return e != nullptr ? *e : nil;
}

void print_json(const Value& v) {
  std::printf("%s\n", rpc::to_json(v).c_str());
}

// --- Commands ---

void add_common(CLI::App* cmd, Common& common) {
  cmd->add_option("--rpc", common.rpc,
                  "The agent's RPC socket (default: $SHOAL_RPC, else the one agent found at "
                  "/tmp/shoal-*/shoal.sock)");
  cmd->add_option("--format", common.format, "table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
}

Value strings_value(const std::vector<std::string>& list) {
  Value out = Value::array();
  for (const std::string& s : list)
    out.push(s);
  return out;
}

// A command whose reply is printed as a table (or JSON) with `columns`.
void listing(CliState& state, const Common& common, std::string_view cmd, Value args,
             const std::vector<Column>& columns) {
  int code = 0;
  auto result = call(common, cmd, std::move(args), code);
  state.exit_code = code;
  if (!result) return;
  if (common.format == "json") {
    print_json(*result);
  } else if (result->is_array()) {
    print_table(*result, columns);
  } else {
    Value rows = Value::array();
    rows.push(*result);
    print_table(rows, columns);
  }
}

void simple(CliState& state, const Common& common, std::string_view cmd, Value args,
            const std::function<void(const Value&)>& table) {
  int code = 0;
  auto result = call(common, cmd, std::move(args), code);
  state.exit_code = code;
  if (!result) return;
  if (common.json()) {
    print_json(*result);
  } else {
    table(*result);
  }
}

}  // namespace cli

}  // namespace shoal::bin
