#include "modulo/core/health.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>

#include "modulo/core/request_id.h"

namespace modulo {

void HealthRegistry::Add(std::string name, Check check, bool required) {
  entries_.push_back({std::move(name), std::move(check), required});
}

std::vector<HealthRegistry::Report> HealthRegistry::CheckAll() const {
  std::vector<Report> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) {
    ComponentHealth h;
    try {
      h = e.check();
    } catch (const std::exception& ex) {
      h = {false, std::string("health check threw: ") + ex.what()};
    }
    out.push_back({e.name, e.required, std::move(h)});
  }
  return out;
}

std::vector<HealthRegistry::Report> HealthRegistry::CachedCheckAll(std::chrono::milliseconds max_age) const {
  std::lock_guard lock(cache_->mu);  // single flight: the next caller waits and reuses
  const auto now = std::chrono::steady_clock::now();
  if (cache_->at.time_since_epoch().count() == 0 || now - cache_->at > max_age) {
    cache_->reports = CheckAll();
    cache_->at = std::chrono::steady_clock::now();
  }
  return cache_->reports;
}

HealthRegistry::Check DirectoryWritableCheck(std::string dir) {
  return [dir = std::move(dir)]() -> ComponentHealth {
    const std::string probe = dir + "/.health-" + NewRequestId();
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return {false, "data directory " + dir + " is not writable: " + std::strerror(errno)};
    const bool wrote = ::write(fd, "ok", 2) == 2;
    ::close(fd);
    ::unlink(probe.c_str());
    if (!wrote) return {false, "cannot write to data directory " + dir};
    return {true, "data directory is accessible and writable"};
  };
}

}  // namespace modulo
