#pragma once
// What the report tests share: the results file they build with ResultStore (several tasks, methods and seeds;
// failed, incomplete, unevaluated and missing runs; a task name with Unicode, '|', ',' and XML syntax), the
// accuracies it was built with, small parsers of every output format, and the suite fixture.
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

namespace lorahub::report::report_test {
namespace fs = std::filesystem;
using lorahub::test::TempDir;
using lorahub::test::error_text;
using io::ResultStore;
using io::RunRecord;

// ---------------------------------------------------------------------------------------------
// The fixture: what is stored, and the accuracies it was stored with.

inline const std::string kWeird = "ünï|cödé, 任务 <&> \"q\"";
inline const std::vector<std::string> kTasks = {"boolean_expressions", "date_understanding", kWeird, "navigate"};
inline const std::string kExtraTask = "word_sorting";  // stored but not in job_config (an earlier job's run)
// Job order on purpose differs from the report's column order.
inline const std::vector<std::string> kJobMethods = {"lorahub", "zero-shot", "icl", "uniform", "lora-single", "lora-ft"};
inline const std::vector<std::string> kColumnOrder = {"zero-shot", "icl", "lorahub", "uniform", "lora-single", "lora-ft"};
inline const std::vector<std::int64_t> kSeeds = {1, 2, 3};
constexpr int kTestExamples = 20;
inline const std::string kOom = "CUDA out of memory, tried to allocate 2.00 GiB";

inline std::size_t method_number(const std::string& method) {
  return static_cast<std::size_t>(std::find(kJobMethods.begin(), kJobMethods.end(), method) - kJobMethods.begin());
}

// Correct answers out of kTestExamples, varied over task, method and seed.
inline int correct_of(std::size_t task, const std::string& method, std::int64_t seed) {
  return static_cast<int>((3 + 5 * task + 7 * method_number(method) + 3 * static_cast<std::size_t>(seed)) % 21);
}

inline double accuracy_of(std::size_t task, const std::string& method, std::int64_t seed) {
  return correct_of(task, method, seed) / static_cast<double>(kTestExamples);
}

inline std::int64_t token_base(std::size_t task, const std::string& method) {
  return (method == "icl" ? 300 : 40) + 10 * static_cast<std::int64_t>(task);
}

inline double learn_seconds_of(std::size_t task, std::int64_t seed) { return 10.0 * static_cast<double>(seed) + static_cast<double>(task); }

inline RunRecord make_run(std::size_t task_index, const std::string& task, const std::string& method, std::int64_t seed) {
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

inline double tokens_of(std::size_t task, const std::string& method) {
  double sum = 0;
  for (int i = 0; i < kTestExamples; ++i) sum += static_cast<double>(token_base(task, method) + i % 3);
  return sum / kTestExamples;
}

inline std::string job_config_json(const nlohmann::json& shots_seed = 42) {
  nlohmann::json tasks = nlohmann::json::array();
  for (const auto& t : kTasks) tasks.push_back({{"name", t}, {"bbh_dir", "/data/bbh"}});
  nlohmann::json j;
  j["data"] = {{"tasks", tasks}, {"prompt", "auto"}, {"max_test", 0}};
  j["run"] = {{"methods", kJobMethods}, {"seeds", kSeeds}, {"shots", 5}, {"shots_seed", shots_seed}, {"icl_shots", 3}};
  j["lorahub"] = {{"optimizer", "cobyla"}, {"budget", 40}};
  return j.dump();
}

// Removes a run's status attribute, as an interrupted write by something that bypassed the journal leaves it.
inline void make_incomplete(const std::string& path, const std::string& group) {
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
inline void write_fixture(const std::string& path) {
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
inline std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
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
inline std::vector<std::string> md_cells(const std::string& line) {
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
inline std::vector<std::vector<std::string>> first_md_table(const std::string& md) {
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
inline double md_number(std::string cell) {
  for (const std::string mark : {"**", "†", "‡"}) {
    for (auto p = cell.find(mark); p != std::string::npos; p = cell.find(mark)) cell.erase(p, mark.size());
  }
  if (cell == "–") return kNaN;
  std::size_t used = 0;
  double v = std::stod(cell, &used);
  if (used != cell.size()) throw std::runtime_error("not a number: " + cell);
  return v;
}

inline std::size_t count(const std::string& text, const std::string& what) {
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
}  // namespace lorahub::report::report_test
