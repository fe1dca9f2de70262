// S3BlobStore against a real S3 server (SeaweedFS, with signature checking on): the BlobStore
// contract, then S3-specific cases (layout, skipped uploads, the verified cache, credentials and
// permissions, missing buckets, unreachable endpoints, the cache bound).
//
// Which server: the one described by MODULO_TEST_S3_ENV_FILE (the s3.env file that
// tests/services/s3.sh start writes) if set; else the ctest fixture's (MODULO_TEST_S3_FIXTURE_ENV_FILE);
// else this binary starts its own with tests/services/s3.sh in a temporary directory and stops it
// at the end. A server that cannot be reached or started fails every test, with the reason and
// how to install it (never a skip).
#include "modulo/store/s3/s3_blob_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "modulo/core/request_id.h"
#include "modulo/metrics/registry.h"
#include "modulo/store/blob_store_contract.h"

namespace modulo::store::s3 {
namespace {

namespace fs = std::filesystem;

std::map<std::string, std::string> g_env;  // S3_ENDPOINT, S3_ACCESS_KEY_ID, ...
std::string g_error;                       // why there is no server

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

bool ReadEnvFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return false;
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (eq == std::string::npos || line.starts_with('#')) continue;
    g_env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return !g_env["S3_ENDPOINT"].empty();
}

class S3Environment : public ::testing::Environment {
 public:
  void SetUp() override {
    const std::string script = std::string(MODULO_SOURCE_DIR) + "/tests/services/s3.sh";
    const char* given = std::getenv("MODULO_TEST_S3_ENV_FILE");
    const char* fixture = std::getenv("MODULO_TEST_S3_FIXTURE_ENV_FILE");
    if (given != nullptr && *given != 0) {
      if (!ReadEnvFile(given)) g_error = std::string("no S3 server: cannot read S3_ENDPOINT from ") + given;
    } else if (fixture != nullptr && *fixture != 0) {
      if (!ReadEnvFile(fixture)) {
        g_error = std::string("no S3 server: ") + fixture + " is missing (the ctest fixture s3_service_start failed; run " +
                  script + " start <dir> by hand to see why)";
      }
    } else {
      char tmpl[] = "/tmp/modulo-s3-itest-XXXXXX";
      if (::mkdtemp(tmpl) == nullptr) {
        g_error = "cannot create a temporary directory for the S3 server";
        return;
      }
      dir_ = tmpl;
      int status = 0;
      const std::string out = Shell("'" + script + "' start '" + dir_ + "' 2>&1", &status);
      if (status != 0) {
        g_error = "could not start the S3 server with " + script + ":\n" + out;
        return;
      }
      if (!ReadEnvFile(dir_ + "/s3.env")) g_error = "s3.sh start wrote no s3.env:\n" + out;
    }
    if (!g_error.empty()) return;
    // The server answers and checks signatures: a bucket can be created with the test identity.
    S3Options o;
    o.endpoint = g_env["S3_ENDPOINT"];
    o.bucket = "modulo-probe";
    o.region = g_env.count("S3_REGION") ? g_env["S3_REGION"] : "us-east-1";
    o.credentials = {g_env["S3_ACCESS_KEY_ID"], g_env["S3_SECRET_ACCESS_KEY"], ""};
    auto client = S3Client::Create(o);
    if (!client) {
      g_error = client.error().ToString();
      return;
    }
    if (auto st = (*client)->CreateBucket(); !st) g_error = "S3 server at " + o.endpoint + ": " + st.error().ToString();
  }

  void TearDown() override {
    if (dir_.empty()) return;
    int status = 0;
    Shell("'" + std::string(MODULO_SOURCE_DIR) + "/tests/services/s3.sh' stop '" + dir_ + "' 2>&1", &status);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

 private:
  std::string dir_;
};

const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new S3Environment);

std::string NewBucketName() {
  static std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name = "modulo-test-";
  for (int i = 0; i < 16; ++i) name += kHex[rng() & 15];
  return name;
}

S3Options Options(const std::string& bucket) {
  S3Options o;
  o.endpoint = g_env["S3_ENDPOINT"];
  o.bucket = bucket;
  o.region = g_env.count("S3_REGION") ? g_env["S3_REGION"] : "us-east-1";
  o.credentials = {g_env["S3_ACCESS_KEY_ID"], g_env["S3_SECRET_ACCESS_KEY"], ""};
  o.base_delay = std::chrono::milliseconds(20);
  return o;
}

fs::path NewTempDir(const std::string& what) {
  auto dir = fs::temp_directory_path() / ("modulo_s3_" + what + "_" + std::to_string(::getpid()) + "_" + NewRequestId());
  fs::create_directories(dir);
  return dir;
}

std::shared_ptr<BlobStore> MakeS3BlobStore() {
  if (!g_error.empty()) {
    ADD_FAILURE() << g_error;
    return nullptr;
  }
  S3BlobStoreOptions o;
  o.s3 = Options(NewBucketName());
  o.cache_dir = NewTempDir("cache");
  auto client = S3Client::Create(o.s3);
  if (!client) {
    ADD_FAILURE() << client.error().ToString();
    return nullptr;
  }
  if (auto st = (*client)->CreateBucket(); !st) {
    ADD_FAILURE() << st.error().ToString();
    return nullptr;
  }
  auto store = S3BlobStore::Create(o);
  if (!store) {
    ADD_FAILURE() << store.error().ToString();
    return nullptr;
  }
  const auto cache = o.cache_dir;
  return std::shared_ptr<BlobStore>(store->release(), [cache](BlobStore* s) {
    delete s;
    std::error_code ec;
    fs::remove_all(cache, ec);
  });
}

INSTANTIATE_TEST_SUITE_P(S3, BlobStoreContract, ::testing::Values(&MakeS3BlobStore));

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The value of one sample in a registry's exposition ("" when absent).
double Sample(const metrics::Registry& registry, const std::string& series) {
  const std::string text = registry.Expose();
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return 0;
  return std::stod(text.substr(at + series.size() + 2));
}

class S3BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!g_error.empty()) GTEST_FAIL() << g_error;
    bucket_ = NewBucketName();
    auto client = S3Client::Create(Options(bucket_));
    ASSERT_TRUE(client) << client.error().ToString();
    ASSERT_TRUE((*client)->CreateBucket());
    scratch_ = NewTempDir("scratch");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(scratch_, ec);
  }

  std::unique_ptr<S3BlobStore> Store(metrics::Registry* registry = nullptr, S3Options s3 = {}) {
    S3BlobStoreOptions o;
    o.s3 = s3.endpoint.empty() ? Options(bucket_) : s3;
    o.cache_dir = scratch_ / ("cache-" + NewRequestId());
    auto store = S3BlobStore::Create(o, registry);
    EXPECT_TRUE(store) << store.error().ToString();
    return store ? std::move(*store) : nullptr;
  }

  fs::path Write(const std::string& bytes) {
    const auto p = scratch_ / (NewRequestId() + ".upload");
    std::ofstream out(p, std::ios::binary);
    out << bytes;
    return p;
  }

  std::string Put(BlobStore& store, const std::string& bytes) {
    const auto file = Write(bytes);
    auto sha = Sha256File(file);
    EXPECT_TRUE(sha);
    auto key = store.Put(file, *sha);
    EXPECT_TRUE(key) << key.error().ToString();
    return *sha;
  }

  std::string bucket_;
  fs::path scratch_;
};

TEST_F(S3BlobStoreTest, ObjectsFollowTheLocalLayoutUnderThePrefix) {
  S3Options prefixed = Options(bucket_);
  prefixed.key_prefix = "tenant a/";
  auto store = Store(nullptr, prefixed);
  ASSERT_NE(store, nullptr);
  const std::string sha = Put(*store, "laid out like the local store");
  EXPECT_EQ(S3BlobStore::ObjectKey(sha), "blobs/" + sha.substr(0, 2) + "/" + sha);

  auto raw = S3Client::Create(Options(bucket_));
  ASSERT_TRUE(raw);
  EXPECT_EQ((*raw)->Exists("tenant a/blobs/" + sha.substr(0, 2) + "/" + sha).value_or(false), true);
  EXPECT_EQ((*raw)->Exists("blobs/" + sha.substr(0, 2) + "/" + sha).value_or(true), false);
  const auto out = scratch_ / "raw";
  ASSERT_TRUE((*raw)->GetToFile("tenant a/blobs/" + sha.substr(0, 2) + "/" + sha, out));
  EXPECT_EQ(ReadAll(out), "laid out like the local store");
}

TEST_F(S3BlobStoreTest, VirtualHostAddressingReachesTheSameBucket) {
  // bucket.localhost resolves to the loopback address (libcurl), and s3.sh tells the server that
  // "localhost" is its domain, so the bucket is taken from the Host header.
  S3Options virtual_host = Options(bucket_);
  virtual_host.path_style = false;
  const std::string endpoint = g_env["S3_ENDPOINT"];
  virtual_host.endpoint = "http://localhost" + endpoint.substr(endpoint.rfind(':'));
  auto vh = Store(nullptr, virtual_host);
  ASSERT_NE(vh, nullptr);
  EXPECT_EQ(vh->client().Url("k"), "http://" + bucket_ + ".localhost" + endpoint.substr(endpoint.rfind(':')) + "/k");
  const std::string sha = Put(*vh, "stored through bucket.localhost");
  auto path_style = Store();
  ASSERT_NE(path_style, nullptr);
  auto fetched = path_style->Fetch(sha);
  ASSERT_TRUE(fetched) << fetched.error().ToString();
  EXPECT_EQ(ReadAll(*fetched), "stored through bucket.localhost");
  ASSERT_TRUE(vh->Delete(sha));
  EXPECT_EQ(Store()->Fetch(sha).error().code(), ErrorCode::kNotFound);
}

TEST_F(S3BlobStoreTest, ContentAlreadyStoredIsNotUploadedAgain) {
  metrics::Registry registry;
  auto store = Store(&registry);
  ASSERT_NE(store, nullptr);
  Put(*store, "twice");
  Put(*store, "twice");
  EXPECT_EQ(Sample(registry, R"(modulo_s3_requests_total{operation="put_object",status="200"})"), 1);
  EXPECT_EQ(Sample(registry, R"(modulo_s3_requests_total{operation="head_object",status="404"})"), 1);
  EXPECT_EQ(Sample(registry, R"(modulo_s3_requests_total{operation="head_object",status="200"})"), 1);
  EXPECT_EQ(Sample(registry, "modulo_s3_blob_uploads_skipped_total"), 1);
}

TEST_F(S3BlobStoreTest, AnotherMachineDownloadsOnceThenUsesItsVerifiedCopy) {
  auto writer = Store();
  ASSERT_NE(writer, nullptr);
  const std::string bytes(3 * 1024 * 1024 + 5, 'q');
  const std::string sha = Put(*writer, bytes);

  metrics::Registry registry;
  auto reader = Store(&registry);  // its own, empty cache
  ASSERT_NE(reader, nullptr);
  auto first = reader->Fetch(sha);
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(*first, reader->CachePath(sha));
  EXPECT_TRUE(ReadAll(*first) == bytes);
  auto second = reader->Fetch(sha);
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_EQ(Sample(registry, R"(modulo_s3_requests_total{operation="get_object",status="200"})"), 1);
  EXPECT_EQ(Sample(registry, R"(modulo_s3_blob_cache_total{result="miss"})"), 1);
  EXPECT_EQ(Sample(registry, R"(modulo_s3_blob_cache_total{result="hit"})"), 1);
  // No partial downloads are left behind.
  EXPECT_TRUE(fs::is_empty(reader->CachePath(sha).parent_path().parent_path() / ".tmp"));
}

TEST_F(S3BlobStoreTest, ADamagedCachedCopyIsDownloadedAgain) {
  metrics::Registry registry;
  auto store = Store(&registry);
  ASSERT_NE(store, nullptr);
  const std::string sha = Put(*store, "the true bytes");
  auto path = store->Fetch(sha);  // the uploaded file became the cached copy
  ASSERT_TRUE(path) << path.error().ToString();
  {
    std::ofstream damage(*path, std::ios::binary | std::ios::trunc);
    damage << "the TRUE bytes";
  }
  auto again = store->Fetch(sha);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(ReadAll(*again), "the true bytes");
  EXPECT_EQ(Sample(registry, R"(modulo_s3_blob_cache_total{result="invalid"})"), 1);
  EXPECT_EQ(Sample(registry, R"(modulo_s3_requests_total{operation="get_object",status="200"})"), 1);
}

TEST_F(S3BlobStoreTest, AWrongSecretIsRefusedNamingTheBucket) {
  auto good = Store();
  ASSERT_NE(good, nullptr);
  const std::string stored = Put(*good, "stored with the right key");

  S3Options wrong = Options(bucket_);
  wrong.credentials.secret_access_key = "not-the-secret";
  metrics::Registry registry;
  auto store = Store(&registry, wrong);
  ASSERT_NE(store, nullptr);
  const auto file = Write("refused");
  auto put = store->Put(file, *Sha256File(file));
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code(), ErrorCode::kUnauthenticated) << put.error().ToString();
  EXPECT_NE(put.error().message().find(bucket_), std::string::npos) << put.error().message();
  EXPECT_EQ(put.error().message().find("not-the-secret"), std::string::npos) << "the secret must never be shown";
  EXPECT_TRUE(fs::exists(file)) << "a refused Put leaves its file alone";
  // A 403 is final: no retries.
  EXPECT_EQ(Sample(registry, R"(modulo_s3_retries_total{operation="head_object"})"), 0);

  auto fetched = store->Fetch(stored);
  ASSERT_FALSE(fetched);
  EXPECT_EQ(fetched.error().code(), ErrorCode::kUnauthenticated) << fetched.error().ToString();
  EXPECT_NE(fetched.error().message().find("SignatureDoesNotMatch"), std::string::npos) << fetched.error().message();
  EXPECT_NE(fetched.error().message().find(bucket_), std::string::npos);

  auto check = store->CheckBucket();
  ASSERT_FALSE(check);
  EXPECT_TRUE(check.error().code() == ErrorCode::kUnauthenticated || check.error().code() == ErrorCode::kPermissionDenied)
      << check.error().ToString();
  EXPECT_NE(check.error().message().find(bucket_), std::string::npos);
}

TEST_F(S3BlobStoreTest, AnUnknownAccessKeyIsRefused) {
  S3Options unknown = Options(bucket_);
  unknown.credentials = {"MODULOUNKNOWNKEY", "whatever", ""};
  auto store = Store(nullptr, unknown);
  ASSERT_NE(store, nullptr);
  auto fetched = store->Fetch(std::string(64, 'a'));
  ASSERT_FALSE(fetched);
  EXPECT_EQ(fetched.error().code(), ErrorCode::kUnauthenticated) << fetched.error().ToString();
  EXPECT_NE(fetched.error().message().find("MODULOUNKNOWNKEY"), std::string::npos) << fetched.error().message();
}

TEST_F(S3BlobStoreTest, AReadOnlyIdentityFetchesButCannotPut) {
  ASSERT_FALSE(g_env["S3_READONLY_ACCESS_KEY_ID"].empty()) << "s3.env has no read-only identity";
  auto writer = Store();
  ASSERT_NE(writer, nullptr);
  const std::string sha = Put(*writer, "readable by the reader");
  S3Options ro = Options(bucket_);
  ro.credentials = {g_env["S3_READONLY_ACCESS_KEY_ID"], g_env["S3_READONLY_SECRET_ACCESS_KEY"], ""};
  auto reader = Store(nullptr, ro);
  ASSERT_NE(reader, nullptr);
  auto fetched = reader->Fetch(sha);
  ASSERT_TRUE(fetched) << fetched.error().ToString();
  EXPECT_EQ(ReadAll(*fetched), "readable by the reader");
  const auto file = Write("the reader may not write this");
  auto put = reader->Put(file, *Sha256File(file));
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code(), ErrorCode::kPermissionDenied) << put.error().ToString();
  EXPECT_NE(put.error().message().find(bucket_), std::string::npos);
  auto deleted = reader->Delete(sha);
  ASSERT_FALSE(deleted);
  EXPECT_EQ(deleted.error().code(), ErrorCode::kPermissionDenied) << deleted.error().ToString();
}

TEST_F(S3BlobStoreTest, BytesThatDoNotMatchTheirKeyAreRefusedByTheServer) {
  auto store = Store();
  ASSERT_NE(store, nullptr);
  const auto other = Write("what the key says");
  const std::string claimed = *Sha256File(other);
  const auto file = Write("what the file holds");
  auto put = store->Put(file, claimed);
  ASSERT_FALSE(put) << "the server must check the signed payload hash";
  EXPECT_EQ(put.error().code(), ErrorCode::kInvalidArgument) << put.error().ToString();
  EXPECT_EQ(store->Fetch(claimed).error().code(), ErrorCode::kNotFound);
}

TEST_F(S3BlobStoreTest, AMissingBucketIsAClearError) {
  auto store = Store(nullptr, Options("modulo-never-created-" + NewRequestId().substr(0, 8)));
  ASSERT_NE(store, nullptr);
  auto check = store->CheckBucket();
  ASSERT_FALSE(check);
  EXPECT_EQ(check.error().code(), ErrorCode::kNotFound) << check.error().ToString();
  EXPECT_NE(check.error().message().find("modulo-never-created-"), std::string::npos);
  const auto file = Write("nowhere to go");
  auto put = store->Put(file, *Sha256File(file));
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code(), ErrorCode::kUnavailable) << put.error().ToString();
  EXPECT_NE(put.error().message().find("does not exist"), std::string::npos) << put.error().message();
  EXPECT_TRUE(fs::exists(file));
  auto fetched = store->Fetch(std::string(64, 'c'));
  ASSERT_FALSE(fetched);
  EXPECT_EQ(fetched.error().code(), ErrorCode::kUnavailable) << fetched.error().ToString();
}

TEST_F(S3BlobStoreTest, AnUnreachableEndpointFailsAfterRetries) {
  S3Options o = Options(bucket_);
  o.endpoint = "http://127.0.0.1:9";  // discard: nothing listens there
  o.max_attempts = 3;
  o.base_delay = std::chrono::milliseconds(10);
  metrics::Registry registry;
  auto store = Store(&registry, o);
  ASSERT_NE(store, nullptr);
  const auto file = Write("unsent");
  auto put = store->Put(file, *Sha256File(file));
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code(), ErrorCode::kUnavailable) << put.error().ToString();
  EXPECT_NE(put.error().message().find(bucket_), std::string::npos);
  EXPECT_EQ(Sample(registry, R"(modulo_s3_requests_total{operation="head_object",status="error"})"), 3);
  EXPECT_EQ(Sample(registry, R"(modulo_s3_retries_total{operation="head_object"})"), 2);
  EXPECT_TRUE(fs::exists(file));
}

TEST_F(S3BlobStoreTest, TheCacheStaysWithinItsBound) {
  auto writer = Store();
  ASSERT_NE(writer, nullptr);
  std::vector<std::string> shas;
  for (char c : std::string("abcde")) shas.push_back(Put(*writer, std::string(1024 * 1024, c)));

  S3BlobStoreOptions o;
  o.s3 = Options(bucket_);
  o.cache_dir = scratch_ / "bounded";
  o.cache_max_bytes = 3 * 1024 * 1024;
  o.cache_min_age = std::chrono::seconds(0);
  auto reader = S3BlobStore::Create(o);
  ASSERT_TRUE(reader) << reader.error().ToString();
  for (const auto& sha : shas) ASSERT_TRUE((*reader)->Fetch(sha));
  std::uint64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(o.cache_dir)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  EXPECT_LE(total, o.cache_max_bytes);
  // The newest is kept; an evicted one is downloaded again when needed.
  EXPECT_TRUE(fs::exists((*reader)->CachePath(shas.back())));
  auto first = (*reader)->Fetch(shas.front());
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(ReadAll(*first), std::string(1024 * 1024, 'a'));
}

}  // namespace
}  // namespace modulo::store::s3
