#pragma once
#include <string>

#include "lorahub/io/result_store.h"

namespace lorahub::io {

/// Writes a run's composed LoRA (Â, B̂ under PEFT keys, with the library's r and lora_alpha) as a PEFT adapter
/// folder: adapter_config.json + adapter_model.safetensors, loadable by PEFT and by this engine. The base model
/// recorded is `base_model`, or the run's model_path. Throws naming the run when it is not complete or stores no
/// composition (zero-shot, ICL, lora-single runs) or no adapter configuration.
void export_peft_adapter(const RunRecord& run, const std::string& dir, const std::string& base_model = "");

}  // namespace lorahub::io
