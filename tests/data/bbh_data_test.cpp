// Checks against the public BIG-Bench-Hard files, read from $LORAHUB_BBH_DIR (never copied into
// the repository: the data carries a canary). ctest sets the variable from the CMake cache entry
// LORAHUB_BBH_DIR; without it every test here is skipped.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "lorahub/data/bbh.h"
#include "lorahub/data/prompt.h"
#include "lorahub/data/shots.h"

namespace lorahub::data {
namespace {

std::string bbh_dir() {
  const char* dir = std::getenv("LORAHUB_BBH_DIR");
  return dir ? dir : "";
}

#define REQUIRE_BBH_DIR()                                                                \
  if (bbh_dir().empty()) {                                                               \
    GTEST_SKIP() << "LORAHUB_BBH_DIR is not set (configure with -DLORAHUB_BBH_DIR=<dir " \
                    "holding the BIG-Bench-Hard <task>.json and <task>.txt files>)";     \
  }

// Test-set sizes of the LoraHub BBH evaluation: every task's examples beyond the first 100.
const std::map<std::string, std::size_t>& expected_test_sizes() {
  static const std::map<std::string, std::size_t> sizes = {
      {"boolean_expressions", 150},
      {"causal_judgement", 87},
      {"date_understanding", 150},
      {"disambiguation_qa", 150},
      {"dyck_languages", 150},
      {"formal_fallacies", 150},
      {"geometric_shapes", 150},
      {"hyperbaton", 150},
      {"logical_deduction_five_objects", 150},
      {"logical_deduction_seven_objects", 150},
      {"logical_deduction_three_objects", 150},
      {"movie_recommendation", 150},
      {"multistep_arithmetic_two", 150},
      {"navigate", 150},
      {"object_counting", 150},
      {"penguins_in_a_table", 46},
      {"reasoning_about_colored_objects", 150},
      {"ruin_names", 150},
      {"salient_translation_error_detection", 150},
      {"snarks", 78},
      {"sports_understanding", 150},
      {"temporal_sequences", 150},
      {"tracking_shuffled_objects_five_objects", 150},
      {"tracking_shuffled_objects_seven_objects", 150},
      {"tracking_shuffled_objects_three_objects", 150},
      {"web_of_lies", 150},
      {"word_sorting", 150},
  };
  return sizes;
}

TEST(BbhData, ListsThe27Tasks) {
  REQUIRE_BBH_DIR();
  std::vector<std::string> expected;
  for (const auto& [name, size] : expected_test_sizes()) expected.push_back(name);
  EXPECT_EQ(list_bbh_tasks(bbh_dir()), expected);
}

TEST(BbhData, SplitCountsOfEveryTask) {
  REQUIRE_BBH_DIR();
  std::size_t total_test = 0;
  for (const auto& [name, expected_test] : expected_test_sizes()) {
    SCOPED_TRACE(name);
    const BbhTask task = load_bbh_task(bbh_dir(), name);
    EXPECT_EQ(task.name, name);
    EXPECT_FALSE(task.description.empty());
    EXPECT_EQ(task.description.find('\n'), std::string::npos);
    EXPECT_EQ(task.examples.size(), kBbhPoolSize + expected_test);
    const BbhSplit split = split_bbh(task);
    EXPECT_EQ(split.pool.size(), 100u);
    EXPECT_EQ(split.test.size(), expected_test);
    ASSERT_FALSE(split.test.empty());
    EXPECT_EQ(split.pool.back(), task.examples[99]);
    EXPECT_EQ(split.test.front(), task.examples[100]);
    total_test += split.test.size();
  }
  EXPECT_EQ(total_test, 3811u);
}

TEST(BbhData, DescriptionsAreLineThreeOfThePrompt) {
  REQUIRE_BBH_DIR();
  EXPECT_EQ(load_bbh_task(bbh_dir(), "date_understanding").description,
            "Infer the date from context.");
  EXPECT_EQ(load_bbh_task(bbh_dir(), "word_sorting").description, "Sort a list of words.");
  EXPECT_EQ(load_bbh_task(bbh_dir(), "temporal_sequences").description,
            "Task description: Answer questions about which times certain events could have "
            "occurred.");
}

TEST(BbhData, FirstExampleAndZeroShotPrompt) {
  REQUIRE_BBH_DIR();
  const BbhTask task = load_bbh_task(bbh_dir(), "date_understanding");
  // Compare with an independent parse of the JSON file.
  std::ifstream in(bbh_dir() + "/date_understanding.json");
  const auto doc = nlohmann::json::parse(in);
  const auto& first = doc.at("examples").at(0);
  ASSERT_EQ(task.examples[0].input, first.at("input").get<std::string>());
  EXPECT_EQ(task.examples[0].target, "(B)");
  EXPECT_EQ(zero_shot_prompt(task.description, task.examples[0].input),
            "Infer the date from context.\n\nQ: Today is Christmas Eve of 1937. What is the date "
            "tomorrow in MM/DD/YYYY?\nOptions:\n(A) 12/11/1937\n(B) 12/25/1937\n(C) 01/04/1938\n"
            "(D) 12/04/1937\n(E) 12/25/2006\n(F) 07/25/1937\nA:");
  EXPECT_EQ(split_bbh(task, 5).test.size(), 5u);
}

TEST(BbhData, ReferenceShotsComeFromThePool) {
  REQUIRE_BBH_DIR();
  std::ifstream in(LORAHUB_TEST_FIXTURES "/sampling/cpython-random.json");
  const auto order = nlohmann::json::parse(in).at("shuffle").at(0).at("result");
  const BbhSplit split = split_bbh(load_bbh_task(bbh_dir(), "navigate"));
  const auto shots = pick_shots(split.pool, 5, 42, Sampler::kCpython);
  ASSERT_EQ(shots.size(), 5u);
  for (std::size_t i = 0; i < shots.size(); ++i) {
    EXPECT_EQ(shots[i], split.pool[order.at(i).get<std::size_t>()]) << i;
  }
}

}  // namespace
}  // namespace lorahub::data
