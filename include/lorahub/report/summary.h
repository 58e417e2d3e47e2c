#pragma once
// What a results file says about each task and method: accuracy over seeds, cost per example,
// learning time, and which runs are missing or failed. Renderers (render.h) only format a Summary.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lorahub/io/result_store.h"

namespace lorahub::report {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// The facts of one stored run that a report uses (a light view of io::RunRecord).
struct RunFacts {
  std::string task;
  std::string method;
  std::int64_t seed = 0;
  std::string status;          ///< "complete", "failed", "incomplete" or "damaged" (could not be read)
  std::string failure_reason;  ///< failed runs; damaged runs: why they cannot be read
  double accuracy = kNaN;      ///< in [0, 1]; NaN when not evaluated
  double tokens_per_example = kNaN;  ///< mean of the run's input_tokens; NaN when none recorded
  double learn_seconds = kNaN;
  double eval_seconds = kNaN;
  double evaluations = kNaN;   ///< loss evaluations of the search
  std::string best_module;     ///< lora-single: the module whose accuracy the run reports
  std::map<std::string, double> module_accuracies;  ///< lora-single: accuracy of every module
};

/// Which runs a job meant to produce (from the results file's "job_config" root attribute).
struct JobPlan {
  std::vector<std::string> tasks;    ///< data.tasks[].name, in job order
  std::vector<std::string> methods;  ///< run.methods, in job order
  /// Expected seeds of each method: {0} for seed-independent methods (zero-shot, lora-single, and
  /// icl when run.shots_seed is a fixed number), run.seeds otherwise (as hub::expand_job does).
  std::map<std::string, std::vector<std::int64_t>> seeds;
};

/// Parses the JSON of hub::JobConfig::to_json. Throws core::Error naming `where` and the key when
/// data.tasks, run.methods or run.seeds is missing or of the wrong type.
JobPlan parse_job_plan(const std::string& job_config_json, const std::string& where);

/// One run that did not give an accuracy.
struct RunIssue {
  std::string task;
  std::string method;
  std::int64_t seed = 0;
  /// "missing" (expected, not in the file), "failed", "incomplete", "unevaluated" (complete, NaN accuracy),
  /// "damaged" (its group cannot be read; counted with the failed runs)
  std::string kind;
  std::string reason;  ///< failure_reason of failed runs, HDF5's reason for damaged ones
};

/// One task x method: statistics over the seeds whose run is complete with an accuracy.
struct Cell {
  std::string task;
  std::string method;
  std::vector<std::int64_t> expected_seeds;  ///< from the job plan, ascending (empty without one)
  std::vector<std::int64_t> seeds;           ///< seeds with an accuracy, ascending
  std::vector<double> accuracies;            ///< [seeds.size()], in [0, 1]
  double mean = kNaN;  ///< NaN when no seed has an accuracy
  double best = kNaN;
  double min = kNaN;
  double stdev = kNaN;                ///< sample standard deviation (n - 1); NaN below 2 seeds
  double tokens_per_example = kNaN;   ///< mean over those runs of their mean input tokens per test example
  double learn_seconds = kNaN;        ///< mean over those runs
  double eval_seconds = kNaN;
  double evaluations = kNaN;
  std::string best_module;                          ///< lora-single (the first seed's)
  std::map<std::string, double> module_accuracies;  ///< lora-single (the first seed's)
  std::size_t failed = 0, incomplete = 0, missing = 0, unevaluated = 0;

  bool has_value() const { return !seeds.empty(); }
  /// Has a value but fewer seeds than the plan expects (or failed / incomplete runs beside it).
  bool partial() const { return has_value() && (failed + incomplete + missing + unevaluated) > 0; }
};

/// One method over all tasks. Averages are unweighted means of the per-task values over the tasks
/// where the method has a value (`tasks_with_value` of them).
struct MethodAverage {
  std::string method;
  std::size_t tasks_with_value = 0;
  double mean = kNaN;  ///< mean over tasks of Cell::mean
  double best = kNaN;  ///< mean over tasks of Cell::best
  double common_mean = kNaN;  ///< the same over Summary::common_tasks only
  double common_best = kNaN;
  double tokens_per_example = kNaN;  ///< mean over tasks that recorded tokens
  double learn_seconds = kNaN;       ///< mean over tasks that recorded it: learning time per task
  double eval_seconds = kNaN;
  std::size_t runs_expected = 0;  ///< by the plan (0 without one)
  std::size_t runs_complete = 0;  ///< complete with an accuracy
  std::size_t runs_failed = 0, runs_incomplete = 0, runs_missing = 0, runs_unevaluated = 0;
};

/// Everything a report shows.
struct Summary {
  std::string source;          ///< the results file
  bool has_plan = false;       ///< whether the file's job_config was read
  std::string plan_problem;    ///< why not, when it has one but it could not be read
  std::map<std::string, std::string> file_attrs;  ///< root attributes except job_config
  std::vector<std::string> tasks;    ///< rows: plan order, then tasks only in the file (by name)
  std::vector<std::string> methods;  ///< columns: zero-shot, icl, lorahub, uniform, lora-single, lora-ft, then others by name
  std::vector<Cell> cells;           ///< [tasks.size() * methods.size()], row-major
  std::vector<MethodAverage> averages;    ///< [methods.size()]
  std::vector<std::string> common_tasks;  ///< tasks where every method has a value
  std::vector<std::string> unplanned_tasks;  ///< stored tasks the job_config does not list (an earlier job's)
  std::vector<RunIssue> issues;           ///< ordered by task, method, seed
  /// Task or method groups that could not be listed at all ("<group>: <reason>"); their runs are not
  /// in the file as far as the report can tell, so the plan counts them as missing.
  std::vector<std::string> damaged_groups;

  const Cell& cell(std::size_t task, std::size_t method) const { return cells.at(task * methods.size() + method); }
  /// Whether some method lacks a value for some task (so the averages cover different tasks).
  bool averages_differ() const;
};

/// Summarises runs against an optional plan. Runs in `runs` that the plan does not list are still
/// counted; expected runs absent from `runs` become "missing" issues.
Summary summarize(const std::vector<RunFacts>& runs, const std::optional<JobPlan>& plan, const std::string& source);

/// Reads every run group of `store` (failed runs for their reason, incomplete ones from the listing)
/// and the plan from its "job_config" root attribute. A job_config that cannot be parsed is noted
/// in Summary::plan_problem, and a group that cannot be read is a "damaged" issue (or, for a task or
/// method group, in Summary::damaged_groups), not thrown: the other runs are still reported.
Summary summarize(const io::ResultStore& store);

/// Opens `path` read-only and summarises it. Throws core::Error naming the file when it is missing
/// or not a lorahub-hpc results file.
Summary summarize_file(const std::string& path);

/// Display name of a method ("lorahub" -> "LoraHub", "lora-single" -> "Best single", ...); unknown
/// methods are shown as they are named.
std::string method_label(const std::string& method);

}  // namespace lorahub::report
