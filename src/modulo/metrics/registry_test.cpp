#include "modulo/metrics/registry.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace modulo::metrics {
namespace {

TEST(RegistryTest, ExposesCountersWithLabelsInTextFormat) {
  Registry r;
  auto& c = r.AddCounter("rag_requests_total", "Total requests", {"method", "endpoint", "status"});
  c.With({"GET", "/api/collections/{id}", "200"}).Inc();
  c.With({"GET", "/api/collections/{id}", "200"}).Inc(2);
  const std::string out = r.Expose();
  EXPECT_NE(out.find("# HELP rag_requests_total Total requests\n# TYPE rag_requests_total counter\n"),
            std::string::npos);
  EXPECT_NE(out.find("rag_requests_total{method=\"GET\",endpoint=\"/api/collections/{id}\",status=\"200\"} 3\n"),
            std::string::npos)
      << out;
}

TEST(RegistryTest, HistogramBucketsAreCumulativeWithLeSemantics) {
  Registry r;
  auto& h = r.AddHistogram("d", "Duration", {"m"}, {0.1, 1.0});
  h.With({"x"}).Observe(0.1);  // exactly on a bound counts in that bucket
  h.With({"x"}).Observe(0.5);
  h.With({"x"}).Observe(5);
  const std::string out = r.Expose();
  EXPECT_NE(out.find("d_bucket{m=\"x\",le=\"0.1\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("d_bucket{m=\"x\",le=\"1\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("d_bucket{m=\"x\",le=\"+Inf\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("d_sum{m=\"x\"} 5.6\n"), std::string::npos) << out;
  EXPECT_NE(out.find("d_count{m=\"x\"} 3\n"), std::string::npos) << out;
}

TEST(RegistryTest, LabelValuesAreEscaped) {
  Registry r;
  r.AddGauge("g", "help with \\ and\nnewline", {"l"}).With({"a\"b\\c\nd"}).Set(1.5);
  const std::string out = r.Expose();
  EXPECT_NE(out.find("g{l=\"a\\\"b\\\\c\\nd\"} 1.5\n"), std::string::npos) << out;
  EXPECT_NE(out.find("# HELP g help with \\\\ and\\nnewline\n"), std::string::npos) << out;
}

TEST(RegistryTest, UnlabelledMetricsExistFromTheStart) {
  Registry r;
  r.AddGauge("rag_active_connections", "Active database connections");
  EXPECT_NE(r.Expose().find("rag_active_connections 0\n"), std::string::npos);
}

TEST(RegistryTest, DuplicateNamesAndWrongLabelCountsAreRejected) {
  Registry r;
  auto& c = r.AddCounter("c", "h", {"a"});
  EXPECT_THROW(r.AddGauge("c", "h"), std::invalid_argument);
  EXPECT_THROW(c.With({"1", "2"}), std::invalid_argument);
}

TEST(RegistryTest, ConcurrentIncrementsAreNotLost) {
  Registry r;
  auto& c = r.AddCounter("c", "h", {"t"});
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 10000; ++i) c.With({std::to_string(i % 3)}).Inc();
      (void)t;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(c.With({"0"}).Value() + c.With({"1"}).Value() + c.With({"2"}).Value(), 40000);
}

TEST(RegistryTest, ProcessCollectorReportsResidentMemory) {
  Registry r;
  RegisterProcessCollector(r);
  const std::string out = r.Expose();
  for (const char* name : {"process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds",
                           "process_max_fds", "process_start_time_seconds", "process_virtual_memory_bytes"}) {
    EXPECT_NE(out.find(std::string("# TYPE ") + name), std::string::npos) << name;
  }
  const auto pos = out.find("\nprocess_resident_memory_bytes ");
  ASSERT_NE(pos, std::string::npos);
  EXPECT_GT(std::stod(out.substr(pos + 31)), 1e6);
}

}  // namespace
}  // namespace modulo::metrics
