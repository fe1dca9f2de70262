// HealthRegistry: the components whose health /api/health and /ready report.
//
// Each component (the data directory, the metadata store, the vector store, the embedder, an LLM
// provider...) registers a check when main wires it. Checks may block briefly (a database ping),
// so callers run CheckAll() on the blocking pool, never on an I/O thread.
//
// Thread-safety: register everything at start-up; CheckAll() is then thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace modulo {

struct ComponentHealth {
  bool healthy = true;
  std::string message;
};

class HealthRegistry {
 public:
  using Check = std::function<ComponentHealth()>;
  // `required` components make the server not ready when unhealthy.
  void Add(std::string name, Check check, bool required = true);

  struct Report {
    std::string name;
    bool required = true;
    ComponentHealth health;
  };
  [[nodiscard]] std::vector<Report> CheckAll() const;
  // CheckAll() at most once per `max_age`: callers within it share the last results, and callers
  // while a check runs wait for it (unauthenticated probes cannot make every request a database,
  // S3 and file-system round trip).
  [[nodiscard]] std::vector<Report> CachedCheckAll(std::chrono::milliseconds max_age) const;

 private:
  struct Entry {
    std::string name;
    Check check;
    bool required;
  };
  std::vector<Entry> entries_;
  struct Cache {
    std::mutex mu;
    std::chrono::steady_clock::time_point at{};
    std::vector<Report> reports;
  };
  std::unique_ptr<Cache> cache_ = std::make_unique<Cache>();
};

// A check that the directory exists and a file can be created, written and removed in it.
[[nodiscard]] HealthRegistry::Check DirectoryWritableCheck(std::string dir);

}  // namespace modulo
