// PEFT export without torch: adapter_config.json field sets per PEFT release, the weights, the model card and
// the composition metadata. (tests/hub/export_test.cpp checks the exported weights against PEFT's own.)
#include "lorahub/io/peft_export.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "io/run_fixtures.h"
#include "lorahub/core/error.h"
#include "lorahub/core/safetensors.h"
#include "support/errors.h"

namespace lorahub::io {
namespace {
namespace fs = std::filesystem;
using lorahub::test::error_text;
using nlohmann::json;

// Every field of PEFT 0.5.0's LoraConfig and PeftConfig (src/peft/tuners/lora.py, src/peft/config.py at tag
// v0.5.0), written out here independently of the exporter's own table.
const std::set<std::string> kPeft05Fields = {
    "auto_mapping", "base_model_name_or_path", "bias", "fan_in_fan_out", "inference_mode", "init_lora_weights",
    "layers_pattern", "layers_to_transform", "lora_alpha", "lora_dropout", "modules_to_save", "peft_type", "r",
    "revision", "target_modules", "task_type"};

json read_json(const fs::path& p) { return json::parse(test::read_bytes(p.string())); }

std::set<std::string> keys(const json& j) {
  std::set<std::string> out;
  for (const auto& [k, v] : j.items()) out.insert(k);
  return out;
}

// A composed lorahub run whose library config carries fields from PEFT releases after 0.5, as a library
// saved by a recent PEFT does.
RunRecord recent_library_run() {
  RunRecord r = test::make_run("boolean_expressions", "lorahub", 3);
  r.text_attrs["model_path"] = "google/flan-t5-large";
  r.text_attrs["software_version"] = "lorahub-hpc 0.1.0";
  r.adapter_config["task_type"] = "\"SEQ_2_SEQ_LM\"";
  r.adapter_config["use_rslora"] = "false";
  r.adapter_config["use_dora"] = "false";
  r.adapter_config["rank_pattern"] = "{}";
  r.adapter_config["alpha_pattern"] = "{}";
  r.adapter_config["megatron_core"] = "\"megatron.core\"";
  r.adapter_config["layer_replication"] = "null";
  r.adapter_config["runtime_config"] = "{\"ephemeral_gpu_offload\": false}";
  r.adapter_config["lora_bias"] = "false";
  r.adapter_config["peft_version"] = "\"0.15.2\"";
  return r;
}

TEST(PeftExport, DefaultWritesOnlyFieldsPeft05Knows) {
  test::TempDir tmp;
  const RunRecord run = recent_library_run();
  auto report = export_peft_adapter(run, tmp.file("out"));
  const json config = read_json(tmp.file("out/adapter_config.json"));
  for (const auto& k : keys(config)) EXPECT_TRUE(kPeft05Fields.count(k)) << "PEFT 0.5 does not know '" << k << "'";
  // What PEFT 0.5's save_pretrained writes: all of its fields.
  EXPECT_EQ(keys(config), kPeft05Fields);
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["task_type"], "SEQ_2_SEQ_LM");
  EXPECT_EQ(config["inference_mode"], true);
  EXPECT_EQ(config["r"], 4);
  EXPECT_EQ(config["lora_alpha"], 32);
  EXPECT_EQ(config["lora_dropout"], 0.1);
  EXPECT_EQ(config["target_modules"], json::array({"q", "v"}));
  EXPECT_EQ(config["base_model_name_or_path"], "google/flan-t5-large");
  EXPECT_TRUE(config["revision"].is_null());
  EXPECT_EQ(report.min_peft_version, "0.5");
  EXPECT_EQ(std::set<std::string>(report.dropped_fields.begin(), report.dropped_fields.end()),
            (std::set<std::string>{"alpha_pattern", "layer_replication", "lora_bias", "megatron_core", "peft_version",
                                   "rank_pattern", "runtime_config", "use_dora", "use_rslora"}));
  EXPECT_TRUE(report.warnings.empty()) << report.warnings.front();  // every dropped value was neutral
  // Keys sorted, as PEFT writes them, so the file diffs cleanly against PEFT's own.
  const std::string text = test::read_bytes(tmp.file("out/adapter_config.json"));
  EXPECT_LT(text.find("\"auto_mapping\""), text.find("\"task_type\""));
}

TEST(PeftExport, ConfigIsWhatPeftWroteForTheFixture) {
  // The fixture's lora_composed/adapter_config.json was saved by PEFT itself; the library config enters the
  // run record as hub::library_adapter_config stores it (each value as JSON text).
  const std::string dir = std::string(LORAHUB_TEST_FIXTURES) + "/t5-reference/t5v11_gated_untied";
  RunRecord run = test::make_run("fixture", "lorahub", 1);
  run.adapter_config.clear();
  const json library = read_json(dir + "/lora_0/adapter_config.json");
  for (const auto& [k, v] : library.items()) run.adapter_config[k] = v.dump();
  test::TempDir tmp;
  PeftExportOptions options;
  options.base_model = "t5v11_gated_untied";
  export_peft_adapter(run, tmp.file("out"), options);
  EXPECT_EQ(read_json(tmp.file("out/adapter_config.json")), read_json(dir + "/lora_composed/adapter_config.json"));
}

TEST(PeftExport, WeightsAreTheStoredCompositionBitForBit) {
  test::TempDir tmp;
  const RunRecord run = recent_library_run();
  export_peft_adapter(run, tmp.file("out"));
  auto file = core::SafetensorsFile::open(tmp.file("out/adapter_model.safetensors"));
  ASSERT_EQ(file->tensors().size(), run.composed.size());
  for (const core::NamedArray& m : run.composed) {
    const auto& t = file->info(m.name);
    EXPECT_EQ(t.dtype, core::DType::kF32) << m.name;
    EXPECT_EQ(t.shape, m.shape) << m.name;
    ASSERT_EQ(t.nbytes, m.data.size() * sizeof(float)) << m.name;
    EXPECT_EQ(std::memcmp(t.data, m.data.data(), t.nbytes), 0) << m.name;
  }
  EXPECT_EQ(file->metadata().at("format"), "pt");
}

TEST(PeftExport, RsloraNeedsPeft08) {
  test::TempDir tmp;
  RunRecord run = recent_library_run();
  run.adapter_config["use_rslora"] = "true";
  // Default: kept, because without it PEFT would scale these weights by lora_alpha/r; said in a warning.
  auto report = export_peft_adapter(run, tmp.file("auto"));
  json config = read_json(tmp.file("auto/adapter_config.json"));
  EXPECT_EQ(config["use_rslora"], true);
  EXPECT_EQ(report.min_peft_version, "0.8");
  ASSERT_EQ(report.warnings.size(), 1u);
  EXPECT_NE(report.warnings[0].find("use_rslora: true"), std::string::npos) << report.warnings[0];
  EXPECT_NE(report.warnings[0].find("PEFT >= 0.8"), std::string::npos) << report.warnings[0];
  for (const auto& k : keys(config)) EXPECT_TRUE(kPeft05Fields.count(k) || k == "use_rslora") << k;
  // Asking for PEFT 0.5's field set explicitly cannot be honoured.
  PeftExportOptions options;
  options.peft_version = "0.5";
  auto e = error_text([&] { export_peft_adapter(run, tmp.file("v05"), options); });
  EXPECT_NE(e.find("run boolean_expressions/lorahub/seed_3: the library uses rsLoRA (use_rslora: true)"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("peft_version 0.8 or later"), std::string::npos) << e;
  options.peft_version = "0.8.2";
  report = export_peft_adapter(run, tmp.file("v08"), options);
  EXPECT_TRUE(report.warnings.empty());
  EXPECT_EQ(read_json(tmp.file("v08/adapter_config.json"))["use_rslora"], true);
}

TEST(PeftExport, NewerFieldSetOnRequest) {
  test::TempDir tmp;
  const RunRecord run = recent_library_run();
  PeftExportOptions options;
  options.peft_version = "0.9";
  auto report = export_peft_adapter(run, tmp.file("v09"), options);
  const json config = read_json(tmp.file("v09/adapter_config.json"));
  const auto v09 = peft_lora_config_fields("0.9");
  for (const auto& k : keys(config)) EXPECT_TRUE(std::count(v09.begin(), v09.end(), k)) << k;
  for (const char* k : {"rank_pattern", "alpha_pattern", "megatron_core", "use_rslora", "use_dora"}) {
    EXPECT_TRUE(config.contains(k)) << k;
  }
  for (const char* k : {"layer_replication", "runtime_config", "lora_bias", "peft_version"}) {
    EXPECT_FALSE(config.contains(k)) << k;
  }
  EXPECT_EQ(report.min_peft_version, "0.9");
  json meta = read_json(tmp.file("v09/lorahub_composition.json"));
  EXPECT_EQ(meta["peft"]["requested_version"], "0.9");
}

TEST(PeftExport, MeaningfulFieldsLeftOutAreWarnedAbout) {
  test::TempDir tmp;
  RunRecord run = recent_library_run();
  run.adapter_config["alpha_pattern"] = "{\"q\": 64}";
  run.adapter_config["custom_field"] = "\"x\"";
  auto report = export_peft_adapter(run, tmp.file("out"));
  ASSERT_EQ(report.warnings.size(), 2u);
  EXPECT_NE(report.warnings[0].find("alpha_pattern = {\"q\":64} is left out: PEFT 0.5 does not know it (PEFT >= 0.6 does)"),
            std::string::npos)
      << report.warnings[0];
  EXPECT_NE(report.warnings[1].find("custom_field"), std::string::npos) << report.warnings[1];
  EXPECT_FALSE(read_json(tmp.file("out/adapter_config.json")).contains("alpha_pattern"));
}

TEST(PeftExport, FieldSetsPerRelease) {
  auto v05 = peft_lora_config_fields("0.5");
  EXPECT_EQ(std::set<std::string>(v05.begin(), v05.end()), kPeft05Fields);
  EXPECT_EQ(peft_lora_config_fields("0.5.3"), v05);
  EXPECT_EQ(peft_lora_config_fields("v0.5.0"), v05);
  auto v07 = peft_lora_config_fields("0.7.1");
  EXPECT_EQ(std::count(v07.begin(), v07.end(), "use_rslora"), 0);
  auto v08 = peft_lora_config_fields("0.8");
  EXPECT_EQ(std::count(v08.begin(), v08.end(), "use_rslora"), 1);
  EXPECT_EQ(v08.size(), v07.size() + 1);
  auto newest = peft_lora_config_fields("1.0");
  for (const auto& f : v08) EXPECT_EQ(std::count(newest.begin(), newest.end(), f), 1) << f;
  EXPECT_NE(error_text([] { peft_lora_config_fields("0.4"); }).find("before 0.5"), std::string::npos);
  EXPECT_NE(error_text([] { peft_lora_config_fields("latest"); }).find("peft_version 'latest'"), std::string::npos);
  EXPECT_NE(error_text([] { peft_lora_config_fields("0"); }), "");
}

TEST(PeftExport, ModelCardDescribesTheComposition) {
  test::TempDir tmp;
  const RunRecord run = recent_library_run();
  export_peft_adapter(run, tmp.file("out"));
  const std::string card = test::read_bytes(tmp.file("out/README.md"));
  EXPECT_EQ(card.rfind("---\nbase_model: google/flan-t5-large\nlibrary_name: peft\n", 0), 0u) << card;
  EXPECT_NE(card.find("| Base model | `google/flan-t5-large` |"), std::string::npos) << card;
  EXPECT_NE(card.find("| Task | `boolean_expressions` |"), std::string::npos) << card;
  EXPECT_NE(card.find("| Seed | 3 |"), std::string::npos) << card;
  EXPECT_NE(card.find("| Optimizer | cobyla, budget 40 |"), std::string::npos) << card;
  char loss[32];
  std::snprintf(loss, sizeof loss, "%.4f", run.best_loss);
  EXPECT_NE(card.find(std::string("| Few-shot loss | ") + loss + " |"), std::string::npos) << card;
  std::size_t correct = 0;
  for (auto c : run.correct) correct += c;
  char acc[64];
  std::snprintf(acc, sizeof acc, "| Test accuracy | %.1f %% (%zu / %zu) |", 100 * run.accuracy, correct, run.correct.size());
  EXPECT_NE(card.find(acc), std::string::npos) << card;
  for (std::size_t i = 0; i < run.module_names.size(); ++i) {
    char row[256];
    std::snprintf(row, sizeof row, "| %zu | `%s` | %.4f |", i + 1, run.module_names[i].c_str(), run.best_weights[i]);
    EXPECT_NE(card.find(row), std::string::npos) << row << "\n" << card;
  }
  EXPECT_NE(card.find(std::string("| lorahub-hpc | ") + LORAHUB_TEST_VERSION + " (the run: lorahub-hpc 0.1.0) |"),
            std::string::npos)
      << card;
  EXPECT_NE(card.find("PeftModel.from_pretrained(base, "), std::string::npos) << card;
}

TEST(PeftExport, CompositionMetadataIsExact) {
  test::TempDir tmp;
  const RunRecord run = recent_library_run();
  export_peft_adapter(run, tmp.file("out"));
  const json meta = read_json(tmp.file("out/lorahub_composition.json"));
  EXPECT_EQ(meta["format"], "lorahub-composition");
  EXPECT_EQ(meta["format_version"], 1);
  EXPECT_EQ(meta["lorahub_hpc_version"], LORAHUB_TEST_VERSION);
  EXPECT_EQ(meta["task"], run.task);
  EXPECT_EQ(meta["method"], "lorahub");
  EXPECT_EQ(meta["seed"], 3);
  EXPECT_EQ(meta["base_model"], "google/flan-t5-large");
  ASSERT_EQ(meta["modules"].size(), run.module_names.size());
  for (std::size_t i = 0; i < run.module_names.size(); ++i) {
    EXPECT_EQ(meta["modules"][i]["name"], run.module_names[i]);
    EXPECT_EQ(meta["modules"][i]["weight"].get<double>(), run.best_weights[i]);  // round-trips exactly
  }
  EXPECT_EQ(meta["best_loss"].get<double>(), run.best_loss);
  EXPECT_EQ(meta["accuracy"].get<double>(), run.accuracy);
  EXPECT_EQ(meta["test_examples"], run.correct.size());
  EXPECT_EQ(meta["shots"], 5);
  EXPECT_EQ(meta["peft"]["min_version"], "0.5");
  EXPECT_TRUE(meta["peft"]["requested_version"].is_null());
  // Nothing of lorahub's own goes into adapter_config.json.
  EXPECT_FALSE(read_json(tmp.file("out/adapter_config.json")).contains("lorahub"));
}

TEST(PeftExport, UnmeasuredValuesAreNullAndLeftOffTheCard) {
  test::TempDir tmp;
  RunRecord run = recent_library_run();
  run.best_loss = std::nan("");
  run.accuracy = std::nan("");
  run.best_weights.clear();  // e.g. lora-ft: no weights over modules
  export_peft_adapter(run, tmp.file("out"));
  const json meta = read_json(tmp.file("out/lorahub_composition.json"));
  EXPECT_TRUE(meta["best_loss"].is_null());
  EXPECT_TRUE(meta["accuracy"].is_null());
  EXPECT_TRUE(meta["modules"][0]["weight"].is_null());
  const std::string card = test::read_bytes(tmp.file("out/README.md"));
  EXPECT_EQ(card.find("Few-shot loss"), std::string::npos) << card;
  EXPECT_EQ(card.find("Test accuracy"), std::string::npos) << card;
  EXPECT_NE(card.find("| 1 | `module_0/not-a-path` | - |"), std::string::npos) << card;
}

TEST(PeftExport, BaseModelFromHubCachePathOrRevisionedId) {
  test::TempDir tmp;
  RunRecord run = recent_library_run();
  run.text_attrs["model_path"] = "/root/.cache/huggingface/hub/models--google--flan-t5-large/snapshots/0613663d0d";
  export_peft_adapter(run, tmp.file("a"));
  json config = read_json(tmp.file("a/adapter_config.json"));
  EXPECT_EQ(config["base_model_name_or_path"], "google/flan-t5-large");
  EXPECT_EQ(config["revision"], "0613663d0d");
  EXPECT_NE(test::read_bytes(tmp.file("a/README.md")).find("revision=\"0613663d0d\""), std::string::npos);

  PeftExportOptions options;
  options.base_model = "google/flan-t5-xl@v2";
  export_peft_adapter(run, tmp.file("b"), options);
  config = read_json(tmp.file("b/adapter_config.json"));
  EXPECT_EQ(config["base_model_name_or_path"], "google/flan-t5-xl");
  EXPECT_EQ(config["revision"], "v2");

  // A local folder stays a path and is no hub id in the card's header.
  fs::create_directories(tmp.file("models/t5"));
  options.base_model = tmp.file("models/t5");
  export_peft_adapter(run, tmp.file("c"), options);
  EXPECT_EQ(read_json(tmp.file("c/adapter_config.json"))["base_model_name_or_path"], tmp.file("models/t5"));
  EXPECT_EQ(test::read_bytes(tmp.file("c/README.md")).find("base_model:"), std::string::npos);
  // The original three-argument interface.
  export_peft_adapter(run, tmp.file("d"), std::string("t5-small"));
  EXPECT_EQ(read_json(tmp.file("d/adapter_config.json"))["base_model_name_or_path"], "t5-small");
}

TEST(PeftExport, RefusesWhatCannotBeExported) {
  test::TempDir tmp;
  RunRecord r = recent_library_run();
  r.best_weights.pop_back();
  EXPECT_NE(error_text([&] { export_peft_adapter(r, tmp.file("x")); }).find("5 module names but 4 weights"),
            std::string::npos);
  r = recent_library_run();
  r.composed.clear();
  EXPECT_NE(error_text([&] { export_peft_adapter(r, tmp.file("x")); }).find("stores no composed adapter"),
            std::string::npos);
  r = recent_library_run();
  r.adapter_config.erase("lora_alpha");
  EXPECT_NE(error_text([&] { export_peft_adapter(r, tmp.file("x")); }).find("no adapter configuration"),
            std::string::npos);
  r = test::make_failed_run("t", "lorahub", 1);
  EXPECT_NE(error_text([&] { export_peft_adapter(r, tmp.file("x")); }).find("is failed"), std::string::npos);
  EXPECT_FALSE(test::exists(tmp.file("x")));
}

}  // namespace
}  // namespace lorahub::io
