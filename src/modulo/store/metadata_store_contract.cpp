#include "modulo/store/metadata_store_contract.h"

#include <atomic>
#include <set>
#include <thread>

namespace modulo::store {
namespace {

NewCollection Named(const std::string& name, const std::string& owner = "u1") {
  NewCollection c;
  c.name = name;
  c.owner_id = owner;
  c.embedding_model = "all-MiniLM-L6-v2";
  return c;
}

FileRecord FileIn(const std::string& collection, const std::string& hash) {
  FileRecord f;
  f.collection_id = collection;
  f.filename = "../weird\xe2\x80\x8b name.pdf";
  f.size_bytes = 123;
  f.content_hash = hash;
  f.mime_type = "application/pdf";
  f.storage_key = "blobs/" + hash;
  return f;
}

std::vector<Chunk> Chunks(int n, int dim = 4) {
  std::vector<Chunk> out;
  for (int i = 0; i < n; ++i) {
    Chunk k;
    k.chunk_number = i;
    k.text = "chunk " + std::to_string(i);
    k.page_number = i + 1;
    k.section_path = "A > B";
    k.token_count = 3;
    k.embedding.assign(static_cast<std::size_t>(dim), static_cast<float>(i));
    out.push_back(std::move(k));
  }
  return out;
}

TEST_P(MetadataStoreContract, CreateGetListDeleteCollections) {
  auto a = store_->CreateCollection(Named("alpha"));
  ASSERT_TRUE(a) << a.error().ToString();
  EXPECT_EQ(a->status, CollectionStatus::kCreated);
  EXPECT_EQ(a->id.size(), 36u);
  auto b = store_->CreateCollection(Named("beta", "u2"));
  ASSERT_TRUE(b);
  auto got = store_->GetCollection(a->id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->name, "alpha");
  EXPECT_EQ(got->embedding_model, "all-MiniLM-L6-v2");
  EXPECT_EQ(store_->ListCollections("")->size(), 2u);
  EXPECT_EQ(store_->ListCollections("u2")->size(), 1u);
  ASSERT_TRUE(store_->DeleteCollection(a->id));
  EXPECT_EQ(store_->GetCollection(a->id).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_->DeleteCollection(a->id).error().code(), ErrorCode::kNotFound);
}

TEST_P(MetadataStoreContract, DuplicateNamesPerOwnerAreRejected) {
  ASSERT_TRUE(store_->CreateCollection(Named("same")));
  auto dup = store_->CreateCollection(Named("same"));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_TRUE(store_->CreateCollection(Named("same", "other-owner")));
  EXPECT_EQ(store_->CreateCollection(Named("")).error().code(), ErrorCode::kInvalidArgument);
}

TEST_P(MetadataStoreContract, FilesAreDeduplicatedByContentAndKeepTheirNames) {
  auto c = store_->CreateCollection(Named("files"));
  ASSERT_TRUE(c);
  auto f1 = store_->AddFile(FileIn(c->id, "h1"));
  ASSERT_TRUE(f1) << f1.error().ToString();
  EXPECT_TRUE(f1->second);
  auto again = store_->AddFile(FileIn(c->id, "h1"));
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->second);
  EXPECT_EQ(again->first.id, f1->first.id);
  auto got = store_->GetFile(f1->first.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->filename, "../weird\xe2\x80\x8b name.pdf");
  EXPECT_EQ(got->status, FileStatus::kQueued);
  EXPECT_EQ(store_->ListFiles(c->id)->size(), 1u);
  EXPECT_EQ(store_->AddFile(FileIn("no-such-collection", "h2")).error().code(), ErrorCode::kNotFound);
}

TEST_P(MetadataStoreContract, ReplaceFileChunksIsIdempotentAndBumpsTheVersion) {
  auto c = store_->CreateCollection(Named("chunks"));
  auto f = store_->AddFile(FileIn(c->id, "h"));
  ASSERT_TRUE(f);
  const auto v0 = store_->GetCollection(c->id)->version;
  FileOutcome ok;
  ok.format = "pdf";
  ok.page_count = 5;
  ASSERT_TRUE(store_->ReplaceFileChunks(f->first.id, 1, Chunks(5), ok));
  ASSERT_TRUE(store_->ReplaceFileChunks(f->first.id, 1, Chunks(5), ok));  // a retried job
  auto listed = store_->ListChunks(c->id, 1, 0, 100, true);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 5u) << "no chunk exists twice";
  std::set<int> numbers;
  for (const auto& k : *listed) numbers.insert(k.chunk_number);
  EXPECT_EQ(numbers.size(), 5u);
  EXPECT_EQ((*listed)[2].embedding, std::vector<float>(4, 2.0f));
  EXPECT_EQ((*listed)[2].page_number, 3);
  auto file = store_->GetFile(f->first.id);
  EXPECT_EQ(file->status, FileStatus::kCompleted);
  EXPECT_EQ(file->chunk_count, 5);
  EXPECT_EQ(file->page_count, 5);
  auto col = store_->GetCollection(c->id);
  EXPECT_GT(col->version, v0);
  EXPECT_EQ(col->chunk_count, 5);
  EXPECT_EQ(col->file_count, 1);
  // Paging and point lookups.
  auto page = store_->ListChunks(c->id, 1, (*listed)[1].id, 2, false);
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].id, (*listed)[2].id);
  EXPECT_TRUE((*page)[0].embedding.empty());
  auto got = store_->GetChunks({(*listed)[4].id, 999999999});
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].text, "chunk 4");
  // Another generation is separate.
  ASSERT_TRUE(store_->ReplaceFileChunks(f->first.id, 2, Chunks(2), ok));
  EXPECT_EQ(store_->ListChunks(c->id, 2, 0, 100, false)->size(), 2u);
  EXPECT_EQ(store_->ListChunks(c->id, 1, 0, 100, false)->size(), 5u);
}

TEST_P(MetadataStoreContract, ChangeFeedReplaysAdditionsAndRemovals) {
  auto c = store_->CreateCollection(Named("feed"));
  auto f = store_->AddFile(FileIn(c->id, "h"));
  auto g = store_->AddFile(FileIn(c->id, "h2"));
  ASSERT_TRUE(store_->ReplaceFileChunks(f->first.id, 1, Chunks(3), FileOutcome{}));
  ASSERT_TRUE(store_->ReplaceFileChunks(g->first.id, 1, Chunks(2), FileOutcome{}));
  // A replica of the index: everything so far.
  std::set<std::int64_t> replica;
  std::int64_t last_id = 0, last_seq = 0;
  auto replay = [&] {
    auto added = store_->ListChunks(c->id, 1, last_id, 1000, false);
    ASSERT_TRUE(added);
    for (const auto& k : *added) {
      replica.insert(k.id);
      last_id = k.id;
    }
    auto removed = store_->ListRemovedChunks(c->id, 1, last_seq, 1000);
    ASSERT_TRUE(removed) << removed.error().ToString();
    for (const auto& r : *removed) {
      EXPECT_GT(r.seq, last_seq) << "seq grows";
      replica.erase(r.chunk_id);
      last_seq = r.seq;
    }
  };
  auto truth = [&] {
    std::set<std::int64_t> ids;
    auto all = store_->ListChunks(c->id, 1, 0, 1000, false);
    for (const auto& k : *all) ids.insert(k.id);
    return ids;
  };
  replay();
  EXPECT_EQ(replica.size(), 5u);
  // Replace one file (a retried job), delete the other: the replay follows.
  ASSERT_TRUE(store_->ReplaceFileChunks(f->first.id, 1, Chunks(4), FileOutcome{}));
  ASSERT_TRUE(store_->DeleteFile(g->first.id));
  replay();
  EXPECT_EQ(replica, truth());
  EXPECT_EQ(replica.size(), 4u);
  // Removals in another generation do not appear in this one.
  ASSERT_TRUE(store_->ReplaceFileChunks(f->first.id, 2, Chunks(2), FileOutcome{}));
  ASSERT_TRUE(store_->ReplaceFileChunks(f->first.id, 2, Chunks(2), FileOutcome{}));
  EXPECT_TRUE(store_->ListRemovedChunks(c->id, 1, last_seq, 1000)->empty());
  EXPECT_EQ(store_->ListRemovedChunks(c->id, 2, 0, 1000)->size(), 2u);
  EXPECT_EQ(store_->ListRemovedChunks(c->id, 1, 0, 2)->size(), 2u) << "limit";
}

TEST_P(MetadataStoreContract, QuotasHoldUnderConcurrency) {
  // 100 concurrent creations against a limit of 10 create exactly 10.
  std::atomic<int> created{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 10; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        NewCollection nc = Named("q" + std::to_string(t) + "-" + std::to_string(i), "quota-user");
        nc.owner_collection_limit = 10;
        auto c = store_->CreateCollection(nc);
        if (c) {
          ++created;
        } else {
          EXPECT_EQ(c.error().code(), ErrorCode::kQuotaExceeded) << c.error().ToString();
          EXPECT_NE(c.error().details().find("\"limit\":10"), std::string::npos);
          ++refused;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 10);
  EXPECT_EQ(refused.load(), 90);
  NewCollection other = Named("other", "someone-else");
  other.owner_collection_limit = 10;
  EXPECT_TRUE(store_->CreateCollection(other)) << "limits are per owner";

  // Files per collection and storage per owner.
  auto mine = store_->ListCollections("quota-user");
  ASSERT_TRUE(mine);
  ASSERT_GE(mine->size(), 2u);
  const auto a = (*mine)[0].id, b = (*mine)[1].id;
  FileLimits limits{.files_per_collection = 2, .owner_storage_bytes = 300};
  EXPECT_TRUE(store_->AddFile(FileIn(a, "f1"), limits));  // 123 bytes each
  EXPECT_TRUE(store_->AddFile(FileIn(a, "f2"), limits));
  auto third = store_->AddFile(FileIn(a, "f3"), limits);
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().code(), ErrorCode::kQuotaExceeded);
  EXPECT_NE(third.error().message().find("files per collection"), std::string::npos);
  auto over = store_->AddFile(FileIn(b, "f4"), limits);  // 246 + 123 > 300, across the owner's collections
  ASSERT_FALSE(over);
  EXPECT_NE(over.error().message().find("storage"), std::string::npos);
  auto listed = store_->ListCollectionsByIds({b, "missing", a});
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->size(), 2u);
}

TEST_P(MetadataStoreContract, ChunkLookupsKeepTheAskedOrderAndNameTheSource) {
  auto c = store_->CreateCollection(Named("lookup"));
  auto f = store_->AddFile(FileIn(c->id, "h"));
  ASSERT_TRUE(store_->ReplaceFileChunks(f->first.id, 1, Chunks(4), FileOutcome{}));
  auto all = store_->ListChunks(c->id, 1, 0, 100, false);
  ASSERT_EQ(all->size(), 4u);
  auto got = store_->GetChunks({(*all)[3].id, 123456789, (*all)[0].id});
  ASSERT_TRUE(got) << got.error().ToString();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].id, (*all)[3].id);
  EXPECT_EQ((*got)[1].id, (*all)[0].id);
  EXPECT_EQ((*got)[0].source, "../weird\xe2\x80\x8b name.pdf");
  EXPECT_TRUE((*got)[0].embedding.empty());
  EXPECT_TRUE(store_->GetChunks({})->empty());
  auto by_number = store_->GetChunksByNumber(f->first.id, 1, {2, 0, 99});
  ASSERT_TRUE(by_number);
  ASSERT_EQ(by_number->size(), 2u);
  EXPECT_EQ((*by_number)[0].chunk_number, 0);
  EXPECT_EQ((*by_number)[1].text, "chunk 2");
  auto state = store_->GetCollectionState(c->id);
  ASSERT_TRUE(state);
  EXPECT_EQ(state->version, store_->GetCollection(c->id)->version);
  EXPECT_EQ(state->generation, 1);
  EXPECT_EQ(store_->GetCollectionState("nope").error().code(), ErrorCode::kNotFound);
}

TEST_P(MetadataStoreContract, DeletingCascades) {
  auto c = store_->CreateCollection(Named("cascade"));
  auto f = store_->AddFile(FileIn(c->id, "h"));
  ASSERT_TRUE(store_->ReplaceFileChunks(f->first.id, 1, Chunks(3), FileOutcome{}));
  const auto v = store_->GetCollection(c->id)->version;
  ASSERT_TRUE(store_->DeleteFile(f->first.id));
  EXPECT_TRUE(store_->ListChunks(c->id, 1, 0, 100, false)->empty());
  EXPECT_GT(store_->GetCollection(c->id)->version, v);
  EXPECT_EQ(store_->DeleteFile(f->first.id).error().code(), ErrorCode::kNotFound);
  auto f2 = store_->AddFile(FileIn(c->id, "h2"));
  ASSERT_TRUE(store_->ReplaceFileChunks(f2->first.id, 1, Chunks(3), FileOutcome{}));
  ASSERT_TRUE(store_->DeleteCollection(c->id));
  EXPECT_EQ(store_->GetFile(f2->first.id).error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(store_->ListChunks(c->id, 1, 0, 100, false)->empty());
}

TEST_P(MetadataStoreContract, ReindexBuildsANewGenerationAndSwitchesAtomically) {
  auto c = store_->CreateCollection(Named("reindex"));
  auto f = store_->AddFile(FileIn(c->id, "h"));
  ASSERT_TRUE(store_->ReplaceFileChunks(f->first.id, 1, Chunks(3), FileOutcome{}));
  auto next = store_->BeginReindex(c->id, R"({"chunking":{"chunk_tokens":64}})");
  ASSERT_TRUE(next) << next.error().ToString();
  EXPECT_EQ(*next, 2);
  EXPECT_EQ(store_->BeginReindex(c->id, "{}").error().code(), ErrorCode::kConflict);
  auto during = store_->GetCollection(c->id);
  EXPECT_EQ(during->generation, 1);
  EXPECT_EQ(during->next_generation, 2);
  EXPECT_EQ(during->chunk_count, 3) << "searches still read the old generation";
  ASSERT_TRUE(store_->ReplaceFileChunks(f->first.id, 2, Chunks(5), FileOutcome{}));
  const auto v = during->version;
  ASSERT_TRUE(store_->FinishReindex(c->id, 2));
  auto after = store_->GetCollection(c->id);
  EXPECT_EQ(after->generation, 2);
  EXPECT_EQ(after->next_generation, 0);
  EXPECT_EQ(after->chunk_count, 5);
  EXPECT_GT(after->version, v);
  EXPECT_NE(after->settings_json.find("64"), std::string::npos);
  EXPECT_TRUE(store_->ListChunks(c->id, 1, 0, 100, false)->empty()) << "the old generation is gone";
  EXPECT_EQ(store_->FinishReindex(c->id, 2).error().code(), ErrorCode::kConflict);
  EXPECT_EQ(store_->BeginReindex("nope", "{}").error().code(), ErrorCode::kNotFound);

  // An abandoned reindex can be given up, and a new one started.
  auto third = store_->BeginReindex(c->id, "{}");
  ASSERT_TRUE(third);
  ASSERT_TRUE(store_->ReplaceFileChunks(f->first.id, *third, Chunks(2), FileOutcome{}));
  ASSERT_TRUE(store_->AbortReindex(c->id, *third));
  EXPECT_EQ(store_->GetCollection(c->id)->next_generation, 0);
  EXPECT_EQ(store_->GetCollection(c->id)->chunk_count, 5);
  EXPECT_TRUE(store_->ListChunks(c->id, *third, 0, 100, false)->empty());
  EXPECT_EQ(store_->AbortReindex(c->id, *third).error().code(), ErrorCode::kConflict);
  EXPECT_TRUE(store_->BeginReindex(c->id, "{}"));
}

TEST_P(MetadataStoreContract, StatusUpdates) {
  auto c = store_->CreateCollection(Named("status"));
  ASSERT_TRUE(store_->SetCollectionStatus(c->id, CollectionStatus::kProcessing));
  EXPECT_EQ(store_->GetCollection(c->id)->status, CollectionStatus::kProcessing);
  auto f = store_->AddFile(FileIn(c->id, "h"));
  ASSERT_TRUE(store_->SetFileStatus(f->first.id, FileStatus::kFailed, "unparsable"));
  auto got = store_->GetFile(f->first.id);
  EXPECT_EQ(got->status, FileStatus::kFailed);
  EXPECT_EQ(got->error, "unparsable");
  EXPECT_EQ(store_->SetFileStatus("nope", FileStatus::kFailed, "").error().code(), ErrorCode::kNotFound);
  auto g = store_->AddFile(FileIn(c->id, "h2"));
  auto failed = store_->ListFilesWithStatus({FileStatus::kFailed});
  ASSERT_EQ(failed->size(), 1u);
  EXPECT_EQ((*failed)[0].id, f->first.id);
  EXPECT_EQ(store_->ListFilesWithStatus({FileStatus::kQueued, FileStatus::kFailed})->size(), 2u);
  auto counts = store_->CountFilesByStatus(c->id);
  ASSERT_TRUE(counts);
  EXPECT_EQ((*counts)[FileStatus::kFailed], 1);
  EXPECT_EQ((*counts)[FileStatus::kQueued], 1);
  EXPECT_FALSE(counts->contains(FileStatus::kCompleted));
  EXPECT_TRUE(store_->Ping());
}

TEST_P(MetadataStoreContract, ConcurrentWritersDoNotLoseUpdates) {
  auto c = store_->CreateCollection(Named("concurrent"));
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        auto f = store_->AddFile(FileIn(c->id, "h" + std::to_string(t) + "-" + std::to_string(i)));
        if (!f || !store_->ReplaceFileChunks(f->first.id, 1, Chunks(2), FileOutcome{})) ++failures;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store_->ListFiles(c->id)->size(), 100u);
  EXPECT_EQ(store_->GetCollection(c->id)->chunk_count, 200);
}

}  // namespace
}  // namespace modulo::store
