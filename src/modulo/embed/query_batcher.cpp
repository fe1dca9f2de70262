#include "modulo/embed/query_batcher.h"

#include <algorithm>

namespace modulo::embed {

QueryBatcher::QueryBatcher(std::shared_ptr<Embedder> embedder, ThreadPool& pool, QueryBatcherOptions options,
                           std::shared_ptr<EmbeddingCache> cache)
    : embedder_(std::move(embedder)), pool_(pool), options_(options), cache_(std::move(cache)) {
  if (options_.max_batch == 0) options_.max_batch = 1;
  if (options_.max_concurrent == 0) options_.max_concurrent = std::max<std::size_t>(1, pool_.size());
  dispatcher_ = std::thread([this] { DispatchLoop(); });
}

QueryBatcher::~QueryBatcher() {
  std::deque<Request> left;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    left.swap(queue_);
  }
  cv_.notify_all();
  dispatcher_.join();
  for (auto& r : left) r.done(Fail(Error::Cancelled("embedding service shutting down")));
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return in_flight_ == 0; });
}

void QueryBatcher::Submit(std::string text, InputKind kind, Callback done) {
  if (cache_) {
    if (auto hit = cache_->Get(EmbeddingCache::MakeKey(embedder_->info().name, kind, text))) {
      done(std::move(hit->first));
      return;
    }
  }
  {
    std::lock_guard lock(mu_);
    if (!stop_) {
      queue_.push_back({std::move(text), kind, std::move(done), std::chrono::steady_clock::now()});
      cv_.notify_one();
      return;
    }
  }
  done(Fail(Error::Cancelled("embedding service shutting down")));
}

std::future<Result<std::vector<float>>> QueryBatcher::Submit(std::string text, InputKind kind) {
  auto promise = std::make_shared<std::promise<Result<std::vector<float>>>>();
  auto future = promise->get_future();
  Submit(std::move(text), kind, [promise](Result<std::vector<float>> r) { promise->set_value(std::move(r)); });
  return future;
}

std::pair<std::uint64_t, std::uint64_t> QueryBatcher::batch_stats() const {
  std::lock_guard lock(mu_);
  return {batches_, batched_requests_};
}

void QueryBatcher::DispatchLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    // A batch leaves as soon as a slot is free: requests that arrive while every slot is busy
    // form the next batch, so batches grow with the load and a lone request never waits.
    cv_.wait(lock, [&] { return stop_ || (!queue_.empty() && in_flight_ < options_.max_concurrent); });
    if (stop_) return;
    if (options_.max_wait.count() > 0) {
      // Optionally wait for company until the oldest request's deadline or a full batch.
      const auto deadline = queue_.front().arrived + options_.max_wait;
      cv_.wait_until(lock, deadline, [&] { return stop_ || queue_.size() >= options_.max_batch; });
      if (stop_) return;
    }
    std::vector<Request> batch;
    while (!queue_.empty() && batch.size() < options_.max_batch) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    ++in_flight_;
    ++batches_;
    batched_requests_ += batch.size();
    lock.unlock();
    boost::asio::post(pool_.executor(), [this, b = std::move(batch)]() mutable { RunBatch(std::move(b)); });
    lock.lock();
  }
}

void QueryBatcher::RunBatch(std::vector<Request> batch) {
  // Queries and passages may differ in prefix: one Embed call per kind present.
  for (InputKind kind : {InputKind::kQuery, InputKind::kPassage}) {
    std::vector<std::string> texts;
    std::vector<Request*> reqs;
    for (auto& r : batch) {
      if (r.kind == kind) {
        texts.push_back(std::move(r.text));
        reqs.push_back(&r);
      }
    }
    if (reqs.empty()) continue;
    Result<Embeddings> result = Fail(Error::Internal("embedding failed"));
    try {
      result = embedder_->Embed(texts, kind);
    } catch (const std::exception& e) {
      result = Fail(Error::Internal(std::string("embedding failed: ") + e.what()));
    }
    for (std::size_t i = 0; i < reqs.size(); ++i) {
      if (!result) {
        reqs[i]->done(Fail(result.error()));
        continue;
      }
      const auto row = result->Row(i);
      if (cache_) {
        cache_->Put(EmbeddingCache::MakeKey(embedder_->info().name, kind, texts[i]), row,
                    result->token_counts.empty() ? 0 : result->token_counts[i]);
      }
      reqs[i]->done(std::vector<float>(row.begin(), row.end()));
    }
  }
  {
    std::lock_guard lock(mu_);
    if (--in_flight_ == 0) idle_cv_.notify_all();
  }
  cv_.notify_all();  // a slot is free
}

}  // namespace modulo::embed
