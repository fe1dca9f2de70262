// A small Prometheus metrics registry: counters, gauges and histograms with labels, exposed in
// the text exposition format 0.0.4.
//
// A family is declared once (name, help, label names) and hands out one cell per distinct label
// value tuple; callers keep the returned reference and update it without locks (atomics). Label
// values must come from bounded sets (route templates, not raw paths).
// Collectors add metrics computed at scrape time (process memory, pool sizes).
//
// Thread-safety: all members are thread-safe. Cells live as long as the Registry.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace modulo::metrics {

class Counter {
 public:
  void Inc(double v = 1.0) noexcept { value_.fetch_add(v, std::memory_order_relaxed); }
  [[nodiscard]] double Value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void Set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void Inc(double v = 1.0) noexcept { value_.fetch_add(v, std::memory_order_relaxed); }
  void Dec(double v = 1.0) noexcept { value_.fetch_sub(v, std::memory_order_relaxed); }
  [[nodiscard]] double Value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  explicit Histogram(const std::vector<double>& bounds);
  void Observe(double v) noexcept;
  [[nodiscard]] const std::vector<double>& bounds() const noexcept { return bounds_; }
  // Non-cumulative count of bucket i (i == bounds().size() is the +Inf bucket).
  [[nodiscard]] std::uint64_t BucketCount(std::size_t i) const noexcept { return counts_[i].load(); }
  [[nodiscard]] std::uint64_t Count() const noexcept { return count_.load(); }
  [[nodiscard]] double Sum() const noexcept { return sum_.load(); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0.0};
};

// Default latency buckets in seconds, 100 µs to 60 s.
[[nodiscard]] const std::vector<double>& LatencyBuckets();

enum class Type { kCounter, kGauge, kHistogram };

class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, std::vector<std::string> labels, Type type)
      : name_(std::move(name)), help_(std::move(help)), labels_(std::move(labels)), type_(type) {}
  virtual ~FamilyBase() = default;
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  virtual void Expose(std::string& out) const = 0;

 protected:
  void ExposeHeader(std::string& out) const;
  // Renders {a="x",b="y"} (with an extra label appended when given), or "" for no labels.
  [[nodiscard]] std::string LabelText(const std::vector<std::string>& values, std::string_view extra_name = {},
                                      std::string_view extra_value = {}) const;

  std::string name_;
  std::string help_;
  std::vector<std::string> labels_;
  Type type_;
};

template <typename Cell>
class Family final : public FamilyBase {
 public:
  Family(std::string name, std::string help, std::vector<std::string> labels, Type type,
         std::vector<double> bounds = {})
      : FamilyBase(std::move(name), std::move(help), std::move(labels), type), bounds_(std::move(bounds)) {}

  // The cell for these label values (in declaration order); created on first use.
  Cell& With(std::initializer_list<std::string_view> values);
  Cell& With(const std::vector<std::string>& values);

  void Expose(std::string& out) const override;

 private:
  Cell& Lookup(std::string key, std::vector<std::string> values);

  std::vector<double> bounds_;
  mutable std::shared_mutex mu_;
  struct Entry {
    std::vector<std::string> values;
    std::unique_ptr<Cell> cell;
  };
  std::unordered_map<std::string, Entry> cells_;  // guarded by mu_; key = values joined by '\x1f'
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

class Registry {
 public:
  CounterFamily& AddCounter(std::string name, std::string help, std::vector<std::string> labels = {});
  GaugeFamily& AddGauge(std::string name, std::string help, std::vector<std::string> labels = {});
  HistogramFamily& AddHistogram(std::string name, std::string help, std::vector<std::string> labels = {},
                                std::vector<double> bounds = LatencyBuckets());
  // A collector appends complete exposition text (HELP, TYPE and samples) at scrape time.
  void AddCollector(std::function<void(std::string& out)> collector);

  // The whole registry in text format 0.0.4.
  [[nodiscard]] std::string Expose() const;

 private:
  template <typename F>
  F& Add(std::unique_ptr<F> family);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<FamilyBase>> families_;          // guarded by mu_
  std::vector<std::function<void(std::string&)>> collectors_;  // guarded by mu_
};

// Escapes a label value for the exposition format (backslash, double quote, newline).
[[nodiscard]] std::string EscapeLabelValue(std::string_view v);
// Formats a sample value as Prometheus expects (+Inf, -Inf, NaN, shortest exact decimal otherwise).
[[nodiscard]] std::string FormatValue(double v);

// Registers process metrics: process_resident_memory_bytes, process_virtual_memory_bytes,
// process_cpu_seconds_total, process_open_fds, process_max_fds, process_start_time_seconds.
void RegisterProcessCollector(Registry& registry);

}  // namespace modulo::metrics
