#include "modulo/index/bm25/analyzer.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace modulo::index {
namespace {

using Terms = std::vector<std::string>;

Terms Tok(std::string_view text, AnalyzerOptions options = {}) {
  return Analyzer(std::move(options)).Analyze(text);
}

TEST(AnalyzerTest, LowercasesDropsStopWordsAndStems) {
  EXPECT_EQ(Tok("The Quick Brown Foxes are jumping"), (Terms{"quick", "brown", "fox", "jump"}));
  EXPECT_EQ(Tok("running runs run"), (Terms{"run", "run", "run"}));
  EXPECT_EQ(Tok("connection connected connecting"), (Terms{"connect", "connect", "connect"}));
}

TEST(AnalyzerTest, StopWordsAreLuceneEnglishSet) {
  EXPECT_EQ(EnglishStopWords().size(), 33u);
  for (std::string_view w : {"a", "an", "and", "the", "of", "with", "will", "such", "there", "these", "their"}) {
    EXPECT_TRUE(IsEnglishStopWord(w)) << w;
  }
  for (std::string_view w : {"he", "she", "we", "what", "you", "cell", ""}) EXPECT_FALSE(IsEnglishStopWord(w)) << w;
  EXPECT_TRUE(Tok("to be or not to be, that is the question: the AND of IT").size() == 1u);
  AnalyzerOptions keep;
  keep.remove_stop_words = false;
  EXPECT_EQ(Tok("the cat", keep), (Terms{"the", "cat"}));
}

TEST(AnalyzerTest, OptionsTurnStemmingOffOrPickPorter) {
  AnalyzerOptions none;
  none.stemmer = "";
  EXPECT_EQ(Tok("running generously", none), (Terms{"running", "generously"}));
  AnalyzerOptions porter;
  porter.stemmer = "porter";
  EXPECT_EQ(Tok("running generously", porter), (Terms{"run", "gener"}));
  EXPECT_EQ(Tok("running generously"), (Terms{"run", "generous"}));  // Porter2
  EXPECT_TRUE(IsKnownStemmer("english"));
  EXPECT_TRUE(IsKnownStemmer("porter"));
  EXPECT_TRUE(IsKnownStemmer(""));
  EXPECT_FALSE(IsKnownStemmer("klingon"));
  AnalyzerOptions unknown;
  unknown.stemmer = "klingon";
  EXPECT_EQ(Tok("running", unknown), (Terms{"running"}));
}

TEST(AnalyzerTest, FoldsCaseAccentsAndCompatibilityForms) {
  EXPECT_EQ(Tok("Café CRÈME Ångström"), Tok("cafe creme angstrom"));
  EXPECT_EQ(Tok("Café"), (Terms{"cafe"}));
  EXPECT_EQ(Tok("\xef\xac\x81nancial"), Tok("financial"));              // "ﬁ" ligature
  EXPECT_EQ(Tok("ＡＢＣ１２３"), (Terms{"abc123"}));                    // full width
  EXPECT_EQ(Tok("Straße"), Tok("strasse"));                             // ß -> ss
  EXPECT_EQ(Tok("e\xcc\x81t\xc3\xa9"), Tok("ete"));                     // decomposed and composed é
  EXPECT_EQ(Tok("Αθήνα ΜΙΚΡΌ"), (Terms{"αθηνα", "μικρο"}));             // Greek: accents folded too
  EXPECT_EQ(Tok("Привет МИР ёлка"), (Terms{"привет", "мир", "елка"}));  // Cyrillic, not stemmed
}

TEST(AnalyzerTest, SplitsOnNonAlphanumericAndKeepsNumbers) {
  EXPECT_EQ(Tok("IL-6 covid19 x_y a/b"), (Terms{"il", "6", "covid19", "x", "y", "b"}));
  EXPECT_EQ(Tok("pi is 3.14, about 1,000 in 2021."), (Terms{"pi", "3.14", "about", "1,000", "2021"}));
  EXPECT_EQ(Tok("end.Next word,word"), (Terms{"end", "next", "word", "word"}));
  EXPECT_EQ(Tok("x²"), (Terms{"x2"}));
}

TEST(AnalyzerTest, HandlesApostrophesAndPossessives) {
  EXPECT_EQ(Tok("John's book"), (Terms{"john", "book"}));
  EXPECT_EQ(Tok("John\xe2\x80\x99s book"), (Terms{"john", "book"}));  // right single quotation mark
  EXPECT_EQ(Tok("don't"), (Terms{"dont"}));
  EXPECT_EQ(Tok("'quoted' students' it's"), (Terms{"quot", "student"}));
}

TEST(AnalyzerTest, CjkRunsBecomeBigrams) {
  EXPECT_EQ(Tok("東京都"), (Terms{"東京", "京都"}));
  EXPECT_EQ(Tok("猫"), (Terms{"猫"}));
  EXPECT_EQ(Tok("日本語abc"), (Terms{"日本", "本語", "abc"}));
  EXPECT_EQ(Tok("ひらがな"), (Terms{"ひら", "らが", "がな"}));  // dakuten recomposed
  AnalyzerOptions uni;
  uni.cjk_unigrams = true;
  EXPECT_EQ(Tok("東京都", uni), (Terms{"東", "東京", "京", "京都", "都"}));
  EXPECT_EQ(Tok("한국어 텍스트"), (Terms{"한국어", "텍스트"}));  // Hangul: words, syllables kept
  EXPECT_FALSE(Tok("हिन्दी भाषा").empty());
  EXPECT_EQ(Tok("हिन्दी भाषा").size(), 2u);
}

TEST(AnalyzerTest, DropsOverlongTokens) {
  const std::string ok(64, 'q');
  const std::string too_long(65, 'q');
  EXPECT_EQ(Tok(ok).size(), 1u);
  EXPECT_EQ(Tok(too_long + " word"), (Terms{"word"}));
  AnalyzerOptions small;
  small.max_token_chars = 3;
  EXPECT_EQ(Tok("cat horse", small), (Terms{"cat"}));
}

TEST(AnalyzerTest, ToleratesInvalidUtf8AndInvisibleCharacters) {
  EXPECT_EQ(Tok("ab\xff"
                "cd"),
            (Terms{"ab", "cd"}));
  EXPECT_EQ(Tok("\xc3"), Terms{});
  EXPECT_EQ(Tok("x\xed\xa0\x80y"), (Terms{"x", "y"}));  // encoded surrogate
  EXPECT_EQ(Tok("\xf4\x90\x80\x80z"), (Terms{"z"}));    // beyond U+10FFFF
  EXPECT_EQ(Tok(std::string("nul\0byte", 8)), (Terms{"nul", "byte"}));
  EXPECT_EQ(Tok("hyphen\xc2\xad"
                "ation"),
            Tok("hyphenation"));  // soft hyphen ignored
  EXPECT_EQ(Tok("zero\xe2\x80\x8bwidth"), (Terms{"zero", "width"}));
  std::string noise;
  for (int i = 0; i < 4096; ++i) noise.push_back(static_cast<char>((i * 131 + 7) & 0xFF));
  (void)Tok(noise);  // must not crash
  EXPECT_TRUE(Tok("").empty());
}

TEST(AnalyzerTest, IsSafeFromManyThreads) {
  const Analyzer analyzer;
  const std::string text = "The runners were running through Zürich's 東京都 streets in 2021";
  const Terms expected = analyzer.Analyze(text);
  ASSERT_FALSE(expected.empty());
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        if (analyzer.Analyze(text) != expected) ++mismatches[static_cast<std::size_t>(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

TEST(AnalyzerTest, AppendsToOutput) {
  const Analyzer analyzer;
  std::vector<std::string> out = {"keep"};
  analyzer.Analyze("cats", out);
  EXPECT_EQ(out, (Terms{"keep", "cat"}));
}

}  // namespace
}  // namespace modulo::index
