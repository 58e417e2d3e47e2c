// BBH loading and splitting on small synthetic directories (the real data: bbh_data_test.cpp).
#include <gtest/gtest.h>

#include <string>

#include "support/errors.h"
#include "support/temp_dir.h"
#include "lorahub/data/bbh.h"

namespace lorahub::data {
namespace {

using lorahub::test::error_text;
using lorahub::test::has_substr;

std::string bbh_json(std::size_t n) {
  std::string s = "{\"canary\": \"c\", \"examples\": [";
  for (std::size_t i = 0; i < n; ++i) {
    s += (i ? ", " : "") + ("{\"input\": \"q" + std::to_string(i) + "\", \"target\": \"a" +
                            std::to_string(i) + "\"}");
  }
  return s + "]}";
}

std::string jsonl(std::size_t first, std::size_t n, const std::string& prefix) {
  std::string s;
  for (std::size_t i = first; i < first + n; ++i) {
    s += "{\"context\": \"" + prefix + "q" + std::to_string(i) + "\", \"completion\": \"a" +
         std::to_string(i) + "\"}\n";
  }
  return s;
}

const char* const kPrompt = "CANARY\n-----\nDo the task.\n\nQ: ...\nA: ...\n";

TEST(BbhOriginal, LoadListAndSplit) {
  lorahub::test::TempDir dir;
  dir.write("alpha.json", bbh_json(130));
  dir.write("alpha.txt", kPrompt);
  dir.write("beta.json", bbh_json(101));
  dir.write("beta.txt", "CANARY\r\n-----\r\nWindows lines.\r\n");
  dir.write("README.md", "not a task");
  const std::string root = dir.path().string();
  EXPECT_EQ(list_bbh_tasks(root), (std::vector<std::string>{"alpha", "beta"}));

  const BbhTask alpha = load_bbh_task(root, "alpha");
  EXPECT_EQ(alpha.name, "alpha");
  EXPECT_EQ(alpha.description, "Do the task.");
  EXPECT_EQ(alpha.layout, BbhLayout::kOriginal);
  ASSERT_EQ(alpha.examples.size(), 130u);
  const BbhSplit split = split_bbh(alpha);
  ASSERT_EQ(split.pool.size(), 100u);
  ASSERT_EQ(split.test.size(), 30u);
  EXPECT_EQ(split.pool.front().input, "q0");
  EXPECT_EQ(split.pool.back().input, "q99");
  EXPECT_EQ(split.test.front().input, "q100");
  EXPECT_EQ(split.test.back().target, "a129");
  const BbhSplit capped = split_bbh(alpha, 7);
  ASSERT_EQ(capped.test.size(), 7u);
  EXPECT_EQ(capped.test.back().input, "q106");
  EXPECT_EQ(split_bbh(alpha, 1000).test.size(), 30u);

  EXPECT_EQ(load_bbh_task(root, "beta").description, "Windows lines.");
  EXPECT_EQ(split_bbh(load_bbh_task(root, "beta")).test.size(), 1u);
}

TEST(BbhOriginal, Errors) {
  lorahub::test::TempDir dir;
  const std::string root = dir.path().string();
  dir.write("small.json", bbh_json(100));
  dir.write("small.txt", kPrompt);
  const BbhTask small = load_bbh_task(root, "small");
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { split_bbh(small); }),
                      "BBH task 'small' has 100 examples, no more than its pool of 100");
  dir.write("ok.json", bbh_json(120));
  dir.write("ok.txt", kPrompt);
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { split_bbh(load_bbh_task(root, "ok"), 0); }),
                      "max_test must be at least 1");

  dir.write("noprompt.json", bbh_json(120));
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { load_bbh_task(root, "noprompt"); }),
                      "BBH task 'noprompt': missing prompt file " + root + "/noprompt.txt");
  dir.write("nodesc.json", bbh_json(120));
  dir.write("nodesc.txt", "CANARY\n-----\n");
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { load_bbh_task(root, "nodesc"); }),
                      "BBH task 'nodesc': " + root + "/nodesc.txt: line 3");
  dir.write("nosep.json", bbh_json(120));
  dir.write("nosep.txt", "CANARY\nDescription on line 2\n");
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { load_bbh_task(root, "nosep"); }),
                      "nosep.txt: line 2 must be \"-----\"");
  dir.write("broken.json", "{\"examples\": [{\"input\": \"q\"}]}");
  dir.write("broken.txt", kPrompt);
  EXPECT_PRED_FORMAT2(
      has_substr, error_text([&] { load_bbh_task(root, "broken"); }),
      "BBH task 'broken': " + root + "/broken.json: examples[0]: missing field \"target\"");
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { load_bbh_task(root, "nope"); }),
                      "BBH task 'nope' not found");
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { load_bbh_task(root, "../etc"); }),
                      "invalid BBH task name '../etc'");
}

TEST(BbhDirectory, Errors) {
  lorahub::test::TempDir dir;
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { list_bbh_tasks(dir.path().string()); }),
                      "holds no task");
  EXPECT_PRED_FORMAT2(has_substr,
                      error_text([&] { list_bbh_tasks((dir.path() / "none").string()); }),
                      "is not a directory");
}

TEST(BbhReference, PoolFromExampleJsonlTestFromZeroShot) {
  lorahub::test::TempDir dir;
  dir.write("gamma/example.jsonl", jsonl(0, 100, "Desc.\\n\\nQ: "));
  dir.write("gamma/zero_shot.jsonl", jsonl(100, 40, "Desc.\\n\\nQ: "));
  dir.write("gamma/few_shot.jsonl", jsonl(100, 40, "Five shots...\\n\\nQ: "));
  dir.write("delta/example.jsonl", jsonl(0, 3, ""));
  dir.write("delta/zero_shot.jsonl", jsonl(3, 2, ""));
  dir.write("notes/readme.txt", "not a task");
  const std::string root = dir.path().string();
  EXPECT_EQ(list_bbh_tasks(root), (std::vector<std::string>{"delta", "gamma"}));

  const BbhTask gamma = load_bbh_task(root, "gamma");
  EXPECT_EQ(gamma.layout, BbhLayout::kReference);
  EXPECT_TRUE(gamma.description.empty());
  EXPECT_EQ(gamma.pool_size, 100u);
  ASSERT_EQ(gamma.examples.size(), 140u);
  ASSERT_EQ(gamma.reference_few_shot.size(), 40u);
  EXPECT_EQ(gamma.reference_few_shot[0].input, "Five shots...\n\nQ: q100");
  const BbhSplit split = split_bbh(gamma, 10);
  ASSERT_EQ(split.pool.size(), 100u);
  ASSERT_EQ(split.test.size(), 10u);
  EXPECT_EQ(split.test[0], (Example{"Desc.\n\nQ: q100", "a100"}));

  const BbhTask delta = load_bbh_task(root, "delta");
  EXPECT_EQ(delta.pool_size, 3u);
  EXPECT_TRUE(delta.reference_few_shot.empty());
  EXPECT_EQ(split_bbh(delta).test.size(), 2u);
}

TEST(BbhReference, Errors) {
  lorahub::test::TempDir dir;
  const std::string root = dir.path().string();
  dir.write("nopool/zero_shot.jsonl", jsonl(0, 2, ""));
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { load_bbh_task(root, "nopool"); }),
                      "BBH task 'nopool': missing file " + root + "/nopool/example.jsonl");
  dir.write("short/example.jsonl", jsonl(0, 2, ""));
  dir.write("short/zero_shot.jsonl", jsonl(2, 3, ""));
  dir.write("short/few_shot.jsonl", jsonl(2, 2, ""));
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { load_bbh_task(root, "short"); }),
                      "few_shot.jsonl has 2 examples but zero_shot.jsonl has 3");
  dir.write("diff/example.jsonl", jsonl(0, 2, ""));
  dir.write("diff/zero_shot.jsonl", jsonl(2, 2, ""));
  dir.write("diff/few_shot.jsonl", jsonl(2, 1, "") + jsonl(9, 1, ""));
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { load_bbh_task(root, "diff"); }),
                      "few_shot.jsonl line 2 has target \"a9\" but zero_shot.jsonl has \"a3\"");
}

}  // namespace
}  // namespace lorahub::data
