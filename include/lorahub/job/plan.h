#pragma once
// The runs of a job (task x method x seed), expanded identically on every rank from one configuration, so that
// messages carry run indices instead of data.
#include <cstdint>
#include <string>
#include <vector>

#include "lorahub/data/example.h"
#include "lorahub/job/config.h"

namespace lorahub::job {

/// Which run a job makes, before any data is read: what its results file will hold.
struct PlannedRun {
  std::string task;
  Method method = Method::kLoraHub;
  std::int64_t seed = 0;  ///< 0 for the methods that run once per task
};
/// Tasks x methods x seeds in job order (tasks, then methods, then seeds), with each method's seed rule.
std::vector<PlannedRun> plan_runs(const JobConfig& config);

/// One run with everything a worker needs to prepare it, derived deterministically from the job.
struct RunSpec {
  std::int64_t id = 0;  ///< index in the job
  std::string task;
  Method method = Method::kLoraHub;
  std::int64_t seed = 0;
  std::string description;
  std::vector<data::Example> train;  ///< few-shot examples, prompts formatted
  std::vector<data::Example> test;   ///< test prompts and targets
  std::vector<std::string> modules;  ///< selected module names (methods that use the library)
  std::string error;                 ///< non-empty: the run cannot be prepared (bad task data...)

  const MethodInfo& info() const { return job::info(method); }
};

/// plan_runs with every task's data loaded and the modules and shots of each run chosen. `library_names` is the
/// library's module names in order. Configuration errors (more modules asked than the library has, unknown
/// library.names) throw; a task whose data cannot be loaded yields runs with `error` set (recorded as failed),
/// so the other tasks go on.
std::vector<RunSpec> expand_job(const JobConfig& config, const std::vector<std::string>& library_names);

}  // namespace lorahub::job
