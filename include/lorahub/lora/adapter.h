#pragma once
// PEFT LoRA adapters: adapter_config.json + adapter_model.safetensors / adapter_model.bin.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
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
  std::optional<std::string> target_regex;  ///< string form (RE2 syntax): the whole module name must match
  std::vector<std::int64_t> layers_to_transform;  ///< empty: every layer (list form only, as in PEFT)
  std::vector<std::string> layers_pattern;        ///< empty: PEFT's common names ("layers", "h", "block", ...)
  bool fan_in_fan_out = false;
  bool use_rslora = false;
  std::string base_model_name_or_path;
  std::string json_text;  ///< the adapter_config.json content as read

  /// lora_alpha / r, or lora_alpha / sqrt(r) with rsLoRA.
  double scaling() const;
  /// Whether PEFT would put a LoRA layer on the module with this state-dict name: the regex form must match
  /// the whole name (re.fullmatch); the list form matches by name or ".<t>" suffix, then filters by the layer
  /// index that follows a layers pattern. Linear time in the name and pattern (RE2). Uses the patterns that
  /// parse() / compile() compiled; a config whose patterns were set in code and not compiled compiles them on
  /// every call (and throws core::Error for an invalid one).
  bool targets(const std::string& module_name) const;
  /// Compiles target_regex and layers_pattern (RE2, linear-time matching; at most kMaxPatternLength characters
  /// and a bounded compile size each). Throws core::Error naming `source`, the key and the pattern when one is
  /// invalid or unsupported (RE2 has no backreferences or lookaround). parse() calls it.
  void compile(const std::string& source);
  /// Parses and validates adapter_config.json text; `source` names the file in errors. Rejects wrong types,
  /// r outside [1, kMaxRank], lora_alpha outside (0, kMaxAlpha], invalid patterns and PEFT features this
  /// engine does not implement.
  static AdapterConfig parse(const std::string& json_text, const std::string& source);
  /// The adapter_config.json that PEFT writes for this configuration.
  std::string to_json(const std::string& base_model = "") const;

  static constexpr std::int64_t kMaxRank = 65536;           ///< above any T5 width (t5-11b: d_ff 65536)
  static constexpr double kMaxAlpha = 1e6;                  ///< real adapters: 1 to a few hundred
  static constexpr std::size_t kMaxPatternLength = 16384;   ///< characters of one regex

 private:
  struct Patterns;
  std::shared_ptr<const Patterns> patterns_;  // shared by copies; RE2 matching is thread-safe
};

/// One LoRA adapter: per target module, A [r, in] and B [out, r] (float32, CPU).
struct LoraAdapter {
  std::string name;  ///< folder name
  std::string path;
  AdapterConfig config;
  std::map<std::string, std::pair<torch::Tensor, torch::Tensor>> modules;  ///< module name → (A, B)
};

/// Loads a PEFT adapter folder. Keys must be `base_model.model.<module>.lora_{A,B}.weight`, holding finite
/// 2-D float tensors (converted to float32, then checked: NaN or ±Inf is an error); when a model is given,
/// every module must exist in it, be targeted by the config, and fit its shapes. Errors name the adapter
/// folder or file and the key.
LoraAdapter load_adapter(const std::string& dir, const model::T5ModelImpl* model = nullptr);

/// Writes a PEFT adapter folder (adapter_config.json + adapter_model.safetensors) for these tensors.
void save_adapter(const LoraAdapter& adapter, const std::string& dir);

/// PEFT's key for a module's factor: "base_model.model.<module>.lora_A.weight".
std::string peft_key(const std::string& module, bool is_a);

}  // namespace lorahub::lora
