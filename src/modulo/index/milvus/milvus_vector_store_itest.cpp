// MilvusVectorStore against a real Milvus: the VectorStore contract, then Milvus-specific cases.
//
// Which Milvus: MODULO_TEST_MILVUS (a URL, e.g. http://127.0.0.1:19530) if set; else the one whose
// URL tests/services/milvus.sh wrote to MODULO_TEST_MILVUS_URL_FILE (ctest's "milvus" fixture);
// else this binary starts its own with tests/services/milvus.sh in a temporary directory and
// stops it at the end. A Milvus that cannot be reached or started fails every test, with the
// reason (never a skip).
#include "modulo/index/milvus/milvus_vector_store.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <sys/socket.h>
#include <netinet/in.h>

#include <nlohmann/json.hpp>

#include "modulo/index/vector_store_contract.h"
#include "modulo/metrics/registry.h"
#include "modulo/net/http_client.h"

namespace modulo::index {

// The keyword index contract is linked in with the vector one; this binary runs only the latter.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(KeywordIndexContract);

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string g_url;    // the Milvus under test
std::string g_error;  // why there is none

std::string Shell(const std::string& command, int* status) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) {
    *status = -1;
    return out;
  }
  std::array<char, 512> buf;
  while (std::fgets(buf.data(), int(buf.size()), p) != nullptr) out += buf.data();
  *status = ::pclose(p);
  return out;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

class MilvusEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const std::string script = std::string(MODULO_SOURCE_DIR) + "/tests/services/milvus.sh";
    if (const char* u = std::getenv("MODULO_TEST_MILVUS"); u != nullptr && *u != 0) {
      g_url = u;
    } else if (const char* f = std::getenv("MODULO_TEST_MILVUS_URL_FILE"); f != nullptr && *f != 0) {
      std::ifstream in(f);
      std::getline(in, g_url);
      g_url = Trim(g_url);
      if (g_url.empty()) {
        g_error = std::string("no Milvus: ") + f + " is missing (the ctest fixture milvus_service_start failed; run " +
                  script + " start <dir> by hand to see why, or set MODULO_TEST_MILVUS)";
        return;
      }
    } else {
      char tmpl[] = "/tmp/modulo-milvus-itest-XXXXXX";
      if (::mkdtemp(tmpl) == nullptr) {
        g_error = "cannot create a temporary directory for Milvus";
        return;
      }
      dir_ = tmpl;
      int status = 0;
      const std::string out = Shell("'" + script + "' start '" + dir_ + "' 2>&1", &status);
      if (status != 0) {
        g_error = "could not start Milvus with " + script + ":\n" + out;
        return;
      }
      std::istringstream lines(out);
      for (std::string line; std::getline(lines, line);) {
        if (line.rfind("http://", 0) == 0) g_url = Trim(line);
      }
      if (g_url.empty()) {
        g_error = "milvus.sh start printed no URL:\n" + out;
        return;
      }
    }
    MilvusOptions o;
    o.url = g_url;
    auto store = MilvusVectorStore::Create(8, o);
    if (!store) {
      g_error = store.error().ToString();
      return;
    }
    if (auto s = (*store)->Ping(); !s) g_error = "Milvus at " + g_url + " does not answer: " + s.error().ToString();
  }

  void TearDown() override {
    if (dir_.empty()) return;
    int status = 0;
    Shell("'" + std::string(MODULO_SOURCE_DIR) + "/tests/services/milvus.sh' stop '" + dir_ + "' 2>&1", &status);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

 private:
  std::string dir_;  // the server this binary started, if any
};

[[maybe_unused]] const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new MilvusEnvironment);

MilvusOptions TestOptions() {
  MilvusOptions o;
  o.url = g_url;
  o.consistency = MilvusConsistency::kStrong;  // the contract expects read-your-writes
  o.visibility_timeout = std::chrono::seconds(60);
  return o;
}

// Every store of this binary works in its own name space: the owner id gets a prefix unique to
// the store, so that a fresh store is empty even on a reused Milvus, and the collections it
// touched are dropped when it goes.
class Namespaced final : public VectorStore {
 public:
  explicit Namespaced(std::shared_ptr<MilvusVectorStore> inner) : inner_(std::move(inner)) {
    static std::atomic<int> counter{0};
    prefix_ = "t" + std::to_string(::getpid()) + "x" + std::to_string(counter++) + "x" +
              std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
  }
  ~Namespaced() override {
    std::lock_guard lock(mu_);
    for (const auto& k : touched_) (void)inner_->Drop(k);
  }
  std::string_view backend() const noexcept override { return inner_->backend(); }
  std::size_t dimension() const noexcept override { return inner_->dimension(); }
  Status Upsert(const IndexKey& key, std::span<const IndexedChunk> chunks) override {
    return inner_->Upsert(Map(key), chunks);
  }
  Status Remove(const IndexKey& key, std::span<const std::int64_t> ids) override { return inner_->Remove(Map(key), ids); }
  Status Drop(const IndexKey& key) override { return inner_->Drop(Map(key)); }
  Result<std::size_t> Count(const IndexKey& key) const override { return inner_->Count(Map(key)); }
  Result<std::vector<Hit>> Search(const IndexKey& key, std::span<const float> q, std::size_t k,
                                  const SearchFilter& f) const override {
    return inner_->Search(Map(key), q, k, f);
  }
  IndexKey Map(const IndexKey& key) const {
    IndexKey k = key;
    k.owner_id = prefix_ + "_" + key.owner_id;
    std::lock_guard lock(mu_);
    if (std::find(touched_.begin(), touched_.end(), k) == touched_.end()) touched_.push_back(k);
    return k;
  }
  MilvusVectorStore& inner() { return *inner_; }

 private:
  std::shared_ptr<MilvusVectorStore> inner_;
  std::string prefix_;
  mutable std::mutex mu_;
  mutable std::vector<IndexKey> touched_;
};

std::shared_ptr<Namespaced> MakeNamespaced(std::size_t dim, MilvusOptions o = TestOptions()) {
  // Thrown, not returned as null: the test fails with the reason instead of dereferencing it.
  if (!g_error.empty()) throw std::runtime_error(g_error);
  auto store = MilvusVectorStore::Create(dim, std::move(o));
  if (!store) throw std::runtime_error(store.error().ToString());
  return std::make_shared<Namespaced>(std::shared_ptr<MilvusVectorStore>(std::move(*store)));
}

std::shared_ptr<VectorStore> MakeMilvusStore(std::size_t dim) { return MakeNamespaced(dim); }
INSTANTIATE_TEST_SUITE_P(Milvus, VectorStoreContract, ::testing::Values(&MakeMilvusStore));

// ---------------------------------------------------------------------------------------------

IndexKey Key(const std::string& collection, std::int64_t generation = 1) {
  IndexKey k;
  k.collection_id = collection;
  k.generation = generation;
  k.owner_id = "owner-1";
  return k;
}

std::vector<float> Unit(std::size_t dim, std::mt19937& rng) {
  std::normal_distribution<float> n01;
  std::vector<float> v(dim);
  double n = 0;
  for (float& x : v) {
    x = n01(rng);
    n += double(x) * x;
  }
  for (float& x : v) x = float(x / std::sqrt(n));
  return v;
}

class MilvusStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(g_error.empty()) << g_error; }
};

TEST(MilvusNamesTest, CollectionNamesFollowTheSeedConvention) {
  IndexKey k = Key("3f2a-77");
  k.owner_id = "9c1e-42";
  EXPECT_EQ(MilvusVectorStore::CollectionName(k), "user_9c1e42_collection_3f2a77");
  k.generation = 3;
  EXPECT_EQ(MilvusVectorStore::CollectionName(k), "user_9c1e42_collection_3f2a77_g3");
  k.owner_type = "team";
  EXPECT_EQ(MilvusVectorStore::CollectionName(k), "team_9c1e42_collection_3f2a77_g3");
  k.collection_id = "a b;\"drop";
  k.generation = 1;
  EXPECT_EQ(MilvusVectorStore::CollectionName(k), "team_9c1e42_collection_a_b__drop");
}

TEST(MilvusFilterTest, ExpressionsQuoteAndEscapeStrings) {
  EXPECT_EQ(MilvusVectorStore::QuoteString("plain"), "\"plain\"");
  EXPECT_EQ(MilvusVectorStore::QuoteString("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(MilvusVectorStore::QuoteString("l1\nl2\t\x01"), "\"l1\\nl2\\t\\u0001\"");
  SearchFilter f;
  EXPECT_EQ(MilvusVectorStore::FilterExpression(f), "");
  f.file_ids = std::vector<std::string>{"x", "y\"] or true or file_id in [\""};
  f.page_min = 2;
  f.page_max = 7;
  EXPECT_EQ(MilvusVectorStore::FilterExpression(f),
            "file_id in [\"x\", \"y\\\"] or true or file_id in [\\\"\"] and page_number >= 2 and page_number <= 7");
}

TEST(MilvusOptionsTest, BadOptionsAreRefused) {
  MilvusOptions o;
  EXPECT_EQ(MilvusVectorStore::Create(0, o).error().code(), ErrorCode::kInvalidArgument);
  o.url = "";
  EXPECT_EQ(MilvusVectorStore::Create(8, o).error().code(), ErrorCode::kInvalidArgument);
  o.url = "ftp://x";
  EXPECT_EQ(MilvusVectorStore::Create(8, o).error().code(), ErrorCode::kInvalidArgument);
  o.url = "http://127.0.0.1:1/";
  o.batch_size = 0;
  EXPECT_EQ(MilvusVectorStore::Create(8, o).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(*ParseMilvusConsistency("Strong"), MilvusConsistency::kStrong);
  EXPECT_EQ(*ParseMilvusConsistency("Eventually"), MilvusConsistency::kEventually);
  EXPECT_EQ(ParseMilvusConsistency("strongish").error().code(), ErrorCode::kInvalidArgument);
  metrics::Registry registry;
  o.batch_size = 10;
  ASSERT_TRUE(MilvusVectorStore::Create(8, o, &registry));
  EXPECT_EQ(MilvusVectorStore::Create(8, o, &registry).error().code(), ErrorCode::kAlreadyExists);
}

TEST_F(MilvusStoreTest, TheCollectionIsCreatedWithTheConventionalNameDimensionAndIpIndex) {
  constexpr std::size_t d = 8;
  auto store = MakeNamespaced(d);
  ASSERT_TRUE(store);
  std::mt19937 rng(1);
  auto v = Unit(d, rng);
  IndexedChunk c;
  c.chunk_id = 1;
  c.file_id = "f";
  c.embedding = v.data();
  std::vector<IndexedChunk> chunks{c};
  ASSERT_TRUE(store->Upsert(Key("named"), chunks));
  const std::string name = MilvusVectorStore::CollectionName(store->Map(Key("named")));
  EXPECT_EQ(name.rfind("user_t", 0), 0u) << name;
  EXPECT_NE(name.find("owner1_collection_named"), std::string::npos) << name;

  net::HttpClient http(std::chrono::seconds(10));
  auto r = http.Get(g_url + "/v1/vector/collections/describe?collectionName=" + name, {});
  ASSERT_TRUE(r) << r.error().ToString();
  auto j = json::parse(r->body);
  ASSERT_EQ(j["code"], 200) << r->body;
  bool vector_field = false;
  for (const auto& f : j["data"]["fields"]) {
    if (f["name"] == "embedding") {
      vector_field = true;
      EXPECT_EQ(f["type"], "FloatVector(8)");
    }
  }
  EXPECT_TRUE(vector_field) << r->body;
  ASSERT_FALSE(j["data"]["indexes"].empty()) << r->body;
  EXPECT_EQ(j["data"]["indexes"][0]["metricType"], "IP");

  // A store of another dimension refuses the collection instead of corrupting it.
  auto other = MilvusVectorStore::Create(16, TestOptions());
  ASSERT_TRUE(other);
  std::vector<float> w(16, 0.25f);
  IndexedChunk c16 = c;
  c16.embedding = w.data();
  std::vector<IndexedChunk> chunks16{c16};
  auto s = (*other)->Upsert(store->Map(Key("named")), chunks16);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kConflict) << s.error().ToString();
}

TEST_F(MilvusStoreTest, FilterStringsWithQuotesAndBackslashesCannotBreakTheExpression) {
  constexpr std::size_t d = 8;
  auto store = MakeNamespaced(d);
  ASSERT_TRUE(store);
  const std::vector<std::string> files = {
      "plain",
      "with \"double\" quotes",
      "with 'single' quotes",
      "back\\slash\\",
      "\\\"",
      "x\"] or page_number >= 0 or file_id in [\"",
      "new\nline\ttab\x01",
      "ünïcødé 文件",
      "",
  };
  std::mt19937 rng(2);
  std::vector<std::vector<float>> vecs;
  std::vector<IndexedChunk> chunks;
  for (std::size_t i = 0; i < files.size(); ++i) vecs.push_back(Unit(d, rng));
  for (std::size_t i = 0; i < files.size(); ++i) {
    IndexedChunk c;
    c.chunk_id = std::int64_t(i + 1);
    c.file_id = files[i];
    c.page_number = std::int32_t(i);
    c.embedding = vecs[i].data();
    chunks.push_back(c);
  }
  ASSERT_TRUE(store->Upsert(Key("quotes"), chunks));
  const auto q = Unit(d, rng);
  for (std::size_t i = 0; i < files.size(); ++i) {
    SearchFilter f;
    f.file_ids = std::vector<std::string>{files[i]};
    auto hits = store->Search(Key("quotes"), q, 10, f);
    ASSERT_TRUE(hits) << "file id #" << i << ": " << hits.error().ToString();
    ASSERT_EQ(hits->size(), 1u) << "file id #" << i;
    EXPECT_EQ((*hits)[0].chunk_id, std::int64_t(i + 1)) << "file id #" << i;
  }
  // Attempts to widen the filter match nothing, since no document has those ids.
  for (const std::string attack : {"nope\"] or page_number >= 0 or file_id in [\"", "nope\\\"] || true || [\"",
                                   "\" or 1 == 1 or \"", "nope\\"}) {
    SearchFilter f;
    f.file_ids = std::vector<std::string>{attack};
    auto hits = store->Search(Key("quotes"), q, 10, f);
    ASSERT_TRUE(hits) << attack << ": " << hits.error().ToString();
    EXPECT_TRUE(hits->empty()) << attack;
  }
  // File ids that are not UTF-8 cannot be stored and match nothing.
  SearchFilter bad;
  bad.file_ids = std::vector<std::string>{std::string("\xff\xfe")};
  auto none = store->Search(Key("quotes"), q, 10, bad);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  IndexedChunk invalid = chunks[0];
  invalid.file_id = "\xc3\x28";
  std::vector<IndexedChunk> invalid_batch{invalid};
  EXPECT_EQ(store->Upsert(Key("quotes"), invalid_batch).error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(MilvusStoreTest, BatchedInsertOf2500VectorsThenRemove) {
  constexpr std::size_t d = 32;
  MilvusOptions o = TestOptions();
  o.batch_size = 100;  // 25 insert requests
  auto store = MakeNamespaced(d, o);
  ASSERT_TRUE(store);
  std::mt19937 rng(3);
  constexpr int n = 2500;
  std::vector<std::vector<float>> vecs;
  for (int i = 0; i < n; ++i) vecs.push_back(Unit(d, rng));
  std::vector<IndexedChunk> chunks;
  for (int i = 0; i < n; ++i) {
    IndexedChunk c;
    c.chunk_id = 100000 + i;
    c.file_id = "file-" + std::to_string(i % 7);
    c.page_number = i % 30;
    c.embedding = vecs[std::size_t(i)].data();
    chunks.push_back(c);
  }
  ASSERT_TRUE(store->Upsert(Key("bulk"), chunks));
  ASSERT_EQ(*store->Count(Key("bulk")), std::size_t(n));
  for (int i = 0; i < n; i += 311) {
    auto hits = store->Search(Key("bulk"), vecs[std::size_t(i)], 1, {});
    ASSERT_TRUE(hits) << hits.error().ToString();
    ASSERT_EQ(hits->size(), 1u);
    EXPECT_EQ((*hits)[0].chunk_id, 100000 + i);
    EXPECT_NEAR((*hits)[0].score, 1.0f, 1e-4f);
  }
  // Upserting the same 2,500 again replaces them (no duplicates).
  ASSERT_TRUE(store->Upsert(Key("bulk"), chunks));
  EXPECT_EQ(*store->Count(Key("bulk")), std::size_t(n));
  std::vector<std::int64_t> gone;
  for (int i = 0; i < 500; ++i) gone.push_back(100000 + i * 5);
  ASSERT_TRUE(store->Remove(Key("bulk"), gone));
  EXPECT_EQ(*store->Count(Key("bulk")), std::size_t(n - 500));
  auto hits = store->Search(Key("bulk"), vecs[0], 5, {});
  ASSERT_TRUE(hits);
  for (const auto& h : *hits) EXPECT_NE(h.chunk_id, 100000) << "a removed chunk was found";
}

TEST_F(MilvusStoreTest, DropThenSearchGivesNoHitsAndUpsertRecreates) {
  constexpr std::size_t d = 8;
  auto store = MakeNamespaced(d);
  ASSERT_TRUE(store);
  std::mt19937 rng(4);
  auto v = Unit(d, rng);
  IndexedChunk c;
  c.chunk_id = 5;
  c.file_id = "f";
  c.embedding = v.data();
  std::vector<IndexedChunk> chunks{c};
  ASSERT_TRUE(store->Upsert(Key("dropped"), chunks));
  ASSERT_EQ(store->Search(Key("dropped"), v, 3, {})->size(), 1u);
  ASSERT_TRUE(store->Drop(Key("dropped")));
  auto hits = store->Search(Key("dropped"), v, 3, {});
  ASSERT_TRUE(hits) << hits.error().ToString();
  EXPECT_TRUE(hits->empty());
  EXPECT_EQ(*store->Count(Key("dropped")), 0u);
  std::vector<std::int64_t> ids{5};
  EXPECT_TRUE(store->Remove(Key("dropped"), ids));
  ASSERT_TRUE(store->Upsert(Key("dropped"), chunks));
  EXPECT_EQ(*store->Count(Key("dropped")), 1u);
}

TEST_F(MilvusStoreTest, SearchLatencyIsRecorded) {
  metrics::Registry registry;
  auto created = MilvusVectorStore::Create(8, TestOptions(), &registry);
  ASSERT_TRUE(created);
  auto store = std::make_shared<Namespaced>(std::shared_ptr<MilvusVectorStore>(std::move(*created)));
  std::vector<float> q(8, 0.f);
  q[0] = 1.f;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store->Search(Key("metrics"), q, 1, {}));
  const std::string text = registry.Expose();
  EXPECT_NE(text.find("milvus_search_duration_seconds_count 3"), std::string::npos) << text;
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  ::close(fd);  // nothing listens there now
  return port;
}

TEST(MilvusDownTest, UnreachableMilvusGivesUnavailableQuickly) {
  MilvusOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(FreePort());
  o.retry = {2, std::chrono::milliseconds(50), std::chrono::milliseconds(100)};
  o.timeout = std::chrono::seconds(2);
  auto created = MilvusVectorStore::Create(8, o);
  ASSERT_TRUE(created);
  auto& store = **created;
  std::vector<float> v(8, 0.f);
  v[0] = 1.f;
  IndexedChunk c;
  c.chunk_id = 1;
  c.embedding = v.data();
  std::vector<IndexedChunk> chunks{c};
  std::vector<std::int64_t> ids{1};
  const auto started = std::chrono::steady_clock::now();
  auto expect_unavailable = [](const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable) << e.ToString();
    EXPECT_NE(e.message().find("Milvus"), std::string::npos) << e.ToString();
  };
  auto up = store.Upsert(Key("down"), chunks);
  ASSERT_FALSE(up);
  expect_unavailable(up.error());
  auto hits = store.Search(Key("down"), v, 3, {});
  ASSERT_FALSE(hits);
  expect_unavailable(hits.error());
  auto count = store.Count(Key("down"));
  ASSERT_FALSE(count);
  expect_unavailable(count.error());
  auto rm = store.Remove(Key("down"), ids);
  ASSERT_FALSE(rm);
  expect_unavailable(rm.error());
  auto drop = store.Drop(Key("down"));
  ASSERT_FALSE(drop);
  expect_unavailable(drop.error());
  auto ping = store.Ping();
  ASSERT_FALSE(ping);
  expect_unavailable(ping.error());
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
}

}  // namespace
}  // namespace modulo::index
