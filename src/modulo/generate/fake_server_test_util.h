// Test helper: runs tests/e2e/fakes/llm_providers.py as a subprocess (one per test binary),
// reads the port it prints, and asks it for per-scenario request counts.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

extern char** environ;

namespace modulo::generate::testing {

class FakeLlmServer {
 public:
  FakeLlmServer() {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    std::string python = MODULO_TEST_PYTHON, script = MODULO_LLM_FAKE;
    char* argv[] = {python.data(), script.data(), nullptr};
    const int rc = posix_spawn(&pid_, python.c_str(), &fa, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    fcntl(stdin_, F_SETFD, FD_CLOEXEC);
    if (rc != 0) throw std::runtime_error("cannot start " + python);
    // Wait (up to 15 s) for "PORT <n>\n".
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (line.find('\n') == std::string::npos) {
      pollfd p{out[0], POLLIN, 0};
      if (std::chrono::steady_clock::now() > deadline || poll(&p, 1, 100) < 0) break;
      if (p.revents == 0) continue;
      char buf[256];
      const ssize_t n = read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<std::size_t>(n));
    }
    close(out[0]);
    if (line.rfind("PORT ", 0) != 0) {
      Stop();
      throw std::runtime_error("the fake LLM server did not start: '" + line + "'");
    }
    port_ = std::stoi(line.substr(5));
  }
  ~FakeLlmServer() { Stop(); }
  FakeLlmServer(const FakeLlmServer&) = delete;
  FakeLlmServer& operator=(const FakeLlmServer&) = delete;

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // {"requests", "max_inflight", "completed"} for a scenario id.
  [[nodiscard]] nlohmann::json Stats(const std::string& id) const {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd);
      return {};
    }
    const std::string req = "GET /_stats?id=" + id + " HTTP/1.0\r\nHost: x\r\n\r\n";
    (void)!write(fd, req.data(), req.size());
    std::string resp;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) resp.append(buf, static_cast<std::size_t>(n));
    close(fd);
    const auto body = resp.find("\r\n\r\n");
    if (body == std::string::npos) return {};
    return nlohmann::json::parse(resp.substr(body + 4), nullptr, false);
  }
  [[nodiscard]] int Requests(const std::string& id) const {
    auto j = Stats(id);
    return j.is_object() ? j.value("requests", -1) : -1;
  }

 private:
  void Stop() {
    if (stdin_ >= 0) close(stdin_);
    stdin_ = -1;
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }
  pid_t pid_ = -1;
  int stdin_ = -1;
  int port_ = 0;
};

// The one server of the test binary, started on first use, stopped at exit.
inline FakeLlmServer& Fake() {
  static FakeLlmServer server;
  return server;
}

}  // namespace modulo::generate::testing
