#include "lorahub/io/peft_export.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/core/safetensors.h"

namespace lorahub::io {
namespace fs = std::filesystem;
using core::fail;

void export_peft_adapter(const RunRecord& run, const std::string& dir, const std::string& base_model) {
  const auto name = core::cat(run.task, "/", run.method, "/seed_", run.seed);
  if (run.status != "complete") fail("run ", name, " is ", run.status, ": ", run.failure_reason);
  if (run.composed.empty()) fail("run ", name, " (", run.method, ") stores no composed adapter");
  nlohmann::json config = nlohmann::json::object();
  for (const auto& [k, v] : run.adapter_config) {
    try {
      config[k] = nlohmann::json::parse(v);
    } catch (const nlohmann::json::exception&) {
      config[k] = v;  // stored as a plain string
    }
  }
  if (!config.contains("r") || !config.contains("lora_alpha")) {
    fail("run ", name, " has no adapter configuration (r, lora_alpha) to export with");
  }
  auto model = run.text_attrs.find("model_path");
  config["base_model_name_or_path"] = !base_model.empty() ? base_model : (model != run.text_attrs.end() ? model->second : "");
  config["inference_mode"] = true;
  config["peft_type"] = "LORA";
  fs::create_directories(dir);
  {
    std::ofstream out(fs::path(dir) / "adapter_config.json");
    // A stored text that is not UTF-8 (a model path from an odd file system) is replaced, not thrown.
    out << config.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    if (!out) fail(dir, ": cannot write adapter_config.json");
  }
  std::vector<core::TensorRef> refs;
  for (const auto& m : run.composed) {
    refs.push_back(core::TensorRef{m.name, core::DType::kF32, m.shape, m.data.data(), m.data.size() * sizeof(float)});
  }
  core::write_safetensors((fs::path(dir) / "adapter_model.safetensors").string(), refs, {{"format", "pt"}});
}

}  // namespace lorahub::io
