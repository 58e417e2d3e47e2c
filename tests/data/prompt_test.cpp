#include "lorahub/data/prompt.h"

#include <gtest/gtest.h>

namespace lorahub::data {
namespace {

TEST(Prompt, ZeroShotMatchesReferenceExample) {
  // The first learning example of the LoraHub reference's example.py, built from BBH
  // date_understanding.
  EXPECT_EQ(zero_shot_prompt("Infer the date from context.",
                             "Today is Sep 9, 1909. What is the date today in MM/DD/YYYY?"),
            "Infer the date from context.\n\nQ: Today is Sep 9, 1909. What is the date today in "
            "MM/DD/YYYY?\nA:");
  EXPECT_EQ(zero_shot_prompt("", "x"), "Q: x\nA:");
}

TEST(Prompt, FewShotPutsSolvedExamplesBeforeTheQuestion) {
  const std::vector<Example> shots = {{"x1", "y1"}, {"x2", "y2"}};
  EXPECT_EQ(few_shot_prompt("Desc.", shots, "x3"),
            "Desc.\n\nQ: x1\nA: y1\n\nQ: x2\nA: y2\n\nQ: x3\nA:");
  EXPECT_EQ(few_shot_prompt("", shots, "x3"), "Q: x1\nA: y1\n\nQ: x2\nA: y2\n\nQ: x3\nA:");
  EXPECT_EQ(few_shot_prompt("Desc.", {}, "x3"), zero_shot_prompt("Desc.", "x3"));
}

TEST(Prompt, ModesOverExamples) {
  const std::vector<Example> shots = {{"s", "t"}};
  const std::vector<Example> examples = {{"a", "(A)"}, {"b", "(B)"}};
  const auto zero = make_prompts(PromptMode::kZeroShot, "D", shots, examples);
  ASSERT_EQ(zero.size(), 2u);
  EXPECT_EQ(zero[1], (Example{"D\n\nQ: b\nA:", "(B)"}));
  const auto few = make_prompts(PromptMode::kFewShot, "D", shots, examples);
  EXPECT_EQ(few[0], (Example{"D\n\nQ: s\nA: t\n\nQ: a\nA:", "(A)"}));
  EXPECT_EQ(make_prompts(PromptMode::kInputOnly, "D", shots, examples), examples);
  EXPECT_EQ(make_prompt(PromptMode::kInputOnly, "D", shots, "Q: raw\nA:"), "Q: raw\nA:");
}

}  // namespace
}  // namespace lorahub::data
