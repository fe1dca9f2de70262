#include "modulo/store/postgres/pg_test_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "modulo/store/postgres/pg.h"

namespace modulo::store::postgres {
namespace {

namespace fs = std::filesystem;

constexpr const char* kInstallHint =
    "PostgreSQL server binaries (initdb, pg_ctl) not found: install them with `apt-get install postgresql` "
    "(Debian), or set MODULO_PG_BIN to the directory that holds them";

std::string FindBinDir() {
  if (const char* env = std::getenv("MODULO_PG_BIN"); env != nullptr && *env != '\0') {
    if (fs::exists(fs::path(env) / "initdb")) return env;
  }
  std::error_code ec;
  std::string best;
  int best_version = 0;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const auto name = e.path().filename().string();
    const int v = std::atoi(name.c_str());
    if (v > best_version && fs::exists(e.path() / "bin" / "initdb") && fs::exists(e.path() / "bin" / "pg_ctl")) {
      best_version = v;
      best = (e.path() / "bin").string();
    }
  }
  if (!best.empty()) return best;
  if (const char* path = std::getenv("PATH")) {
    std::string p = path;
    std::size_t start = 0;
    while (start <= p.size()) {
      auto end = p.find(':', start);
      if (end == std::string::npos) end = p.size();
      fs::path dir = p.substr(start, end - start);
      if (!dir.empty() && fs::exists(dir / "initdb") && fs::exists(dir / "pg_ctl")) return dir.string();
      start = end + 1;
    }
  }
  return "";
}

bool RunningAsRoot() { return ::geteuid() == 0; }

// Runs argv (as the postgres user when we are root), output appended to `log`. Returns the exit
// status text on failure.
Status Run(std::vector<std::string> argv, const fs::path& log) {
  if (RunningAsRoot()) argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
  const pid_t pid = ::fork();
  if (pid < 0) return Fail(Error::Internal("fork failed"));
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  return Fail(Error::Unavailable("`" + cmd + "` failed (status " + std::to_string(status) + "); see " + log.string()));
}

int FreePort() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(s);
  return port;
}

Status HandToPostgres(const fs::path& dir) {
  if (!RunningAsRoot()) return {};
  const passwd* pw = ::getpwnam("postgres");
  if (pw == nullptr) {
    return Fail(Error::Unavailable(
        "running as root, and there is no `postgres` system user to run PostgreSQL as (PostgreSQL refuses root): "
        "install the server with `apt-get install postgresql`, which creates it"));
  }
  std::error_code ec;
  if (::chown(dir.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    return Fail(Error::Internal("cannot hand " + dir.string() + " to the postgres user"));
  }
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    (void)::lchown(e.path().c_str(), pw->pw_uid, pw->pw_gid);
  }
  return {};
}

// A new directory for a server, owned by whoever runs it.
Status Fresh(const char* kind, fs::path& dir, std::string& bin) {
  bin = FindBinDir();
  if (bin.empty()) return Fail(Error::Unavailable(kInstallHint));
  // As root the server runs as `postgres`, which must be able to reach the directory: /tmp,
  // not a TMPDIR under root's home. MODULO_PG_TMPDIR overrides.
  fs::path base = RunningAsRoot() ? fs::path("/tmp") : fs::temp_directory_path();
  if (const char* env = std::getenv("MODULO_PG_TMPDIR"); env != nullptr && *env != '\0') base = env;
  std::string tmpl = (base / (std::string("modulo_") + kind + "_XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) return Fail(Error::Internal("cannot create a temporary directory"));
  dir = tmpl;
  fs::create_directories(dir / "sock");
  return HandToPostgres(dir);
}

}  // namespace

Result<std::unique_ptr<PgTestServer>> PgTestServer::Start() {
  auto s = std::unique_ptr<PgTestServer>(new PgTestServer());
  if (auto f = Fresh("pg", s->dir_, s->bin_); !f) return Fail(f.error());
  s->data_ = s->dir_ / "data";
  if (auto st = Run({s->bin_ + "/initdb", "-D", s->data_.string(), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                     "--locale=C.UTF-8", "--no-sync"},
                    s->dir_ / "initdb.log");
      !st) {
    return Fail(st.error());
  }
  s->port_ = FreePort();
  if (auto st = s->StartServer(); !st) return Fail(st.error());
  return s;
}

Result<std::unique_ptr<PgTestServer>> PgTestServer::StartReplicaOf(const PgTestServer& primary) {
  auto s = std::unique_ptr<PgTestServer>(new PgTestServer());
  if (auto f = Fresh("pg_replica", s->dir_, s->bin_); !f) return Fail(f.error());
  s->data_ = s->dir_ / "data";
  if (auto st = Run({s->bin_ + "/pg_basebackup", "-h", "127.0.0.1", "-p", std::to_string(primary.port()), "-U",
                     "postgres", "-D", s->data_.string(), "-R", "-X", "stream", "--no-sync"},
                    s->dir_ / "basebackup.log");
      !st) {
    return Fail(st.error());
  }
  s->port_ = FreePort();
  if (auto st = s->StartServer(); !st) return Fail(st.error());
  return s;
}

Status PgTestServer::StartServer() {
  const std::string options = "-p " + std::to_string(port_) + " -k " + (dir_ / "sock").string() +
                              " -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
                              " -c full_page_writes=off -c max_connections=300 -c wal_level=replica"
                              " -c max_wal_senders=8 -c hot_standby=on -c shared_buffers=32MB";
  if (auto st = Run({bin_ + "/pg_ctl", "-D", data_.string(), "-l", (dir_ / "server.log").string(), "-w", "-t", "60",
                     "-o", options, "start"},
                    dir_ / "pg_ctl.log");
      !st) {
    return st;
  }
  running_ = true;
  return {};
}

Status PgTestServer::Stop() {
  if (!running_) return {};
  running_ = false;
  return Run({bin_ + "/pg_ctl", "-D", data_.string(), "-m", "fast", "-w", "-t", "60", "stop"}, dir_ / "pg_ctl.log");
}

Status PgTestServer::Restart() {
  if (running_) return {};
  return StartServer();
}

PgTestServer::~PgTestServer() {
  if (running_) {
    (void)Run({bin_ + "/pg_ctl", "-D", data_.string(), "-m", "immediate", "-w", "-t", "60", "stop"},
              dir_ / "pg_ctl.log");
  }
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

std::string PgTestServer::Url(const std::string& database) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

Result<std::string> PgTestServer::CreateDatabase() {
  auto c = Connection::Open(Url());
  if (!c) return Fail(c.error());
  const std::string name = "modulo_test_" + std::to_string(::getpid()) + "_" + std::to_string(++databases_);
  if (auto st = (*c)->ExecScript("CREATE DATABASE " + name); !st) return Fail(st.error());
  return Url(name);
}

void PgTestServer::DropDatabase(const std::string& url) {
  const auto slash = url.rfind('/');
  if (slash == std::string::npos) return;
  const std::string name = url.substr(slash + 1);
  if (name.empty() || name == "postgres" || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos) {
    return;
  }
  auto c = Connection::Open(Url());
  if (c) (void)(*c)->ExecScript("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
}

PgTestServer& SharedPgTestServer() {
  static std::mutex mu;
  static std::unique_ptr<PgTestServer> server;
  static std::string failure;
  std::lock_guard lock(mu);
  if (!server && failure.empty()) {
    auto s = PgTestServer::Start();
    if (s) server = std::move(*s);
    else failure = s.error().ToString();
  }
  if (!server) throw std::runtime_error("cannot start a PostgreSQL test server: " + failure);
  return *server;
}

}  // namespace modulo::store::postgres
