#pragma once
// LoRA fine-tuning with libtorch autograd: the paper's "LoRA fine-tuning" baseline and `lorahub train-lora`.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lorahub/data/example.h"
#include "lorahub/hub/job.h"
#include "lorahub/lora/adapter.h"
#include "lorahub/model/t5.h"
#include "lorahub/text/t5_tokenizer.h"

namespace lorahub::hub {

/// Trains a fresh LoRA (A kaiming-uniform as PEFT initialises it, B = 0) on `examples` with the base frozen:
/// AdamW, linear decay to 0 after `warmup_ratio`, gradient-norm clipping, LoRA dropout, HF token-mean loss,
/// examples shuffled each epoch with `seed`. The model is left as it was (eval mode, no additions).
/// `on_step(step, loss)` is called after each optimizer step when given. Returns the adapter (float32, CPU).
struct TrainOptions {
  FineTuneConfig lora;
  double warmup_ratio = 0.0;
  std::uint64_t seed = 0;
  std::int64_t max_steps = 0;  ///< > 0: stop after this many steps (overrides epochs)
};
lora::LoraAdapter train_lora(model::T5ModelImpl& model, const text::T5Tokenizer& tokenizer,
                             const std::vector<data::Example>& examples, const TrainOptions& options,
                             const std::function<void(std::int64_t, double)>& on_step = {});

}  // namespace lorahub::hub
