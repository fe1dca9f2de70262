// Process metrics read from /proc at scrape time.
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

#include "modulo/metrics/registry.h"

namespace modulo::metrics {
namespace {

void Sample(std::string& out, const char* name, const char* type, const char* help, double value) {
  out += std::string("# HELP ") + name + ' ' + help + "\n# TYPE " + name + ' ' + type + '\n' + name + ' ' +
         FormatValue(value) + '\n';
}

int CountOpenFds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
    --n;  // the directory stream itself
  }
  return n;
}

}  // namespace

void RegisterProcessCollector(Registry& registry) {
  const double start_time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  registry.AddCollector([start_time](std::string& out) {
    const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    double vsize = 0, rss = 0, cpu = 0;
    {
      std::ifstream statm("/proc/self/statm");
      double size_pages = 0, rss_pages = 0;
      statm >> size_pages >> rss_pages;
      vsize = size_pages * page;
      rss = rss_pages * page;
    }
    {
      std::ifstream stat("/proc/self/stat");
      std::string line;
      std::getline(stat, line);
      // Fields after the command name (which may hold spaces) start after the last ')'.
      const auto close = line.rfind(')');
      if (close != std::string::npos) {
        std::istringstream rest(line.substr(close + 2));
        std::string field;
        double utime = 0, stime = 0;
        for (int i = 3; i <= 15 && rest >> field; ++i) {
          if (i == 14) utime = std::stod(field);
          if (i == 15) stime = std::stod(field);
        }
        cpu = (utime + stime) / ticks;
      }
    }
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    Sample(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", rss);
    Sample(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", vsize);
    Sample(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", cpu);
    Sample(out, "process_open_fds", "gauge", "Number of open file descriptors.", CountOpenFds());
    Sample(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
           static_cast<double>(lim.rlim_cur));
    Sample(out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
           start_time);
  });
}

}  // namespace modulo::metrics
