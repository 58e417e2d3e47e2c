// report: the summary of a results file built with ResultStore: rows, columns, cell statistics, missing,
// failed, incomplete and unevaluated runs, averages (the fixture: report_support.h; formats: report_formats_test.cpp).
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <hdf5.h>
#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/io/result_store.h"
#include "lorahub/report/render.h"
#include "lorahub/report/summary.h"
#include "report/text.h"
#include "support/errors.h"
#include "support/temp_dir.h"

#include "report/report_support.h"

namespace lorahub::report {
namespace {
using namespace report_test;
// The summary.

TEST_F(ReportTest, RowsFollowTheJobThenExtraTasksAndColumnsThePapersOrder) {
  EXPECT_EQ(summary_.tasks, expected_.tasks);
  EXPECT_EQ(summary_.methods, kColumnOrder);
  EXPECT_TRUE(summary_.has_plan);
  EXPECT_EQ(summary_.plan_problem, "");
  ASSERT_EQ(summary_.cells.size(), expected_.tasks.size() * kColumnOrder.size());
  EXPECT_EQ(summary_.file_attrs.at("cluster"), "test");
  EXPECT_EQ(summary_.file_attrs.count("job_config"), 0u);
  EXPECT_EQ(summary_.unplanned_tasks, std::vector<std::string>{kExtraTask});
}

TEST_F(ReportTest, CellStatisticsMatchTheStoredAccuracies) {
  for (std::size_t t = 0; t < expected_.tasks.size(); ++t) {
    for (const auto& m : kColumnOrder) {
      const Cell& c = summary_.cell(t, method_col(m));
      SCOPED_TRACE(expected_.tasks[t] + " / " + m);
      EXPECT_EQ(c.task, expected_.tasks[t]);
      EXPECT_EQ(c.method, m);
      EXPECT_EQ(c.seeds, expected_.seeds_of(t, m));
      const double mean = expected_.mean(t, m);
      if (std::isnan(mean)) {
        EXPECT_FALSE(c.has_value());
        EXPECT_TRUE(std::isnan(c.mean));
        continue;
      }
      EXPECT_NEAR(c.mean, mean, 1e-12);
      EXPECT_DOUBLE_EQ(c.best, expected_.best(t, m));
      EXPECT_NEAR(c.tokens_per_example, tokens_of(t, m), 1e-12);
      double learn = 0;
      for (auto s : c.seeds) learn += learn_seconds_of(t, s);
      EXPECT_NEAR(c.learn_seconds, learn / static_cast<double>(c.seeds.size()), 1e-12);
      EXPECT_DOUBLE_EQ(c.eval_seconds, 2.5);
    }
  }
  // Sample standard deviation over the three lorahub seeds of the first task, by hand.
  const Cell& lh = summary_.cell(0, method_col("lorahub"));
  std::vector<double> a = {accuracy_of(0, "lorahub", 1), accuracy_of(0, "lorahub", 2), accuracy_of(0, "lorahub", 3)};
  double m = (a[0] + a[1] + a[2]) / 3;
  double var = ((a[0] - m) * (a[0] - m) + (a[1] - m) * (a[1] - m) + (a[2] - m) * (a[2] - m)) / 2;
  EXPECT_NEAR(lh.stdev, std::sqrt(var), 1e-12);
  EXPECT_DOUBLE_EQ(lh.min, *std::min_element(a.begin(), a.end()));
  EXPECT_TRUE(std::isnan(summary_.cell(0, method_col("zero-shot")).stdev));  // one seed

  const Cell& single = summary_.cell(0, method_col("lora-single"));
  EXPECT_EQ(single.best_module, "module_b");
  ASSERT_EQ(single.module_accuracies.size(), 3u);
  EXPECT_DOUBLE_EQ(single.module_accuracies.at("module_b"), accuracy_of(0, "lora-single", 0));
}

TEST_F(ReportTest, MissingFailedIncompleteAndUnevaluatedRunsAreCounted) {
  const Cell& lh = summary_.cell(1, method_col("lorahub"));
  EXPECT_EQ(lh.expected_seeds, kSeeds);
  EXPECT_EQ(lh.failed, 1u);
  EXPECT_EQ(lh.missing, 1u);
  EXPECT_TRUE(lh.partial());
  const Cell& ft = summary_.cell(1, method_col("lora-ft"));
  EXPECT_EQ(ft.unevaluated, 1u);
  EXPECT_TRUE(ft.partial());
  const Cell& icl = summary_.cell(2, method_col("icl"));
  EXPECT_EQ(icl.incomplete, 1u);
  EXPECT_FALSE(icl.has_value());
  EXPECT_FALSE(icl.partial());
  EXPECT_EQ(summary_.cell(3, method_col("lorahub")).missing, 3u);
  EXPECT_EQ(summary_.cell(3, method_col("zero-shot")).missing, 1u);
  // Not in the job: counted, and nothing is expected of it.
  const Cell& extra = summary_.cell(4, method_col("lorahub"));
  EXPECT_TRUE(extra.expected_seeds.empty());
  EXPECT_EQ(extra.seeds, std::vector<std::int64_t>{1});
  EXPECT_FALSE(extra.partial());
  EXPECT_FALSE(summary_.cell(0, method_col("lorahub")).partial());

  std::map<std::string, int> kinds;
  for (const auto& i : summary_.issues) ++kinds[i.kind];
  // navigate: 3 seed-0 methods + 3 x 3 seeded = 12; date_understanding lorahub seed 3; kWeird lora-ft x 3.
  EXPECT_EQ(kinds["missing"], 16);
  EXPECT_EQ(kinds["failed"], 1);
  EXPECT_EQ(kinds["incomplete"], 1);
  EXPECT_EQ(kinds["unevaluated"], 1);
  for (const auto& i : summary_.issues) {
    if (i.kind == "failed") {
      EXPECT_EQ(i.task, kTasks[1]);
      EXPECT_EQ(i.seed, 2);
      EXPECT_EQ(i.reason, kOom);
    }
  }
  // Issues come in row, then column, then seed order.
  ASSERT_FALSE(summary_.issues.empty());
  EXPECT_EQ(summary_.issues.front().task, kTasks[1]);
  EXPECT_EQ(summary_.issues.back().task, "navigate");
}

TEST_F(ReportTest, AveragesAreUnweightedMeansOverTasksWithAValue) {
  const std::vector<std::size_t> all = {0, 1, 2, 3, 4};
  const std::vector<std::size_t> common = {0, 1};
  EXPECT_EQ(summary_.common_tasks, (std::vector<std::string>{kTasks[0], kTasks[1]}));
  EXPECT_TRUE(summary_.averages_differ());
  const std::map<std::string, std::size_t> tasks_with_value = {{"zero-shot", 3}, {"icl", 2},         {"lorahub", 4},
                                                                {"uniform", 3},   {"lora-single", 3}, {"lora-ft", 2}};
  const std::map<std::string, std::size_t> expected_runs = {{"zero-shot", 4}, {"icl", 4},         {"lorahub", 12},
                                                             {"uniform", 12},  {"lora-single", 4}, {"lora-ft", 12}};
  ASSERT_EQ(summary_.averages.size(), kColumnOrder.size());
  for (const auto& m : kColumnOrder) {
    SCOPED_TRACE(m);
    const MethodAverage& a = summary_.averages[method_col(m)];
    EXPECT_EQ(a.method, m);
    EXPECT_EQ(a.tasks_with_value, tasks_with_value.at(m));
    EXPECT_EQ(a.runs_expected, expected_runs.at(m));
    EXPECT_NEAR(a.mean, expected_.average(m, false, all), 1e-12);
    EXPECT_NEAR(a.best, expected_.average(m, true, all), 1e-12);
    EXPECT_NEAR(a.common_mean, expected_.average(m, false, common), 1e-12);
    EXPECT_NEAR(a.common_best, expected_.average(m, true, common), 1e-12);
  }
  // By hand for one column: zero-shot (seed 0) on the first three tasks.
  const double zs = (correct_of(0, "zero-shot", 0) + correct_of(1, "zero-shot", 0) + correct_of(2, "zero-shot", 0)) / 60.0;
  EXPECT_NEAR(summary_.averages[method_col("zero-shot")].mean, zs, 1e-12);
  // Tokens: ICL prompts carry demonstrations, so ICL spends more per example than zero-shot here.
  EXPECT_NEAR(summary_.averages[method_col("icl")].tokens_per_example, (tokens_of(0, "icl") + tokens_of(1, "icl")) / 2,
              1e-12);
  EXPECT_GT(summary_.averages[method_col("icl")].tokens_per_example,
            summary_.averages[method_col("zero-shot")].tokens_per_example);
  const MethodAverage& lh = summary_.averages[method_col("lorahub")];
  EXPECT_EQ(lh.runs_complete, 3u + 1u + 3u + 1u);
  EXPECT_EQ(lh.runs_failed, 1u);
  EXPECT_EQ(lh.runs_missing, 1u + 3u);
  // Learning time per task: mean over tasks of each task's mean over seeds.
  const double learn = (learn_seconds_of(0, 2) + learn_seconds_of(1, 1) + learn_seconds_of(2, 2) + learn_seconds_of(4, 1)) / 4;
  EXPECT_NEAR(lh.learn_seconds, learn, 1e-12);
}

TEST(ReportPlan, SeedsOfEachMethodFollowTheJob) {
  JobPlan fixed = parse_job_plan(job_config_json(42), "x.h5");
  EXPECT_EQ(fixed.tasks, kTasks);
  EXPECT_EQ(fixed.methods, kJobMethods);
  EXPECT_EQ(fixed.seeds.at("icl"), std::vector<std::int64_t>{0});
  EXPECT_EQ(fixed.seeds.at("zero-shot"), std::vector<std::int64_t>{0});
  EXPECT_EQ(fixed.seeds.at("lora-single"), std::vector<std::int64_t>{0});
  EXPECT_EQ(fixed.seeds.at("lorahub"), kSeeds);
  EXPECT_EQ(fixed.seeds.at("lora-ft"), kSeeds);
  JobPlan per_run = parse_job_plan(job_config_json("run"), "x.h5");
  EXPECT_EQ(per_run.seeds.at("icl"), kSeeds);

  EXPECT_NE(error_text([] { parse_job_plan("{not json", "x.h5"); }).find("x.h5: job_config is not a JSON object"),
            std::string::npos);
  EXPECT_NE(error_text([] { parse_job_plan(R"({"data": {"tasks": []}, "run": {"methods": ["lorahub"]}})", "x.h5"); })
                .find("run.seeds"),
            std::string::npos);
  EXPECT_NE(error_text([] { parse_job_plan(R"({"data": {"tasks": [{"x": 1}]}, "run": {}})", "x.h5"); }).find("'name'"),
            std::string::npos);
}

TEST(ReportFacts, WithoutAPlanNothingIsMissingAndDuplicatesAreRejected) {
  RunFacts a;
  a.task = "t";
  a.method = "my-method";
  a.seed = 7;
  a.status = "complete";
  a.accuracy = 0.25;
  Summary s = summarize({a}, std::nullopt, "mem");
  ASSERT_EQ(s.methods, std::vector<std::string>{"my-method"});
  EXPECT_EQ(method_label("my-method"), "my-method");
  EXPECT_TRUE(s.issues.empty());
  EXPECT_DOUBLE_EQ(s.averages[0].mean, 0.25);
  EXPECT_FALSE(s.averages_differ());
  EXPECT_NE(error_text([&] { summarize({a, a}, std::nullopt, "mem"); }).find("t/my-method/seed_7 is listed twice"),
            std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Markdown.

}  // namespace
}  // namespace lorahub::report
