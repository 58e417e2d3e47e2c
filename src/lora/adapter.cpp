#include "lorahub/lora/adapter.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "lorahub/core/error.h"
#include "lorahub/core/log.h"
#include "lorahub/model/checkpoint.h"
#include "lorahub/model/t5.h"

namespace lorahub::lora {
namespace fs = std::filesystem;
using core::fail;

namespace {
const std::string kPrefix = "base_model.model.";
const std::string kSuffixA = ".lora_A.weight";
const std::string kSuffixB = ".lora_B.weight";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) fail(p.string(), ": cannot open");
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}
}  // namespace

std::string peft_key(const std::string& module, bool is_a) {
  return kPrefix + module + (is_a ? kSuffixA : kSuffixB);
}

double AdapterConfig::scaling() const {
  return use_rslora ? lora_alpha / std::sqrt(static_cast<double>(r)) : lora_alpha / static_cast<double>(r);
}

bool AdapterConfig::targets(const std::string& module_name) const {
  bool match = false;
  if (target_regex) {
    match = std::regex_match(module_name, std::regex(*target_regex));
  } else {
    for (const auto& t : target_modules) {
      if (module_name == t || ends_with(module_name, "." + t)) {
        match = true;
        break;
      }
    }
  }
  if (!match || layers_to_transform.empty()) return match;
  // PEFT: the layer index follows the layers pattern; without one, the common names are tried in
  // PEFT's order, so "block" wins over the "layer" of T5's "block.1.layer.0".
  std::vector<std::string> patterns = {"layers", "h", "block", "blocks", "layer"};
  if (layers_pattern) patterns = {*layers_pattern};
  std::smatch m;
  bool found = false;
  for (const auto& p : patterns) {
    if (std::regex_match(module_name, m, std::regex(".*\\." + p + "\\.(\\d+)\\..*"))) {
      found = true;
      break;
    }
  }
  if (!found) return false;
  auto index = std::stoll(m[1].str());
  for (auto l : layers_to_transform) {
    if (l == index) return true;
  }
  return false;
}

AdapterConfig AdapterConfig::parse(const std::string& json_text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    fail(source, ": invalid JSON: ", e.what());
  }
  if (!j.is_object()) fail(source, ": expected a JSON object");
  AdapterConfig c;
  c.json_text = json_text;
  if (j.contains("peft_type") && j["peft_type"] != "LORA") {
    fail(source, ": peft_type is ", j["peft_type"].dump(), "; only LORA adapters are supported");
  }
  auto need_number = [&](const char* key) -> const nlohmann::json& {
    if (!j.contains(key) || !j[key].is_number()) fail(source, ": key '", key, "' is missing or not a number");
    return j[key];
  };
  if (!need_number("r").is_number_integer() || j["r"].get<std::int64_t>() <= 0) {
    fail(source, ": key 'r' must be a positive integer, got ", j["r"].dump());
  }
  c.r = j["r"].get<std::int64_t>();
  c.lora_alpha = need_number("lora_alpha").get<double>();
  if (j.contains("lora_dropout") && j["lora_dropout"].is_number()) c.lora_dropout = j["lora_dropout"].get<double>();
  if (!j.contains("target_modules") || j["target_modules"].is_null()) {
    fail(source, ": key 'target_modules' is missing (this engine needs the explicit list, e.g. [\"q\", \"v\"])");
  }
  const auto& tm = j["target_modules"];
  if (tm.is_string()) {
    c.target_regex = tm.get<std::string>();
    try {
      std::regex check(*c.target_regex);
    } catch (const std::regex_error& e) {
      fail(source, ": target_modules regex '", *c.target_regex, "' is invalid: ", e.what());
    }
  } else if (tm.is_array()) {
    for (const auto& t : tm) {
      if (!t.is_string()) fail(source, ": target_modules entries must be strings, got ", t.dump());
      c.target_modules.push_back(t.get<std::string>());
    }
    if (c.target_modules.empty()) fail(source, ": target_modules is empty");
  } else {
    fail(source, ": target_modules must be a list or a regex string, got ", tm.dump());
  }
  if (j.contains("layers_to_transform") && !j["layers_to_transform"].is_null()) {
    const auto& l = j["layers_to_transform"];
    if (l.is_number_integer()) {
      c.layers_to_transform.push_back(l.get<std::int64_t>());
    } else if (l.is_array()) {
      for (const auto& x : l) {
        if (!x.is_number_integer()) fail(source, ": layers_to_transform entries must be integers");
        c.layers_to_transform.push_back(x.get<std::int64_t>());
      }
    } else {
      fail(source, ": layers_to_transform must be an integer or a list");
    }
  }
  if (j.contains("layers_pattern") && j["layers_pattern"].is_string()) {
    c.layers_pattern = j["layers_pattern"].get<std::string>();
  }
  if (j.contains("fan_in_fan_out") && j["fan_in_fan_out"].is_boolean()) c.fan_in_fan_out = j["fan_in_fan_out"].get<bool>();
  if (j.contains("use_rslora") && j["use_rslora"].is_boolean()) c.use_rslora = j["use_rslora"].get<bool>();
  if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string()) {
    c.base_model_name_or_path = j["base_model_name_or_path"].get<std::string>();
  }
  if (j.contains("modules_to_save") && !j["modules_to_save"].is_null() &&
      !(j["modules_to_save"].is_array() && j["modules_to_save"].empty())) {
    fail(source, ": modules_to_save ", j["modules_to_save"].dump(),
         " is not supported (the adapter would replace whole modules, not add LoRA factors)");
  }
  if (j.contains("use_dora") && j["use_dora"].is_boolean() && j["use_dora"].get<bool>()) {
    fail(source, ": DoRA adapters (use_dora: true) are not supported");
  }
  return c;
}

std::string AdapterConfig::to_json(const std::string& base_model) const {
  nlohmann::json j = {{"peft_type", "LORA"},
                      {"task_type", "SEQ_2_SEQ_LM"},
                      {"r", r},
                      {"lora_alpha", lora_alpha},
                      {"lora_dropout", lora_dropout},
                      {"bias", "none"},
                      {"fan_in_fan_out", false},
                      {"inference_mode", true},
                      {"init_lora_weights", true},
                      {"modules_to_save", nullptr},
                      {"layers_to_transform", nullptr},
                      {"layers_pattern", nullptr},
                      {"revision", nullptr},
                      {"auto_mapping", nullptr},
                      {"use_rslora", use_rslora},
                      {"base_model_name_or_path", base_model.empty() ? base_model_name_or_path : base_model}};
  if (target_regex) {
    j["target_modules"] = *target_regex;
  } else {
    j["target_modules"] = target_modules;
  }
  if (!layers_to_transform.empty()) j["layers_to_transform"] = layers_to_transform;
  if (layers_pattern) j["layers_pattern"] = *layers_pattern;
  if (std::floor(lora_alpha) == lora_alpha) j["lora_alpha"] = static_cast<std::int64_t>(lora_alpha);
  return j.dump(2);
}

LoraAdapter load_adapter(const std::string& dir, const model::T5ModelImpl* model) {
  fs::path root(dir);
  if (!fs::is_directory(root)) fail(dir, ": not an adapter folder (expected adapter_config.json + adapter_model.*)");
  LoraAdapter adapter;
  adapter.path = dir;
  adapter.name = root.filename().empty() ? root.parent_path().filename().string() : root.filename().string();
  auto config_path = root / "adapter_config.json";
  if (!fs::exists(config_path)) fail(dir, ": adapter_config.json is missing");
  adapter.config = AdapterConfig::parse(read_text(config_path), config_path.string());
  const auto& cfg = adapter.config;
  if (cfg.fan_in_fan_out) {
    // PEFT does the same for nn.Linear targets: the flag only applies to GPT-2's Conv1D.
    core::log_warn(dir + ": fan_in_fan_out is true but T5 projections are nn.Linear; ignoring it as PEFT does");
  }

  model::StateDict weights = model::load_adapter_weights(dir);
  std::map<std::string, torch::Tensor> a_by_module, b_by_module;
  for (const auto& [key, tensor] : weights) {
    bool is_a = ends_with(key, kSuffixA);
    bool is_b = ends_with(key, kSuffixB);
    if (key.rfind(kPrefix, 0) != 0 || (!is_a && !is_b)) {
      fail(dir, ": unexpected key '", key, "' (expected base_model.model.<module>.lora_A.weight / lora_B.weight)");
    }
    std::string module = key.substr(kPrefix.size(), key.size() - kPrefix.size() - kSuffixA.size());
    if (!tensor.is_floating_point() || tensor.dim() != 2) {
      fail(dir, ": key '", key, "' must be a 2-D float tensor, got ", tensor.scalar_type(), " ", tensor.sizes());
    }
    auto t = tensor.to(torch::kCPU, torch::kFloat32).contiguous().clone();
    (is_a ? a_by_module : b_by_module)[module] = t;
  }
  if (a_by_module.empty()) fail(dir, ": the adapter holds no LoRA weights");
  for (const auto& [module, a] : a_by_module) {
    auto it = b_by_module.find(module);
    if (it == b_by_module.end()) fail(dir, ": key '", peft_key(module, false), "' is missing (lora_A has no lora_B)");
    const auto& b = it->second;
    if (a.size(0) != cfg.r) {
      fail(dir, ": key '", peft_key(module, true), "' has shape ", a.sizes(), " but r = ", cfg.r);
    }
    if (b.size(1) != cfg.r) {
      fail(dir, ": key '", peft_key(module, false), "' has shape ", b.sizes(), " but r = ", cfg.r);
    }
    if (!cfg.targets(module)) {
      fail(dir, ": module '", module, "' has LoRA weights but is not matched by target_modules");
    }
    if (model) {
      auto proj = model->projection(module);  // throws naming the module
      if (a.size(1) != proj->in_features() || b.size(0) != proj->out_features()) {
        fail(dir, ": module '", module, "' has A ", a.sizes(), " and B ", b.sizes(), ", the model needs A [", cfg.r,
             ", ", proj->in_features(), "] and B [", proj->out_features(), ", ", cfg.r, "]");
      }
    }
    adapter.modules[module] = {a, b};
  }
  for (const auto& [module, b] : b_by_module) {
    if (!a_by_module.count(module)) fail(dir, ": key '", peft_key(module, true), "' is missing (lora_B has no lora_A)");
  }
  if (model) {
    for (const auto& name : model->projection_names()) {
      if (cfg.targets(name) && !adapter.modules.count(name)) {
        fail(dir, ": module '", name, "' matches target_modules but the adapter has no weights for it");
      }
    }
  }
  return adapter;
}

void save_adapter(const LoraAdapter& adapter, const std::string& dir) {
  fs::create_directories(dir);
  {
    std::ofstream out(fs::path(dir) / "adapter_config.json");
    out << adapter.config.to_json() << "\n";
    if (!out) fail(dir, ": cannot write adapter_config.json");
  }
  model::StateDict dict;
  for (const auto& [module, ab] : adapter.modules) {
    dict[peft_key(module, true)] = ab.first.to(torch::kCPU, torch::kFloat32).contiguous();
    dict[peft_key(module, false)] = ab.second.to(torch::kCPU, torch::kFloat32).contiguous();
  }
  model::save_safetensors((fs::path(dir) / "adapter_model.safetensors").string(), dict, {{"format", "pt"}});
}

}  // namespace lorahub::lora
