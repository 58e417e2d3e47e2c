#pragma once
// The coordinator's side of a job: one state machine per run (optimizer ask/tell, test evaluation,
// fine-tuning) turning results into work items, and the job-wide scheduler over all runs.
// Torch-free: it runs on rank 0, which holds no model.
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lorahub/core/log.h"
#include "lorahub/core/work.h"
#include "lorahub/hub/job.h"
#include "lorahub/io/result_store.h"

namespace lorahub::text {
class T5Tokenizer;
}

namespace lorahub::hub {

/// One run's progress from start to record. Items are numbered per run (seq); results may arrive in
/// any order. Any failed result, or a non-finite loss, fails the run with its reason.
class RunDriver {
 public:
  /// `adapter_config`: the library's adapter_config.json fields (key → JSON text), stored with compositions.
  RunDriver(const RunSpec& spec, const JobConfig& config, const std::map<std::string, std::string>& adapter_config = {});
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
  enum class Phase { kSearch, kEvaluate, kFineTune, kDone };
  std::vector<core::WorkItem> ask_next();
  std::vector<core::WorkItem> start_evaluation();
  std::vector<core::WorkItem> evaluation_items(const std::vector<double>* weights, bool want_composition);
  void finish_evaluation();
  void fail_run(const std::string& reason);
  void finish_record();
  core::WorkItem make_item(core::WorkKind kind);

  const RunSpec& spec_;
  const JobConfig& config_;
  std::map<std::string, std::string> adapter_config_;
  Phase phase_ = Phase::kSearch;
  std::unique_ptr<opt::Optimizer> optimizer_;
  std::vector<std::vector<double>> ask_;
  std::vector<double> ask_losses_;
  std::vector<bool> ask_filled_;
  std::int64_t pending_ = 0;
  std::int64_t next_seq_ = 0;
  std::int64_t evaluations_ = 0;
  // Evaluation: one prediction set per composition evaluated (lora-single evaluates each module).
  std::vector<std::vector<double>> eval_weights_;
  std::vector<std::vector<std::optional<std::string>>> predictions_;
  struct Slot {
    std::size_t composition = 0;  // evaluation: index into eval_weights_ / predictions_
    std::size_t begin = 0;        // first candidate (fitness) or test example (evaluation)
  };
  std::map<std::int64_t, Slot> slots_;  // seq of each outstanding item
  std::vector<io::Matrix> composed_;
  std::vector<double> fine_tune_losses_;
  std::optional<std::pair<double, double>> fine_tune_seconds_;  // training, answering
  double worker_seconds_ = 0;
  double started_ = 0, search_done_ = 0;
  std::string start_time_;
  io::RunRecord record_;
};

/// The job-wide scheduler (core::Scheduler): activates runs up to a limit, hands out their items in
/// order, and passes each finished run's record to `sink` (the result file writer).
class JobDriver : public core::Scheduler {
 public:
  using RecordSink = std::function<void(const io::RunRecord&)>;
  /// `skip`: run ids already complete in the output (resume). `tokenizer` (optional) counts prompt tokens.
  JobDriver(const std::vector<RunSpec>& runs, const JobConfig& config, RecordSink sink,
            const std::set<std::int64_t>& skip = {}, const text::T5Tokenizer* tokenizer = nullptr,
            std::int64_t workers = 1);
  ~JobDriver() override;

  std::optional<core::WorkItem> next() override;
  void complete(const core::WorkResult& result) override;
  bool done() const override;

  std::int64_t runs_total() const { return total_; }
  std::int64_t runs_done() const { return done_; }
  std::int64_t runs_failed() const { return failed_; }
  std::int64_t evaluations() const { return evaluations_; }

 private:
  void activate();
  void finish(std::int64_t run);

  const std::vector<RunSpec>& runs_;
  const JobConfig& config_;
  RecordSink sink_;
  const text::T5Tokenizer* tokenizer_;
  std::map<std::string, std::string> adapter_config_;
  std::deque<std::int64_t> waiting_;
  std::map<std::int64_t, std::unique_ptr<RunDriver>> active_;
  std::deque<core::WorkItem> ready_;
  std::int64_t max_active_;
  std::int64_t total_ = 0, done_ = 0, failed_ = 0, evaluations_ = 0;
  std::int64_t outstanding_ = 0;
  core::Progress progress_;
};

/// Software version string stored in result files.
std::string software_version();

/// The fields of a library's adapter_config.json (its first module's), key → JSON text; empty without one.
std::map<std::string, std::string> library_adapter_config(const std::string& library);

}  // namespace lorahub::hub
