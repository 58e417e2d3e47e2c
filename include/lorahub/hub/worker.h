#pragma once
// The worker's side of a job: the model, tokenizer and LoRA library held in memory, and the handler that
// turns work items into results. Per-run data (tokenized examples, module indices) is prepared once and
// cached, so work messages carry only run ids and coefficient vectors.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lorahub/core/work.h"
#include "lorahub/hub/fitness.h"
#include "lorahub/hub/job.h"
#include "lorahub/lora/library.h"
#include "lorahub/model/t5.h"
#include "lorahub/text/t5_tokenizer.h"

namespace lorahub::hub {

/// What every worker holds: model, tokenizer and (when the job needs one) the LoRA library.
struct Engine {
  model::T5Model model{nullptr};
  std::optional<text::T5Tokenizer> tokenizer;
  std::optional<lora::LoraLibrary> library;
  std::optional<lora::ModuleStack> stack;  ///< the library's factors on the model's device (float32)

  /// Loads what `config` names (model.path, tokenizer, library.path when a method needs it) onto `device`.
  static Engine load(const JobConfig& config, torch::Device device);
};

/// Runs work items for the runs of one job. handle() never throws: a failure becomes a failed result that
/// names the task, method and seed.
class Worker {
 public:
  Worker(Engine& engine, const std::vector<RunSpec>& runs, const JobConfig& config);
  core::WorkResult handle(const core::WorkItem& item);

 private:
  struct RunContext {
    std::vector<std::size_t> modules;  // library indices of the run's modules
    std::unique_ptr<FitnessEvaluator> fitness;
  };
  RunContext& context(const RunSpec& spec);
  core::WorkResult handle_unchecked(const core::WorkItem& item, const RunSpec& spec);

  Engine& engine_;
  const std::vector<RunSpec>& runs_;
  const JobConfig& config_;
  std::map<std::int64_t, RunContext> contexts_;
};

/// The composed factors as PEFT-keyed arrays ("base_model.model.<module>.lora_A.weight" [r, in], ...).
std::vector<core::NamedArray> composition_arrays(const lora::Composition& composition);

}  // namespace lorahub::hub
