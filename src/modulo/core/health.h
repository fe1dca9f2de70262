// HealthRegistry: the components whose health /api/health and /ready report.
//
// Each component (the data directory, the metadata store, the vector store, the embedder, an LLM
// provider...) registers a check when main wires it. Checks may block briefly (a database ping),
// so callers run CheckAll() on the blocking pool, never on an I/O thread.
//
// Thread-safety: register everything at start-up; CheckAll() is then thread-safe.
#pragma once

#include <functional>
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

 private:
  struct Entry {
    std::string name;
    Check check;
    bool required;
  };
  std::vector<Entry> entries_;
};

// A check that the directory exists and a file can be created, written and removed in it.
[[nodiscard]] HealthRegistry::Check DirectoryWritableCheck(std::string dir);

}  // namespace modulo
