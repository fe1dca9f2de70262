#include "modulo/store/blob_store_contract.h"

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "modulo/core/request_id.h"

namespace modulo::store {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Digest(const fs::path& p) {
  auto d = Sha256File(p);
  EXPECT_TRUE(d) << d.error().ToString();
  return d ? *d : std::string();
}

std::string RandomBytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

}  // namespace

void BlobStoreContract::SetUp() {
  scratch_ = fs::temp_directory_path() / ("modulo_blob_contract_" + std::to_string(::getpid()) + "_" + NewRequestId());
  fs::create_directories(scratch_);
  store_ = GetParam()();
  ASSERT_NE(store_, nullptr) << "the factory could not create a store";
}

void BlobStoreContract::TearDown() {
  store_.reset();
  std::error_code ec;
  fs::remove_all(scratch_, ec);
}

fs::path BlobStoreContract::Write(const std::string& bytes) {
  const auto p = scratch_ / (NewRequestId() + ".upload");
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  return p;
}

TEST_P(BlobStoreContract, PutReturnsTheDigestConsumesTheFileAndFetchGivesTheBytes) {
  const std::string bytes = "hello, blob store\n";
  const auto file = Write(bytes);
  const auto sha = Digest(file);
  auto key = store_->Put(file, sha);
  ASSERT_TRUE(key) << key.error().ToString();
  EXPECT_EQ(*key, sha);
  EXPECT_FALSE(fs::exists(file)) << "Put must consume (move) the source file";
  auto path = store_->Fetch(*key);
  ASSERT_TRUE(path) << path.error().ToString();
  EXPECT_EQ(ReadAll(*path), bytes);
  // Fetching again gives the same bytes.
  auto again = store_->Fetch(*key);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(ReadAll(*again), bytes);
}

TEST_P(BlobStoreContract, EmptyBinaryAndLargeContentsRoundTrip) {
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes += static_cast<char>(i);
  for (const std::string& bytes : {std::string(), all_bytes + std::string(1, '\0') + all_bytes,
                                   RandomBytes(5 * 1024 * 1024 + 17, 7)}) {
    const auto file = Write(bytes);
    const auto sha = Digest(file);
    auto key = store_->Put(file, sha);
    ASSERT_TRUE(key) << key.error().ToString();
    auto path = store_->Fetch(sha);
    ASSERT_TRUE(path) << path.error().ToString();
    EXPECT_EQ(fs::file_size(*path), bytes.size());
    EXPECT_TRUE(ReadAll(*path) == bytes) << "content differs for a blob of " << bytes.size() << " bytes";
  }
}

TEST_P(BlobStoreContract, SameContentIsStoredOnce) {
  const std::string bytes = RandomBytes(4096, 1);
  const auto first = Write(bytes);
  const auto second = Write(bytes);
  const auto sha = Digest(first);
  ASSERT_TRUE(store_->Put(first, sha));
  auto again = store_->Put(second, sha);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(*again, sha);
  EXPECT_FALSE(fs::exists(second)) << "a Put of content already stored still consumes its file";
  auto path = store_->Fetch(sha);
  ASSERT_TRUE(path);
  EXPECT_EQ(ReadAll(*path), bytes);
  // One Delete removes it: there was one copy.
  ASSERT_TRUE(store_->Delete(sha));
  EXPECT_EQ(store_->Fetch(sha).error().code(), ErrorCode::kNotFound);
}

TEST_P(BlobStoreContract, ConcurrentPutsOfTheSameContentAllSucceed) {
  const std::string bytes = RandomBytes(256 * 1024, 3);
  std::vector<fs::path> files;
  for (int i = 0; i < 4; ++i) files.push_back(Write(bytes));
  const auto sha = Digest(files[0]);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (const auto& f : files) {
    threads.emplace_back([&, f] {
      if (auto k = store_->Put(f, sha); k && *k == sha) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 4);
  auto path = store_->Fetch(sha);
  ASSERT_TRUE(path) << path.error().ToString();
  EXPECT_TRUE(ReadAll(*path) == bytes);
}

TEST_P(BlobStoreContract, MalformedKeysAreInvalidArguments) {
  const auto file = Write("x");
  for (const std::string& bad :
       {std::string(), std::string("abc"), std::string("../../etc/passwd"), std::string(64, 'A'),
        std::string(63, 'a') + "/", std::string(64, 'g'), std::string(65, 'a'), std::string("..") + std::string(62, 'a')}) {
    auto put = store_->Put(file, bad);
    ASSERT_FALSE(put) << "'" << bad << "'";
    EXPECT_EQ(put.error().code(), ErrorCode::kInvalidArgument) << "'" << bad << "'";
    auto fetched = store_->Fetch(bad);
    ASSERT_FALSE(fetched) << "'" << bad << "'";
    EXPECT_EQ(fetched.error().code(), ErrorCode::kInvalidArgument) << "'" << bad << "'";
    auto deleted = store_->Delete(bad);
    ASSERT_FALSE(deleted) << "'" << bad << "'";
    EXPECT_EQ(deleted.error().code(), ErrorCode::kInvalidArgument) << "'" << bad << "'";
  }
  EXPECT_TRUE(fs::exists(file)) << "a refused Put leaves its file alone";
}

TEST_P(BlobStoreContract, MissingAndDeletedBlobsAreNotFound) {
  const std::string never(64, 'e');
  auto missing = store_->Fetch(never);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(store_->Delete(never)) << "deleting an absent blob is not an error";

  const auto a = Write("first blob");
  const auto b = Write("second blob");
  const auto sha_a = Digest(a);
  const auto sha_b = Digest(b);
  ASSERT_TRUE(store_->Put(a, sha_a));
  ASSERT_TRUE(store_->Put(b, sha_b));
  auto deleted = store_->Delete(sha_a);
  ASSERT_TRUE(deleted) << deleted.error().ToString();
  auto gone = store_->Fetch(sha_a);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(store_->Delete(sha_a)) << "Delete is idempotent";
  auto other = store_->Fetch(sha_b);
  ASSERT_TRUE(other) << other.error().ToString();
  EXPECT_EQ(ReadAll(*other), "second blob");
}

TEST_P(BlobStoreContract, PutOfAMissingFileFailsAndStoresNothing) {
  const auto file = Write("will vanish");
  const auto sha = Digest(file);
  fs::remove(file);
  auto put = store_->Put(file, sha);
  EXPECT_FALSE(put);
  auto fetched = store_->Fetch(sha);
  ASSERT_FALSE(fetched);
  EXPECT_EQ(fetched.error().code(), ErrorCode::kNotFound);
}

}  // namespace modulo::store

// LocalBlobStore runs the contract in store_test (which defines MODULO_BLOB_CONTRACT_LOCAL); the
// other implementations' test binaries link this file for the cases alone.
#ifdef MODULO_BLOB_CONTRACT_LOCAL
namespace modulo::store {
namespace {

std::shared_ptr<BlobStore> MakeLocalBlobStore() {
  const auto root = std::filesystem::temp_directory_path() /
                    ("modulo_local_blobs_" + std::to_string(::getpid()) + "_" + NewRequestId());
  // The store's directory goes when the store does.
  return std::shared_ptr<BlobStore>(new LocalBlobStore(root), [root](BlobStore* s) {
    delete s;
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  });
}

INSTANTIATE_TEST_SUITE_P(Local, BlobStoreContract, ::testing::Values(&MakeLocalBlobStore));

}  // namespace
}  // namespace modulo::store
#endif
