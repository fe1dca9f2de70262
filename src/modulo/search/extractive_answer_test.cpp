#include "modulo/search/extractive_answer.h"

#include <gtest/gtest.h>

namespace modulo::search {
namespace {

TEST(SplitSentencesTest, SplitsOnSentenceEndsButNotAbbreviationsOrNumbers) {
  auto s = SplitSentences("Dr. Smith measured 3.14 units, e.g. in Fig. 2. The result held! Did it? \"Yes.\" Then ok.");
  ASSERT_EQ(s.size(), 5u) << s.size();
  EXPECT_EQ(s[0], "Dr. Smith measured 3.14 units, e.g. in Fig. 2.");
  EXPECT_EQ(s[1], "The result held!");
  EXPECT_EQ(s[2], "Did it?");
  EXPECT_EQ(s[3], "\"Yes.\"");
  EXPECT_EQ(s[4], "Then ok.");
  EXPECT_EQ(SplitSentences("# Title\n\nBody text here.").size(), 2u);
  EXPECT_TRUE(SplitSentences("   ").empty());
}

TEST(ExtractiveAnswerTest, PicksTheSentencesThatAnswerAndCitesTheirPassages) {
  index::Analyzer analyzer;
  const std::vector<std::string_view> passages = {
      "Sourdough is a bread. It is leavened by a starter of wild yeast and lactobacilli. Bake it hot.",
      "The Hohmann transfer moves a spacecraft between two circular orbits. It needs two engine burns.",
      "A starter must be fed flour and water daily to keep the yeast alive.",
  };
  auto a = ComposeExtractiveAnswer(analyzer, "What leavens sourdough? What is in a starter?", passages);
  EXPECT_TRUE(a.matched);
  EXPECT_NE(a.text.find("leavened by a starter of wild yeast and lactobacilli. [1]"), std::string::npos) << a.text;
  EXPECT_EQ(a.text.find("Hohmann"), std::string::npos) << "unrelated passages are not quoted";
  for (auto n : a.cited) EXPECT_TRUE(n == 1 || n == 3);
  // Every sentence in the answer is verbatim from the passage it cites.
  EXPECT_NE(a.text.find("[1]"), std::string::npos);
}

TEST(ExtractiveAnswerTest, SaysSoWhenNothingMatches) {
  index::Analyzer analyzer;
  auto a = ComposeExtractiveAnswer(analyzer, "quantum chromodynamics", {"Bread needs flour. Water too."});
  EXPECT_FALSE(a.matched);
  EXPECT_NE(a.text.find("No passage answers this directly"), std::string::npos);
  EXPECT_EQ(a.cited, std::vector<std::size_t>{1});
  EXPECT_TRUE(ComposeExtractiveAnswer(analyzer, "anything", {}).text.empty());
}

TEST(ExtractiveAnswerTest, StaysWithinItsBudgetAndSkipsRepeats) {
  index::Analyzer analyzer;
  const std::string longer(400, 'x');
  const std::string p1 = "Volcanoes erupt when magma rises. " + std::string("Magma is molten rock ") + longer + ".";
  const std::vector<std::string_view> passages = {p1, "Volcanoes erupt when magma rises.", "Magma rises; volcanoes erupt."};
  auto a = ComposeExtractiveAnswer(analyzer, "why do volcanoes erupt with magma", passages,
                                   {.passages = 3, .max_sentences = 3, .max_chars = 200});
  EXPECT_LE(a.text.size(), 200u + 3 * 4);
  EXPECT_EQ(a.text.find("Volcanoes erupt when magma rises. [1] Volcanoes erupt when magma rises."), std::string::npos)
      << "the same sentence twice: " << a.text;
}

}  // namespace
}  // namespace modulo::search
