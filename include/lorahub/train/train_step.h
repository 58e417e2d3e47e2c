#pragma once
// What LoRA fine-tuning and the demo world's pretraining share: one optimisation step on a padded batch, the
// learning-rate schedule and CPU bfloat16 autocast.
#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "lorahub/model/t5.h"

namespace lorahub::train {

/// Enables libtorch's CPU autocast (bfloat16) for its lifetime, as Python's `torch.autocast("cpu")` does: it
/// restores the previous state and clears the cast-weight cache when the outermost scope ends.
class CpuAutocastBf16 {
 public:
  explicit CpuAutocastBf16(bool enabled = true);
  ~CpuAutocastBf16();
  CpuAutocastBf16(const CpuAutocastBf16&) = delete;
  CpuAutocastBf16& operator=(const CpuAutocastBf16&) = delete;

 private:
  bool active_ = false;
  bool previous_enabled_ = false;
  int previous_dtype_ = 0;
};

/// One optimisation step on a batch, as both trainers take it: pads `inputs` (pad id) and `labels` (-100), runs
/// the forward (under bf16 autocast when asked) for Hugging Face's token-mean cross-entropy, backpropagates,
/// clips the gradient norm of `params` to `max_grad_norm` (0: no clipping) and steps `optimizer`. The caller sets
/// the learning rates. Returns the loss.
double seq2seq_train_step(model::T5ModelImpl& model, const std::vector<std::vector<std::int64_t>>& inputs,
                          const std::vector<std::vector<std::int64_t>>& labels, torch::optim::Optimizer& optimizer,
                          const std::vector<torch::Tensor>& params, double max_grad_norm, bool autocast_bf16);

/// The linear warm-up / linear decay factor of step `step` (0-based) out of `total`, `warmup` of them warm-up:
/// step / warmup during warm-up, then (total - step) / (total - warmup), never below 0.
double linear_schedule(std::int64_t step, std::int64_t total, std::int64_t warmup);

}  // namespace lorahub::train
