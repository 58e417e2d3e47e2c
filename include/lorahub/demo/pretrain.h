#pragma once
// Full training of a T5 with libtorch autograd (`lorahub pretrain`): how the demo world's base model is made.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lorahub/data/example.h"
#include "lorahub/model/t5.h"
#include "lorahub/text/t5_tokenizer.h"

namespace lorahub::demo {

/// Settings of pretrain().
struct PretrainOptions {
  std::int64_t steps = 3000;
  std::int64_t batch_size = 64;
  double lr = 2e-3;
  /// Learning-rate multiplier of every `relative_attention_bias` table: the tiny T5 learns no positional skill
  /// at the global rate (see docs/demo-world.md).
  double relative_bias_lr_factor = 100.0;
  double warmup_ratio = 0.05;  ///< linear warm-up share of the steps, then linear decay to 0
  double weight_decay = 0.0;   ///< AdamW (decoupled) weight decay
  double max_grad_norm = 1.0;  ///< global gradient-norm clipping (0: off)
  std::uint64_t seed = 0;      ///< example order (reshuffled every pass)
  bool autocast_bf16 = false;  ///< bfloat16 autocast for the forward (float32 master weights, loss in float32)
};

/// What pretrain() did.
struct PretrainStats {
  std::int64_t steps = 0;
  double first_loss = 0, last_loss = 0;  ///< loss of the first step, mean loss of the last min(50, steps) steps
  double seconds = 0;
};

/// Trains every parameter of `model` (float32 weights, as loaded or initialised) on `examples` (input → target,
/// prompts already formatted): AdamW (betas 0.9/0.999, eps 1e-8) with two parameter groups (the
/// relative-attention bias tables at lr × relative_bias_lr_factor, everything else at lr), warm-up then linear
/// decay, gradient clipping, Hugging Face's token-mean cross-entropy. Batches are consecutive runs of a seeded
/// shuffle of `examples`, reshuffled each pass. The model is left in eval mode. `on_step(step, loss, lr)` is
/// called after each step when given. core::Error for an empty example set, bad options, a bf16 model, or a
/// non-finite loss (naming the step).
PretrainStats pretrain(model::T5ModelImpl& model, const text::T5Tokenizer& tokenizer,
                       const std::vector<data::Example>& examples, const PretrainOptions& options,
                       const std::function<void(std::int64_t, double, double)>& on_step = {});

}  // namespace lorahub::demo
