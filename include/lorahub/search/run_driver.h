#pragma once
// The coordinator's side of one run: a state machine (search with ask/tell, test evaluation, fine-tuning) that
// turns results into work items and, once finished, into the run's record. Torch-free: it runs on rank 0, which
// holds no model.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lorahub/core/protocol.h"
#include "lorahub/io/result_store.h"
#include "lorahub/job/config.h"
#include "lorahub/job/plan.h"
#include "lorahub/opt/optimizer.h"

namespace lorahub::search {

/// One run's progress from start to record. Items are numbered per run (seq); results may arrive in any order.
/// Any failed result, or a non-finite loss, fails the run with its reason.
class RunDriver {
 public:
  /// `adapter_config`: the library's adapter_config.json fields (key -> JSON text), stored with compositions.
  RunDriver(const job::RunSpec& spec, const job::JobConfig& config,
            const std::map<std::string, std::string>& adapter_config = {});
  ~RunDriver();
  /// The first work items (empty when the run fails at once, e.g. its data could not be loaded).
  std::vector<core::WorkItem> start();
  /// Takes one result; returns the items that became ready.
  std::vector<core::WorkItem> on_result(const core::WorkResult& result);
  bool finished() const { return phase_ == Phase::kDone; }
  /// The run's record (complete or failed); valid once finished().
  io::RunRecord take_record();
  /// Fitness evaluations told to the optimizer so far.
  std::int64_t evaluations() const { return evaluations_; }

 private:
  enum class Phase { kSelect, kSearch, kEvaluate, kFineTune, kDone };
  /// library.select = "loss" for a method that samples its modules: score the pool first.
  bool selects_modules() const;
  std::vector<core::WorkItem> start_selection();
  void take_selection(const core::WorkResult& result, std::size_t offset);
  std::vector<core::WorkItem> start_learning();
  /// The number of modules the run composes (the chosen ones after a selection).
  std::size_t modules_used() const;
  std::vector<core::WorkItem> ask_next();
  std::vector<core::WorkItem> start_evaluation();
  std::vector<core::WorkItem> evaluation_items(const std::vector<double>* weights, bool want_composition);
  void take_fitness(const core::WorkResult& result, std::size_t offset);
  void finish_evaluation();
  void fail_run(const std::string& reason);
  void finish_record();
  core::WorkItem make_item(core::WorkKind kind);

  const job::RunSpec& spec_;
  const job::JobConfig& config_;
  std::map<std::string, std::string> adapter_config_;
  Phase phase_ = Phase::kSearch;
  std::unique_ptr<opt::Optimizer> optimizer_;
  std::vector<std::vector<double>> ask_;
  std::vector<double> ask_losses_;
  std::vector<std::vector<double>> ask_gradients_;
  std::vector<bool> ask_filled_;
  std::int64_t pending_ = 0;
  std::int64_t next_seq_ = 0;
  std::int64_t evaluations_ = 0;
  // Selection: the pool's losses, module by module, and the positions kept (empty: all of spec.modules).
  std::vector<double> selection_losses_;
  std::vector<bool> selection_filled_;
  std::vector<std::int64_t> chosen_;
  // Gradient methods: forward + backward passes in forward-equivalents (1 + backward / forward seconds).
  double forward_equivalents_ = 0;
  // Evaluation: one prediction set per composition evaluated (an oracle evaluates several).
  std::vector<std::vector<double>> eval_weights_;
  std::vector<std::vector<std::optional<std::string>>> predictions_;
  struct Slot {
    std::size_t composition = 0;  // evaluation: index into eval_weights_ / predictions_
    std::size_t begin = 0;        // first candidate (fitness) or test example (evaluation)
  };
  std::map<std::int64_t, Slot> slots_;  // seq of each outstanding item
  std::vector<core::NamedArray> composed_;
  std::vector<double> fine_tune_losses_;
  std::optional<std::pair<double, double>> fine_tune_seconds_;  // training, answering
  double worker_seconds_ = 0;
  double started_ = 0, search_done_ = 0;
  std::string start_time_;
  io::RunRecord record_;
};

}  // namespace lorahub::search
