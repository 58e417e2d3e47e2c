#pragma once
// LoraHub's few-shot objective on the model (torch).
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "lorahub/data/example.h"
#include "lorahub/lora/library.h"
#include "lorahub/model/t5.h"
#include "lorahub/text/t5_tokenizer.h"
#include "lorahub/worker/answers.h"

namespace lorahub::worker {

/// The reference objective for one run:
///   loss(w) = Σ_batches HF-token-mean-CE(model + unmerged compose(w)) / number_of_examples + l1 · mean|w|,
/// batches of `batch_size` examples in order (0 = one batch of all, as the reference runs it). Each batch is
/// padded to its own longest example; padding never changes a result. k candidates are evaluated in one
/// forward: the batch is repeated k times and candidate i's rows get its own low-rank path.
class FitnessEvaluator {
 public:
  /// `modules` maps the run's coefficient i to the library stack's module index.
  FitnessEvaluator(model::T5ModelImpl& model, const lora::ModuleStack& library, std::vector<std::size_t> modules,
                   const std::vector<data::Example>& examples, const text::T5Tokenizer& tokenizer, double l1,
                   std::int64_t batch_size);
  /// Tokenizer-free form (benchmarks): example i is input_ids[i] → target_ids[i], token ids as the tokenizer
  /// would give them (EOS included, at most kMaxInputTokens each). Same objective as above.
  FitnessEvaluator(model::T5ModelImpl& model, const lora::ModuleStack& library, std::vector<std::size_t> modules,
                   const std::vector<std::vector<std::int64_t>>& input_ids,
                   const std::vector<std::vector<std::int64_t>>& target_ids, double l1, std::int64_t batch_size);
  /// Objective value per candidate (each [N]); all candidates in one batched forward per example batch.
  /// `positions` (optional) says which of this evaluator's modules the weights are for (then each candidate has
  /// positions.size() weights): a run that selected some of its modules searches only those.
  std::vector<double> evaluate(const std::vector<std::vector<double>>& candidates,
                               const std::vector<std::int64_t>& positions = {});

  /// One candidate's objective and the gradient of its cross-entropy part with respect to the weights (the l1
  /// term is the optimizer's to handle), by one forward and one backward through the frozen model: autograd
  /// records only the path from the weights (no model parameter takes a gradient). The loss equals evaluate()'s
  /// for the same weights bit for bit (same composition order, same forward).
  struct Gradient {
    double loss = 0;                ///< the objective, as evaluate() gives it
    std::vector<double> gradient;   ///< ∇ of the cross-entropy part, [N] (positions.size() with positions)
    double forward_seconds = 0;
    double backward_seconds = 0;
  };
  Gradient evaluate_gradient(const std::vector<double>& weights, const std::vector<std::int64_t>& positions = {});
  /// The cross-entropy part only (objective minus the l1 term) of the last evaluate() call.
  const std::vector<double>& last_cross_entropy() const { return last_ce_; }
  std::size_t num_examples() const { return num_examples_; }
  std::size_t num_modules() const { return modules_.size(); }

 private:
  struct Batch {
    torch::Tensor input_ids, attention_mask, labels, decoder_input_ids;  // on the model's device
  };
  void build_batches(const std::vector<std::vector<std::int64_t>>& inputs,
                     const std::vector<std::vector<std::int64_t>>& targets, std::int64_t batch_size);
  /// The library indices of `positions` (all modules when empty), checked against the weights' size.
  std::vector<std::size_t> modules_at(const std::vector<std::int64_t>& positions, std::size_t weights) const;
  double l1_term(const std::vector<double>& w) const;
  model::T5ModelImpl& model_;
  const lora::ModuleStack& library_;
  std::vector<std::size_t> modules_;
  std::vector<Batch> batches_;
  std::size_t num_examples_ = 0;
  double l1_;
  std::vector<double> last_ce_;
};

}  // namespace lorahub::worker
