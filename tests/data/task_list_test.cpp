#include "lorahub/data/task_list.h"

#include <gtest/gtest.h>

#include "support/errors.h"
#include "support/temp_dir.h"

namespace lorahub::data {
namespace {

using lorahub::test::error_text;
using lorahub::test::has_substr;

TEST(TaskList, CommentsBlanksAndWhitespace) {
  lorahub::test::TempDir dir;
  const std::string path =
      dir.write("jobs.txt",
                "# BBH subset\n\nnavigate\n  snarks  # sarcasm\r\n\t\n#web_of_lies\nword_sorting");
  EXPECT_EQ(read_task_list(path), (std::vector<std::string>{"navigate", "snarks", "word_sorting"}));
}

TEST(TaskList, Errors) {
  lorahub::test::TempDir dir;
  const std::string dup = dir.write("dup.txt", "a\nb\n\na # again\n");
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { read_task_list(dup); }),
                      dup + ": line 4: duplicate task \"a\" (first on line 1)");
  const std::string two = dir.write("two.txt", "a\nb c\n");
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { read_task_list(two); }),
                      two + ": line 2: expected one task name, got \"b c\"");
  const std::string empty = dir.write("empty.txt", "# nothing\n\n");
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { read_task_list(empty); }),
                      empty + ": no task names");
  const std::string bad = dir.write("bad.txt", "a\n\xFF\n");
  EXPECT_PRED_FORMAT2(has_substr, error_text([&] { read_task_list(bad); }),
                      bad + ": line 2, column 1");
  EXPECT_PRED_FORMAT2(has_substr,
                      error_text([&] { read_task_list((dir.path() / "none.txt").string()); }),
                      "cannot open");
}

}  // namespace
}  // namespace lorahub::data
