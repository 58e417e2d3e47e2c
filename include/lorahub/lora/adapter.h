#pragma once
// PEFT LoRA adapters: adapter_config.json + adapter_model.safetensors / adapter_model.bin.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace lorahub::model {
class T5ModelImpl;
}

namespace lorahub::lora {

/// The PEFT `LoraConfig` fields this engine honours.
struct AdapterConfig {
  std::int64_t r = 8;
  double lora_alpha = 8;
  double lora_dropout = 0.0;
  std::vector<std::string> target_modules;  ///< list form: a module matches when its name ends in ".<t>" or is <t>
  std::optional<std::string> target_regex;  ///< string form: the whole module name must match
  std::vector<std::int64_t> layers_to_transform;  ///< empty: every layer
  std::optional<std::string> layers_pattern;
  bool fan_in_fan_out = false;
  bool use_rslora = false;
  std::string base_model_name_or_path;
  std::string json_text;  ///< the adapter_config.json content as read

  /// lora_alpha / r, or lora_alpha / sqrt(r) with rsLoRA.
  double scaling() const;
  /// Whether PEFT would put a LoRA layer on the module with this state-dict name.
  bool targets(const std::string& module_name) const;
  /// Parses adapter_config.json text; `source` names the file in errors.
  static AdapterConfig parse(const std::string& json_text, const std::string& source);
  /// The adapter_config.json that PEFT writes for this configuration.
  std::string to_json(const std::string& base_model = "") const;
};

/// One LoRA adapter: per target module, A [r, in] and B [out, r] (float32, CPU).
struct LoraAdapter {
  std::string name;  ///< folder name
  std::string path;
  AdapterConfig config;
  std::map<std::string, std::pair<torch::Tensor, torch::Tensor>> modules;  ///< module name → (A, B)
};

/// Loads a PEFT adapter folder. Keys must be `base_model.model.<module>.lora_{A,B}.weight`; when a model is
/// given, every module must exist in it, be targeted by the config, and fit its shapes. Errors name the
/// adapter folder and the key.
LoraAdapter load_adapter(const std::string& dir, const model::T5ModelImpl* model = nullptr);

/// Writes a PEFT adapter folder (adapter_config.json + adapter_model.safetensors) for these tensors.
void save_adapter(const LoraAdapter& adapter, const std::string& dir);

/// PEFT's key for a module's factor: "base_model.model.<module>.lora_A.weight".
std::string peft_key(const std::string& module, bool is_a);

}  // namespace lorahub::lora
