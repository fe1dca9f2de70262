// modulo_parse_bench: parses files with ParseFile on N threads and prints throughput per format.
//
//   modulo_parse_bench [--threads N] [--repeat R] [--pdf-no-headings] FILE...
//
// Prints one line per format (files, pages, MB, seconds, pages/s, MB/s), a total line with wall-clock
// rates and a line with rates per CPU-second (stable on a shared machine). Pages are the documents'
// page counts (formats without pages count 0). Used by bench/parse/run.sh.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "modulo/parse/parser.h"
#include "modulo/parse/parsers.h"

namespace {

// User + system CPU seconds of the process so far.
double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

struct Totals {
  int files = 0;
  int failed = 0;
  std::uint64_t pages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t text_bytes = 0;
  std::uint64_t blocks = 0;
  double busy_seconds = 0;  // summed over threads
};

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  int repeat = 1;
  bool pdf_headings = true;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) {
      threads = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--pdf-no-headings") {
      pdf_headings = false;
    } else if (arg == "--repeat" && i + 1 < argc) {
      repeat = std::max(1, std::atoi(argv[++i]));
    } else {
      files.push_back(arg);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: %s [--threads N] [--repeat R] [--pdf-no-headings] FILE...\n", argv[0]);
    return 2;
  }
  std::vector<std::string> work;
  for (int r = 0; r < repeat; ++r) work.insert(work.end(), files.begin(), files.end());

  std::map<std::string, Totals> by_format;
  std::mutex mu;
  std::atomic<std::size_t> next{0};
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = CpuSeconds();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (std::size_t i = next++; i < work.size(); i = next++) {
        const std::string& path = work[i];
        const auto t0 = std::chrono::steady_clock::now();
        auto doc = !pdf_headings && modulo::parse::DetectFormat(path, path) == "pdf"
                       ? modulo::parse::PdfParser(modulo::parse::PdfOptions{.detect_headings = false}).Parse(path, {})
                       : modulo::parse::ParseFile(path, path);
        const std::string format = doc ? doc->format : "failed";
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::lock_guard lock(mu);
        Totals& tot = by_format[format];
        ++tot.files;
        tot.busy_seconds += seconds;
        if (!doc) {
          ++tot.failed;
          std::fprintf(stderr, "FAILED %s: %s\n", path.c_str(), doc.error().ToString().c_str());
          continue;
        }
        tot.pages += static_cast<std::uint64_t>(doc->page_count);
        tot.bytes += doc->bytes;
        tot.blocks += doc->blocks.size();
        for (const auto& b : doc->blocks) tot.text_bytes += b.text.size();
      }
    });
  }
  for (auto& th : pool) th.join();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = CpuSeconds() - cpu_start;

  std::printf("threads=%d repeat=%d wall=%.3fs hardware_threads=%u\n", threads, repeat, wall,
              std::thread::hardware_concurrency());
  std::printf("%-9s %6s %6s %8s %9s %9s %9s %10s %9s\n", "format", "files", "failed", "pages", "MB", "text_MB",
              "busy_s", "pages/s", "MB/s");
  Totals all;
  for (const auto& [format, t] : by_format) {
    // Per-format rates use the time threads spent on that format (busy seconds / threads).
    const double seconds = t.busy_seconds / threads;
    std::printf("%-9s %6d %6d %8llu %9.2f %9.2f %9.3f %10.1f %9.2f\n", format.c_str(), t.files, t.failed,
                static_cast<unsigned long long>(t.pages), t.bytes / 1e6, t.text_bytes / 1e6, t.busy_seconds,
                seconds > 0 ? t.pages / seconds : 0.0, seconds > 0 ? t.bytes / 1e6 / seconds : 0.0);
    all.files += t.files;
    all.failed += t.failed;
    all.pages += t.pages;
    all.bytes += t.bytes;
    all.text_bytes += t.text_bytes;
  }
  std::printf("%-9s %6d %6d %8llu %9.2f %9.2f %9.3f %10.1f %9.2f\n", "total", all.files, all.failed,
              static_cast<unsigned long long>(all.pages), all.bytes / 1e6, all.text_bytes / 1e6, wall, all.pages / wall,
              all.bytes / 1e6 / wall);
  // CPU-time rates do not depend on what else runs on the machine.
  std::printf("cpu=%.3fs  per CPU-second: %.1f pages, %.2f MB\n", cpu, cpu > 0 ? all.pages / cpu : 0.0,
              cpu > 0 ? all.bytes / 1e6 / cpu : 0.0);
  return all.failed == 0 ? 0 : 1;
}
