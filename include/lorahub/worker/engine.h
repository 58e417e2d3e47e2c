#pragma once
// What every worker holds in memory for a whole job: the model, its tokenizer and (when a method needs it) the
// LoRA library, loaded once.
#include <optional>

#include <torch/torch.h>

#include "lorahub/job/config.h"
#include "lorahub/lora/library.h"
#include "lorahub/model/t5.h"
#include "lorahub/text/t5_tokenizer.h"

namespace lorahub::worker {

struct Engine {
  model::T5Model model{nullptr};
  std::optional<text::T5Tokenizer> tokenizer;
  std::optional<lora::LoraLibrary> library;
  std::optional<lora::ModuleStack> stack;  ///< the library's factors on the model's device (float32)

  /// Loads what `config` names (model.path, tokenizer, library.path when a method needs it) onto `device`.
  static Engine load(const job::JobConfig& config, torch::Device device);
};

/// The runtime of `config`'s [model] section on `device`.
model::RuntimeOptions runtime_options(const job::JobConfig& config, torch::Device device);

}  // namespace lorahub::worker
