#include "modulo/ingest/chunker.h"

#include <gtest/gtest.h>

#include <set>

namespace modulo::ingest {
namespace {

// One token per whitespace-separated word: easy to reason about in tests.
class WordTokens final : public TokenSpans {
 public:
  std::vector<std::pair<std::uint32_t, std::uint32_t>> Spans(std::string_view t) const override {
    std::vector<std::pair<std::uint32_t, std::uint32_t>> out;
    std::size_t i = 0;
    while (i < t.size()) {
      while (i < t.size() && std::isspace(static_cast<unsigned char>(t[i]))) ++i;
      std::size_t j = i;
      while (j < t.size() && !std::isspace(static_cast<unsigned char>(t[j]))) ++j;
      if (j > i) out.emplace_back(static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(j));
      i = j;
    }
    return out;
  }
};

parse::Block Para(std::string text, int page = 1, std::vector<std::string> path = {}) {
  parse::Block b;
  b.text = std::move(text);
  b.page = page;
  b.section_path = std::move(path);
  return b;
}

parse::Block Heading(std::string text, std::vector<std::string> parents = {}) {
  parse::Block b;
  b.kind = parse::BlockKind::kHeading;
  b.text = std::move(text);
  b.section_path = std::move(parents);
  b.heading_level = static_cast<int>(b.section_path.size()) + 1;
  return b;
}

std::string Sentence(int i, int words) {
  std::string s = "S" + std::to_string(i);
  for (int w = 2; w < words; ++w) s += " w";
  return s + " done.";
}

ChunkingSettings Settings(std::string strategy, int chunk, int overlap) {
  nlohmann::json j = {{"strategy", strategy}, {"chunk_tokens", chunk}, {"overlap_tokens", overlap}};
  return *ChunkingSettings::FromJson(j, 256);
}

TEST(SentenceSplitTest, KeepsAbbreviationsDecimalsAndInitials) {
  const std::string t = "Dr. Smith paid $3.50 for it. J. R. R. Tolkien wrote e.g. books! Did he? Yes.\nNext line";
  std::vector<std::string> got;
  for (auto [s, e] : SplitSentences(t)) got.push_back(t.substr(s, e - s));
  ASSERT_EQ(got.size(), 5u) << ::testing::PrintToString(got);
  EXPECT_EQ(got[0], "Dr. Smith paid $3.50 for it.");
  EXPECT_EQ(got[1], "J. R. R. Tolkien wrote e.g. books!");
  EXPECT_EQ(got[2], "Did he?");
  EXPECT_EQ(got[4], "Next line");
  auto cjk = SplitSentences("今天很好。明天呢？");
  EXPECT_EQ(cjk.size(), 2u);
}

TEST(ChunkerTest, SentencePackingRespectsTheBudgetAndOverlaps) {
  parse::ParsedDocument doc;
  std::string para;
  for (int i = 0; i < 20; ++i) para += Sentence(i, 10) + " ";
  doc.blocks.push_back(Para(para, 3));
  auto chunks = ChunkDocument(doc, Settings("sentence", 50, 10), WordTokens());
  ASSERT_TRUE(chunks);
  ASSERT_GE(chunks->size(), 5u);
  for (const auto& c : *chunks) {
    EXPECT_LE(c.token_count, 50);
    EXPECT_EQ(c.page, 3);
    EXPECT_EQ(doc.blocks[0].text.substr(static_cast<std::size_t>(c.char_start), c.text.size()), c.text);
  }
  // Consecutive chunks share one trailing sentence (10 tokens fit the 10-token overlap).
  EXPECT_NE((*chunks)[1].text.find((*chunks)[0].text.substr((*chunks)[0].text.rfind("S"))), std::string::npos);
  // Every sentence is in some chunk.
  for (int i = 0; i < 20; ++i) {
    bool found = false;
    for (const auto& c : *chunks) found = found || c.text.find("S" + std::to_string(i) + " ") != std::string::npos;
    EXPECT_TRUE(found) << i;
  }
}

TEST(ChunkerTest, ChunksNeverCrossSections) {
  parse::ParsedDocument doc;
  doc.blocks.push_back(Heading("Intro"));
  doc.blocks.push_back(Para("Alpha one. Alpha two.", 1, {"Intro"}));
  doc.blocks.push_back(Heading("Methods"));
  doc.blocks.push_back(Heading("Setup", {"Methods"}));
  doc.blocks.push_back(Para("Beta one. Beta two.", 2, {"Methods", "Setup"}));
  auto chunks = ChunkDocument(doc, Settings("sentence", 200, 0), WordTokens());
  ASSERT_TRUE(chunks);
  std::set<std::string> sections;
  for (const auto& c : *chunks) {
    sections.insert(c.section_path);
    EXPECT_FALSE(c.text.find("Alpha") != std::string::npos && c.text.find("Beta") != std::string::npos);
  }
  EXPECT_TRUE(sections.contains("Intro"));
  EXPECT_TRUE(sections.contains("Methods > Setup"));
  const auto& last = chunks->back();
  EXPECT_EQ(last.page, 2);
  EXPECT_NE(last.text.find("Beta two."), std::string::npos);
}

TEST(ChunkerTest, OversizeSentencesAreCutIntoWindows) {
  parse::ParsedDocument doc;
  doc.blocks.push_back(Para(Sentence(0, 130)));
  auto chunks = ChunkDocument(doc, Settings("sentence", 50, 5), WordTokens());
  ASSERT_TRUE(chunks);
  ASSERT_GE(chunks->size(), 3u);
  for (const auto& c : *chunks) EXPECT_LE(c.token_count, 50);
}

TEST(ChunkerTest, FixedWindowsOverlapByTheSetting) {
  parse::ParsedDocument doc;
  std::string words;
  for (int i = 0; i < 100; ++i) words += "t" + std::to_string(i) + " ";
  doc.blocks.push_back(Para(words));
  auto chunks = ChunkDocument(doc, Settings("fixed", 40, 10), WordTokens());
  ASSERT_TRUE(chunks);
  ASSERT_EQ(chunks->size(), 3u);  // starts at 0, 30, 60
  EXPECT_EQ((*chunks)[1].text.substr(0, 4), "t30 ");
  EXPECT_EQ((*chunks)[0].token_count, 40);
  EXPECT_EQ(chunks->back().text.substr(chunks->back().text.size() - 3), "t99");
}

TEST(ChunkerTest, SemanticBreaksWhereSimilarityDrops) {
  parse::ParsedDocument doc;
  doc.blocks.push_back(Para("Cats purr. Cats nap. Cats hunt. Stocks fell. Stocks rose. Stocks crashed."));
  SentenceEmbedder embed = [](std::span<const std::string> texts) -> Result<std::vector<std::vector<float>>> {
    std::vector<std::vector<float>> out;
    for (const auto& t : texts) out.push_back(t.rfind("Cats", 0) == 0 ? std::vector<float>{1, 0} : std::vector<float>{0, 1});
    return out;
  };
  nlohmann::json j = {{"strategy", "semantic"}, {"chunk_tokens", 100}, {"overlap_tokens", 0},
                      {"semantic_percentile", 0.1}};
  auto chunks = ChunkDocument(doc, *ChunkingSettings::FromJson(j, 256), WordTokens(), embed);
  ASSERT_TRUE(chunks);
  ASSERT_EQ(chunks->size(), 2u);
  EXPECT_EQ((*chunks)[0].text, "Cats purr. Cats nap. Cats hunt.");
  EXPECT_EQ((*chunks)[1].text, "Stocks fell. Stocks rose. Stocks crashed.");
}

TEST(ChunkerTest, HierarchicalParentsHoldTheirChildren) {
  parse::ParsedDocument doc;
  std::string para;
  for (int i = 0; i < 12; ++i) para += Sentence(i, 10) + " ";
  doc.blocks.push_back(Para(para));
  nlohmann::json j = {{"strategy", "hierarchical"}, {"chunk_tokens", 20}, {"overlap_tokens", 0}, {"parent_tokens", 60}};
  auto chunks = ChunkDocument(doc, *ChunkingSettings::FromJson(j, 256), WordTokens());
  ASSERT_TRUE(chunks);
  int parents = 0, children = 0;
  for (const auto& c : *chunks) {
    if (c.is_parent) {
      ++parents;
      EXPECT_LE(c.token_count, 60);
      EXPECT_FALSE(c.parent_number);
    } else {
      ++children;
      ASSERT_TRUE(c.parent_number);
      const auto& p = (*chunks)[static_cast<std::size_t>(*c.parent_number)];
      EXPECT_TRUE(p.is_parent);
      EXPECT_GE(c.char_start, p.char_start);
      EXPECT_LE(c.char_end, p.char_end);
    }
  }
  EXPECT_EQ(parents, 2);
  EXPECT_EQ(children, 6);
}

TEST(ChunkerTest, SettingsAreValidatedAgainstTheModel) {
  EXPECT_FALSE(ChunkingSettings::FromJson({{"chunk_tokens", 1000}}, 256));
  EXPECT_FALSE(ChunkingSettings::FromJson({{"strategy", "magic"}}, 256));
  EXPECT_FALSE(ChunkingSettings::FromJson({{"overlap_tokens", 300}}, 256));
  // At most half the chunk: 255 of 256 would make every token start a chunk.
  EXPECT_FALSE(ChunkingSettings::FromJson({{"chunk_tokens", 256}, {"overlap_tokens", 129}}, 512));
  EXPECT_TRUE(ChunkingSettings::FromJson({{"chunk_tokens", 256}, {"overlap_tokens", 128}}, 512));
  EXPECT_FALSE(ChunkingSettings::FromJson({{"chunk_size", 10}}, 256));
  auto d = ChunkingSettings::FromJson(nullptr, 256);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->strategy, "sentence");
  EXPECT_EQ(ChunkingSettings::FromJson(d->ToJson(), 256)->chunk_tokens, d->chunk_tokens);
}

TEST(ChunkerTest, EmptyDocumentsGiveNoChunks) {
  parse::ParsedDocument doc;
  auto chunks = ChunkDocument(doc, ChunkingSettings{}, WordTokens());
  ASSERT_TRUE(chunks);
  EXPECT_TRUE(chunks->empty());
}

}  // namespace
}  // namespace modulo::ingest
