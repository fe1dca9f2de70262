#include "modulo/metrics/registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace modulo::metrics {

Histogram::Histogram(const std::vector<double>& bounds)
    : bounds_(bounds), counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds.size() + 1)) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::Observe(double v) noexcept {
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);  // first bound >= v: le semantics
  counts_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

const std::vector<double>& LatencyBuckets() {
  static const std::vector<double> b = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10,  30, 60};
  return b;
}

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, p);
}

void FamilyBase::ExposeHeader(std::string& out) const {
  out += "# HELP ";
  out += name_;
  out += ' ';
  for (char c : help_) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  out += "\n# TYPE ";
  out += name_;
  out += type_ == Type::kCounter ? " counter\n" : type_ == Type::kGauge ? " gauge\n" : " histogram\n";
}

std::string FamilyBase::LabelText(const std::vector<std::string>& values, std::string_view extra_name,
                                  std::string_view extra_value) const {
  if (labels_.empty() && extra_name.empty()) return "";
  std::string out = "{";
  for (std::size_t i = 0; i < labels_.size(); ++i) {
    if (i > 0) out += ',';
    out += labels_[i];
    out += "=\"";
    out += EscapeLabelValue(values[i]);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!labels_.empty()) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
  return out;
}

template <typename Cell>
Cell& Family<Cell>::With(std::initializer_list<std::string_view> values) {
  if (values.size() != labels_.size()) throw std::invalid_argument("metric " + name_ + ": wrong number of labels");
  std::string key;
  for (auto v : values) {
    key.append(v);
    key.push_back('\x1f');
  }
  {
    std::shared_lock lock(mu_);
    if (auto it = cells_.find(key); it != cells_.end()) return *it->second.cell;
  }
  return Lookup(std::move(key), std::vector<std::string>(values.begin(), values.end()));
}

template <typename Cell>
Cell& Family<Cell>::With(const std::vector<std::string>& values) {
  if (values.size() != labels_.size()) throw std::invalid_argument("metric " + name_ + ": wrong number of labels");
  std::string key;
  for (const auto& v : values) {
    key.append(v);
    key.push_back('\x1f');
  }
  {
    std::shared_lock lock(mu_);
    if (auto it = cells_.find(key); it != cells_.end()) return *it->second.cell;
  }
  return Lookup(std::move(key), values);
}

template <typename Cell>
Cell& Family<Cell>::Lookup(std::string key, std::vector<std::string> values) {
  std::unique_lock lock(mu_);
  auto it = cells_.find(key);
  if (it == cells_.end()) {
    std::unique_ptr<Cell> cell;
    if constexpr (std::is_same_v<Cell, Histogram>) {
      cell = std::make_unique<Histogram>(bounds_);
    } else {
      cell = std::make_unique<Cell>();
    }
    it = cells_.emplace(std::move(key), Entry{std::move(values), std::move(cell)}).first;
  }
  return *it->second.cell;
}

template <typename Cell>
void Family<Cell>::Expose(std::string& out) const {
  ExposeHeader(out);
  std::vector<const Entry*> entries;
  std::shared_lock lock(mu_);
  for (const auto& [k, e] : cells_) entries.push_back(&e);
  std::sort(entries.begin(), entries.end(), [](const Entry* a, const Entry* b) { return a->values < b->values; });
  for (const Entry* e : entries) {
    if constexpr (std::is_same_v<Cell, Histogram>) {
      const Histogram& h = *e->cell;
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i <= h.bounds().size(); ++i) {
        cumulative += h.BucketCount(i);
        const std::string le = i < h.bounds().size() ? FormatValue(h.bounds()[i]) : "+Inf";
        out += name_ + "_bucket" + LabelText(e->values, "le", le) + ' ' + std::to_string(cumulative) + '\n';
      }
      out += name_ + "_sum" + LabelText(e->values) + ' ' + FormatValue(h.Sum()) + '\n';
      out += name_ + "_count" + LabelText(e->values) + ' ' + std::to_string(h.Count()) + '\n';
    } else {
      out += name_ + LabelText(e->values) + ' ' + FormatValue(e->cell->Value()) + '\n';
    }
  }
  if (cells_.empty() && labels_.empty()) {
    // An unlabelled metric exists from the start, with value zero.
    if constexpr (std::is_same_v<Cell, Histogram>) {
      for (double b : bounds_) out += name_ + "_bucket{le=\"" + FormatValue(b) + "\"} 0\n";
      out += name_ + "_bucket{le=\"+Inf\"} 0\n" + name_ + "_sum 0\n" + name_ + "_count 0\n";
    } else {
      out += name_ + " 0\n";
    }
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

template <typename F>
F& Registry::Add(std::unique_ptr<F> family) {
  std::lock_guard lock(mu_);
  for (const auto& f : families_) {
    if (f->name() == family->name()) throw std::invalid_argument("metric registered twice: " + family->name());
  }
  F& ref = *family;
  families_.push_back(std::move(family));
  return ref;
}

CounterFamily& Registry::AddCounter(std::string name, std::string help, std::vector<std::string> labels) {
  return Add(std::make_unique<CounterFamily>(std::move(name), std::move(help), std::move(labels), Type::kCounter));
}
GaugeFamily& Registry::AddGauge(std::string name, std::string help, std::vector<std::string> labels) {
  return Add(std::make_unique<GaugeFamily>(std::move(name), std::move(help), std::move(labels), Type::kGauge));
}
HistogramFamily& Registry::AddHistogram(std::string name, std::string help, std::vector<std::string> labels,
                                        std::vector<double> bounds) {
  return Add(std::make_unique<HistogramFamily>(std::move(name), std::move(help), std::move(labels), Type::kHistogram,
                                               std::move(bounds)));
}

void Registry::AddCollector(std::function<void(std::string&)> collector) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string Registry::Expose() const {
  std::string out;
  out.reserve(16 * 1024);
  std::lock_guard lock(mu_);
  for (const auto& f : families_) f->Expose(out);
  for (const auto& c : collectors_) c(out);
  return out;
}

}  // namespace modulo::metrics
