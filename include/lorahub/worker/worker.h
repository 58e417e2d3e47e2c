#pragma once
// The worker's side of a job: the handler that turns work items into results, with the model, tokenizer and
// LoRA library of an Engine held in memory. Per-run data (tokenized examples, module indices) is prepared once and
// cached, so work messages carry only run ids and coefficient vectors.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lorahub/core/protocol.h"
#include "lorahub/job/config.h"
#include "lorahub/job/plan.h"
#include "lorahub/lora/library.h"
#include "lorahub/worker/engine.h"
#include "lorahub/worker/fitness.h"

namespace lorahub::worker {

/// Runs work items for the runs of one job. handle() never throws: a failure becomes a failed result that
/// names the task, method and seed.
class Worker {
 public:
  Worker(Engine& engine, const std::vector<job::RunSpec>& runs, const job::JobConfig& config);
  core::WorkResult handle(const core::WorkItem& item);

 private:
  struct RunContext {
    std::vector<std::size_t> modules;  // library indices of the run's modules
    std::unique_ptr<FitnessEvaluator> fitness;
  };
  RunContext& context(const job::RunSpec& spec);
  /// The library indices an item's weights are for: its module positions within the run, or all of the run's.
  static std::vector<std::size_t> modules_of(const RunContext& ctx, const core::WorkItem& item);
  core::WorkResult handle_unchecked(const core::WorkItem& item, const job::RunSpec& spec);

  Engine& engine_;
  const std::vector<job::RunSpec>& runs_;
  const job::JobConfig& config_;
  std::map<std::int64_t, RunContext> contexts_;
};

/// The composed factors as PEFT-keyed arrays ("base_model.model.<module>.lora_A.weight" [r, in], ...).
std::vector<core::NamedArray> composition_arrays(const lora::Composition& composition);

}  // namespace lorahub::worker
