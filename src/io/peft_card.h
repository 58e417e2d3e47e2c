#pragma once
// The human (README.md) and machine (lorahub_composition.json) descriptions of an exported adapter.
#include <string>

#include <nlohmann/json.hpp>

#include "lorahub/io/peft_export.h"
#include "lorahub/io/result_store.h"

namespace lorahub::io {

/// What the card and the metadata file describe.
struct CardInputs {
  const RunRecord& run;
  const nlohmann::json& adapter_config;  ///< as written to adapter_config.json
  std::string base_model;                ///< base_model_name_or_path ("" when unknown)
  std::string base_revision;             ///< "" when none
  bool base_is_hub_id = false;           ///< base_model is a hub id (goes into the card's YAML header)
  const PeftExportReport& report;
  std::string requested_peft_version;    ///< the explicit field-set release, "" for the default
};

/// README.md: YAML header (library_name: peft, base_model when a hub id, tags) and the composition in prose and
/// tables: base model, task, method, seed, modules with weights, few-shot loss, accuracy, versions, usage.
std::string model_card(const CardInputs& in);

/// lorahub_composition.json: format name and version, lorahub-hpc versions, the run key, base model, modules
/// with weights (null when the run stores none), loss and accuracy (null when not measured), LoRA settings and
/// the PEFT field set written.
nlohmann::json composition_json(const CardInputs& in);

}  // namespace lorahub::io
