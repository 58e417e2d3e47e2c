#pragma once
// LoRA fine-tuning with libtorch autograd: the paper's "LoRA fine-tuning" baseline and `lorahub train-lora`.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lorahub/data/example.h"
#include "lorahub/job/config.h"
#include "lorahub/lora/adapter.h"
#include "lorahub/model/t5.h"
#include "lorahub/text/t5_tokenizer.h"

namespace lorahub::train {

/// Trains a fresh LoRA (A kaiming-uniform as PEFT initialises it, B = 0) on `examples` with the base frozen:
/// AdamW, linear decay to 0 after `warmup_ratio`, gradient-norm clipping, LoRA dropout, HF token-mean loss,
/// examples shuffled each epoch with `seed` (A drawn from `init_seed` when set, else from `seed`), the forward in
/// bfloat16 autocast when `autocast_bf16`. The model is left as it was (eval mode, no additions).
/// `on_step(step, loss)` is called after each optimizer step when given. Returns the adapter (float32, CPU).
struct TrainOptions {
  job::FineTuneConfig lora;
  double warmup_ratio = 0.0;
  std::uint64_t seed = 0;
  std::int64_t max_steps = 0;  ///< > 0: stop after this many steps (overrides epochs)
  /// Seed of A's initialisation when set (modules of one library can share A); unset: `seed`.
  std::optional<std::uint64_t> init_seed;
  bool autocast_bf16 = false;  ///< CPU bfloat16 autocast for the forward (float32 factors and loss)
};
lora::LoraAdapter train_lora(model::T5ModelImpl& model, const text::T5Tokenizer& tokenizer,
                             const std::vector<data::Example>& examples, const TrainOptions& options,
                             const std::function<void(std::int64_t, double)>& on_step = {});

}  // namespace lorahub::train
