#pragma once
// Checks a T5 config against the tensor shapes of a checkpoint before any parameter is allocated.
#include <string>

#include "lorahub/model/checkpoint.h"
#include "lorahub/model/t5_config.h"

namespace lorahub::model::detail {

/// Throws core::Error when `weights` (as read from the files in `files`) cannot hold the parameters that `config`
/// (read from `config_path`) implies: a block count, the gated feed-forward keys, the untied LM head, a missing
/// key, a non-float dtype, or a shape. The message names the config key that disagrees and the tensor and file,
/// e.g. "config.json: vocab_size = 1000000000 but shared.weight in model.safetensors has 32128 rows". After it
/// passes, building the model allocates no more than the checkpoint's tensors hold.
void check_config_against_checkpoint(const T5Config& config, const std::string& config_path,
                                     const StateDict& weights, const KeyFiles& files);

}  // namespace lorahub::model::detail
