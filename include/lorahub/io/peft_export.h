#pragma once
#include <string>
#include <vector>

#include "lorahub/io/result_store.h"

namespace lorahub::io {

/// How export_peft_adapter writes adapter_config.json.
struct PeftExportOptions {
  /// base_model_name_or_path: this text, or (empty) the run's model_path. A hub-cache snapshot path is written
  /// as its hub id with the commit as `revision`; "org/name@rev" (not an existing path) as org/name + revision.
  std::string base_model;
  /// The PEFT release whose LoraConfig field set adapter_config.json is written for ("0.5", "0.8", "0.14.0", ...;
  /// releases newer than the last one known here get the last known set). Empty, the default: PEFT 0.5's fields,
  /// which every release since reads (0.6-0.13 reject fields they do not know), plus only the later fields whose
  /// value is needed to load the weights correctly (use_rslora: true, which needs PEFT >= 0.8), with a warning.
  /// Given explicitly, a needed field outside that release's set is an error.
  std::string peft_version;
};

/// What export_peft_adapter wrote.
struct PeftExportReport {
  /// The oldest PEFT release that knows every field written ("0.5", or "0.8" with use_rslora). Older releases
  /// either ignore unknown fields (0.5) or reject them (0.6-0.13); from 0.14 they are dropped with a warning.
  std::string min_peft_version;
  std::vector<std::string> dropped_fields;   ///< library adapter_config fields left out of adapter_config.json
  std::vector<std::string> warnings;         ///< also printed through core::log_warn
};

/// LoraConfig + PeftConfig field names of a PEFT release (from PEFT's sources, 0.5.0 up to the last release known
/// here), sorted. Throws naming `version` when it is not "MAJOR.MINOR[.PATCH]" or older than 0.5.
std::vector<std::string> peft_lora_config_fields(const std::string& version);

/// Writes a run's composed LoRA (Â, B̂ under PEFT keys, with the library's r and lora_alpha) as a PEFT adapter
/// folder, loadable by PEFT and by this engine: adapter_config.json (the fields of options.peft_version, sorted
/// keys as PEFT writes them), adapter_model.safetensors, a README.md model card (base model, task, seed, the
/// modules with their weights, few-shot loss and accuracy, versions) and lorahub_composition.json (the same
/// metadata, machine-readable). Throws naming the run when it is not complete, stores no composition (zero-shot,
/// ICL, lora-single runs) or no adapter configuration, or its module names and weights differ in length.
PeftExportReport export_peft_adapter(const RunRecord& run, const std::string& dir, const PeftExportOptions& options = {});

/// The original interface: export_peft_adapter(run, dir, {base_model}).
void export_peft_adapter(const RunRecord& run, const std::string& dir, const std::string& base_model);

}  // namespace lorahub::io
