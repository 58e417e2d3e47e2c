#include "lorahub/io/peft_export.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "io/peft_card.h"
#include "lorahub/core/error.h"
#include "lorahub/core/hf_cache.h"
#include "lorahub/core/log.h"
#include "lorahub/core/safetensors.h"

namespace lorahub::io {
namespace fs = std::filesystem;
using core::cat;
using core::fail;
using nlohmann::json;

namespace {

// The PEFT 0.x releases that added LoraConfig / PeftConfig fields, read from the dataclasses at PEFT's git tags
// v0.5.0 ... v0.20.0 (minor releases in between added none). Fields have only ever been added.
struct Release {
  int minor;
  std::vector<const char*> added;
};

const std::vector<Release>& releases() {
  static const std::vector<Release> all = {
      {5,
       {"auto_mapping", "base_model_name_or_path", "bias", "fan_in_fan_out", "inference_mode", "init_lora_weights",
        "layers_pattern", "layers_to_transform", "lora_alpha", "lora_dropout", "modules_to_save", "peft_type", "r",
        "revision", "target_modules", "task_type"}},
      {6, {"alpha_pattern", "rank_pattern"}},
      {7, {"loftq_config", "megatron_config", "megatron_core"}},
      {8, {"use_rslora"}},
      {9, {"use_dora"}},
      {10, {"layer_replication"}},
      {12, {"runtime_config"}},
      {14, {"eva_config", "exclude_modules", "lora_bias"}},
      {15, {"corda_config", "trainable_token_indices"}},
      {16, {"qalora_group_size", "use_qalora"}},
      {17, {"target_parameters"}},
      {18, {"alora_invocation_tokens", "arrow_config", "ensure_weight_tying", "peft_version"}},
      {19, {"lora_ga_config", "use_bdlora"}},
      {20, {"monteclora_config", "velora_config"}},
  };
  return all;
}

constexpr int kOldestMinor = 5;
constexpr int kRsloraMinor = 8;

// The 0.x minor release a version text stands for; any 1.x or later counts as newer than every known release.
int parse_minor(const std::string& text) {
  std::string t = !text.empty() && text.front() == 'v' ? text.substr(1) : text;
  std::vector<std::string> parts;
  std::size_t begin = 0;
  while (true) {
    auto dot = t.find('.', begin);
    parts.push_back(t.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin));
    if (dot == std::string::npos) break;
    begin = dot + 1;
  }
  auto numeric = [](const std::string& s) {
    return !s.empty() && s.size() < 6 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (parts.size() < 2 || !numeric(parts[0]) || !numeric(parts[1]) || (parts.size() > 2 && !numeric(parts[2]))) {
    fail("peft_version '", text, "' is not a PEFT release (MAJOR.MINOR[.PATCH], e.g. 0.5 or 0.14.0)");
  }
  const int major = std::stoi(parts[0]);
  const int minor = std::stoi(parts[1]);
  if (major > 0) return INT_MAX;
  if (minor < kOldestMinor) fail("peft_version '", text, "': PEFT releases before 0.5 are not supported");
  return minor;
}

std::string minor_text(int minor) {
  return minor == INT_MAX ? cat("0.", releases().back().minor, "+") : cat("0.", minor);
}

std::set<std::string> fields_up_to(int minor) {
  std::set<std::string> out;
  for (const auto& r : releases()) {
    if (r.minor <= minor) out.insert(r.added.begin(), r.added.end());
  }
  return out;
}

std::optional<int> introduced_in(const std::string& field) {
  for (const auto& r : releases()) {
    for (const char* f : r.added) {
      if (field == f) return r.minor;
    }
  }
  return std::nullopt;
}

// Values that leave an adapter as PEFT 0.5 would build it, so leaving the field out changes nothing. Every other
// value of a post-0.5 field (except use_rslora) is one this engine does not apply when composing, so the
// exported weights were computed without it either way.
bool neutral(const std::string& key, const json& v) {
  if (v.is_null() || (v.is_boolean() && !v.get<bool>())) return true;
  if ((v.is_object() || v.is_array() || v.is_string()) && v.empty()) return true;
  if (key == "megatron_core") return v == "megatron.core";
  // Metadata of the saving PEFT release, runtime-only settings, and a size that only matters with use_qalora.
  return key == "peft_version" || key == "runtime_config" || key == "qalora_group_size";
}

// Library adapter_config values are JSON text or plain strings (see RunRecord::adapter_config).
json library_config(const RunRecord& run) {
  json config = json::object();
  for (const auto& [k, v] : run.adapter_config) {
    json parsed = json::parse(v, nullptr, false);
    config[k] = parsed.is_discarded() ? json(v) : parsed;
  }
  return config;
}

struct BaseModel {
  std::string name;  ///< base_model_name_or_path
  json revision;     ///< a string, or null
  bool hub = false;  ///< name is a hub id (not a local path)
};

BaseModel base_model_of(const RunRecord& run, const std::string& given) {
  BaseModel out;
  auto model = run.text_attrs.find("model_path");
  out.name = !given.empty() ? given : (model != run.text_attrs.end() ? model->second : "");
  out.revision = nullptr;
  if (out.name.empty()) return out;
  std::error_code ec;
  if (auto id = core::hub_id_of_snapshot_path(out.name)) {
    out = {id->repo_id, id->revision, true};
  } else if (!fs::exists(out.name, ec)) {
    if (auto parsed = core::parse_hub_id(out.name)) {
      out.name = parsed->repo_id;
      if (!parsed->revision.empty()) out.revision = parsed->revision;
      out.hub = true;
    }
  }
  return out;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) fail(path.string(), ": cannot write");
}

}  // namespace

std::vector<std::string> peft_lora_config_fields(const std::string& version) {
  auto fields = fields_up_to(parse_minor(version));
  return {fields.begin(), fields.end()};
}

PeftExportReport export_peft_adapter(const RunRecord& run, const std::string& dir, const PeftExportOptions& options) {
  const auto name = cat(run.task, "/", run.method, "/seed_", run.seed);
  if (run.status != "complete") fail("run ", name, " is ", run.status, ": ", run.failure_reason);
  if (run.composed.empty()) fail("run ", name, " (", run.method, ") stores no composed adapter");
  if (!run.best_weights.empty() && run.best_weights.size() != run.module_names.size()) {
    fail("run ", name, " has ", run.module_names.size(), " module names but ", run.best_weights.size(), " weights");
  }
  const json library = library_config(run);
  if (!library.contains("r") || !library.contains("lora_alpha")) {
    fail("run ", name, " has no adapter configuration (r, lora_alpha) to export with");
  }
  const bool explicit_target = !options.peft_version.empty();
  const int target = explicit_target ? parse_minor(options.peft_version) : kOldestMinor;
  const auto allowed = fields_up_to(target);

  PeftExportReport report;
  // PEFT 0.5's defaults for what the library leaves out, so the file reads as PEFT's own save_pretrained output.
  json config = {{"auto_mapping", nullptr}, {"bias", "none"},          {"fan_in_fan_out", false},
                 {"init_lora_weights", true}, {"layers_pattern", nullptr}, {"layers_to_transform", nullptr},
                 {"lora_dropout", 0.0},      {"modules_to_save", nullptr}, {"task_type", nullptr}};
  for (const auto& [key, value] : library.items()) {
    if (allowed.count(key)) {
      config[key] = value;
    } else if (key == "use_rslora" && value == true) {
      // rsLoRA scales by lora_alpha/sqrt(r); without the field PEFT would apply lora_alpha/r to these weights.
      if (explicit_target) {
        fail("run ", name, ": the library uses rsLoRA (use_rslora: true), which PEFT ", minor_text(target),
             " cannot express (PEFT >= 0.", kRsloraMinor, " reads it); export for peft_version 0.", kRsloraMinor,
             " or later");
      }
      config[key] = value;
      report.warnings.push_back(cat("run ", name, ": adapter_config.json keeps use_rslora: true, so it needs PEFT >= 0.",
                                    kRsloraMinor, " (PEFT 0.5-0.7 would apply lora_alpha/r, or reject the field)"));
    } else {
      report.dropped_fields.push_back(key);
      if (neutral(key, value)) continue;
      auto since = introduced_in(key);
      report.warnings.push_back(cat(
          "run ", name, ": adapter_config field ", key, " = ", value.dump(), " is left out: ",
          since ? cat("PEFT ", minor_text(target), " does not know it (PEFT >= ", minor_text(*since), " does)")
                : std::string("it is no LoraConfig field of any PEFT release known here"),
          ", and this engine composed the weights without it"));
    }
  }
  const BaseModel base = base_model_of(run, options.base_model);
  config["base_model_name_or_path"] = base.name.empty() ? json(nullptr) : json(base.name);
  config["revision"] = base.revision;
  config["inference_mode"] = true;
  config["peft_type"] = "LORA";

  int needs = kOldestMinor;
  for (const auto& [key, value] : config.items()) needs = std::max(needs, introduced_in(key).value_or(kOldestMinor));
  report.min_peft_version = minor_text(needs);

  fs::create_directories(dir);
  // A stored text that is not UTF-8 (a model path from an odd file system) is replaced, not thrown.
  write_text(fs::path(dir) / "adapter_config.json",
             config.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  std::vector<core::TensorRef> refs;
  for (const auto& m : run.composed) {
    refs.push_back(core::TensorRef{m.name, core::DType::kF32, m.shape, m.data.data(), m.data.size() * sizeof(float)});
  }
  core::write_safetensors((fs::path(dir) / "adapter_model.safetensors").string(), refs, {{"format", "pt"}});

  CardInputs card{run, config, base.name, base.revision.is_null() ? "" : base.revision.get<std::string>(), base.hub,
                  report, explicit_target ? minor_text(target) : std::string()};
  write_text(fs::path(dir) / "lorahub_composition.json", composition_json(card).dump(2) + "\n");
  write_text(fs::path(dir) / "README.md", model_card(card));
  for (const auto& w : report.warnings) core::log_warn(w);
  return report;
}

void export_peft_adapter(const RunRecord& run, const std::string& dir, const std::string& base_model) {
  PeftExportOptions options;
  options.base_model = base_model;
  export_peft_adapter(run, dir, options);
}

}  // namespace lorahub::io
