// report: results files written with ResultStore (several tasks, methods and seeds; failed,
// incomplete, unevaluated and missing runs; a task name with Unicode, '|', ',' and XML syntax),
// summarised and rendered in every format, then read back by small parsers.
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

namespace lorahub::report {
namespace {

namespace fs = std::filesystem;
using lorahub::test::TempDir;
using lorahub::test::error_text;
using io::ResultStore;
using io::RunRecord;

// ---------------------------------------------------------------------------------------------
// The fixture: what is stored, and the accuracies it was stored with.

const std::string kWeird = "ünï|cödé, 任务 <&> \"q\"";
const std::vector<std::string> kTasks = {"boolean_expressions", "date_understanding", kWeird, "navigate"};
const std::string kExtraTask = "word_sorting";  // stored but not in job_config (an earlier job's run)
// Job order on purpose differs from the report's column order.
const std::vector<std::string> kJobMethods = {"lorahub", "zero-shot", "icl", "uniform", "lora-single", "lora-ft"};
const std::vector<std::string> kColumnOrder = {"zero-shot", "icl", "lorahub", "uniform", "lora-single", "lora-ft"};
const std::vector<std::int64_t> kSeeds = {1, 2, 3};
constexpr int kTestExamples = 20;
const std::string kOom = "CUDA out of memory, tried to allocate 2.00 GiB";

std::size_t method_number(const std::string& method) {
  return static_cast<std::size_t>(std::find(kJobMethods.begin(), kJobMethods.end(), method) - kJobMethods.begin());
}

// Correct answers out of kTestExamples, varied over task, method and seed.
int correct_of(std::size_t task, const std::string& method, std::int64_t seed) {
  return static_cast<int>((3 + 5 * task + 7 * method_number(method) + 3 * static_cast<std::size_t>(seed)) % 21);
}

double accuracy_of(std::size_t task, const std::string& method, std::int64_t seed) {
  return correct_of(task, method, seed) / static_cast<double>(kTestExamples);
}

std::int64_t token_base(std::size_t task, const std::string& method) {
  return (method == "icl" ? 300 : 40) + 10 * static_cast<std::int64_t>(task);
}

double learn_seconds_of(std::size_t task, std::int64_t seed) { return 10.0 * static_cast<double>(seed) + static_cast<double>(task); }

RunRecord make_run(std::size_t task_index, const std::string& task, const std::string& method, std::int64_t seed) {
  RunRecord r;
  r.task = task;
  r.method = method;
  r.seed = seed;
  r.status = "complete";
  const int correct = correct_of(task_index, method, seed);
  for (int i = 0; i < kTestExamples; ++i) {
    r.test_inputs.push_back("question " + std::to_string(i));
    r.test_targets.push_back("yes");
    r.predictions.push_back(i < correct ? "yes" : "no");
    r.correct.push_back(i < correct ? 1 : 0);
    r.input_tokens.push_back(token_base(task_index, method) + i % 3);
  }
  r.accuracy = accuracy_of(task_index, method, seed);
  r.number_attrs = {{"learn_seconds", learn_seconds_of(task_index, seed)}, {"eval_seconds", 2.5}, {"evaluations", 40}};
  r.text_attrs = {{"optimizer", "cobyla"}};
  if (method == "lora-single") {
    r.text_attrs["best_module"] = "module_b";
    r.number_attrs["accuracy_module_a"] = 0.05;
    r.number_attrs["accuracy_module_b"] = r.accuracy;
    r.number_attrs["accuracy_module_c"] = 0.0;
  }
  return r;
}

double tokens_of(std::size_t task, const std::string& method) {
  double sum = 0;
  for (int i = 0; i < kTestExamples; ++i) sum += static_cast<double>(token_base(task, method) + i % 3);
  return sum / kTestExamples;
}

std::string job_config_json(const nlohmann::json& shots_seed = 42) {
  nlohmann::json tasks = nlohmann::json::array();
  for (const auto& t : kTasks) tasks.push_back({{"name", t}, {"bbh_dir", "/data/bbh"}});
  nlohmann::json j;
  j["data"] = {{"tasks", tasks}, {"prompt", "auto"}, {"max_test", 0}};
  j["run"] = {{"methods", kJobMethods}, {"seeds", kSeeds}, {"shots", 5}, {"shots_seed", shots_seed}, {"icl_shots", 3}};
  j["lorahub"] = {{"optimizer", "cobyla"}, {"budget", 40}};
  return j.dump();
}

// Removes a run's status attribute, as an interrupted write by something that bypassed the journal leaves it.
void make_incomplete(const std::string& path, const std::string& group) {
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  hid_t g = H5Gopen2(file, group.c_str(), H5P_DEFAULT);
  ASSERT_GE(g, 0);
  EXPECT_GE(H5Adelete(g, "status"), 0);
  H5Gclose(g);
  H5Fclose(file);
}

// Stored runs (expected: 4 tasks x (zero-shot, icl, lora-single) x seed 0 + (lorahub, uniform, lora-ft) x seeds 1-3):
//  boolean_expressions: everything complete.
//  date_understanding:  lorahub seed 2 failed, seed 3 missing; lora-ft seed 1 complete without accuracy.
//  kWeird:              icl incomplete; no lora-ft runs.
//  navigate:            nothing.
//  word_sorting:        lorahub seed 1 only, not in the job.
void write_fixture(const std::string& path) {
  ResultStore store(path, ResultStore::Mode::kCreate);
  store.set_job_attrs({{"job_config", job_config_json()}, {"cluster", "test"}});
  for (std::size_t t = 0; t < 3; ++t) {
    const std::string& task = kTasks[t];
    for (const auto& method : kJobMethods) {
      const bool per_seed = method == "lorahub" || method == "uniform" || method == "lora-ft";
      for (std::int64_t seed : per_seed ? kSeeds : std::vector<std::int64_t>{0}) {
        if (t == 2 && method == "lora-ft") continue;
        if (t == 1 && method == "lorahub" && seed == 3) continue;
        RunRecord r = make_run(t, task, method, seed);
        if (t == 1 && method == "lorahub" && seed == 2) {
          r = RunRecord{};
          r.task = task;
          r.method = method;
          r.seed = seed;
          r.status = "failed";
          r.failure_reason = kOom;
        }
        if (t == 1 && method == "lora-ft" && seed == 1) r.accuracy = std::nan("");
        store.write_run(r);
      }
    }
  }
  store.write_run(make_run(4, kExtraTask, "lorahub", 1));
  make_incomplete(path, ResultStore::group_path(kWeird, "icl", 0));
}

// What the report should say, computed from correct_of directly.
struct Expected {
  std::vector<std::string> tasks = {kTasks[0], kTasks[1], kTasks[2], kTasks[3], kExtraTask};
  // seeds with an accuracy per (task index in `tasks`, method)
  std::map<std::pair<std::size_t, std::string>, std::vector<std::int64_t>> seeds;
  Expected() {
    for (std::size_t t = 0; t < 3; ++t) {
      for (const auto& m : kJobMethods) {
        const bool per_seed = m == "lorahub" || m == "uniform" || m == "lora-ft";
        seeds[{t, m}] = per_seed ? kSeeds : std::vector<std::int64_t>{0};
      }
    }
    seeds[{1, "lorahub"}] = {1};
    seeds[{1, "lora-ft"}] = {2, 3};
    seeds[{2, "icl"}] = {};
    seeds[{2, "lora-ft"}] = {};
    seeds[{4, "lorahub"}] = {1};
  }
  std::vector<std::int64_t> seeds_of(std::size_t t, const std::string& m) const {
    auto it = seeds.find({t, m});
    return it == seeds.end() ? std::vector<std::int64_t>{} : it->second;
  }
  double mean(std::size_t t, const std::string& m) const {
    auto s = seeds_of(t, m);
    double sum = 0;
    for (auto seed : s) sum += accuracy_of(t, m, seed);
    return s.empty() ? kNaN : sum / static_cast<double>(s.size());
  }
  double best(std::size_t t, const std::string& m) const {
    double b = kNaN;
    for (auto seed : seeds_of(t, m)) b = std::isnan(b) ? accuracy_of(t, m, seed) : std::max(b, accuracy_of(t, m, seed));
    return b;
  }
  double average(const std::string& m, bool of_best, const std::vector<std::size_t>& over) const {
    double sum = 0;
    int n = 0;
    for (auto t : over) {
      double v = of_best ? best(t, m) : mean(t, m);
      if (std::isnan(v)) continue;
      sum += v;
      ++n;
    }
    return n ? sum / n : kNaN;
  }
};

// ---------------------------------------------------------------------------------------------
// Helpers.

// RFC 4180: quoted fields may hold commas, doubled quotes and line breaks; records end in CRLF.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"' && field.empty()) {
      quoted = true;
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      row.push_back(field);
      rows.push_back(row);
      row.clear();
      field.clear();
      ++i;
    } else {
      if (c == '"' || c == '\n') throw std::runtime_error("bad CSV at byte " + std::to_string(i));
      field += c;
    }
  }
  if (quoted) throw std::runtime_error("unterminated quote");
  if (!field.empty() || !row.empty()) throw std::runtime_error("last record has no CRLF");
  return rows;
}

// Cells of a Markdown table line, split on '|' that are not escaped.
std::vector<std::string> md_cells(const std::string& line) {
  std::vector<std::string> cells;
  std::string cur;
  for (std::size_t i = 1; i < line.size(); ++i) {
    if (line[i] == '\\' && i + 1 < line.size()) {
      cur += line[i];
      cur += line[++i];
    } else if (line[i] == '|') {
      auto b = cur.find_first_not_of(' '), e = cur.find_last_not_of(' ');
      cells.push_back(b == std::string::npos ? "" : cur.substr(b, e - b + 1));
      cur.clear();
    } else {
      cur += line[i];
    }
  }
  return cells;
}

// The first Markdown table of `md` as rows of cells (header first, the --- line dropped).
std::vector<std::vector<std::string>> first_md_table(const std::string& md) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(md);
  std::string line;
  bool started = false;
  while (std::getline(in, line)) {
    if (line.rfind("| ", 0) == 0) {
      started = true;
      rows.push_back(md_cells(line));
    } else if (line.rfind("|:", 0) == 0) {
      continue;
    } else if (started) {
      break;
    }
  }
  return rows;
}

// "41.2†" / "**38.0**‡" -> 41.2 / 38.0; "–" -> NaN.
double md_number(std::string cell) {
  for (const std::string mark : {"**", "†", "‡"}) {
    for (auto p = cell.find(mark); p != std::string::npos; p = cell.find(mark)) cell.erase(p, mark.size());
  }
  if (cell == "–") return kNaN;
  std::size_t used = 0;
  double v = std::stod(cell, &used);
  if (used != cell.size()) throw std::runtime_error("not a number: " + cell);
  return v;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + what.size())) ++n;
  return n;
}

// One fixture file for the suite: writing it is a few seconds of fsyncs.
class ReportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    path_ = dir_->file("results.h5");
    write_fixture(path_);
    summary_ = summarize_file(path_);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  std::size_t task_row(const std::string& task) const {
    auto it = std::find(summary_.tasks.begin(), summary_.tasks.end(), task);
    return static_cast<std::size_t>(it - summary_.tasks.begin());
  }
  std::size_t method_col(const std::string& method) const {
    auto it = std::find(summary_.methods.begin(), summary_.methods.end(), method);
    return static_cast<std::size_t>(it - summary_.methods.begin());
  }
  static inline TempDir* dir_ = nullptr;
  static inline std::string path_;
  static inline Summary summary_;
  Expected expected_;
};

// ---------------------------------------------------------------------------------------------
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

TEST_F(ReportTest, MarkdownTableShowsEveryCellAndConsistentAverages) {
  const std::string md = render_markdown(summary_);
  auto table = first_md_table(md);
  // header + 5 tasks + average + average over the common tasks
  ASSERT_EQ(table.size(), 1u + 5u + 2u) << md;
  const std::vector<std::string> header = {"Task", "Zero-shot", "ICL", "LoraHub avg", "LoraHub best", "Uniform",
                                           "Best single", "LoRA FT"};
  EXPECT_EQ(table[0], header);
  // The weird task name survives, escaped: '|' does not split the row.
  EXPECT_EQ(table[3][0], "ünï\\|cödé, 任务 \\<\\&\\> \"q\"");
  EXPECT_EQ(table[5][0], kExtraTask);
  for (std::size_t col = 1; col < header.size(); ++col) {
    const std::string method = kColumnOrder[col <= 3 ? col - 1 : col - 2];
    const bool best = header[col] == "LoraHub best";
    SCOPED_TRACE(header[col]);
    double sum = 0;
    int n = 0;
    for (std::size_t t = 0; t < 5; ++t) {
      const double shown = md_number(table[1 + t][col]);
      const double want = best ? expected_.best(t, method) : expected_.mean(t, method);
      if (std::isnan(want)) {
        EXPECT_EQ(table[1 + t][col], "–");
        continue;
      }
      EXPECT_NEAR(shown, 100 * want, 0.05 + 1e-9);
      sum += shown;
      ++n;
    }
    // The average row agrees with the rows shown above it (each rounded to 0.1).
    const double avg = md_number(table[6][col]);
    EXPECT_NEAR(avg, sum / n, 0.1 + 1e-9);
    EXPECT_NEAR(avg, 100 * expected_.average(method, best, {0, 1, 2, 3, 4}), 0.05 + 1e-9);
    EXPECT_NE(table[6][col].find("‡"), std::string::npos);  // no method has all five tasks
    EXPECT_NEAR(md_number(table[7][col]), 100 * expected_.average(method, best, {0, 1}), 0.05 + 1e-9);
  }
  // Partial cells are marked; complete ones are not.
  EXPECT_NE(table[2][3].find("†"), std::string::npos);   // date_understanding LoraHub avg
  EXPECT_EQ(table[1][3].find("†"), std::string::npos);   // boolean_expressions LoraHub avg
  EXPECT_EQ(table[7][0], "Average over the 2 tasks every method has");
}

TEST_F(ReportTest, MarkdownNotesListMissingAndFailedRunsAndCosts) {
  const std::string md = render_markdown(summary_);
  EXPECT_NE(md.find("**Missing runs** (16)"), std::string::npos) << md;
  EXPECT_NE(md.find("  - navigate / LoraHub: seeds 1, 2, 3\n"), std::string::npos) << md;
  EXPECT_EQ(md.find("date\\_understanding"), std::string::npos);  // underscores inside words stay plain
  EXPECT_NE(md.find("  - date_understanding / LoraHub: seed 2 — " + kOom), std::string::npos) << md;
  EXPECT_NE(md.find("**Incomplete runs"), std::string::npos);
  EXPECT_NE(md.find("**Complete runs without an accuracy** (1)"), std::string::npos);
  EXPECT_NE(md.find("LoRA FT 2 of 5; the row below it compares"), std::string::npos);
  EXPECT_NE(md.find("nothing is expected of them): word_sorting.\n"), std::string::npos);
  std::size_t with_accuracy = 0;
  for (const auto& [key, seeds] : expected_.seeds) with_accuracy += seeds.size();
  EXPECT_NE(md.find(", " + std::to_string(with_accuracy) + " runs with an accuracy of 48 expected."), std::string::npos)
      << md;
  // Cost table: ICL's tokens per example and LoraHub's runs.
  const auto& icl = summary_.averages[method_col("icl")];
  EXPECT_NE(md.find("| ICL | " + detail::fixed(icl.tokens_per_example, 1) + " | "), std::string::npos) << md;
  EXPECT_NE(md.find(" | 8 / 12 |"), std::string::npos) << md;
}

TEST_F(ReportTest, MarkdownListsLoraHubPerSeedAgainstZeroShot) {
  const std::string md = render_markdown(summary_);
  ASSERT_NE(md.find("## LoraHub per seed"), std::string::npos) << md;
  const auto hub = method_col("lorahub"), zero = method_col("zero-shot");
  std::size_t beats_total = 0, runs_total = 0;
  for (std::size_t t = 0; t < summary_.tasks.size(); ++t) {
    const Cell& c = summary_.cell(t, hub);
    const Cell& z = summary_.cell(t, zero);
    if (!c.has_value() || !z.has_value()) continue;
    std::size_t beats = 0;
    for (double a : c.accuracies) beats += a > z.mean ? 1 : 0;
    beats_total += beats;
    runs_total += c.accuracies.size();
    // The row shows the first seed's accuracy and ends with the count of seeds above zero-shot.
    const std::string row_start = "| " + detail::md_escape(summary_.tasks[t]) + " | ";
    auto at = md.find(row_start, md.find("## LoraHub per seed"));
    ASSERT_NE(at, std::string::npos) << summary_.tasks[t];
    const std::string row = md.substr(at, md.find('\n', at) - at);
    EXPECT_NE(row.find(" " + std::to_string(beats) + " of " + std::to_string(c.accuracies.size()) + " |"),
              std::string::npos)
        << row;
  }
  ASSERT_GT(runs_total, 0u);
  EXPECT_NE(md.find("LoraHub beats zero-shot in " + std::to_string(beats_total) + " of " + std::to_string(runs_total) +
                    " runs."),
            std::string::npos)
      << md;
}

// ---------------------------------------------------------------------------------------------
// CSV and JSON.

TEST_F(ReportTest, CsvParsesAndRoundTripsTheNumbers) {
  const std::string csv = render_csv(summary_);
  auto rows = parse_csv(csv);
  ASSERT_GE(rows.size(), 1u);
  const auto& header = rows[0];
  ASSERT_EQ(header.size(), 19u);
  auto col = [&](const std::string& name) {
    return static_cast<std::size_t>(std::find(header.begin(), header.end(), name) - header.begin());
  };
  // task rows, average rows, average_common rows
  ASSERT_EQ(rows.size(), 1u + 5u * 6u + 6u + 6u);
  std::size_t weird_rows = 0;
  for (std::size_t i = 1; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), header.size()) << "row " << i;
    if (rows[i][0] != "task") continue;
    const std::size_t t = task_row(rows[i][col("task")]);
    ASSERT_LT(t, 5u) << rows[i][col("task")];
    weird_rows += rows[i][col("task")] == kWeird;
    const std::string& m = rows[i][col("method")];
    const double want = expected_.mean(t, m);
    if (std::isnan(want)) {
      EXPECT_EQ(rows[i][col("accuracy_mean")], "");
    } else {
      EXPECT_EQ(std::stod(rows[i][col("accuracy_mean")]), summary_.cell(t, method_col(m)).mean);  // exact round trip
      EXPECT_NEAR(std::stod(rows[i][col("accuracy_mean")]), want, 1e-12);
    }
  }
  EXPECT_EQ(weird_rows, 6u);
  std::size_t averages = 0;
  for (const auto& r : rows) {
    if (r[0] != "average") continue;
    ++averages;
    EXPECT_EQ(std::stod(r[col("accuracy_mean")]), summary_.averages[method_col(r[col("method")])].mean);
    EXPECT_EQ(r[col("task")], "");
  }
  EXPECT_EQ(averages, 6u);
  EXPECT_NE(csv.find("\"ünï|cödé, 任务 <&> \"\"q\"\"\""), std::string::npos);
}

TEST_F(ReportTest, JsonIsValidWithNullsForMissingValues) {
  const auto j = nlohmann::json::parse(render_json(summary_));
  EXPECT_EQ(j["format"], "lorahub-report");
  EXPECT_EQ(j["tasks"].size(), 5u);
  EXPECT_EQ(j["tasks"][2], kWeird);
  EXPECT_EQ(j["methods"][2]["label"], "LoraHub");
  ASSERT_EQ(j["cells"].size(), 30u);
  for (const auto& c : j["cells"]) {
    const std::size_t t = task_row(c["task"].get<std::string>());
    const std::string m = c["method"];
    const double want = expected_.mean(t, m);
    if (std::isnan(want)) {
      EXPECT_TRUE(c["mean"].is_null());
      EXPECT_TRUE(c["accuracies"].empty());
    } else {
      EXPECT_NEAR(c["mean"].get<double>(), want, 1e-12);
      EXPECT_EQ(c["accuracies"].size(), expected_.seeds_of(t, m).size());
    }
  }
  EXPECT_EQ(j["issues"].size(), summary_.issues.size());
  EXPECT_EQ(j["common_tasks"].size(), 2u);
  EXPECT_EQ(j["file_attrs"]["cluster"], "test");
  EXPECT_EQ(j["cells"][4]["best_module"], "module_b");  // first task, lora-single
}

TEST(ReportText, InvalidUtf8AndControlCharactersCannotBreakTheOutputs) {
  EXPECT_EQ(detail::clean_utf8("a\xff" "b\x01" "c\xe4\xbd"), "a\xEF\xBF\xBD" "bc\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(detail::clean_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  EXPECT_EQ(detail::clean_utf8("任务 ✓"), "任务 ✓");
  EXPECT_EQ(detail::xml_escape("<a & 'b'>\"\x02"), "&lt;a &amp; &apos;b&apos;&gt;&quot;");
  EXPECT_EQ(detail::csv_field("plain"), "plain");
  EXPECT_EQ(detail::csv_field("a,\"b\"\nc"), "\"a,\"\"b\"\"\nc\"");
  EXPECT_EQ(detail::md_escape("_x_ a_b |*"), "\\_x\\_ a_b \\|\\*");
  EXPECT_EQ(detail::fixed(-0.01, 1), "0.0");
  EXPECT_EQ(detail::shortest(0.1), "0.1");
  EXPECT_EQ(detail::shortest(kNaN), "");
  EXPECT_EQ(detail::truncate("abcdef", 4), "abc…");
  EXPECT_GT(detail::text_width("任务", 10), detail::text_width("ab", 10));

  RunFacts bad;
  bad.task = "t\xff<x>";
  bad.method = "lorahub";
  bad.status = "complete";
  bad.accuracy = 0.5;
  Summary s = summarize({bad}, std::nullopt, "mem");
  EXPECT_NO_THROW(nlohmann::json::parse(render_json(s)));
  EXPECT_NE(render_svg(s).find("t\xEF\xBF\xBD&lt;x&gt;"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// SVG (well-formedness is checked by xml.etree in report.python_reader).

TEST_F(ReportTest, SvgIsAStandaloneDocumentWithOneBarPerValue) {
  const std::string svg = render_svg(summary_);
  EXPECT_EQ(svg.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\"", 0),
            0u);
  EXPECT_NE(svg.find(" viewBox=\"0 0 "), std::string::npos);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  std::size_t values = 0;
  for (const auto& c : summary_.cells) values += c.has_value();
  for (const auto& a : summary_.averages) values += a.tasks_with_value > 0;
  // One bar (rect with a hover title) per value: cells and averages.
  EXPECT_EQ(count(svg, "\"><title>"), values) << svg.substr(0, 400);
  EXPECT_EQ(count(svg, "–<title>"), summary_.cells.size() + summary_.averages.size() - values);
  EXPECT_EQ(count(svg, "<rect x=\"") - 1 - kColumnOrder.size(), values);  // minus background and legend swatches
  EXPECT_NE(svg.find("ünï|cödé, 任务 &lt;&amp;&gt; &quot;q&quot;"), std::string::npos);
  EXPECT_EQ(svg.find("<&>"), std::string::npos);
  EXPECT_NE(svg.find(">Average<"), std::string::npos);
  // Range lines for cells of several seeds (boolean_expressions lorahub, uniform, lora-ft, ...).
  EXPECT_GT(count(svg, "<path d=\"M"), 5u);
}

// ---------------------------------------------------------------------------------------------
// Files that are not results, and results files with nothing in them.

TEST(ReportFiles, NonResultsFilesGiveAClearError) {
  TempDir dir;
  const std::string text = dir.file("notes.txt");
  std::ofstream(text) << "hello\n";
  std::string e = error_text([&] { summarize_file(text); });
  EXPECT_EQ(e, text + " is not an HDF5 file, so not a lorahub-hpc results file");
  e = error_text([&] { summarize_file(dir.file("")); });
  EXPECT_NE(e.find(" is not a file, so not a lorahub-hpc results file"), std::string::npos) << e;
  const std::string empty = dir.file("empty.h5");
  std::ofstream(empty).close();
  EXPECT_EQ(error_text([&] { summarize_file(empty); }), empty + " is not an HDF5 file, so not a lorahub-hpc results file");

  const std::string other = dir.file("other.h5");
  hid_t f = H5Fcreate(other.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  H5Fclose(f);
  e = error_text([&] { summarize_file(other); });
  EXPECT_NE(e.find(other + " is not a lorahub-hpc results file"), std::string::npos) << e;

  e = error_text([&] { summarize_file(dir.file("absent.h5")); });
  EXPECT_NE(e.find("absent.h5' does not exist"), std::string::npos) << e;
}

TEST(ReportFiles, AnEmptyResultsFileStillRendersEveryFormat) {
  TempDir dir;
  const std::string path = dir.file("empty.h5");
  { ResultStore store(path, ResultStore::Mode::kCreate); }
  Summary s = summarize_file(path);
  EXPECT_TRUE(s.tasks.empty());
  EXPECT_FALSE(s.has_plan);
  EXPECT_NE(s.plan_problem.find("no job_config"), std::string::npos);
  EXPECT_NE(render_markdown(s).find("No runs are stored yet."), std::string::npos);
  EXPECT_EQ(parse_csv(render_csv(s)).size(), 1u);
  EXPECT_TRUE(nlohmann::json::parse(render_json(s))["cells"].empty());
  EXPECT_NE(render_svg(s).find("No runs are stored yet."), std::string::npos);
}

TEST(ReportFiles, AJobWithNoRunsYetListsEveryRunAsMissing) {
  TempDir dir;
  const std::string path = dir.file("fresh.h5");
  {
    ResultStore store(path, ResultStore::Mode::kCreate);
    store.set_job_attrs({{"job_config", job_config_json()}});
  }
  Summary s = summarize_file(path);
  EXPECT_EQ(s.tasks, kTasks);
  EXPECT_EQ(s.issues.size(), 4u * 3u + 4u * 3u * 3u);
  const std::string md = render_markdown(s);
  EXPECT_NE(md.find("0 runs with an accuracy of 48 expected"), std::string::npos) << md;
  auto table = first_md_table(md);
  ASSERT_EQ(table.size(), 1u + 4u + 1u);  // no "common" row: no task has every method
  for (std::size_t c = 1; c < table.back().size(); ++c) EXPECT_EQ(table.back()[c], "–");
}

TEST(ReportFiles, AnUnreadableJobConfigIsNotedAndRunsAreStillReported) {
  TempDir dir;
  const std::string path = dir.file("odd.h5");
  {
    ResultStore store(path, ResultStore::Mode::kCreate);
    store.set_job_attrs({{"job_config", "{\"data\": 3}"}});
    store.write_run(make_run(0, "boolean_expressions", "lorahub", 1));
  }
  Summary s = summarize_file(path);
  EXPECT_FALSE(s.has_plan);
  EXPECT_NE(s.plan_problem.find("job_config has no object 'data'"), std::string::npos) << s.plan_problem;
  ASSERT_EQ(s.tasks.size(), 1u);
  EXPECT_DOUBLE_EQ(s.cell(0, 0).mean, accuracy_of(0, "lorahub", 1));
  EXPECT_NE(render_markdown(s).find("job_config has no object 'data'"), std::string::npos);
}

// Writes the fixture and its reports for the Python reader and the CLI test (ctest runs it with
// LORAHUB_REPORT_FIXTURE set; otherwise it is skipped).
TEST(ReportFixture, Write) {
  const char* dir = std::getenv("LORAHUB_REPORT_FIXTURE");
  if (!dir) GTEST_SKIP() << "LORAHUB_REPORT_FIXTURE is not set";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string results = (fs::path(dir) / "results.h5").string();
  write_fixture(results);
  Summary s = summarize_file(results);
  auto write = [&](const char* name, const std::string& text) {
    std::ofstream out(fs::path(dir) / name, std::ios::binary);
    out << text;
    ASSERT_TRUE(out.good()) << name;
  };
  write("report.md", render_markdown(s));
  write("report.csv", render_csv(s));
  write("report.json", render_json(s));
  write("chart.svg", render_svg(s));
  write("not_results.txt", "not an HDF5 file\n");
  { ResultStore empty((fs::path(dir) / "empty.h5").string(), ResultStore::Mode::kCreate); }
  write("empty.svg", render_svg(summarize_file((fs::path(dir) / "empty.h5").string())));
}

}  // namespace
}  // namespace lorahub::report
