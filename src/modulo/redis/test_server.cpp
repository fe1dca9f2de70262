#include "modulo/redis/test_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

namespace modulo::redis {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kInstallHint =
    "redis-server was not found: install it (Debian: `apt-get install -y redis-server`, as "
    "scripts/install-deps.sh does) or set MODULO_REDIS_SERVER to its path";

std::string FindServer() {
  if (const char* env = std::getenv("MODULO_REDIS_SERVER"); env != nullptr && *env != '\0') {
    return ::access(env, X_OK) == 0 ? std::string(env) : std::string();
  }
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::stringstream ss(path);
    std::string d;
    while (std::getline(ss, d, ':')) {
      if (!d.empty()) dirs.push_back(d);
    }
  }
  for (const char* d : {"/usr/bin", "/usr/sbin", "/usr/local/bin"}) dirs.emplace_back(d);
  for (const auto& d : dirs) {
    const std::string candidate = d + "/redis-server";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

Result<int> FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return modulo::Fail(Error::Internal("socket() failed"));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return modulo::Fail(Error::Internal("cannot find a free loopback port"));
  }
  ::close(fd);
  return static_cast<int>(ntohs(a.sin_port));
}

std::string LogTail(const std::string& dir) {
  std::ifstream in(dir + "/redis.log");
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

enum class Probe { kReady, kNotYet, kOther };

// Ready when this port answers PING and INFO names our process (not another test's server).
Probe ProbeServer(int port, pid_t pid) {
  timeval tv{0, 200 * 1000};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c == nullptr) return Probe::kNotYet;
  std::unique_ptr<redisContext, void (*)(redisContext*)> guard(c, redisFree);
  if (c->err != 0) return Probe::kNotYet;
  redisSetTimeout(c, tv);
  auto* r = static_cast<redisReply*>(redisCommand(c, "INFO server"));
  if (r == nullptr) return Probe::kNotYet;
  std::string text = r->type == REDIS_REPLY_STRING ? std::string(r->str, r->len) : std::string();
  const bool loading = r->type == REDIS_REPLY_ERROR;
  freeReplyObject(r);
  if (loading) return Probe::kNotYet;
  const std::string want = "process_id:" + std::to_string(pid) + "\r";
  if (text.find(want) == std::string::npos) return Probe::kOther;
  auto* p = static_cast<redisReply*>(redisCommand(c, "PING"));
  if (p == nullptr) return Probe::kNotYet;
  const bool ok = p->type == REDIS_REPLY_STATUS;
  freeReplyObject(p);
  return ok ? Probe::kReady : Probe::kNotYet;
}

}  // namespace

Result<std::unique_ptr<RedisTestServer>> RedisTestServer::Start(TestServerOptions options) {
  std::unique_ptr<RedisTestServer> s(new RedisTestServer());
  s->options_ = options;
  s->binary_ = FindServer();
  if (s->binary_.empty()) return modulo::Fail(Error::Unavailable(kInstallHint));
  std::string templ = (fs::temp_directory_path() / "modulo-redis-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) return modulo::Fail(Error::Internal("mkdtemp failed for " + templ));
  s->dir_ = templ;
  Error last = Error::Internal("redis-server did not start");
  for (int attempt = 0; attempt < 5; ++attempt) {  // another process may take the port first
    auto port = FreeLoopbackPort();
    if (!port) return modulo::Fail(port.error());
    s->port_ = *port;
    auto st = s->Launch();
    if (st) return s;
    last = st.error();
  }
  return modulo::Fail(std::move(last));
}

RedisTestServer::~RedisTestServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

RedisOptions RedisTestServer::Options(std::string key_prefix) const {
  RedisOptions o;
  o.host = "127.0.0.1";
  o.port = port_;
  o.connect_timeout = 500ms;
  o.command_timeout = 2000ms;
  o.reconnect_backoff_initial = 20ms;
  o.reconnect_backoff_max = 200ms;
  o.pool_size = 8;
  o.key_prefix = std::move(key_prefix);
  return o;
}

Status RedisTestServer::Launch() {
  const std::string port = std::to_string(port_);
  const std::string logfile = dir_ + "/redis.log";
  std::vector<std::string> args = {binary_,       "--port",       port,          "--bind",     "127.0.0.1",
                                   "--save",      "",             "--appendonly", "yes",       "--dir",
                                   dir_,          "--logfile",    logfile,       "--daemonize", "no"};
  if (options_.fsync_always) {
    args.push_back("--appendfsync");
    args.push_back("always");
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return modulo::Fail(Error::Internal("fork failed"));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    const int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, STDIN_FILENO);
      ::dup2(devnull, STDOUT_FILENO);
      ::dup2(devnull, STDERR_FILENO);
    }
    ::close_range(3, ~0U, 0);  // no inherited client sockets or files
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  pid_ = pid;
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return modulo::Fail(Error::Unavailable("redis-server exited at start on port " + port + ": " + LogTail(dir_)));
    }
    switch (ProbeServer(port_, pid_)) {
      case Probe::kReady: return {};
      case Probe::kOther: {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
        return modulo::Fail(Error::Unavailable("port " + port + " is taken by another redis-server"));
      }
      case Probe::kNotYet: break;
    }
    std::this_thread::sleep_for(20ms);
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
  return modulo::Fail(Error::Unavailable("redis-server did not answer within 15 s on port " + port + ": " +
                                         LogTail(dir_)));
}

Status RedisTestServer::Kill() {
  if (pid_ <= 0) return modulo::Fail(Error::Conflict("redis-server is not running"));
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
  return {};
}

Status RedisTestServer::Restart() {
  if (pid_ > 0) return modulo::Fail(Error::Conflict("redis-server is still running"));
  Status st = Launch();
  for (int attempt = 0; !st && attempt < 20; ++attempt) {  // the port may linger for a moment
    std::this_thread::sleep_for(100ms);
    st = Launch();
  }
  return st;
}

Result<RedisTestServer*> SharedTestServer() {
  static std::unique_ptr<RedisTestServer> server;
  static std::optional<Error> failure;
  if (server) return server.get();
  if (failure) return modulo::Fail(*failure);
  auto s = RedisTestServer::Start();
  if (!s) {
    failure = s.error();
    return modulo::Fail(s.error());
  }
  server = std::move(*s);
  return server.get();
}

std::string UniqueTestPrefix() {
  static std::atomic<int> n{0};
  return "test:" + std::to_string(::getpid()) + ":" + std::to_string(n.fetch_add(1)) + ":";
}

}  // namespace modulo::redis
