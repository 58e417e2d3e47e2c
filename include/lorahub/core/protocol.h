#pragma once
// The protocol between the coordinator and the workers: the units of work that cross ranks, what comes back,
// and the scheduler interface that produces them. Plain values only (no tensors), serialised to bytes by
// serialize()/deserialize_*().
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lorahub/core/named_array.h"

namespace lorahub::core {

enum class WorkKind : std::int32_t {
  kFitness = 1,   ///< losses of k coefficient vectors for one run's few-shot objective
  kEvaluate = 2,  ///< greedy answers for a shard of one run's test set under one composition (or none)
  kFineTune = 3,  ///< train a LoRA on the run's examples, then answer its whole test set
  kGradient = 4,  ///< losses and gradients (w.r.t. the weights) of k coefficient vectors, one forward + backward each
};


struct WorkItem {
  std::int64_t run = -1;  ///< index into the job's run list (every rank expands the same job)
  std::int64_t seq = 0;   ///< coordinator's id for this item within the run
  WorkKind kind = WorkKind::kFitness;
  std::vector<std::vector<double>> weights;  ///< fitness, gradient: k candidates; evaluate: none (base) or one
  /// Which of the run's modules the weights belong to (positions in its module list); empty: all, in order. A run
  /// that selects its modules first scores all of them, then searches and evaluates the chosen ones.
  std::vector<std::int64_t> modules;
  std::int64_t begin = 0;                    ///< evaluate: test examples [begin, end)
  std::int64_t end = 0;
  bool want_composition = false;             ///< evaluate: also return the composed factors
};

struct WorkResult {
  std::int64_t run = -1;
  std::int64_t seq = 0;
  WorkKind kind = WorkKind::kFitness;
  bool ok = true;
  std::string error;                     ///< why it failed (names the run/task)
  std::vector<double> losses;            ///< fitness, gradient: one objective value per candidate
  std::vector<std::vector<double>> gradients;  ///< gradient: per candidate, ∇ of the objective minus its l1 term
  double forward_seconds = 0;            ///< gradient: the forward passes' part of `seconds`
  double backward_seconds = 0;           ///< gradient: the backward passes' part
  std::vector<std::string> predictions;  ///< evaluate / fine-tune: one answer per test example
  std::vector<NamedArray> arrays;        ///< composed or trained LoRA factors, PEFT key names
  std::vector<double> values;            ///< method-specific numbers (e.g. fine-tuning losses)
  double seconds = 0;                    ///< worker compute time
  double learn_seconds = 0;              ///< fine-tune: the training part of `seconds`
};

/// Hands out work and takes results; implemented by the job driver, run by dist (serially or over MPI).
class Scheduler {
 public:
  virtual ~Scheduler() = default;
  /// The next item to run, or nullopt when nothing is ready right now (results are pending) or all is done.
  virtual std::optional<WorkItem> next() = 0;
  /// A finished item's result (in any order).
  virtual void complete(const WorkResult& result) = 0;
  /// True when every run has finished and been recorded.
  virtual bool done() const = 0;
};

std::string serialize(const WorkItem& item);
std::string serialize(const WorkResult& result);
/// Throw core::Error on truncated or malformed bytes.
WorkItem deserialize_item(std::string_view bytes);
WorkResult deserialize_result(std::string_view bytes);

}  // namespace lorahub::core
